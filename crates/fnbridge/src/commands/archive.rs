//! `fnbridge archive ...` and `fnbridge replay ...`: event archives and replays (`/archives`,
//! `/replays`). A replay is followed to its end with a progress bar of events replayed, drawn
//! on standard error when it is a terminal.

use std::io::IsTerminal;

use super::*;

const ARCHIVE_KEYS: &[&str] = &[
    "archiveName",
    "eventBusName",
    "eventPattern",
    "retentionDays",
    "description",
    "createdTime",
    "eventCount",
    "sizeBytes",
];

const REPLAY_KEYS: &[&str] = &[
    "replayName",
    "archiveName",
    "eventBusName",
    "rules",
    "eventStartTime",
    "eventEndTime",
    "state",
    "stateReason",
    "eventsTotal",
    "eventsDone",
    "eventLastReplayedTime",
    "replayStartTime",
    "replayEndTime",
];

pub(super) fn archive(c: &Client, g: &Global, cmd: ArchiveCmd) -> anyhow::Result<i32> {
    match cmd {
        ArchiveCmd::Create {
            name,
            pattern,
            bus,
            retention_days,
            description,
        } => {
            let pattern: Value = serde_json::from_str(&pattern)
                .context("--pattern: not valid JSON (an event pattern object)")?;
            let v = c.json(c.request(Method::POST, "/archives").json(&json!({
                "archiveName": name, "eventBusName": bus, "eventPattern": pattern,
                "retentionDays": retention_days, "description": description,
            })))?;
            if g.json {
                output::json(&v);
            } else {
                outln!("created archive {name} of bus {bus}");
            }
        }
        ArchiveCmd::List => {
            let v = c.json(c.request(Method::GET, "/archives"))?;
            if g.json {
                output::json(&v);
            } else {
                let items = v["archives"].as_array().cloned().unwrap_or_default();
                output::table(
                    &["NAME", "BUS", "RETENTION DAYS", "PATTERN"],
                    &output::rows(
                        &items,
                        &[
                            "archiveName",
                            "eventBusName",
                            "retentionDays",
                            "eventPattern",
                        ],
                    ),
                );
            }
        }
        ArchiveCmd::Get { name } => {
            let v = c.json(c.request(Method::GET, &format!("/archives/{}", seg(&name))))?;
            if g.json {
                output::json(&v);
            } else {
                output::record(&v, ARCHIVE_KEYS);
            }
        }
        ArchiveCmd::Delete { name } => {
            c.send(c.request(Method::DELETE, &format!("/archives/{}", seg(&name))))?;
            deleted(g, &format!("archive {name}"), json!({"archiveName": name}));
        }
    }
    Ok(0)
}

pub(super) fn replay(c: &Client, g: &Global, cmd: ReplayCmd) -> anyhow::Result<i32> {
    match cmd {
        ReplayCmd::Start {
            name,
            archive,
            start,
            end,
            rules,
            no_wait,
            no_progress,
        } => {
            let mut body = json!({"replayName": name, "archiveName": archive,
                "eventStartTime": start, "eventEndTime": end});
            if !rules.is_empty() {
                body["destination"] = json!({"rules": rules});
            }
            let v = c.json(c.request(Method::POST, "/replays").json(&body))?;
            if no_wait {
                show_replay(g, &v);
                return Ok(0);
            }
            let v = follow(c, &name, v, !no_progress)?;
            show_replay(g, &v);
            Ok(exit_code(&v))
        }
        ReplayCmd::Get {
            name,
            wait,
            no_progress,
        } => {
            let v = c.json(c.request(Method::GET, &format!("/replays/{}", seg(&name))))?;
            let v = if wait {
                follow(c, &name, v, !no_progress)?
            } else {
                v
            };
            show_replay(g, &v);
            Ok(if wait { exit_code(&v) } else { 0 })
        }
        ReplayCmd::List => {
            let v = c.json(c.request(Method::GET, "/replays"))?;
            if g.json {
                output::json(&v);
            } else {
                let items = v["replays"].as_array().cloned().unwrap_or_default();
                output::table(
                    &["NAME", "ARCHIVE", "STATE", "DONE", "TOTAL", "FROM", "TO"],
                    &output::rows(
                        &items,
                        &[
                            "replayName",
                            "archiveName",
                            "state",
                            "eventsDone",
                            "eventsTotal",
                            "eventStartTime",
                            "eventEndTime",
                        ],
                    ),
                );
            }
            Ok(0)
        }
        ReplayCmd::Cancel { name } => {
            let v = c.json(c.request(Method::POST, &format!("/replays/{}/cancel", seg(&name))))?;
            show_replay(g, &v);
            Ok(0)
        }
    }
}

fn show_replay(g: &Global, v: &Value) {
    if g.json {
        output::json(v);
    } else {
        output::record(v, REPLAY_KEYS);
    }
}

/// 0 for a completed replay, 1 for one that failed or was cancelled.
fn exit_code(v: &Value) -> i32 {
    if v["state"] == "COMPLETED" { 0 } else { 1 }
}

/// Polls a replay until it is no longer running, drawing events done of total on a terminal.
fn follow(c: &Client, name: &str, mut v: Value, progress: bool) -> anyhow::Result<Value> {
    let bar = (progress && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(v["eventsTotal"].as_u64().unwrap_or(0));
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {pos}/{len} events {per_sec} {eta}",
        ) {
            b.set_style(style.progress_chars("=> "));
        }
        b.set_message(format!("replay {name}"));
        b
    });
    let path = format!("/replays/{}", seg(name));
    let mut wait = Duration::from_millis(50);
    while v["state"] == "RUNNING" {
        if let Some(b) = &bar {
            b.set_length(v["eventsTotal"].as_u64().unwrap_or(0));
            b.set_position(v["eventsDone"].as_u64().unwrap_or(0));
        }
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_secs(1));
        v = c.json(c.request(Method::GET, &path))?;
    }
    if let Some(b) = bar {
        b.set_position(v["eventsDone"].as_u64().unwrap_or(0));
        b.finish_and_clear();
    }
    Ok(v)
}
