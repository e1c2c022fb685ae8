//! The control plane's actions in Alibaba CDN's RPC style (cdn.md): the action name and its
//! parameters (query and form body merged) parsed into an `Action`, then handled into the JSON
//! answer (PascalCase keys; the API adds `RequestId`).

use serde_json::{Value, json};

use fnbridge_store::cdn::{CdnDomain, CdnTask, CdnTaskFilter};

use crate::error::CdnError;
use crate::service::{Cdn, ObjectType};

/// Request parameters, as received.
pub struct Params<'a>(pub &'a [(String, String)]);

impl Params<'_> {
    pub fn get(&self, n: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    }
    fn req(&self, n: &str) -> Result<&str, CdnError> {
        self.get(n)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| CdnError::missing(n))
    }
    fn bool(&self, n: &str) -> Result<bool, CdnError> {
        match self.get(n) {
            None | Some("") => Ok(false),
            Some("true") | Some("True") => Ok(true),
            Some("false") | Some("False") => Ok(false),
            Some(v) => Err(CdnError::invalid(n, format!("'{v}' is not true or false"))),
        }
    }
    fn num(&self, n: &str, default: usize, max: usize) -> Result<usize, CdnError> {
        match self.get(n) {
            None | Some("") => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|x| (1..=max).contains(x))
                .ok_or_else(|| {
                    CdnError::invalid(n, format!("'{v}' is not a number from 1 to {max}"))
                }),
        }
    }
}

/// Every action the control plane serves.
#[derive(Debug)]
pub enum Action {
    AddCdnDomain {
        domain: String,
        cdn_type: String,
        sources: String,
        scope: Option<String>,
    },
    DeleteCdnDomain {
        domain: String,
    },
    StartCdnDomain {
        domain: String,
    },
    StopCdnDomain {
        domain: String,
    },
    DescribeUserDomains {
        domain: Option<String>,
        page: usize,
        size: usize,
    },
    DescribeCdnDomainDetail {
        domain: String,
    },
    RefreshObjectCaches {
        path: String,
        object_type: ObjectType,
        force: bool,
    },
    PushObjectCache {
        path: String,
    },
    BlockObjectCaches {
        path: String,
        unblock: bool,
    },
    DescribeRefreshTasks {
        filter: CdnTaskFilter,
        page: usize,
        size: usize,
    },
    DescribeRefreshTaskById {
        ids: Vec<i64>,
    },
    DescribeCdnDomainLogs {
        domain: String,
        page: usize,
        size: usize,
        since: Option<i64>,
        until: Option<i64>,
    },
}

fn utc_ms(n: &str, v: Option<&str>) -> Result<Option<i64>, CdnError> {
    let Some(v) = v.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    let t = time::PrimitiveDateTime::parse(v, &f)
        .or_else(|_| {
            let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]Z");
            time::PrimitiveDateTime::parse(v, &f)
        })
        .map_err(|_| {
            CdnError::invalid(
                n,
                format!("'{v}' is not a UTC time like 2026-11-22T01:54:23Z"),
            )
        })?;
    Ok(Some(t.assume_utc().unix_timestamp() * 1000))
}

fn task_ids(raw: &str) -> Result<Vec<i64>, CdnError> {
    let ids: Vec<i64> = raw
        .split(',')
        .map(|s| s.trim().parse::<i64>())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            CdnError::invalid(
                "TaskId",
                format!("'{raw}' is not a comma-separated list of task ids"),
            )
        })?;
    if ids.len() > 10 {
        return Err(CdnError::invalid("TaskId", "at most 10 task ids"));
    }
    Ok(ids)
}

impl Action {
    /// Parses an action and its parameters; nothing is done yet.
    pub fn parse(action: &str, p: &Params<'_>) -> Result<Action, CdnError> {
        let domain = || p.req("DomainName").map(str::to_owned);
        Ok(match action {
            "AddCdnDomain" => Action::AddCdnDomain {
                domain: domain()?,
                cdn_type: p.req("CdnType")?.to_owned(),
                sources: p.req("Sources")?.to_owned(),
                scope: p.get("Scope").filter(|s| !s.is_empty()).map(str::to_owned),
            },
            "DeleteCdnDomain" => Action::DeleteCdnDomain { domain: domain()? },
            "StartCdnDomain" => Action::StartCdnDomain { domain: domain()? },
            "StopCdnDomain" => Action::StopCdnDomain { domain: domain()? },
            "DescribeUserDomains" => Action::DescribeUserDomains {
                domain: p
                    .get("DomainName")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
                page: p.num("PageNumber", 1, 100_000)?,
                size: p.num("PageSize", 20, 500)?,
            },
            "DescribeCdnDomainDetail" => Action::DescribeCdnDomainDetail { domain: domain()? },
            "RefreshObjectCaches" => Action::RefreshObjectCaches {
                path: p.req("ObjectPath")?.to_owned(),
                object_type: ObjectType::parse(p.get("ObjectType").filter(|s| !s.is_empty()))?,
                force: p.bool("Force")?,
            },
            "PushObjectCache" => {
                if let Some(a) = p.get("Area").filter(|a| !a.is_empty())
                    && !matches!(a, "domestic" | "overseas")
                {
                    return Err(CdnError::invalid(
                        "Area",
                        format!("'{a}' is not domestic or overseas"),
                    ));
                }
                p.bool("L2Preload")?;
                Action::PushObjectCache {
                    path: p.req("ObjectPath")?.to_owned(),
                }
            }
            "BlockObjectCaches" => Action::BlockObjectCaches {
                path: p.req("ObjectPath")?.to_owned(),
                unblock: p.bool("Unblock")?,
            },
            "DescribeRefreshTasks" => {
                let object_type = p.get("ObjectType").filter(|s| !s.is_empty());
                if object_type.is_none()
                    && (p.get("DomainName").is_some() || p.get("Status").is_some())
                {
                    return Err(CdnError::missing("ObjectType"));
                }
                let kinds = match object_type {
                    None => None,
                    Some("file") => {
                        Some(vec!["refresh:file".into(), "refresh:ignoreparams".into()])
                    }
                    Some("directory") => Some(vec!["refresh:directory".into()]),
                    Some("regex") => Some(vec!["refresh:regex".into()]),
                    Some("preload") => Some(vec!["push:file".into()]),
                    Some("block") => Some(vec!["block:file".into(), "unblock:file".into()]),
                    Some(o) => {
                        return Err(CdnError::invalid(
                            "ObjectType",
                            format!("'{o}' is not file, directory, regex or preload"),
                        ));
                    }
                };
                let status = p.get("Status").filter(|s| !s.is_empty()).map(str::to_owned);
                if let Some(s) = &status
                    && !matches!(s.as_str(), "Complete" | "Refreshing" | "Failed" | "Pending")
                {
                    return Err(CdnError::invalid(
                        "Status",
                        format!("'{s}' is not Complete, Refreshing, Failed or Pending"),
                    ));
                }
                let page = p.num("PageNumber", 1, 100_000)?;
                let size = p.num("PageSize", 20, 100)?;
                Action::DescribeRefreshTasks {
                    filter: CdnTaskFilter {
                        task_ids: p
                            .get("TaskId")
                            .filter(|s| !s.is_empty())
                            .map(task_ids)
                            .transpose()?,
                        object_path: p
                            .get("ObjectPath")
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned),
                        domain: p
                            .get("DomainName")
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned),
                        kinds,
                        status,
                        since_ms: utc_ms("StartTime", p.get("StartTime"))?,
                        until_ms: utc_ms("EndTime", p.get("EndTime"))?,
                        offset: (page - 1) * size,
                        limit: size,
                    },
                    page,
                    size,
                }
            }
            "DescribeRefreshTaskById" => Action::DescribeRefreshTaskById {
                ids: task_ids(p.req("TaskId")?)?,
            },
            "DescribeCdnDomainLogs" => Action::DescribeCdnDomainLogs {
                domain: domain()?,
                page: p.num("PageNumber", 1, 100_000)?,
                size: p.num("PageSize", 300, 1000)?,
                since: utc_ms("StartTime", p.get("StartTime"))?,
                until: utc_ms("EndTime", p.get("EndTime"))?,
            },
            other => {
                return Err(CdnError::new(
                    400,
                    "InvalidAction.NotFound",
                    format!("the action '{other}' is not supported by this CDN"),
                ));
            }
        })
    }

    /// Runs the action.
    pub async fn handle(self, cdn: &Cdn) -> Result<Value, CdnError> {
        let ids = |v: Vec<i64>| v.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        Ok(match self {
            Action::AddCdnDomain {
                domain,
                cdn_type,
                sources,
                scope,
            } => {
                cdn.add_domain(&domain, &cdn_type, &sources, scope.as_deref())
                    .await?;
                json!({})
            }
            Action::DeleteCdnDomain { domain } => {
                cdn.delete_domain(&domain).await?;
                json!({})
            }
            Action::StartCdnDomain { domain } => {
                cdn.set_online(&domain, true).await?;
                json!({})
            }
            Action::StopCdnDomain { domain } => {
                cdn.set_online(&domain, false).await?;
                json!({})
            }
            Action::DescribeUserDomains { domain, page, size } => {
                let all: Vec<CdnDomain> = cdn
                    .domains()
                    .await?
                    .into_iter()
                    .filter(|d| domain.as_deref().is_none_or(|n| d.name.contains(n)))
                    .collect();
                let data: Vec<Value> = all
                    .iter()
                    .skip((page - 1) * size)
                    .take(size)
                    .map(domain_summary)
                    .collect();
                json!({"PageNumber": page, "PageSize": size, "TotalCount": all.len(), "Domains": {"PageData": data}})
            }
            Action::DescribeCdnDomainDetail { domain } => {
                let d = cdn.domain(&domain).await?;
                let sources: Vec<Value> = source_list(&d)
                    .into_iter()
                    .map(|mut s| {
                        s["Enabled"] = json!("online");
                        s
                    })
                    .collect();
                json!({"GetDomainDetailModel": {
                    "DomainName": d.name, "Cname": cname(&d.name), "CdnType": d.cdn_type,
                    "DomainStatus": d.status, "Scope": d.scope,
                    "GmtCreated": iso(d.created_ms), "GmtModified": iso(d.modified_ms),
                    "Description": "", "ResourceGroupId": "",
                    "SourceModels": {"SourceModel": sources},
                }})
            }
            Action::RefreshObjectCaches {
                path,
                object_type,
                force,
            } => {
                json!({"RefreshTaskId": ids(cdn.refresh(&path, object_type, force).await?)})
            }
            Action::PushObjectCache { path } => json!({"PushTaskId": ids(cdn.push(&path).await?)}),
            Action::BlockObjectCaches { path, unblock } => {
                json!({"BlockTaskId": ids(cdn.block(&path, unblock).await?)})
            }
            Action::DescribeRefreshTasks { filter, page, size } => {
                let (tasks, total) = cdn.tasks(filter).await?;
                json!({"PageNumber": page, "PageSize": size, "TotalCount": total,
                       "Tasks": {"CDNTask": tasks.iter().map(task_json).collect::<Vec<_>>()}})
            }
            Action::DescribeRefreshTaskById { ids } => {
                let (tasks, total) = cdn
                    .tasks(CdnTaskFilter {
                        task_ids: Some(ids),
                        limit: 10_000,
                        ..Default::default()
                    })
                    .await?;
                json!({"TotalCount": total, "Tasks": tasks.iter().map(task_json).collect::<Vec<_>>()})
            }
            Action::DescribeCdnDomainLogs {
                domain,
                page,
                size,
                since,
                until,
            } => {
                cdn.admit_describe_logs()?;
                let d = cdn.domain(&domain).await?;
                let now = fnbridge_store::now_ms();
                let until = until.unwrap_or(now);
                let since = since.unwrap_or(until - 86_400_000);
                if since > until || until - since > 31 * 86_400_000 {
                    return Err(CdnError::invalid(
                        "StartTime",
                        "the range must be at most 31 days, StartTime before EndTime",
                    ));
                }
                let files = cdn.log_files(&d.name, since / 1000, until / 1000).await?;
                let total = files.len();
                let infos: Vec<Value> = files
                    .into_iter()
                    .skip((page - 1) * size)
                    .take(size)
                    .map(|(o, start, end, url)| {
                        let name = o.key.rsplit('/').next().unwrap_or("").to_string();
                        let path = url
                            .strip_prefix("http://")
                            .or_else(|| url.strip_prefix("https://"))
                            .unwrap_or(&url)
                            .to_string();
                        json!({"LogName": name, "LogPath": path, "LogSize": o.size,
                               "StartTime": iso(start * 1000), "EndTime": iso(end * 1000)})
                    })
                    .collect();
                json!({"DomainLogDetails": {"DomainLogDetail": [{
                    "DomainName": d.name, "LogCount": infos.len(),
                    "PageInfos": {"PageIndex": page, "PageSize": size, "Total": total},
                    "LogInfos": {"LogInfoDetail": infos},
                }]}})
            }
        })
    }
}

fn iso(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&f).unwrap_or_default()
}

fn cname(domain: &str) -> String {
    format!("{}.w.kunlungr.com", domain.trim_start_matches('.'))
}

fn source_list(d: &CdnDomain) -> Vec<Value> {
    let v: Value = serde_json::from_str(&d.sources).unwrap_or(Value::Null);
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    json!({"Content": s["content"], "Type": s["type"], "Port": s["port"],
                           "Priority": s["priority"], "Weight": s["weight"]})
                })
                .collect()
        })
        .unwrap_or_default()
}

fn domain_summary(d: &CdnDomain) -> Value {
    json!({
        "DomainName": d.name, "Cname": cname(&d.name), "CdnType": d.cdn_type,
        "DomainStatus": d.status, "Coverage": d.scope, "SslProtocol": "off",
        "GmtCreated": iso(d.created_ms), "GmtModified": iso(d.modified_ms),
        "Description": "", "ResourceGroupId": "", "Sandbox": "",
        "Sources": {"Source": source_list(d)},
    })
}

fn task_json(t: &CdnTask) -> Value {
    let object_type = match t.kind.as_str() {
        "push" => "preload".to_string(),
        "block" | "unblock" => t.kind.clone(),
        _ => t.object_type.to_ascii_lowercase(),
    };
    let failed = t.status == "Failed";
    json!({
        "TaskId": t.task_id.to_string(), "ObjectPath": t.object_path, "ObjectType": object_type,
        "Status": t.status, "Process": if failed { "0%" } else { "100%" },
        "CreationTime": iso(t.created_ms),
        "Description": if failed { "Internal Error" } else { "" },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn parse_refuses_bad_input() {
        let e = Action::parse("Nope", &Params(&p(&[]))).unwrap_err();
        assert_eq!(e.code, "InvalidAction.NotFound");
        let e = Action::parse("AddCdnDomain", &Params(&p(&[("DomainName", "a.com")]))).unwrap_err();
        assert_eq!(e.code, "MissingParameter");
        let e = Action::parse(
            "RefreshObjectCaches",
            &Params(&p(&[("ObjectPath", "a.com/x"), ("ObjectType", "Dir")])),
        )
        .unwrap_err();
        assert_eq!(e.code, "InvalidParameter");
        let e = Action::parse("DescribeRefreshTasks", &Params(&p(&[("PageSize", "1000")])))
            .unwrap_err();
        assert_eq!(e.code, "InvalidParameter");
        assert!(
            Action::parse("DescribeRefreshTaskById", &Params(&p(&[("TaskId", "1,2")]))).is_ok()
        );
    }
}
