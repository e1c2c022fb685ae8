//! The client subcommands: what each sends to the API and prints.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{
    AliasCmd, AsyncConfigCmd, CdnCmd, CdnDomainCmd, Command, DlqCmd, EventsCmd, FunctionCmd,
    FunctionSpecArgs, Global, KeyCmd, LogsArgs, PatternCmd, PatternTestArgs, RoleCmd, TasksCmd,
    TriggerCmd, VersionCmd,
};
use crate::client::{Client, seg};
use crate::output::{self, out, outln};

const V: &str = "/2023-03-30";

pub fn run(cmd: Command) -> anyhow::Result<i32> {
    match cmd {
        Command::Function(a) => function(&Client::new(&a.global)?, &a.global, a.cmd),
        Command::Version(a) => version(&Client::new(&a.global)?, &a.global, a.cmd),
        Command::Alias(a) => alias(&Client::new(&a.global)?, &a.global, a.cmd),
        Command::Trigger(a) => trigger(&Client::new(&a.global)?, &a.global, a.cmd),
        Command::AsyncConfig(a) => async_config(&Client::new(&a.global)?, &a.global, a.cmd),
        Command::Events(a) => events(&Client::new(&a.global)?, &a.global, a.cmd),
        Command::Tasks(a) => tasks(&Client::new(&a.global)?, &a.global, a.cmd),
        Command::Dlq(a) => dlq(&Client::new(&a.global)?, &a.global, a.cmd),
        Command::Logs(a) => logs(&Client::new(&a.global)?, &a),
        Command::Key(a) => key(&Client::new(&a.global)?, &a.global, a.cmd),
        Command::Role(a) => role(&Client::new(&a.global)?, &a.global, a.cmd),
        Command::Bucket(a) => crate::oss::bucket(&a.oss, a.cmd),
        Command::Cp(a) => crate::oss::cp(&a),
        Command::Ls(a) => crate::oss::ls(&a),
        Command::Rm(a) => crate::oss::rm(&a),
        Command::Cdn(a) => cdn(&Client::new(&a.global)?, &a.global, a.cmd),
        Command::Serve(_) | Command::Pattern(_) => unreachable!("handled in main"),
    }
}

/// What a delete prints: a sentence for people, a small object for scripts.
fn deleted(g: &Global, what: &str, fields: Value) {
    if g.json {
        let mut v = fields;
        v["deleted"] = json!(true);
        output::json(&v);
    } else {
        outln!("deleted {what}");
    }
}

fn events(c: &Client, g: &Global, cmd: EventsCmd) -> anyhow::Result<i32> {
    let file = match cmd {
        EventsCmd::Put { file } => file,
        EventsCmd::Explain { file } => return explain(c, g, &file),
    };
    let body = read_input(&file)?;
    let v = c.json(
        c.request(Method::POST, "/events")
            .header("content-type", "application/json")
            .body(body),
    )?;
    if g.json {
        output::json(&v);
    } else {
        let rows: Vec<Vec<String>> = v["events"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let tasks = e["taskIds"].as_array().map(|a| a.len()).unwrap_or(0);
                vec![
                    output::cell(e, "sequence"),
                    output::cell(e, "eventId"),
                    tasks.to_string(),
                ]
            })
            .collect();
        output::table(&["SEQ", "EVENT ID", "DELIVERIES"], &rows);
    }
    Ok(0)
}

fn explain(c: &Client, g: &Global, file: &Path) -> anyhow::Result<i32> {
    let body = read_input(file)?;
    let v = c.json(
        c.request(Method::POST, "/events/explain")
            .header("content-type", "application/json")
            .body(body),
    )?;
    if g.json {
        output::json(&v);
    } else {
        let rows: Vec<Vec<String>> = v["triggers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                vec![
                    output::cell(t, "functionName"),
                    output::cell(t, "triggerName"),
                    output::cell(t, "triggerType"),
                    if t["matched"] == true { "yes" } else { "no" }.to_string(),
                    t["firstFailedField"].as_str().unwrap_or("").to_string(),
                ]
            })
            .collect();
        output::table(
            &[
                "FUNCTION",
                "TRIGGER",
                "TYPE",
                "MATCHED",
                "FIRST FAILED FIELD",
            ],
            &rows,
        );
    }
    Ok(0)
}

fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::stdin().read_to_end(&mut b)?;
        Ok(b)
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    }
}

/// Zips a code directory (skipping `__pycache__` and `.git`) into memory.
pub fn zip_dir(dir: &Path) -> anyhow::Result<Vec<u8>> {
    if !dir.is_dir() {
        bail!("--code {}: not a directory", dir.display());
    }
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut buf);
    let mut stack = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))? {
            let e = e?;
            let name = e.file_name();
            if name == "__pycache__" || name == ".git" {
                continue;
            }
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                files.push(e.path());
            }
        }
    }
    files.sort();
    for f in files {
        let rel = f.strip_prefix(dir)?.to_string_lossy().replace('\\', "/");
        #[cfg(unix)]
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(&f)?.permissions().mode()
        };
        #[cfg(not(unix))]
        let mode = 0o644;
        let opts = zip::write::SimpleFileOptions::default().unix_permissions(mode);
        w.start_file(rel, opts)?;
        w.write_all(&std::fs::read(&f)?)?;
    }
    w.finish()?;
    Ok(buf.into_inner())
}

/// The code package for `--code`: a directory is zipped, a zip file is sent as it is. Also says
/// whether the package has a top-level `requirements.txt` (installed by the server at deploy).
fn code_package(path: &Path) -> anyhow::Result<(Vec<u8>, bool)> {
    if path.is_dir() {
        return Ok((zip_dir(path)?, path.join("requirements.txt").is_file()));
    }
    if !path.is_file() {
        bail!("--code {}: no such directory or zip file", path.display());
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let archive = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).map_err(|e| {
        anyhow::anyhow!(
            "--code {}: not a directory or a zip file ({e})",
            path.display()
        )
    })?;
    let requirements = archive.file_names().any(|n| n == "requirements.txt");
    Ok((bytes, requirements))
}

/// The request body of CreateFunction / UpdateFunction. `existing` is the function as it is
/// (update only), so custom-runtime options given one at a time amend its customRuntimeConfig
/// instead of replacing it.
fn function_body(
    a: &FunctionSpecArgs,
    create: bool,
    existing: Option<&Value>,
) -> anyhow::Result<Value> {
    let mut body = serde_json::Map::new();
    if create {
        body.insert("functionName".into(), json!(a.name));
        body.insert(
            "runtime".into(),
            json!(a.runtime.clone().unwrap_or_else(|| "python3.10".into())),
        );
        body.insert(
            "handler".into(),
            json!(a.handler.clone().unwrap_or_else(|| "index.handler".into())),
        );
    } else {
        if let Some(r) = &a.runtime {
            body.insert("runtime".into(), json!(r));
        }
        if let Some(h) = &a.handler {
            body.insert("handler".into(), json!(h));
        }
    }
    match &a.code {
        Some(path) => {
            let (zip, requirements) = code_package(path)?;
            eprintln!("uploading {} ({} bytes zipped)", path.display(), zip.len());
            if requirements {
                eprintln!(
                    "the server installs requirements.txt with pip before the deploy completes; this can take a minute"
                );
            }
            body.insert(
                "code".into(),
                json!({"zipFile": base64::engine::general_purpose::STANDARD.encode(zip)}),
            );
        }
        None if create => bail!("--code DIR|ZIP is required to create a function"),
        None => {}
    }
    if let Some(m) = a.memory {
        body.insert("memorySize".into(), json!(m));
    }
    if let Some(t) = a.timeout {
        body.insert("timeout".into(), json!(t));
    }
    if !a.env.is_empty() {
        let mut env = BTreeMap::new();
        for kv in &a.env {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("--env {kv}: expected KEY=VALUE"))?;
            env.insert(k.to_string(), v.to_string());
        }
        body.insert("environmentVariables".into(), json!(env));
    }
    if let Some(d) = &a.description {
        body.insert("description".into(), json!(d));
    }
    if let Some(i) = &a.initializer {
        body.insert(
            "instanceLifecycleConfig".into(),
            json!({"initializer": {"handler": i, "timeout": 10}}),
        );
    }
    if !a.command.is_empty() || !a.args.is_empty() || a.port.is_some() {
        let mut crc = existing
            .and_then(|f| f.get("customRuntimeConfig"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if !a.command.is_empty() {
            crc.insert("command".into(), json!(a.command));
        }
        if !a.args.is_empty() {
            crc.insert("args".into(), json!(a.args));
        }
        if let Some(p) = a.port {
            crc.insert("port".into(), json!(p));
        }
        body.insert("customRuntimeConfig".into(), Value::Object(crc));
    }
    if let Some(n) = a.instance_concurrency {
        body.insert("instanceConcurrency".into(), json!(n));
    }
    Ok(Value::Object(body))
}

const FUNCTION_KEYS: [&str; 12] = [
    "functionName",
    "runtime",
    "handler",
    "memorySize",
    "timeout",
    "instanceConcurrency",
    "customRuntimeConfig",
    "codeSize",
    "codeChecksum",
    "description",
    "createdTime",
    "lastModifiedTime",
];

fn function(c: &Client, g: &Global, cmd: FunctionCmd) -> anyhow::Result<i32> {
    let show = |v: &Value| {
        if g.json {
            output::json(v)
        } else {
            output::record(v, &FUNCTION_KEYS)
        }
    };
    match cmd {
        FunctionCmd::Create(a) => {
            let body = function_body(&a, true, None)?;
            show(
                &c.json(
                    c.request(Method::POST, &format!("{V}/functions"))
                        .json(&body),
                )?,
            );
        }
        FunctionCmd::Update(a) => {
            let custom = !a.command.is_empty() || !a.args.is_empty() || a.port.is_some();
            let existing = if custom {
                Some(c.json(c.request(Method::GET, &format!("{V}/functions/{}", seg(&a.name))))?)
            } else {
                None
            };
            let body = function_body(&a, false, existing.as_ref())?;
            show(
                &c.json(
                    c.request(Method::PUT, &format!("{V}/functions/{}", seg(&a.name)))
                        .json(&body),
                )?,
            );
        }
        FunctionCmd::Get { name } => {
            show(&c.json(c.request(Method::GET, &format!("{V}/functions/{}", seg(&name))))?)
        }
        FunctionCmd::Delete { name } => {
            c.send(c.request(Method::DELETE, &format!("{V}/functions/{}", seg(&name))))?;
            deleted(
                g,
                &format!("function {name}"),
                json!({"functionName": name}),
            );
        }
        FunctionCmd::List { prefix } => {
            let mut all = Vec::new();
            let mut next = String::new();
            loop {
                let mut rb = c
                    .request(Method::GET, &format!("{V}/functions"))
                    .query(&[("limit", "100")]);
                if let Some(p) = &prefix {
                    rb = rb.query(&[("prefix", p)]);
                }
                if !next.is_empty() {
                    rb = rb.query(&[("nextToken", &next)]);
                }
                let v = c.json(rb)?;
                all.extend(v["functions"].as_array().cloned().unwrap_or_default());
                next = v["nextToken"].as_str().unwrap_or("").to_string();
                if next.is_empty() {
                    break;
                }
            }
            if g.json {
                output::json(&json!({"functions": all}));
            } else {
                let rows = output::rows(
                    all.iter(),
                    &[
                        "functionName",
                        "runtime",
                        "handler",
                        "memorySize",
                        "timeout",
                        "lastModifiedTime",
                    ],
                );
                output::table(
                    &[
                        "NAME", "RUNTIME", "HANDLER", "MEMORY", "TIMEOUT", "MODIFIED",
                    ],
                    &rows,
                );
            }
        }
        FunctionCmd::Test {
            name,
            event_name,
            payload_file,
            list,
            qualifier,
        } => {
            return test_function(
                c,
                g,
                &name,
                event_name.as_deref(),
                payload_file.as_deref(),
                list,
                qualifier.as_deref(),
            );
        }
        FunctionCmd::Invoke {
            name,
            payload,
            payload_file,
            is_async,
            log,
            qualifier,
        } => {
            let body = match (payload, payload_file) {
                (Some(p), _) => p.into_bytes(),
                (None, Some(f)) => read_input(&f)?,
                (None, None) => Vec::new(),
            };
            let mut rb = c
                .request(
                    Method::POST,
                    &format!("{V}/functions/{}/invocations", seg(&name)),
                )
                .header("content-type", "application/octet-stream")
                .header(
                    "x-fc-invocation-type",
                    if is_async { "Async" } else { "Sync" },
                )
                .header("x-fc-log-type", if log { "Tail" } else { "None" })
                .body(body);
            if let Some(q) = qualifier {
                rb = rb.query(&[("qualifier", q)]);
            }
            let resp = c.send(rb)?;
            let h = resp.headers().clone();
            let get = |k: &str| {
                h.get(k)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string()
            };
            if is_async {
                let task = get("x-fc-async-task-id");
                if g.json {
                    output::json(&json!({"taskId": task, "requestId": get("x-fc-request-id")}));
                } else {
                    outln!("accepted: task {task}");
                }
                return Ok(0);
            }
            let error = get("x-fc-error-type");
            let out = resp.bytes()?;
            let log_text = if log {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(get("x-fc-log-result"))
                    .unwrap_or_default();
                Some(String::from_utf8_lossy(&decoded).into_owned())
            } else {
                None
            };
            if g.json {
                output::json(&json!({
                    "requestId": get("x-fc-request-id"),
                    "payload": String::from_utf8_lossy(&out),
                    "errorType": (!error.is_empty()).then_some(&error),
                    "log": log_text,
                }));
            } else {
                if let Some(l) = &log_text {
                    eprint!("{l}");
                }
                output::write_bytes(&out);
                if !out.ends_with(b"\n") {
                    outln!();
                }
            }
            if !error.is_empty() {
                eprintln!(
                    "function error: {error} (request {})",
                    get("x-fc-request-id")
                );
                return Ok(1);
            }
        }
    }
    Ok(0)
}

/// `function test`: finds the payload (saved test event, else template), runs it synchronously
/// with the log, and prints both.
fn test_function(
    c: &Client,
    g: &Global,
    name: &str,
    event_name: Option<&str>,
    payload_file: Option<&Path>,
    list: bool,
    qualifier: Option<&str>,
) -> anyhow::Result<i32> {
    let base = format!("{V}/functions/{}", seg(name));
    if list {
        let saved = c.json(c.request(Method::GET, &format!("{base}/test-events")))?;
        let templates = c.json(c.request(Method::GET, "/templates"))?;
        let names: Vec<String> = saved["testEvents"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| output::cell(e, "name"))
            .collect();
        if g.json {
            output::json(&json!({"testEvents": names, "templates": templates["templates"]}));
            return Ok(0);
        }
        outln!("saved test events:");
        for n in names {
            outln!("  {n}");
        }
        outln!("templates:");
        for t in templates["templates"].as_array().into_iter().flatten() {
            outln!("  {}", t.as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    let event_name = event_name.unwrap_or_default();
    let path = format!("{base}/test-events/{}", seg(event_name));
    if let Some(file) = payload_file {
        let body = read_input(file)?;
        c.send(c.request(Method::PUT, &path).body(body))?;
        eprintln!("saved test event {event_name}");
    }
    let saved = c
        .request(Method::GET, &path)
        .send()
        .context("cannot reach fnbridge")?;
    let payload = if saved.status().is_success() {
        saved.json::<Value>()?["payload"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    } else {
        let t = c
            .request(Method::GET, &format!("/templates/{}", seg(event_name)))
            .send()?;
        if !t.status().is_success() {
            bail!(
                "function '{name}' has no test event '{event_name}' and there is no such template (see --list)"
            );
        }
        t.json::<Value>()?["payload"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let mut rb = c
        .request(Method::POST, &format!("{base}/invocations"))
        .header("x-fc-log-type", "Tail")
        .body(payload);
    if let Some(q) = qualifier {
        rb = rb.query(&[("qualifier", q)]);
    }
    let resp = c.send(rb)?;
    let h = resp.headers().clone();
    let get = |k: &str| {
        h.get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let body = resp.bytes()?;
    let log = base64::engine::general_purpose::STANDARD
        .decode(get("x-fc-log-result"))
        .unwrap_or_default();
    let error = get("x-fc-error-type");
    if g.json {
        output::json(&json!({
            "requestId": get("x-fc-request-id"),
            "durationMs": get("x-fc-invocation-duration").parse::<f64>().ok(),
            "log": String::from_utf8_lossy(&log),
            "payload": String::from_utf8_lossy(&body),
            "errorType": (!error.is_empty()).then_some(&error),
        }));
    } else {
        outln!("--- log\n{}", String::from_utf8_lossy(&log).trim_end());
        outln!(
            "--- result ({} ms)\n{}",
            get("x-fc-invocation-duration"),
            String::from_utf8_lossy(&body)
        );
    }
    if !error.is_empty() {
        eprintln!("function error: {error}");
        return Ok(1);
    }
    Ok(0)
}

/// How long `logs --follow` keeps trying to reach a server that went away before giving up.
const FOLLOW_GIVE_UP: Duration = Duration::from_secs(300);
/// The longest wait between two reconnection attempts.
const FOLLOW_MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Whether an error is the transport failing (server down or restarting), not an API answer.
fn is_transport(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<reqwest::Error>())
}

/// `logs`: prints a function's log records, then (with `--follow`) new ones as they arrive,
/// reconnecting with a bounded backoff when the server restarts.
fn logs(c: &Client, a: &LogsArgs) -> anyhow::Result<i32> {
    let path = format!("{V}/functions/{}/logs", seg(&a.function));
    let mut next = String::new();
    let mut printed = 0usize;
    let mut down_since: Option<Instant> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut rb = c.request(Method::GET, &path).query(&[("limit", "1000")]);
        if let Some(r) = &a.request_id {
            rb = rb.query(&[("requestId", r)]);
        }
        if !next.is_empty() {
            rb = rb.query(&[("nextToken", &next)]);
        }
        let v = match c.json(rb) {
            Ok(v) => v,
            Err(e) if a.follow && is_transport(&e) => {
                let since = *down_since.get_or_insert_with(|| {
                    eprintln!("fnbridge: lost the server ({e:#}); reconnecting");
                    Instant::now()
                });
                if since.elapsed() > FOLLOW_GIVE_UP {
                    return Err(e.context(format!(
                        "gave up after {} s without the server",
                        FOLLOW_GIVE_UP.as_secs()
                    )));
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(FOLLOW_MAX_BACKOFF);
                continue;
            }
            Err(e) => return Err(e),
        };
        if down_since.take().is_some() {
            eprintln!("fnbridge: reconnected");
            backoff = Duration::from_millis(100);
        }
        let records = v["logs"].as_array().cloned().unwrap_or_default();
        for r in &records {
            if a.global.json {
                output::json_line(r);
            } else {
                let text = r["text"].as_str().unwrap_or("");
                out!("{text}");
                if !text.ends_with('\n') {
                    outln!();
                }
            }
        }
        printed += records.len();
        output::flush();
        next = v["nextToken"].as_str().unwrap_or("").to_string();
        if records.len() < 1000 {
            if !a.follow {
                if printed == 0
                    && let Some(r) = &a.request_id
                {
                    bail!(
                        "function '{}' has no log record of request '{r}' (see `fnbridge logs {}` for the ids it has)",
                        a.function,
                        a.function
                    );
                }
                return Ok(0);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

fn config_arg(s: &str) -> anyhow::Result<String> {
    let text = match s.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?
        }
        None => s.to_string(),
    };
    serde_json::from_str::<Value>(&text).context("--config: not valid JSON")?;
    Ok(text)
}

const TRIGGER_KEYS: [&str; 7] = [
    "triggerName",
    "triggerType",
    "qualifier",
    "triggerConfig",
    "sourceArn",
    "createdTime",
    "lastModifiedTime",
];

fn trigger(c: &Client, g: &Global, cmd: TriggerCmd) -> anyhow::Result<i32> {
    let show = |v: &Value| {
        if g.json {
            output::json(v)
        } else {
            output::record(v, &TRIGGER_KEYS)
        }
    };
    let base = |f: &str| format!("{V}/functions/{}/triggers", seg(f));
    match cmd {
        TriggerCmd::Create {
            function,
            name,
            trigger_type,
            config,
            qualifier,
            source_arn,
            description,
        } => {
            let mut body = json!({"triggerName": name, "triggerType": trigger_type, "triggerConfig": config_arg(&config)?});
            if let Some(q) = qualifier {
                body["qualifier"] = json!(q);
            }
            if let Some(s) = source_arn {
                body["sourceArn"] = json!(s);
            }
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            show(&c.json(c.request(Method::POST, &base(&function)).json(&body))?);
        }
        TriggerCmd::Get { function, name } => {
            show(&c.json(c.request(Method::GET, &format!("{}/{}", base(&function), seg(&name))))?)
        }
        TriggerCmd::Update {
            function,
            name,
            config,
            qualifier,
            description,
        } => {
            let mut body = json!({});
            if let Some(cfg) = config {
                body["triggerConfig"] = json!(config_arg(&cfg)?);
            }
            if let Some(q) = qualifier {
                body["qualifier"] = json!(q);
            }
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            show(
                &c.json(
                    c.request(Method::PUT, &format!("{}/{}", base(&function), seg(&name)))
                        .json(&body),
                )?,
            );
        }
        TriggerCmd::Delete { function, name } => {
            c.send(c.request(
                Method::DELETE,
                &format!("{}/{}", base(&function), seg(&name)),
            ))?;
            deleted(
                g,
                &format!("trigger {name}"),
                json!({"functionName": function, "triggerName": name}),
            );
        }
        TriggerCmd::List { function } => {
            let v = c.json(
                c.request(Method::GET, &base(&function))
                    .query(&[("limit", "100")]),
            )?;
            if g.json {
                output::json(&v);
            } else {
                let rows = output::rows(
                    v["triggers"].as_array().into_iter().flatten(),
                    &["triggerName", "triggerType", "qualifier", "triggerConfig"],
                );
                output::table(&["NAME", "TYPE", "QUALIFIER", "CONFIG"], &rows);
            }
        }
    }
    Ok(0)
}

fn tasks(c: &Client, g: &Global, cmd: TasksCmd) -> anyhow::Result<i32> {
    match cmd {
        TasksCmd::List {
            function,
            status,
            limit,
        } => {
            let mut rb = c
                .request(Method::GET, "/tasks")
                .query(&[("limit", limit.to_string())]);
            if let Some(f) = function {
                rb = rb.query(&[("functionName", f)]);
            }
            if let Some(s) = status {
                rb = rb.query(&[("status", s)]);
            }
            let v = c.json(rb)?;
            if g.json {
                output::json(&v);
            } else {
                let rows = output::rows(
                    // `asyncTasks` from `/tasks`; `tasks` is FC's ListAsyncTasks spelling.
                    v["asyncTasks"]
                        .as_array()
                        .or(v["tasks"].as_array())
                        .into_iter()
                        .flatten(),
                    &[
                        "taskId",
                        "functionName",
                        "triggerName",
                        "status",
                        "attempts",
                        "taskErrorMessage",
                    ],
                );
                output::table(
                    &["TASK", "FUNCTION", "TRIGGER", "STATUS", "ATTEMPTS", "ERROR"],
                    &rows,
                );
            }
        }
        TasksCmd::Get { function, task_id } => {
            let v = c.json(c.request(
                Method::GET,
                &format!(
                    "{V}/functions/{}/async-tasks/{}",
                    seg(&function),
                    seg(&task_id)
                ),
            ))?;
            if g.json {
                output::json(&v);
            } else {
                output::record(
                    &v,
                    &[
                        "taskId",
                        "functionName",
                        "triggerName",
                        "qualifier",
                        "status",
                        "attempts",
                        "taskErrorMessage",
                        "returnPayload",
                    ],
                );
                for a in v["attemptRecords"].as_array().into_iter().flatten() {
                    outln!(
                        "attempt {}: {} in {} ms{}",
                        output::cell(a, "attempt"),
                        output::cell(a, "status"),
                        output::cell(a, "durationMs"),
                        a["errorMessage"]
                            .as_str()
                            .map(|e| format!(" ({e})"))
                            .unwrap_or_default()
                    );
                }
                if let Some(log) = v["log"].as_str() {
                    outln!("--- log of the last attempt\n{}", log.trim_end());
                }
            }
        }
    }
    Ok(0)
}

fn dlq(c: &Client, g: &Global, cmd: DlqCmd) -> anyhow::Result<i32> {
    match cmd {
        DlqCmd::List { function, limit } => {
            let mut rb = c
                .request(Method::GET, "/dlq")
                .query(&[("limit", limit.to_string())]);
            if let Some(f) = function {
                rb = rb.query(&[("functionName", f)]);
            }
            let v = c.json(rb)?;
            if g.json {
                output::json(&v);
            } else {
                let rows = output::rows(
                    v["entries"].as_array().into_iter().flatten(),
                    &[
                        "id",
                        "functionName",
                        "triggerName",
                        "reason",
                        "attempts",
                        "lastError",
                    ],
                );
                output::table(
                    &[
                        "ID",
                        "FUNCTION",
                        "TRIGGER",
                        "REASON",
                        "ATTEMPTS",
                        "LAST ERROR",
                    ],
                    &rows,
                );
            }
        }
        DlqCmd::Get { id } => {
            let v = c.json(c.request(Method::GET, &format!("/dlq/{id}")))?;
            if g.json {
                output::json(&v)
            } else {
                output::record(
                    &v,
                    &[
                        "id",
                        "taskId",
                        "functionName",
                        "triggerName",
                        "reason",
                        "attempts",
                        "lastError",
                        "createdTime",
                        "payload",
                    ],
                )
            }
        }
        DlqCmd::Redrive { id } => {
            let v = c.json(c.request(Method::POST, &format!("/dlq/{id}/redrive")))?;
            if g.json {
                output::json(&v)
            } else {
                outln!("redriven as task {}", output::cell(&v, "taskId"))
            }
        }
        DlqCmd::Delete { id } => {
            c.send(c.request(Method::DELETE, &format!("/dlq/{id}")))?;
            deleted(g, &format!("dead-letter entry {id}"), json!({"id": id}));
        }
    }
    Ok(0)
}

fn key(c: &Client, g: &Global, cmd: KeyCmd) -> anyhow::Result<i32> {
    match cmd {
        KeyCmd::Create { description } => {
            let v = c.json(
                c.request(Method::POST, "/keys")
                    .json(&json!({"description": description})),
            )?;
            if g.json {
                output::json(&json!({
                    "accessKeyId": v["accessKeyId"],
                    "accessKeySecret": v["accessKeySecret"],
                }));
            } else {
                output::record(
                    &v,
                    &[
                        "accessKeyId",
                        "accessKeySecret",
                        "description",
                        "createdTime",
                    ],
                );
                outln!("keep the secret now: it is not shown again");
            }
        }
        KeyCmd::List => {
            let v = c.json(c.request(Method::GET, "/keys"))?;
            if g.json {
                output::json(&v);
            } else {
                let rows = output::rows(
                    v["accessKeys"].as_array().into_iter().flatten(),
                    &["accessKeyId", "createdTime", "description"],
                );
                output::table(&["ACCESS KEY ID", "CREATED", "DESCRIPTION"], &rows);
            }
        }
        KeyCmd::Delete { id } => {
            c.send(c.request(Method::DELETE, &format!("/keys/{}", seg(&id))))?;
            deleted(g, &format!("access key {id}"), json!({"accessKeyId": id}));
        }
    }
    Ok(0)
}

fn role(c: &Client, g: &Global, cmd: RoleCmd) -> anyhow::Result<i32> {
    let show = |v: &Value| {
        if g.json {
            output::json(v);
        } else {
            output::record(v, &["roleName", "arn", "description", "createdTime"]);
            outln!("policy: {}", v["policy"]);
        }
    };
    match cmd {
        RoleCmd::Create {
            name,
            policy,
            description,
        } => {
            let text = load_json_arg(&policy).map_err(|e| anyhow::anyhow!("--policy: {e}"))?;
            let policy: Value = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("--policy: not valid JSON: {e}"))?;
            let body = json!({"roleName": name, "description": description, "policy": policy});
            show(&c.json(c.request(Method::POST, "/roles").json(&body))?);
        }
        RoleCmd::List => {
            let v = c.json(c.request(Method::GET, "/roles"))?;
            if g.json {
                output::json(&v);
            } else {
                let rows = output::rows(
                    v["roles"].as_array().into_iter().flatten(),
                    &["roleName", "arn", "createdTime"],
                );
                output::table(&["ROLE", "ARN", "CREATED"], &rows);
            }
        }
        RoleCmd::Get { name } => {
            show(&c.json(c.request(Method::GET, &format!("/roles/{}", seg(&name))))?);
        }
        RoleCmd::Delete { name } => {
            c.send(c.request(Method::DELETE, &format!("/roles/{}", seg(&name))))?;
            deleted(g, &format!("role {name}"), json!({"roleName": name}));
        }
    }
    Ok(0)
}

/// One CDN control-plane action (RPC style at `/`, the action in `x-acs-action`).
fn cdn_call(c: &Client, action: &str, params: &[(&str, &str)]) -> anyhow::Result<Value> {
    c.json(
        c.request(Method::POST, "/")
            .header("x-acs-action", action)
            .header("x-acs-version", "2018-05-10")
            .form(params),
    )
}

fn cdn(c: &Client, g: &Global, cmd: CdnCmd) -> anyhow::Result<i32> {
    let done = |what: &str, v: &Value| {
        if g.json {
            output::json(v);
        } else {
            outln!("{what}");
        }
    };
    match cmd {
        CdnCmd::Domain(d) => match d {
            CdnDomainCmd::Add {
                domain,
                bucket,
                origin,
                cdn_type,
            } => {
                let source = match (bucket, origin) {
                    (Some(b), _) => json!({"content": b, "type": "oss", "port": 80}),
                    (None, Some(o)) => {
                        let host = o.rsplit_once(':').map(|(h, _)| h).unwrap_or(&o);
                        let kind = if host.parse::<std::net::IpAddr>().is_ok() {
                            "ipaddr"
                        } else {
                            "domain"
                        };
                        json!({"content": o, "type": kind})
                    }
                    (None, None) => anyhow::bail!("give --bucket or --origin"),
                };
                let sources = json!([source]).to_string();
                let v = cdn_call(
                    c,
                    "AddCdnDomain",
                    &[
                        ("DomainName", &domain),
                        ("CdnType", &cdn_type),
                        ("Sources", &sources),
                    ],
                )?;
                done(&format!("added domain {domain}"), &v);
            }
            CdnDomainCmd::List => {
                let v = cdn_call(c, "DescribeUserDomains", &[("PageSize", "500")])?;
                if g.json {
                    output::json(&v);
                } else {
                    let items = v["Domains"]["PageData"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    let rows: Vec<Vec<String>> = items
                        .iter()
                        .map(|d| {
                            let src = &d["Sources"]["Source"][0];
                            vec![
                                d["DomainName"].as_str().unwrap_or("").to_string(),
                                d["DomainStatus"].as_str().unwrap_or("").to_string(),
                                format!(
                                    "{} {}",
                                    src["Type"].as_str().unwrap_or(""),
                                    src["Content"].as_str().unwrap_or("")
                                ),
                                d["GmtCreated"].as_str().unwrap_or("").to_string(),
                            ]
                        })
                        .collect();
                    output::table(&["DOMAIN", "STATUS", "ORIGIN", "CREATED"], &rows);
                }
            }
            CdnDomainCmd::Get { domain } => {
                let v = cdn_call(c, "DescribeCdnDomainDetail", &[("DomainName", &domain)])?;
                if g.json {
                    output::json(&v);
                } else {
                    let m = &v["GetDomainDetailModel"];
                    output::record(
                        m,
                        &[
                            "DomainName",
                            "DomainStatus",
                            "CdnType",
                            "Scope",
                            "GmtCreated",
                            "GmtModified",
                        ],
                    );
                    for s in m["SourceModels"]["SourceModel"]
                        .as_array()
                        .into_iter()
                        .flatten()
                    {
                        outln!(
                            "origin: {} {} port {}",
                            s["Type"].as_str().unwrap_or(""),
                            s["Content"].as_str().unwrap_or(""),
                            s["Port"]
                        );
                    }
                }
            }
            CdnDomainCmd::Start { domain } => {
                let v = cdn_call(c, "StartCdnDomain", &[("DomainName", &domain)])?;
                done(&format!("started domain {domain}"), &v);
            }
            CdnDomainCmd::Stop { domain } => {
                let v = cdn_call(c, "StopCdnDomain", &[("DomainName", &domain)])?;
                done(&format!("stopped domain {domain}"), &v);
            }
            CdnDomainCmd::Delete { domain } => {
                let v = cdn_call(c, "DeleteCdnDomain", &[("DomainName", &domain)])?;
                done(&format!("deleted domain {domain}"), &v);
            }
        },
        CdnCmd::Refresh { urls, object_type } => {
            let v = cdn_call(
                c,
                "RefreshObjectCaches",
                &[
                    ("ObjectPath", &urls.join("\n")),
                    ("ObjectType", &object_type),
                ],
            )?;
            done(
                &format!("refresh task {}", v["RefreshTaskId"].as_str().unwrap_or("")),
                &v,
            );
        }
        CdnCmd::Push { urls } => {
            let v = cdn_call(c, "PushObjectCache", &[("ObjectPath", &urls.join("\n"))])?;
            done(
                &format!("push task {}", v["PushTaskId"].as_str().unwrap_or("")),
                &v,
            );
        }
        CdnCmd::Block { urls } => {
            let v = cdn_call(c, "BlockObjectCaches", &[("ObjectPath", &urls.join("\n"))])?;
            done(
                &format!("block task {}", v["BlockTaskId"].as_str().unwrap_or("")),
                &v,
            );
        }
        CdnCmd::Unblock { urls } => {
            let v = cdn_call(
                c,
                "BlockObjectCaches",
                &[("ObjectPath", &urls.join("\n")), ("Unblock", "true")],
            )?;
            done(
                &format!("unblock task {}", v["BlockTaskId"].as_str().unwrap_or("")),
                &v,
            );
        }
        CdnCmd::Tasks { task_id } => {
            let v = match &task_id {
                Some(id) => cdn_call(c, "DescribeRefreshTaskById", &[("TaskId", id)])?,
                None => cdn_call(c, "DescribeRefreshTasks", &[("PageSize", "100")])?,
            };
            if g.json {
                output::json(&v);
            } else {
                let items = if task_id.is_some() {
                    &v["Tasks"]
                } else {
                    &v["Tasks"]["CDNTask"]
                };
                let rows = output::rows(
                    items.as_array().into_iter().flatten(),
                    &[
                        "TaskId",
                        "ObjectType",
                        "Status",
                        "ObjectPath",
                        "CreationTime",
                    ],
                );
                output::table(&["TASK", "TYPE", "STATUS", "URL", "CREATED"], &rows);
            }
        }
        CdnCmd::Logs { domain } => {
            let v = cdn_call(c, "DescribeCdnDomainLogs", &[("DomainName", &domain)])?;
            if g.json {
                output::json(&v);
            } else {
                let files =
                    &v["DomainLogDetails"]["DomainLogDetail"][0]["LogInfos"]["LogInfoDetail"];
                let rows = output::rows(
                    files.as_array().into_iter().flatten(),
                    &["LogName", "LogSize", "StartTime", "EndTime", "LogPath"],
                );
                output::table(&["FILE", "BYTES", "START", "END", "URL (no scheme)"], &rows);
            }
        }
    }
    Ok(0)
}

/// `pattern test`: 0 when an event matches, 1 when none does, 2 on invalid input.
pub fn pattern(cmd: PatternCmd) -> i32 {
    let PatternCmd::Test(a) = cmd;
    match pattern_test(&a) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            2
        }
    }
}

/// A JSON argument: inline JSON, `@FILE`, or the name of a file.
fn load_json_arg(s: &str) -> Result<String, String> {
    if let Some(path) = s.strip_prefix('@') {
        return std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"));
    }
    let t = s.trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        Ok(s.to_string())
    } else {
        std::fs::read_to_string(s).map_err(|e| format!("cannot read {s}: {e}"))
    }
}

/// The events of an ingest envelope `{"events":[...]}`, or `None` for a single event.
fn envelope_events(v: &Value) -> Option<&Vec<Value>> {
    match v.as_object() {
        Some(o) if o.len() == 1 => o.get("events").and_then(Value::as_array),
        _ => None,
    }
}

fn pattern_test(a: &PatternTestArgs) -> Result<i32, String> {
    let (pattern, text) = match (&a.pattern, &a.trigger_type, &a.config) {
        (Some(p), _, _) => {
            let t = load_json_arg(p)?;
            let pattern = fnbridge_pattern::Pattern::parse(&t).map_err(|e| e.to_string())?;
            let text = pattern.to_compact_json();
            (pattern, text)
        }
        (None, Some(tt), Some(cfg)) => {
            let cfg = load_json_arg(cfg)?;
            let cfg: Value =
                serde_json::from_str(&cfg).map_err(|e| format!("--config: not valid JSON: {e}"))?;
            let c = fnbridge_pattern::compile::compile(tt, &cfg, a.source_arn.as_deref())
                .map_err(|e| e.to_string())?;
            (c.pattern, c.pattern_json)
        }
        _ => return Err("give --pattern, or --trigger-type with --config".into()),
    };
    // (label, event JSON): one event, or each event of an envelope as ingest would match it.
    let mut events: Vec<(String, String)> = Vec::new();
    let mut envelope = false;
    if let Some(e) = &a.event {
        let t = load_json_arg(e)?;
        let v: Value =
            serde_json::from_str(&t).map_err(|e| format!("--event: not valid JSON: {e}"))?;
        match envelope_events(&v) {
            Some(list) => {
                envelope = true;
                if list.is_empty() {
                    return Err("--event: the envelope holds no events".into());
                }
                for (i, ev) in list.iter().enumerate() {
                    events.push((format!("events[{i}]"), ev.to_string()));
                }
            }
            None => events.push(("event".into(), t)),
        }
    }
    let mut results = Vec::with_capacity(events.len());
    for (label, ev) in &events {
        let m = pattern
            .matches(ev.as_bytes())
            .map_err(|e| format!("{label}: {e}"))?;
        results.push((label.as_str(), m));
    }
    let matched = results.iter().filter(|(_, m)| *m).count();
    if a.json {
        let mut v = json!({
            "results": results.iter().map(|(l, m)| json!({"event": l, "match": m})).collect::<Vec<_>>(),
            "matched": matched,
        });
        if a.show {
            v["pattern"] = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        }
        output::json(&v);
    } else {
        if a.show {
            outln!("{text}");
        }
        for (label, m) in &results {
            let word = if *m { "match" } else { "no match" };
            if envelope {
                outln!("{label}: {word}");
            } else {
                outln!("{word}");
            }
        }
    }
    Ok(if events.is_empty() || matched > 0 {
        0
    } else {
        1
    })
}

fn version(c: &Client, g: &Global, cmd: VersionCmd) -> anyhow::Result<i32> {
    let base = |f: &str| format!("{V}/functions/{}/versions", seg(f));
    match cmd {
        VersionCmd::Publish {
            function,
            description,
        } => {
            let mut body = json!({});
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            let v = c.json(c.request(Method::POST, &base(&function)).json(&body))?;
            if g.json {
                output::json(&v);
            } else {
                outln!(
                    "published version {} of {function}",
                    output::cell(&v, "versionId")
                );
            }
        }
        VersionCmd::List { function } => {
            let all = paged(c, &base(&function), "versions")?;
            if g.json {
                output::json(&json!({"versions": all}));
            } else {
                let rows = output::rows(&all, &["versionId", "description", "createdTime"]);
                output::table(&["VERSION", "DESCRIPTION", "CREATED"], &rows);
            }
        }
        VersionCmd::Delete { function, version } => {
            c.send(c.request(
                Method::DELETE,
                &format!("{}/{}", base(&function), seg(&version)),
            ))?;
            deleted(
                g,
                &format!("version {version} of {function}"),
                json!({"functionName": function, "versionId": version}),
            );
        }
    }
    Ok(0)
}

/// Every item of a paginated list (`limit` / `nextToken`).
fn paged(c: &Client, path: &str, key: &str) -> anyhow::Result<Vec<Value>> {
    let mut all = Vec::new();
    let mut next = String::new();
    loop {
        let mut rb = c.request(Method::GET, path).query(&[("limit", "100")]);
        if !next.is_empty() {
            rb = rb.query(&[("nextToken", &next)]);
        }
        let v = c.json(rb)?;
        all.extend(v[key].as_array().cloned().unwrap_or_default());
        next = v["nextToken"].as_str().unwrap_or("").to_string();
        if next.is_empty() {
            return Ok(all);
        }
    }
}

/// `--weight V=W` options as FC's `additionalVersionWeight` map.
fn weights(items: &[String]) -> anyhow::Result<Value> {
    let mut m = serde_json::Map::new();
    for w in items {
        let (v, f) = w
            .split_once('=')
            .with_context(|| format!("--weight {w}: expected VERSION=WEIGHT, e.g. 2=0.1"))?;
        let f: f64 = f
            .trim()
            .parse()
            .with_context(|| format!("--weight {w}: '{f}' is not a number"))?;
        m.insert(v.trim().to_string(), json!(f));
    }
    Ok(Value::Object(m))
}

const ALIAS_KEYS: [&str; 6] = [
    "aliasName",
    "versionId",
    "additionalVersionWeight",
    "description",
    "createdTime",
    "lastModifiedTime",
];

fn alias(c: &Client, g: &Global, cmd: AliasCmd) -> anyhow::Result<i32> {
    let show = |v: &Value| {
        if g.json {
            output::json(v)
        } else {
            output::record(v, &ALIAS_KEYS)
        }
    };
    let base = |f: &str| format!("{V}/functions/{}/aliases", seg(f));
    match cmd {
        AliasCmd::Create {
            function,
            alias,
            version,
            weight,
            description,
        } => {
            let mut body = json!({"aliasName": alias, "versionId": version});
            if !weight.is_empty() {
                body["additionalVersionWeight"] = weights(&weight)?;
            }
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            show(&c.json(c.request(Method::POST, &base(&function)).json(&body))?);
        }
        AliasCmd::Get { function, alias } => {
            show(&c.json(c.request(Method::GET, &format!("{}/{}", base(&function), seg(&alias))))?)
        }
        AliasCmd::List { function } => {
            let all = paged(c, &base(&function), "aliases")?;
            if g.json {
                output::json(&json!({"aliases": all}));
            } else {
                let rows = output::rows(
                    &all,
                    &[
                        "aliasName",
                        "versionId",
                        "additionalVersionWeight",
                        "description",
                    ],
                );
                output::table(&["NAME", "VERSION", "WEIGHTS", "DESCRIPTION"], &rows);
            }
        }
        AliasCmd::Update {
            function,
            alias,
            version,
            weight,
            clear_weights,
            description,
        } => {
            let mut body = json!({});
            if let Some(v) = version {
                body["versionId"] = json!(v);
            }
            if clear_weights {
                body["additionalVersionWeight"] = json!({});
            } else if !weight.is_empty() {
                body["additionalVersionWeight"] = weights(&weight)?;
            }
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            show(
                &c.json(
                    c.request(Method::PUT, &format!("{}/{}", base(&function), seg(&alias)))
                        .json(&body),
                )?,
            );
        }
        AliasCmd::Delete { function, alias } => {
            c.send(c.request(
                Method::DELETE,
                &format!("{}/{}", base(&function), seg(&alias)),
            ))?;
            deleted(
                g,
                &format!("alias {alias} of {function}"),
                json!({"functionName": function, "aliasName": alias}),
            );
        }
    }
    Ok(0)
}

fn async_config(c: &Client, g: &Global, cmd: AsyncConfigCmd) -> anyhow::Result<i32> {
    let req = |m: Method, f: &str, q: &Option<String>| {
        let rb = c.request(m, &format!("{V}/functions/{}/async-invoke-config", seg(f)));
        match q {
            Some(q) => rb.query(&[("qualifier", q)]),
            None => rb,
        }
    };
    let show = |v: &Value| {
        if g.json {
            output::json(v)
        } else {
            output::record(
                v,
                &[
                    "functionArn",
                    "qualifier",
                    "maxAsyncRetryAttempts",
                    "maxAsyncEventAgeInSeconds",
                    "destinationConfig",
                    "lastModifiedTime",
                ],
            )
        }
    };
    match cmd {
        AsyncConfigCmd::Get {
            function,
            qualifier,
        } => show(&c.json(req(Method::GET, &function, &qualifier))?),
        AsyncConfigCmd::Put {
            function,
            qualifier,
            max_retries,
            max_age_s,
            on_success,
            on_failure,
        } => {
            let mut body = json!({
                "maxAsyncRetryAttempts": max_retries,
                "maxAsyncEventAgeInSeconds": max_age_s,
            });
            let mut dest = json!({});
            if let Some(a) = on_success {
                dest["onSuccess"] = json!({"destination": a});
            }
            if let Some(a) = on_failure {
                dest["onFailure"] = json!({"destination": a});
            }
            if dest.as_object().is_some_and(|d| !d.is_empty()) {
                body["destinationConfig"] = dest;
            }
            show(&c.json(req(Method::PUT, &function, &qualifier).json(&body))?);
        }
        AsyncConfigCmd::Delete {
            function,
            qualifier,
        } => {
            c.send(req(Method::DELETE, &function, &qualifier))?;
            deleted(
                g,
                &format!("async invoke config of {function}"),
                json!({"functionName": function, "qualifier": qualifier.as_deref().unwrap_or("LATEST")}),
            );
        }
    }
    Ok(0)
}
