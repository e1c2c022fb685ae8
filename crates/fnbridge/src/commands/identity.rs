//! `fnbridge key ...` and `fnbridge role ...`: access keys and roles.

use super::*;

pub(super) fn key(c: &Client, g: &Global, cmd: KeyCmd) -> anyhow::Result<i32> {
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

pub(super) fn role(c: &Client, g: &Global, cmd: RoleCmd) -> anyhow::Result<i32> {
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
