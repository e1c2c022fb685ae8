//! The command-line grammar. Server options live on `serve` only; the client options (endpoint,
//! token, data dir, `--json`) on the client commands only, so `--help` of each shows what applies.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "fnbridge",
    version,
    about = "Self-hosted event triggers for Function Compute-style functions",
    after_help = "Data directory: --data-dir, else $FNBRIDGE_DATA_DIR, else $XDG_DATA_HOME/fnbridge, \
else $HOME/.local/share/fnbridge. Client commands use --token, else $FNBRIDGE_TOKEN, else the \
admin.token file in that data directory."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The default data directory: `$XDG_DATA_HOME/fnbridge`, else `$HOME/.local/share/fnbridge`
/// (`$FNBRIDGE_DATA_DIR` and `--data-dir` are applied by clap before this), else `./fnbridge-data`
/// when neither variable is usable.
pub fn default_data_dir() -> PathBuf {
    let abs = |v: Option<OsString>| {
        v.map(PathBuf::from)
            .filter(|p| p.is_absolute() && !p.as_os_str().is_empty())
    };
    if let Some(x) = abs(std::env::var_os("XDG_DATA_HOME")) {
        return x.join("fnbridge");
    }
    if let Some(h) = abs(std::env::var_os("HOME")) {
        return h.join(".local/share/fnbridge");
    }
    PathBuf::from("fnbridge-data")
}

/// Options of every client command (not of `serve` or `pattern`).
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// API endpoint of a running server.
    #[arg(
        long,
        global = true,
        env = "FNBRIDGE_ENDPOINT",
        default_value = "http://127.0.0.1:9000"
    )]
    pub endpoint: String,
    /// Admin token [default: the admin.token file in --data-dir].
    #[arg(long, global = true, env = "FNBRIDGE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Data directory of the server, read only to find its admin.token when no token is given.
    #[arg(
        long,
        global = true,
        env = "FNBRIDGE_DATA_DIR",
        default_value_os_t = default_data_dir()
    )]
    pub data_dir: PathBuf,
    /// Print JSON instead of tables and text (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
}

/// A client command group: the client options plus its subcommands.
#[derive(Args, Debug)]
pub struct Client<T: Subcommand> {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub cmd: T,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Manage functions: create, update, invoke, test.
    Function(Client<FunctionCmd>),
    /// Publish, list and delete function versions.
    Version(Client<VersionCmd>),
    /// Manage aliases (named pointers to a version, with optional weighted routing).
    Alias(Client<AliasCmd>),
    /// Manage triggers.
    Trigger(Client<TriggerCmd>),
    /// Manage a function's async invocation config: retries, maximum event age, destinations.
    AsyncConfig(Client<AsyncConfigCmd>),
    /// Send events to the ingest API.
    Events(Client<EventsCmd>),
    /// Inspect delivery tasks.
    Tasks(Client<TasksCmd>),
    /// Inspect and act on the dead-letter queue.
    Dlq(Client<DlqCmd>),
    /// Print a function's logs.
    Logs(LogsArgs),
    /// Manage the account's access keys (for signed clients such as the FC SDK).
    Key(Client<KeyCmd>),
    /// Manage roles: RAM policies that functions assume for STS credentials.
    Role(Client<RoleCmd>),
    /// Create, list and delete object-store buckets.
    Bucket(OssClient<BucketCmd>),
    /// Copy files to or from the object store: `cp FILE oss://bucket/key`, `cp oss://bucket/key FILE`,
    /// or within it on the server: `cp oss://a/key oss://b/key2`.
    Cp(CpArgs),
    /// List buckets (no argument) or the objects under `oss://bucket/prefix`.
    Ls(LsArgs),
    /// Delete an object, or with --recursive every object under a prefix.
    Rm(RmArgs),
    /// The built-in CDN: domains, refresh, push, block, tasks and offline logs.
    Cdn(Client<CdnCmd>),
    /// Archives: copies of a bus's events that match a pattern, kept for replay.
    Archive(Client<ArchiveCmd>),
    /// Replays: an archive's events of a time range published again on its bus.
    Replay(Client<ReplayCmd>),
    /// Work with event patterns locally (no server needed).
    #[command(subcommand)]
    Pattern(PatternCmd),
}

/// Options of the object-store commands: the client options, where the object store listens and
/// which access key signs (S3 SigV4, as `aws s3` does).
#[derive(Args, Debug, Clone)]
pub struct OssGlobal {
    #[command(flatten)]
    pub global: Global,
    /// Object-store endpoint of a running server (its --oss-listen).
    #[arg(
        long,
        global = true,
        env = "FNBRIDGE_OSS_ENDPOINT",
        default_value = "http://127.0.0.1:9001"
    )]
    pub oss_endpoint: String,
    /// Access key id to sign with [default: a key the CLI creates with the admin token on first
    /// use and keeps in --data-dir/cli-access-key.json, mode 0600].
    #[arg(long, global = true, env = "FNBRIDGE_ACCESS_KEY_ID")]
    pub access_key_id: Option<String>,
    /// Secret of --access-key-id [default: none; required with --access-key-id].
    #[arg(
        long,
        global = true,
        env = "FNBRIDGE_ACCESS_KEY_SECRET",
        hide_env_values = true
    )]
    pub access_key_secret: Option<String>,
}

/// An object-store command group: the object-store options plus its subcommands.
#[derive(Args, Debug)]
pub struct OssClient<T: Subcommand> {
    #[command(flatten)]
    pub oss: OssGlobal,
    #[command(subcommand)]
    pub cmd: T,
}

#[derive(Subcommand, Debug)]
pub enum BucketCmd {
    /// Create a bucket: 3-63 lowercase letters, digits and '-'.
    Create {
        /// Bucket name, bare or as oss://bucket.
        name: String,
    },
    /// List buckets.
    List,
    /// Delete a bucket (it must be empty).
    Delete {
        /// Bucket name, bare or as oss://bucket.
        name: String,
    },
}

#[derive(Args, Debug)]
pub struct CpArgs {
    #[command(flatten)]
    pub oss: OssGlobal,
    /// Source: a local path or oss://bucket/key (both paths may be oss:// URLs).
    pub from: String,
    /// Destination: a local path or oss://bucket/key; a trailing '/' (or an existing
    /// directory) keeps the source's file name.
    pub to: String,
    /// Copy a directory tree, or every object under an oss:// prefix [default: off].
    #[arg(long, short)]
    pub recursive: bool,
    /// Never draw a progress bar [default: drawn on a terminal for files of 1 MiB or more].
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    #[command(flatten)]
    pub oss: OssGlobal,
    /// oss://bucket[/prefix] [default: list the buckets].
    pub url: Option<String>,
    /// Every object under the prefix, not one level of "directories" [default: off].
    #[arg(long, short)]
    pub recursive: bool,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    #[command(flatten)]
    pub oss: OssGlobal,
    /// oss://bucket/key, or with --recursive oss://bucket/prefix.
    pub url: String,
    /// Delete every object under the prefix [default: off].
    #[arg(long, short)]
    pub recursive: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    #[command(flatten)]
    pub global: Global,
    /// Function name.
    pub function: String,
    /// Keep printing new log records as they arrive (reconnects when the server restarts).
    #[arg(long, short)]
    pub follow: bool,
    /// Only the log of this invocation (fails when there is none).
    #[arg(long)]
    pub request_id: Option<String>,
}

/// Network access of sandboxed instances.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SandboxNetwork {
    /// The outside world (slirp4netns) and fnbridge's API.
    Outside,
    /// fnbridge's API only.
    Internal,
}

fn parse_python_map(s: &str) -> Result<(String, PathBuf), String> {
    let (version, path) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}': expected 3.X=PATH"))?;
    let version = version.trim().trim_start_matches("python");
    if !version.starts_with("3.") || version[2..].parse::<u32>().is_err() {
        return Err(format!("'{version}': expected a version such as 3.9"));
    }
    Ok((version.to_owned(), PathBuf::from(path)))
}

fn parse_mount(s: &str) -> Result<fnbridge_runtime::SharedMount, String> {
    let (path, writable) = match s.strip_suffix(":rw") {
        Some(p) => (p, true),
        None => (s.strip_suffix(":ro").unwrap_or(s), false),
    };
    let path = PathBuf::from(path);
    if !path.is_absolute() {
        return Err(format!("'{s}': the path must be absolute"));
    }
    Ok(fnbridge_runtime::SharedMount { path, writable })
}

/// Options of `fnbridge serve`. Field names are what `serve.rs` reads.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Where state, code and the admin token live (created if missing).
    #[arg(long, env = "FNBRIDGE_DATA_DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port (printed on start).
    #[arg(long, env = "FNBRIDGE_LISTEN", default_value = "127.0.0.1:9000")]
    pub listen: String,
    /// Python interpreter for the python3 runtime, and for a python3.X whose interpreter
    /// (python3.X on PATH, or under pyenv) this host lacks.
    #[arg(long, env = "FNBRIDGE_PYTHON", default_value = "python3")]
    pub python: PathBuf,
    /// Interpreter for a python3.X runtime, as 3.X=PATH (repeatable), where PATH discovery does
    /// not find the right one.
    #[arg(long = "python-map", value_name = "3.X=PATH", value_parser = parse_python_map)]
    pub python_map: Vec<(String, PathBuf)>,
    /// Refuse deploys of a python3.X this host has no interpreter for, instead of running them
    /// on the nearest version.
    #[arg(long)]
    pub exact_python: bool,
    /// Packages of FC's Python runtimes installed once into a shared read-only layer on every
    /// function's sys.path (comma-separated; empty for none).
    #[arg(long, value_delimiter = ',', default_value = "oss2")]
    pub python_layer_packages: Vec<String>,
    /// Where the layers of FC's built-in modules are installed [default: <data-dir>/runtime].
    /// Servers may share one.
    #[arg(long, env = "FNBRIDGE_LAYER_DIR")]
    pub python_layer_dir: Option<PathBuf>,
    /// Run function instances without a sandbox: as this server's user, seeing its files,
    /// processes and network. Only for hosts that cannot create namespaces; warned on every
    /// start.
    #[arg(long)]
    pub insecure_no_sandbox: bool,
    /// What sandboxed instances reach over the network: `outside` (the internet, through
    /// slirp4netns, and fnbridge's API) or `internal` (fnbridge's API only).
    #[arg(long, value_enum, default_value_t = SandboxNetwork::Outside)]
    pub sandbox_network: SandboxNetwork,
    /// A host directory shared with every sandboxed instance at the same path, as PATH or
    /// PATH:rw (repeatable): storage the operator chooses to share, like FC's NAS mounts.
    #[arg(long = "sandbox-mount", value_name = "PATH[:rw]", value_parser = parse_mount)]
    pub sandbox_mounts: Vec<fnbridge_runtime::SharedMount>,
    /// Size of each instance's private /tmp, in MB.
    #[arg(long, default_value_t = 512)]
    pub sandbox_tmp_mb: u32,
    /// Region reported to functions and in ARNs.
    #[arg(long, default_value = "cn-hangzhou")]
    pub region: String,
    /// Account id reported to functions and in ARNs.
    #[arg(long, default_value = "1234567890123456")]
    pub account_id: String,
    /// First retry delay in milliseconds; later retries double it (±20% jitter).
    #[arg(long, default_value_t = 1000)]
    pub retry_base_ms: u64,
    /// Longest delay between retries, in seconds.
    #[arg(long, default_value_t = 300)]
    pub retry_max_s: u64,
    /// Most deliveries running at once.
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: usize,
    /// Most instances per function.
    #[arg(long, default_value_t = 8)]
    pub max_instances: usize,
    /// Seconds an idle instance is kept warm.
    #[arg(long, default_value_t = 600)]
    pub idle_timeout_s: u64,
    /// Seconds to let running deliveries finish on SIGINT/SIGTERM.
    #[arg(long, default_value_t = 10)]
    pub shutdown_grace_s: u64,
    /// Most deliveries of one function running at once, so one slow function cannot hold
    /// every delivery slot.
    #[arg(long, default_value_t = 16)]
    pub max_in_flight_per_function: usize,
    /// Open deliveries kept in memory per function; the rest wait in the database and are
    /// read in as these drain.
    #[arg(long, default_value_t = 1024)]
    pub window_per_function: usize,
    /// Open deliveries kept in memory in all.
    #[arg(long, default_value_t = 16384)]
    pub window: usize,
    /// Most open deliveries (queued or waiting to retry); beyond it ingest and async
    /// invocations answer 503 with Retry-After.
    #[arg(long, default_value_t = 2_000_000)]
    pub max_backlog: u64,
    /// Days to keep finished deliveries, their attempts, events and function logs (the
    /// dead-letter queue is kept until deleted).
    #[arg(long, default_value_t = 7)]
    pub retention_days: u64,
    /// Most finished deliveries kept (the newest), whatever their age.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_finished_tasks: u64,
    /// Seconds between pruning runs.
    #[arg(long, default_value_t = 300)]
    pub prune_interval_s: u64,
    /// Seconds a request body may take to arrive once its reading started (408 beyond it).
    #[arg(long, default_value_t = 120)]
    pub body_timeout_s: u64,
    /// Most API connections open at once; beyond it new connections are closed at once.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// Seconds a client has to send a complete request head (closed beyond it).
    #[arg(long, default_value_t = 10)]
    pub header_timeout_s: u64,
    /// Seconds a keep-alive connection may wait for its next request (closed beyond it).
    #[arg(long, default_value_t = 60)]
    pub idle_conn_timeout_s: u64,
    /// Address of the object store (S3, OSS and COS on one port), printed on start; "off"
    /// disables it. Default 127.0.0.1:9001, or a free port when --listen asks for one (port 0),
    /// so servers started for tests do not compete for 9001.
    #[arg(long, env = "FNBRIDGE_OSS_LISTEN")]
    pub oss_listen: Option<String>,
    /// Host names whose sub-domains name buckets (virtual-host style: `bucket.localhost`).
    #[arg(long, default_value = "localhost")]
    pub oss_domain: Vec<String>,
    /// The COS region COS events name (`cosBucket.region`, `cosObject.url`).
    #[arg(long, default_value = "ap-guangzhou")]
    pub cos_region: String,
    /// Address of the CDN edge (default 127.0.0.1:9080; a free port when --listen uses port 0;
    /// `off` disables the CDN).
    #[arg(long, env = "FNBRIDGE_CDN_LISTEN")]
    pub cdn_listen: Option<String>,
    /// How long the edge keeps a response without caching headers fresh, in seconds.
    #[arg(long, default_value_t = 600)]
    pub cdn_default_ttl_s: u64,
    /// Size bound of the edge's memory cache, in MiB.
    #[arg(long, default_value_t = 256)]
    pub cdn_cache_mb: u64,
    /// Size bound of the edge's disk tier (what the memory cache evicts), in MiB; 0 disables it.
    /// Kept in `<data-dir>/cdn-cache/`, emptied at start.
    #[arg(long, default_value_t = 1024)]
    pub cdn_disk_cache_mb: u64,
    /// Length of an offline log file's period, in seconds (hourly by default).
    #[arg(long, default_value_t = 3600)]
    pub cdn_log_period_s: u64,
    /// The object-store bucket offline log files are stored in (created at start).
    #[arg(long, default_value = "cdnlog")]
    pub cdn_log_bucket: String,
    /// How long a presigned log URL (`LogPath`, `filePath`) is valid, in seconds.
    #[arg(long, default_value_t = 86400)]
    pub cdn_log_url_validity_s: u64,
    /// Base URL presigned log URLs point to (default: the object store's address).
    #[arg(long, env = "FNBRIDGE_CDN_LOG_ENDPOINT")]
    pub cdn_log_endpoint: Option<String>,
    /// AddCdnDomain calls admitted per hour (sliding window; every call counts), as Alibaba's
    /// default quota.
    #[arg(long, default_value_t = 100)]
    pub cdn_add_domain_per_hour: usize,
}

#[derive(Subcommand, Debug)]
pub enum FunctionCmd {
    /// Create a function from a code directory or zip file.
    Create(FunctionSpecArgs),
    /// Show a function.
    Get {
        /// Function name.
        name: String,
    },
    /// List functions.
    List {
        /// Only functions whose name starts with this.
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Change a function's code or configuration (only the options given).
    Update(FunctionSpecArgs),
    /// Delete a function (its triggers must be deleted first).
    Delete {
        /// Function name.
        name: String,
    },
    /// Invoke a function.
    Invoke {
        /// Function name.
        name: String,
        /// Event payload as a string [default: empty].
        #[arg(long, conflicts_with = "payload_file")]
        payload: Option<String>,
        /// Event payload from a file (- for standard input).
        #[arg(long)]
        payload_file: Option<PathBuf>,
        /// Invoke asynchronously (durable, retried) instead of waiting for the result.
        #[arg(long = "async")]
        is_async: bool,
        /// Print the invocation's log (on standard error).
        #[arg(long)]
        log: bool,
        /// Version or alias to invoke [default: LATEST].
        #[arg(long)]
        qualifier: Option<String>,
    },
    /// Run a function on a saved test event or a template (see `--list`).
    Test {
        /// Function name.
        name: String,
        /// A saved test event of the function, or a template such as LogFileCreated or
        /// oss:ObjectCreated:PutObject.
        #[arg(long, required_unless_present = "list")]
        event_name: Option<String>,
        /// Save this file (JSON) as the test event first (- for standard input).
        #[arg(long)]
        payload_file: Option<PathBuf>,
        /// List the function's saved test events and the templates.
        #[arg(long)]
        list: bool,
        /// Version or alias to invoke [default: LATEST].
        #[arg(long)]
        qualifier: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct FunctionSpecArgs {
    /// Function name.
    pub name: String,
    /// The function's code: a directory (zipped and uploaded) or a .zip file. Required to create.
    #[arg(long)]
    pub code: Option<PathBuf>,
    /// python3, python3.9, python3.10, python3.12, custom, custom.debian10/11/12
    /// [create default: python3.10].
    #[arg(long)]
    pub runtime: Option<String>,
    /// Handler as module.function [create default: index.handler].
    #[arg(long)]
    pub handler: Option<String>,
    /// Memory in MB (multiple of 64, 128–32768) [create default: 128].
    #[arg(long)]
    pub memory: Option<u32>,
    /// Timeout in seconds [create default: 3].
    #[arg(long)]
    pub timeout: Option<u32>,
    /// Environment variable KEY=VALUE (repeatable; replaces all of them on update).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Description of the function.
    #[arg(long)]
    pub description: Option<String>,
    /// Initializer handler, e.g. index.initialize.
    #[arg(long)]
    pub initializer: Option<String>,
    /// Custom runtime: the program to start, one list element per use
    /// (customRuntimeConfig.command) [default: the code's ./bootstrap].
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// Custom runtime: arguments of the command, one per use (customRuntimeConfig.args).
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Custom runtime: the port the program listens on in FC (customRuntimeConfig.port, FC's
    /// default 9000); fnbridge tells each instance its own free port in FC_CUSTOM_LISTEN_PORT,
    /// which the program must listen on.
    #[arg(long)]
    pub port: Option<u16>,
    /// Requests one instance serves at once, 1–200 [create default: 1].
    #[arg(long)]
    pub instance_concurrency: Option<u32>,
}

#[derive(Subcommand, Debug)]
pub enum VersionCmd {
    /// Publish the function's current code and configuration as a new version.
    Publish {
        /// Function name.
        function: String,
        /// Description of the version.
        #[arg(long)]
        description: Option<String>,
    },
    /// List a function's versions, newest first.
    List {
        /// Function name.
        function: String,
    },
    /// Delete a version (no alias or trigger may use it).
    Delete {
        /// Function name.
        function: String,
        /// Version id.
        version: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AliasCmd {
    /// Create an alias pointing at a version.
    Create {
        /// Function name.
        function: String,
        /// Alias name.
        alias: String,
        /// The version the alias points at.
        #[arg(long)]
        version: String,
        /// Route this fraction of calls to another version: VERSION=WEIGHT, e.g. 2=0.1
        /// (repeatable).
        #[arg(long = "weight", value_name = "VERSION=WEIGHT")]
        weight: Vec<String>,
        /// Description of the alias.
        #[arg(long)]
        description: Option<String>,
    },
    /// Show an alias.
    Get {
        /// Function name.
        function: String,
        /// Alias name.
        alias: String,
    },
    /// List a function's aliases.
    List {
        /// Function name.
        function: String,
    },
    /// Change an alias (only the options given; --weight replaces all weights).
    Update {
        /// Function name.
        function: String,
        /// Alias name.
        alias: String,
        /// The version the alias points at.
        #[arg(long)]
        version: Option<String>,
        /// Route this fraction of calls to another version: VERSION=WEIGHT (repeatable).
        #[arg(
            long = "weight",
            value_name = "VERSION=WEIGHT",
            conflicts_with = "clear_weights"
        )]
        weight: Vec<String>,
        /// Remove every additional version weight.
        #[arg(long)]
        clear_weights: bool,
        /// Description of the alias.
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete an alias (no trigger may use it).
    Delete {
        /// Function name.
        function: String,
        /// Alias name.
        alias: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AsyncConfigCmd {
    /// Show the async invocation config.
    Get {
        /// Function name.
        function: String,
        /// Version or alias the config belongs to [default: LATEST].
        #[arg(long)]
        qualifier: Option<String>,
    },
    /// Set the async invocation config (replaces it; options not given take their defaults).
    Put {
        /// Function name.
        function: String,
        /// Version or alias the config belongs to [default: LATEST].
        #[arg(long)]
        qualifier: Option<String>,
        /// Retries after a function error, 0–8.
        #[arg(long, default_value_t = 3)]
        max_retries: u32,
        /// Seconds after which an undelivered event expires, 1–604800.
        #[arg(long, default_value_t = 86_400)]
        max_age_s: u32,
        /// Function ARN invoked with the result after a success
        /// (acs:fc:REGION:ACCOUNT:functions/NAME).
        #[arg(long, value_name = "ARN")]
        on_success: Option<String>,
        /// Function ARN invoked with the error after the last failed attempt.
        #[arg(long, value_name = "ARN")]
        on_failure: Option<String>,
    },
    /// Delete the async invocation config (back to the defaults).
    Delete {
        /// Function name.
        function: String,
        /// Version or alias the config belongs to [default: LATEST].
        #[arg(long)]
        qualifier: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TriggerCmd {
    /// Create a trigger.
    Create {
        /// Function name.
        function: String,
        /// Trigger name.
        name: String,
        /// cdn_events, oss, cos or eventbridge.
        #[arg(long = "type")]
        trigger_type: String,
        /// The trigger config as JSON, or @FILE.
        #[arg(long)]
        config: String,
        /// Version or alias the trigger invokes [default: LATEST].
        #[arg(long)]
        qualifier: Option<String>,
        /// The event source's ARN (required for oss and cos: the bucket).
        #[arg(long)]
        source_arn: Option<String>,
        /// Description of the trigger.
        #[arg(long)]
        description: Option<String>,
    },
    /// Show a trigger.
    Get {
        /// Function name.
        function: String,
        /// Trigger name.
        name: String,
    },
    /// List a function's triggers.
    List {
        /// Function name.
        function: String,
    },
    /// Change a trigger's config, qualifier or description.
    Update {
        /// Function name.
        function: String,
        /// Trigger name.
        name: String,
        /// The new trigger config as JSON, or @FILE.
        #[arg(long)]
        config: Option<String>,
        /// Version or alias the trigger invokes.
        #[arg(long)]
        qualifier: Option<String>,
        /// Description of the trigger.
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a trigger.
    Delete {
        /// Function name.
        function: String,
        /// Trigger name.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum EventsCmd {
    /// Send a file holding {"events":[...]} (- for standard input).
    Put {
        /// The envelope file.
        file: PathBuf,
    },
    /// For every trigger, say whether one event (a file, - for standard input: a CloudEvent,
    /// or one event of an envelope) matches its pattern and, if not, the first field that failed.
    Explain {
        /// The event file.
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum TasksCmd {
    /// List delivery tasks, newest first.
    List {
        /// Only tasks of this function.
        #[arg(long)]
        function: Option<String>,
        /// Only tasks in this state: Enqueued, Running, Succeeded, Retrying, Failed, Expired.
        #[arg(long)]
        status: Option<String>,
        /// Most tasks to show.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Show one task with every attempt and its log.
    Get {
        /// Function name.
        function: String,
        /// Task id (from `tasks list` or `events put --json`).
        task_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum DlqCmd {
    /// List dead-letter entries, newest first.
    List {
        /// Only entries of this function.
        #[arg(long)]
        function: Option<String>,
        /// Most entries to show.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Show one entry with its event and last error.
    Get {
        /// Entry id.
        id: i64,
    },
    /// Deliver the entry again as a new task (and remove it from the queue).
    Redrive {
        /// Entry id.
        id: i64,
    },
    /// Delete an entry.
    Delete {
        /// Entry id.
        id: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// Create an access key and print its id and secret (the secret is shown only now).
    Create {
        /// A note saying what the key is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List access keys (ids only; secrets are never shown again).
    List,
    /// Delete an access key; requests signed with it are refused from now on.
    Delete {
        /// Access key id.
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum RoleCmd {
    /// Create a role with a RAM policy; functions name it as `acs:ram::{account}:role/{name}`.
    Create {
        /// Role name: 1-64 letters, digits, '.' or '-'.
        name: String,
        /// The policy document: inline JSON, @FILE or a file name, e.g.
        /// '{"Version":"1","Statement":[{"Effect":"Allow","Action":"fc:InvokeFunction","Resource":"*"}]}'
        #[arg(long)]
        policy: String,
        /// A note saying what the role is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List roles.
    List,
    /// Show a role and its policy.
    Get {
        /// Role name.
        name: String,
    },
    /// Delete a role; credentials issued for it stop working at once.
    Delete {
        /// Role name.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ArchiveCmd {
    /// Archive a bus's events that match a pattern.
    Create {
        /// Archive name: 1-127 letters, digits, '_', '.' or '-'.
        name: String,
        /// The event pattern (JSON) an event must match to be kept.
        #[arg(long)]
        pattern: String,
        /// The bus whose events are archived.
        #[arg(long, default_value = "default")]
        bus: String,
        /// Days an event is kept; 0 keeps it for ever.
        #[arg(long, default_value_t = 0)]
        retention_days: u32,
        /// Free text kept with the archive.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List archives.
    List,
    /// Show an archive with its event count and size.
    Get {
        /// Archive name.
        name: String,
    },
    /// Delete an archive and the events it kept.
    Delete {
        /// Archive name.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ReplayCmd {
    /// Replay an archive's events of [--start, --end) on its bus; waits for the end with a
    /// progress bar on a terminal unless --no-wait.
    Start {
        /// Replay name: 1-127 letters, digits, '_', '.' or '-'.
        name: String,
        /// The archive to replay from.
        #[arg(long)]
        archive: String,
        /// First event time replayed (RFC 3339, e.g. 2026-11-26T10:00:00Z).
        #[arg(long)]
        start: String,
        /// End of the range, exclusive (RFC 3339).
        #[arg(long)]
        end: String,
        /// Replay to this eventbridge trigger only (function/trigger); repeat for several
        /// [default: every rule of the bus].
        #[arg(long = "rule")]
        rules: Vec<String>,
        /// Return once the replay has started.
        #[arg(long)]
        no_wait: bool,
        /// Never draw a progress bar.
        #[arg(long)]
        no_progress: bool,
    },
    /// Show a replay's state and progress; --wait follows it to the end.
    Get {
        /// Replay name.
        name: String,
        /// Follow the replay until it ends.
        #[arg(long)]
        wait: bool,
        /// Never draw a progress bar.
        #[arg(long)]
        no_progress: bool,
    },
    /// List replays, newest first.
    List,
    /// Stop a running replay (what it published stays published).
    Cancel {
        /// Replay name.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum CdnCmd {
    /// Manage accelerated domains.
    #[command(subcommand)]
    Domain(CdnDomainCmd),
    /// Refresh cached URLs (one per argument, `example.com/path`): a File is purged (the next
    /// request goes to the origin); other types are marked expired (revalidated with the
    /// origin on the next request), or purged with --force.
    Refresh {
        /// URLs, or directories ending with '/' with --type Directory.
        #[arg(required = true)]
        urls: Vec<String>,
        /// File, Directory, Regex or IgnoreParams.
        #[arg(long = "type", default_value = "File")]
        object_type: String,
        /// Purge what a Directory, Regex or IgnoreParams refresh names instead of expiring it.
        #[arg(long)]
        force: bool,
    },
    /// Fetch URLs into the cache ahead of requests.
    Push {
        /// URLs to fetch (`example.com/path`), one per argument.
        #[arg(required = true)]
        urls: Vec<String>,
    },
    /// Block URLs at the edge (403 until unblocked).
    Block {
        /// URLs to block (`example.com/path`), one per argument.
        #[arg(required = true)]
        urls: Vec<String>,
    },
    /// Unblock URLs.
    Unblock {
        /// URLs to unblock, as they were blocked.
        #[arg(required = true)]
        urls: Vec<String>,
    },
    /// List refresh, push and block tasks, newest first.
    Tasks {
        /// Only this task id (comma-separated for several).
        #[arg(long)]
        task_id: Option<String>,
    },
    /// List a domain's offline log files with their presigned URLs.
    Logs {
        /// The accelerated domain name, e.g. cdn.example.com.
        domain: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum CdnDomainCmd {
    /// Add a domain whose origin is a bucket of the object store (--bucket) or a server
    /// (--origin host[:port]).
    Add {
        /// The accelerated domain name, e.g. cdn.example.com.
        domain: String,
        /// A bucket of the embedded object store as origin.
        #[arg(long, conflicts_with = "origin")]
        bucket: Option<String>,
        /// An IP address or domain, with an optional port, as origin.
        #[arg(long, required_unless_present = "bucket")]
        origin: Option<String>,
        /// web, download or video.
        #[arg(long, default_value = "web")]
        cdn_type: String,
    },
    /// List domains.
    List,
    /// Show a domain's configuration and status.
    Get {
        /// The accelerated domain name, e.g. cdn.example.com.
        domain: String,
    },
    /// Serve the domain again.
    Start {
        /// The accelerated domain name, e.g. cdn.example.com.
        domain: String,
    },
    /// Stop serving the domain (the edge answers 403); its configuration is kept.
    Stop {
        /// The accelerated domain name, e.g. cdn.example.com.
        domain: String,
    },
    /// Delete the domain.
    Delete {
        /// The accelerated domain name, e.g. cdn.example.com.
        domain: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum PatternCmd {
    /// Test events against a pattern, or against the pattern a trigger config compiles to.
    /// Prints match / no match per event; exits 0 when an event matches, 1 when none does, 2 on
    /// invalid input.
    Test(PatternTestArgs),
}

#[derive(Args, Debug)]
pub struct PatternTestArgs {
    /// Pattern JSON, or a file holding it.
    #[arg(
        long,
        required_unless_present = "trigger_type",
        conflicts_with = "trigger_type"
    )]
    pub pattern: Option<String>,
    /// Use the pattern this trigger type's --config compiles to: cdn_events, oss, cos,
    /// eventbridge.
    #[arg(long, requires = "config")]
    pub trigger_type: Option<String>,
    /// Trigger config JSON, @FILE, or a file holding it (with --trigger-type).
    #[arg(long, requires = "trigger_type")]
    pub config: Option<String>,
    /// The trigger's source ARN (oss and cos configs need the bucket's).
    #[arg(long, requires = "trigger_type")]
    pub source_arn: Option<String>,
    /// Event JSON, or a file holding it: one event, or an envelope {"events":[...]} whose events
    /// are each tested (as ingest does).
    #[arg(long, required_unless_present = "show")]
    pub event: Option<String>,
    /// Print the pattern that is tested (for --trigger-type, the compiled one).
    #[arg(long)]
    pub show: bool,
    /// Print JSON: {"pattern"?, "results":[{"index","match"}], "matched"}.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every command and every option or argument has help text, so `--help` explains it all.
    #[test]
    fn every_command_and_flag_is_described() {
        fn walk(c: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in c.get_arguments() {
                let id = a.get_id().as_str();
                if ["help", "version"].contains(&id) {
                    continue;
                }
                if a.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for s in c.get_subcommands() {
                let p = format!("{path} {}", s.get_name());
                if s.get_about().is_none() && s.get_name() != "help" {
                    missing.push(p.clone());
                }
                walk(s, &p, missing);
            }
        }
        let mut missing = Vec::new();
        let mut cmd = Cli::command();
        cmd.build();
        walk(&cmd, "fnbridge", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
        Cli::command().debug_assert();
    }
}
