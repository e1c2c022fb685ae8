//! The client subcommands: what each sends to the API and prints.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{
    Command, DlqCmd, EventsCmd, FunctionCmd, FunctionSpecArgs, Global, PatternCmd, TasksCmd,
    TriggerCmd,
};
use crate::client::{Client, seg};
use crate::output;

const V: &str = "/2023-03-30";

pub fn run(g: &Global, cmd: Command) -> anyhow::Result<i32> {
    let c = Client::new(g)?;
    match cmd {
        Command::Function(f) => function(&c, g, f),
        Command::Trigger(t) => trigger(&c, g, t),
        Command::Events(EventsCmd::Put { file }) => {
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
        Command::Tasks(t) => tasks(&c, g, t),
        Command::Dlq(d) => dlq(&c, g, d),
        Command::Logs {
            function,
            follow,
            request_id,
        } => logs(&c, &function, follow, request_id.as_deref()),
        Command::Serve(_) | Command::Pattern(_) => unreachable!("handled in main"),
    }
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

fn function_body(a: &FunctionSpecArgs, create: bool) -> anyhow::Result<Value> {
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
        Some(dir) => {
            let zip = zip_dir(dir)?;
            eprintln!("uploading {} ({} bytes zipped)", dir.display(), zip.len());
            if dir.join("requirements.txt").is_file() {
                eprintln!(
                    "the server installs requirements.txt with pip before the deploy completes; this can take a minute"
                );
            }
            body.insert(
                "code".into(),
                json!({"zipFile": base64::engine::general_purpose::STANDARD.encode(zip)}),
            );
        }
        None if create => bail!("--code DIR is required to create a function"),
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
    Ok(Value::Object(body))
}

const FUNCTION_KEYS: [&str; 10] = [
    "functionName",
    "runtime",
    "handler",
    "memorySize",
    "timeout",
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
            let body = function_body(&a, true)?;
            show(
                &c.json(
                    c.request(Method::POST, &format!("{V}/functions"))
                        .json(&body),
                )?,
            );
        }
        FunctionCmd::Update(a) => {
            let body = function_body(&a, false)?;
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
            if !g.json {
                println!("deleted function {name}");
            }
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
                println!("accepted: task {}", get("x-fc-async-task-id"));
                return Ok(0);
            }
            let error = get("x-fc-error-type");
            let out = resp.bytes()?;
            if log {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(get("x-fc-log-result"))
                    .unwrap_or_default();
                eprint!("{}", String::from_utf8_lossy(&decoded));
            }
            std::io::stdout().write_all(&out)?;
            if !out.ends_with(b"\n") {
                println!();
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
        println!("saved test events:");
        for e in saved["testEvents"].as_array().into_iter().flatten() {
            println!("  {}", output::cell(e, "name"));
        }
        println!("templates:");
        for t in templates["templates"].as_array().into_iter().flatten() {
            println!("  {}", t.as_str().unwrap_or(""));
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
    println!("--- log\n{}", String::from_utf8_lossy(&log).trim_end());
    println!(
        "--- result ({} ms)\n{}",
        get("x-fc-invocation-duration"),
        String::from_utf8_lossy(&body)
    );
    if !get("x-fc-error-type").is_empty() {
        eprintln!("function error: {}", get("x-fc-error-type"));
        return Ok(1);
    }
    Ok(0)
}

/// `logs`: prints a function's log records, then (with `--follow`) new ones as they arrive.
fn logs(c: &Client, function: &str, follow: bool, request_id: Option<&str>) -> anyhow::Result<i32> {
    let path = format!("{V}/functions/{}/logs", seg(function));
    let mut next = String::new();
    loop {
        let mut rb = c.request(Method::GET, &path).query(&[("limit", "1000")]);
        if let Some(r) = request_id {
            rb = rb.query(&[("requestId", r)]);
        }
        if !next.is_empty() {
            rb = rb.query(&[("nextToken", &next)]);
        }
        let v = c.json(rb)?;
        let records = v["logs"].as_array().cloned().unwrap_or_default();
        for r in &records {
            print!("{}", r["text"].as_str().unwrap_or(""));
            if !r["text"].as_str().unwrap_or("").ends_with('\n') {
                println!();
            }
        }
        std::io::stdout().flush()?;
        next = v["nextToken"].as_str().unwrap_or("").to_string();
        if records.len() < 1000 {
            if !follow {
                return Ok(0);
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
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
            if !g.json {
                println!("deleted trigger {name}");
            }
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
                    v["asyncTasks"].as_array().into_iter().flatten(),
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
                    println!(
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
                    println!("--- log of the last attempt\n{}", log.trim_end());
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
                println!("redriven as task {}", output::cell(&v, "taskId"))
            }
        }
        DlqCmd::Delete { id } => {
            c.send(c.request(Method::DELETE, &format!("/dlq/{id}")))?;
            if !g.json {
                println!("deleted dead-letter entry {id}");
            }
        }
    }
    Ok(0)
}

/// `pattern test`: 0 match, 1 no match, 2 invalid input.
pub fn pattern(cmd: PatternCmd) -> i32 {
    let PatternCmd::Test { pattern, event } = cmd;
    let load = |s: &str| -> Result<String, String> {
        let t = s.trim_start();
        if t.starts_with('{') || t.starts_with('[') {
            Ok(s.to_string())
        } else {
            std::fs::read_to_string(s).map_err(|e| format!("cannot read {s}: {e}"))
        }
    };
    let result = load(&pattern)
        .and_then(|p| load(&event).map(|e| (p, e)))
        .and_then(|(p, e)| fnbridge_pattern::test_pattern(&p, &e).map_err(|e| e.to_string()));
    match result {
        Ok(true) => {
            println!("match");
            0
        }
        Ok(false) => {
            println!("no match");
            1
        }
        Err(e) => {
            eprintln!("{e}");
            2
        }
    }
}
