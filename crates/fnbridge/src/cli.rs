//! The command-line grammar.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "fnbridge",
    version,
    about = "Self-hosted event triggers for Function Compute-style functions"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options of every client command.
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
    /// Admin token; by default read from <data-dir>/admin.token.
    #[arg(long, global = true, env = "FNBRIDGE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Data directory of a local server, used to find its token.
    #[arg(
        long,
        global = true,
        env = "FNBRIDGE_DATA_DIR",
        default_value = "fnbridge-data"
    )]
    pub data_dir: PathBuf,
    /// Print raw JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Manage functions.
    #[command(subcommand)]
    Function(FunctionCmd),
    /// Manage triggers.
    #[command(subcommand)]
    Trigger(TriggerCmd),
    /// Send events to the ingest API.
    #[command(subcommand)]
    Events(EventsCmd),
    /// Inspect delivery tasks.
    #[command(subcommand)]
    Tasks(TasksCmd),
    /// Inspect and act on the dead-letter queue.
    #[command(subcommand)]
    Dlq(DlqCmd),
    /// Work with event patterns locally.
    #[command(subcommand)]
    Pattern(PatternCmd),
    /// Print a function's logs.
    Logs {
        function: String,
        /// Keep printing new log records as they arrive.
        #[arg(long, short)]
        follow: bool,
        /// Only the log of this invocation.
        #[arg(long)]
        request_id: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Where state, code and the admin token live (created if missing).
    #[arg(long, env = "FNBRIDGE_DATA_DIR", default_value = "fnbridge-data")]
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port (printed on start).
    #[arg(long, env = "FNBRIDGE_LISTEN", default_value = "127.0.0.1:9000")]
    pub listen: String,
    /// Python interpreter for python3.x runtimes.
    #[arg(long, env = "FNBRIDGE_PYTHON", default_value = "python3")]
    pub python: PathBuf,
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
}

#[derive(Subcommand, Debug)]
pub enum FunctionCmd {
    /// Create a function from a code directory.
    Create(FunctionSpecArgs),
    /// Show a function.
    Get { name: String },
    /// List functions.
    List {
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Change a function's code or configuration (only the options given).
    Update(FunctionSpecArgs),
    /// Delete a function (its triggers must be deleted first).
    Delete { name: String },
    /// Invoke a function.
    Invoke {
        name: String,
        /// Event payload as a string.
        #[arg(long, conflicts_with = "payload_file")]
        payload: Option<String>,
        /// Event payload from a file (- for standard input).
        #[arg(long)]
        payload_file: Option<PathBuf>,
        /// Invoke asynchronously (durable, retried) instead of waiting for the result.
        #[arg(long = "async")]
        is_async: bool,
        /// Print the invocation's log.
        #[arg(long)]
        log: bool,
        #[arg(long)]
        qualifier: Option<String>,
    },
    /// Run a function on a saved test event or a template (see `--list`).
    Test {
        name: String,
        /// A saved test event of the function, or a template such as LogFileCreated or
        /// oss:ObjectCreated:PutObject.
        #[arg(long, required_unless_present = "list")]
        event_name: Option<String>,
        /// Save this file as the test event first (- for standard input).
        #[arg(long)]
        payload_file: Option<PathBuf>,
        /// List the function's saved test events and the templates.
        #[arg(long)]
        list: bool,
        #[arg(long)]
        qualifier: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct FunctionSpecArgs {
    pub name: String,
    /// Directory with the function's code (zipped and uploaded).
    #[arg(long)]
    pub code: Option<PathBuf>,
    #[arg(long)]
    pub runtime: Option<String>,
    #[arg(long)]
    pub handler: Option<String>,
    /// Memory in MB (multiple of 64, 128–32768).
    #[arg(long)]
    pub memory: Option<u32>,
    /// Timeout in seconds.
    #[arg(long)]
    pub timeout: Option<u32>,
    /// Environment variable KEY=VALUE (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// Initializer handler, e.g. index.initialize.
    #[arg(long)]
    pub initializer: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum TriggerCmd {
    /// Create a trigger.
    Create {
        function: String,
        name: String,
        /// cdn_events, oss, cos or eventbridge.
        #[arg(long = "type")]
        trigger_type: String,
        /// The trigger config as JSON, or @FILE.
        #[arg(long)]
        config: String,
        #[arg(long)]
        qualifier: Option<String>,
        #[arg(long)]
        source_arn: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    Get {
        function: String,
        name: String,
    },
    List {
        function: String,
    },
    /// Change a trigger's config, qualifier or description.
    Update {
        function: String,
        name: String,
        #[arg(long)]
        config: Option<String>,
        #[arg(long)]
        qualifier: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    Delete {
        function: String,
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum EventsCmd {
    /// Send a file holding {"events":[...]} (- for standard input).
    Put { file: PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum TasksCmd {
    /// List delivery tasks, newest first.
    List {
        #[arg(long)]
        function: Option<String>,
        /// Enqueued, Running, Succeeded, Retrying, Failed, Expired.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Show one task with every attempt and its log.
    Get { function: String, task_id: String },
}

#[derive(Subcommand, Debug)]
pub enum DlqCmd {
    List {
        #[arg(long)]
        function: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    Get {
        id: i64,
    },
    /// Deliver the entry again as a new task (and remove it from the queue).
    Redrive {
        id: i64,
    },
    Delete {
        id: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum PatternCmd {
    /// Test an event against a pattern: prints match / no match (exit 0 / 1), or the error (exit 2).
    Test {
        /// Pattern JSON, or a file holding it.
        #[arg(long)]
        pattern: String,
        /// Event JSON, or a file holding it.
        #[arg(long)]
        event: String,
    },
}
