//! `fnbridge trigger ...`: triggers and their configs.

use super::*;

pub(super) fn config_arg(s: &str) -> anyhow::Result<String> {
    let text = match s.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?
        }
        None => s.to_string(),
    };
    serde_json::from_str::<Value>(&text).context("--config: not valid JSON")?;
    Ok(text)
}

pub(super) const TRIGGER_KEYS: [&str; 7] = [
    "triggerName",
    "triggerType",
    "qualifier",
    "triggerConfig",
    "sourceArn",
    "createdTime",
    "lastModifiedTime",
];

pub(super) fn trigger(c: &Client, g: &Global, cmd: TriggerCmd) -> anyhow::Result<i32> {
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
                    &[
                        "triggerName",
                        "triggerType",
                        "qualifier",
                        "status",
                        "triggerConfig",
                    ],
                );
                output::table(&["NAME", "TYPE", "QUALIFIER", "STATUS", "CONFIG"], &rows);
            }
        }
    }
    Ok(0)
}
