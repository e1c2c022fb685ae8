//! `fnbridge version ...`, `alias ...` and `async-config ...`.

use super::*;

pub(super) fn version(c: &Client, g: &Global, cmd: VersionCmd) -> anyhow::Result<i32> {
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

/// `--weight V=W` options as FC's `additionalVersionWeight` map.
pub(super) fn weights(items: &[String]) -> anyhow::Result<Value> {
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

pub(super) const ALIAS_KEYS: [&str; 6] = [
    "aliasName",
    "versionId",
    "additionalVersionWeight",
    "description",
    "createdTime",
    "lastModifiedTime",
];

pub(super) fn alias(c: &Client, g: &Global, cmd: AliasCmd) -> anyhow::Result<i32> {
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

pub(super) fn async_config(c: &Client, g: &Global, cmd: AsyncConfigCmd) -> anyhow::Result<i32> {
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
