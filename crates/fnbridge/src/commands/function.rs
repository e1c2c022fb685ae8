//! `fnbridge function ...`: deploy code (a directory zipped, or a zip), read, update, delete,
//! invoke and test functions.

use super::*;

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
pub(super) fn code_package(path: &Path) -> anyhow::Result<(Vec<u8>, bool)> {
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
pub(super) fn function_body(
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

pub(super) const FUNCTION_KEYS: [&str; 12] = [
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

pub(super) fn function(c: &Client, g: &Global, cmd: FunctionCmd) -> anyhow::Result<i32> {
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
pub(super) fn test_function(
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
