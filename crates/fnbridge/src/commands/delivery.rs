//! `fnbridge events put|explain`, `tasks` and `dlq`: sending events, explaining what they match,
//! and following their deliveries and dead letters.

use super::*;

pub(super) fn events(c: &Client, g: &Global, cmd: EventsCmd) -> anyhow::Result<i32> {
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

pub(super) fn explain(c: &Client, g: &Global, file: &Path) -> anyhow::Result<i32> {
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

pub(super) fn tasks(c: &Client, g: &Global, cmd: TasksCmd) -> anyhow::Result<i32> {
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

pub(super) fn dlq(c: &Client, g: &Global, cmd: DlqCmd) -> anyhow::Result<i32> {
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
