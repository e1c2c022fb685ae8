//! `fnbridge cdn ...`: the built-in CDN's domains, refresh/push/block tasks and offline logs,
//! through its RPC control plane.

use super::*;

/// One CDN control-plane action (RPC style at `/`, the action in `x-acs-action`).
pub(super) fn cdn_call(c: &Client, action: &str, params: &[(&str, &str)]) -> anyhow::Result<Value> {
    c.json(
        c.request(Method::POST, "/")
            .header("x-acs-action", action)
            .header("x-acs-version", "2018-05-10")
            .form(params),
    )
}

pub(super) fn cdn(c: &Client, g: &Global, cmd: CdnCmd) -> anyhow::Result<i32> {
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
        CdnCmd::Refresh {
            urls,
            object_type,
            force,
        } => {
            let v = cdn_call(
                c,
                "RefreshObjectCaches",
                &[
                    ("ObjectPath", &urls.join("\n")),
                    ("ObjectType", &object_type),
                    ("Force", if force { "true" } else { "false" }),
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
