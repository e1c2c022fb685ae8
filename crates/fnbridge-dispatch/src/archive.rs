//! Event archives and replays, modelled on EventBridge's (AWS `CreateArchive`/`StartReplay`).
//!
//! An archive names a bus, an event pattern and a retention in days; every CloudEvent
//! committed on that bus that matches the pattern is copied into it in the same transaction
//! (`engine::plan_bus_events`), except events that are themselves replays. A replay takes an
//! archive's events of an event-time range (`[start, end)`, by each event's `time`) and
//! publishes them again on the archive's bus, in pages of `PAGE` events, to every rule or only
//! to the named ones (`function/trigger`), each with `aliyunreplayname` set. A page's events,
//! their tasks and the replay's cursor and counts commit in one transaction, so a crash resumes
//! the replay after its last committed page: no event is replayed twice, none skipped.

use std::time::Duration;

use fnbridge_event::eventbridge::RunOptions;
use fnbridge_event::{BusEvent, EventSource, TriggerType};
use fnbridge_pattern::Pattern;
use fnbridge_store::archives::{Archive, Replay};
use fnbridge_store::now_ms;
use serde_json::{Map, Value};

use crate::cloudevents::DEFAULT_BUS;
use crate::engine::{DispatchError, Dispatcher, plan_bus_events_for};
use crate::registry::RegistryError;

/// Events replayed per transaction.
pub const PAGE: usize = 100;
/// Archives at most.
pub const MAX_ARCHIVES: usize = 100;
/// Replays running at once.
pub const MAX_RUNNING_REPLAYS: usize = 10;
/// Longest retention, in days (0 keeps events for ever).
pub const MAX_RETENTION_DAYS: u32 = 36_500;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 256;

pub const RUNNING: &str = "RUNNING";
pub const COMPLETED: &str = "COMPLETED";
pub const CANCELLED: &str = "CANCELLED";
pub const FAILED: &str = "FAILED";

/// An archive as the commit path checks it: its bus and compiled pattern.
#[derive(Debug, Clone)]
pub(crate) struct ArchiveRule {
    pub name: String,
    pub bus: String,
    pub pattern: Pattern,
}

impl ArchiveRule {
    pub(crate) fn new(a: &Archive) -> Option<ArchiveRule> {
        match Pattern::parse(&a.pattern) {
            Ok(pattern) => Some(ArchiveRule {
                name: a.name.clone(),
                bus: a.bus.clone(),
                pattern,
            }),
            Err(e) => {
                tracing::error!(archive = %a.name, error = %e, "stored archive pattern no longer parses; skipped");
                None
            }
        }
    }
}

/// The event time of a CloudEvent: its `time` (RFC 3339), else `fallback`.
pub(crate) fn event_time_ms(body: &Map<String, Value>, fallback: i64) -> i64 {
    body.get("time")
        .and_then(Value::as_str)
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .unwrap_or(fallback)
}

/// Archive and replay names: 1-127 of `[A-Za-z0-9_.-]`.
fn check_name(field: &str, name: &str) -> Result<(), RegistryError> {
    let ok = (1..=127).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(RegistryError::Invalid(format!(
            "{field}: 1 to 127 letters, digits, '_', '.' or '-', got '{name}'"
        )))
    }
}

fn check_description(d: &str) -> Result<(), RegistryError> {
    if d.len() > MAX_DESCRIPTION {
        return Err(RegistryError::Invalid(format!(
            "description: at most {MAX_DESCRIPTION} bytes, got {}",
            d.len()
        )));
    }
    Ok(())
}

/// What `StartReplay` asks for.
#[derive(Debug, Clone)]
pub struct ReplayRequest {
    pub name: String,
    pub archive: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// `function/trigger` rules to replay to; empty: every rule of the bus.
    pub rules: Vec<String>,
}

impl Dispatcher {
    /// Creates an archive of `bus`'s events matching `pattern`, kept `retention_days` (0: for
    /// ever). The bus must exist; checked in the write.
    pub async fn create_archive(
        &self,
        name: &str,
        bus: &str,
        pattern: &str,
        description: &str,
        retention_days: u32,
    ) -> Result<Archive, RegistryError> {
        check_name("archiveName", name)?;
        check_description(description)?;
        if retention_days > MAX_RETENTION_DAYS {
            return Err(RegistryError::Invalid(format!(
                "retentionDays: at most {MAX_RETENTION_DAYS} (0 keeps events for ever), got {retention_days}"
            )));
        }
        let compiled = Pattern::parse(pattern)
            .map_err(|e| RegistryError::Invalid(format!("eventPattern: {e}")))?;
        let archive = Archive {
            name: name.into(),
            bus: bus.into(),
            pattern: pattern.into(),
            description: description.into(),
            retention_days,
            created_ms: now_ms(),
        };
        let _order = self.registry_lock().await;
        let a = archive.clone();
        self.store()
            .write(move |c| {
                if a.bus != DEFAULT_BUS && c.get_bus(&a.bus)?.is_none() {
                    return Ok(Err(RegistryError::BusNotFound(a.bus.clone())));
                }
                if c.get_archive(&a.name)?.is_some() {
                    return Ok(Err(RegistryError::ArchiveAlreadyExists(a.name.clone())));
                }
                if c.list_archives()?.len() >= MAX_ARCHIVES {
                    return Ok(Err(RegistryError::Invalid(format!(
                        "there are already {MAX_ARCHIVES} archives; delete one first"
                    ))));
                }
                c.insert_archive(&a)?;
                Ok(Ok(()))
            })
            .await??;
        self.inner
            .archives
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(ArchiveRule {
                name: archive.name.clone(),
                bus: archive.bus.clone(),
                pattern: compiled,
            });
        Ok(archive)
    }

    pub async fn get_archive(&self, name: &str) -> Result<(Archive, u64, u64), RegistryError> {
        let n = name.to_string();
        let got = self
            .store()
            .read(move |c| match c.get_archive(&n)? {
                Some(a) => {
                    let (events, bytes) = c.archive_stats(&n, i64::MIN, i64::MAX)?;
                    Ok(Some((a, events, bytes)))
                }
                None => Ok(None),
            })
            .await?;
        got.ok_or_else(|| RegistryError::ArchiveNotFound(name.to_string()))
    }

    pub async fn list_archives(&self) -> Result<Vec<Archive>, RegistryError> {
        Ok(self.store().read(|c| c.list_archives()).await?)
    }

    /// Deletes an archive and its events; a replay still reading it ends `FAILED`.
    pub async fn delete_archive(&self, name: &str) -> Result<(), RegistryError> {
        let _order = self.registry_lock().await;
        let n = name.to_string();
        let deleted = self.store().write(move |c| c.delete_archive(&n)).await?;
        if !deleted {
            return Err(RegistryError::ArchiveNotFound(name.to_string()));
        }
        self.inner
            .archives
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|a| a.name != name);
        Ok(())
    }

    /// Starts a replay: checks the archive, the range and the rules, stores it `RUNNING` with
    /// its event count, and runs it in the background.
    pub async fn start_replay(&self, req: ReplayRequest) -> Result<Replay, RegistryError> {
        check_name("replayName", &req.name)?;
        if req.start_ms >= req.end_ms {
            return Err(RegistryError::Invalid(
                "eventStartTime must be before eventEndTime".into(),
            ));
        }
        if req.rules.len() > 10 {
            return Err(RegistryError::Invalid(format!(
                "destination.rules: at most 10, got {}",
                req.rules.len()
            )));
        }
        let r = req.clone();
        let replay = self
            .store()
            .write(move |c| {
                let Some(a) = c.get_archive(&r.archive)? else {
                    return Ok(Err(RegistryError::ArchiveNotFound(r.archive.clone())));
                };
                let registered: Vec<(String, String)> = c
                    .all_triggers()?
                    .into_iter()
                    .filter(|t| t.trigger.trigger_type == TriggerType::EventBridge)
                    .map(|t| {
                        let bus = RunOptions::from_config(&t.trigger.trigger_config).bus;
                        (
                            format!("{}/{}", t.trigger.function_name, t.trigger.trigger_name),
                            bus,
                        )
                    })
                    .collect();
                for rule in &r.rules {
                    match registered.iter().find(|(n, _)| n == rule) {
                        None => {
                            return Ok(Err(RegistryError::Invalid(format!(
                                "destination.rules: '{rule}' is not an eventbridge trigger (function/trigger)"
                            ))));
                        }
                        Some((_, bus)) if *bus != a.bus => {
                            return Ok(Err(RegistryError::Invalid(format!(
                                "destination.rules: '{rule}' is on bus '{bus}', not on the archive's bus '{}'",
                                a.bus
                            ))));
                        }
                        Some(_) => {}
                    }
                }
                if c.get_replay(&r.name)?.is_some() {
                    return Ok(Err(RegistryError::ReplayAlreadyExists(r.name.clone())));
                }
                let running = c
                    .list_replays()?
                    .iter()
                    .filter(|x| x.state == RUNNING)
                    .count();
                if running >= MAX_RUNNING_REPLAYS {
                    return Ok(Err(RegistryError::Invalid(format!(
                        "{running} replays are running, the most at once; wait for one to end"
                    ))));
                }
                let (total, _) = c.archive_stats(&a.name, r.start_ms, r.end_ms)?;
                let replay = Replay {
                    name: r.name.clone(),
                    archive: a.name.clone(),
                    bus: a.bus.clone(),
                    rules: r.rules.clone(),
                    start_ms: r.start_ms,
                    end_ms: r.end_ms,
                    state: RUNNING.into(),
                    reason: String::new(),
                    total,
                    done: 0,
                    cursor_time: i64::MIN,
                    cursor_id: 0,
                    created_ms: now_ms(),
                    ended_ms: None,
                };
                c.insert_replay(&replay)?;
                Ok(Ok(replay))
            })
            .await??;
        tokio::spawn(run_replay(self.clone(), replay.name.clone()));
        Ok(replay)
    }

    pub async fn get_replay(&self, name: &str) -> Result<Replay, RegistryError> {
        let n = name.to_string();
        self.store()
            .read(move |c| c.get_replay(&n))
            .await?
            .ok_or_else(|| RegistryError::ReplayNotFound(name.to_string()))
    }

    pub async fn list_replays(&self) -> Result<Vec<Replay>, RegistryError> {
        Ok(self.store().read(|c| c.list_replays()).await?)
    }

    /// Cancels a running replay: what it has published stays published, nothing more is.
    pub async fn cancel_replay(&self, name: &str) -> Result<Replay, RegistryError> {
        let n = name.to_string();
        self.store()
            .write(move |c| {
                let Some(mut r) = c.get_replay(&n)? else {
                    return Ok(Err(RegistryError::ReplayNotFound(n)));
                };
                if r.state != RUNNING {
                    return Ok(Err(RegistryError::Invalid(format!(
                        "replay '{n}' is {}, not RUNNING",
                        r.state
                    ))));
                }
                r.state = CANCELLED.into();
                r.reason = "cancelled".into();
                r.ended_ms = Some(now_ms());
                c.update_replay(&r)?;
                Ok(Ok(r))
            })
            .await?
    }

    /// Runs, in the background, every replay a previous run left `RUNNING`.
    pub(crate) async fn resume_replays(&self) -> Result<(), DispatchError> {
        let all = self.store().read(|c| c.list_replays()).await?;
        for r in all.into_iter().filter(|r| r.state == RUNNING) {
            tracing::info!(replay = %r.name, done = r.done, total = r.total, "resuming replay");
            tokio::spawn(run_replay(self.clone(), r.name));
        }
        Ok(())
    }
}

/// One replay, page by page, until its range is done, it is cancelled, or it fails.
async fn run_replay(d: Dispatcher, name: String) {
    loop {
        match replay_page(&d, &name).await {
            Ok(true) => continue,
            Ok(false) => return,
            Err(DispatchError::ShuttingDown) => return,
            // The queue is full: wait for deliveries to drain, then go on.
            Err(DispatchError::Backlogged { .. }) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => {
                tracing::error!(replay = %name, error = %e, "replay failed");
                let reason = e.to_string();
                let n = name.clone();
                let _ = d
                    .store()
                    .write(move |c| {
                        if let Some(mut r) = c.get_replay(&n)?
                            && r.state == RUNNING
                        {
                            r.state = FAILED.into();
                            r.reason = reason;
                            r.ended_ms = Some(now_ms());
                            c.update_replay(&r)?;
                        }
                        Ok(())
                    })
                    .await;
                return;
            }
        }
    }
}

/// Publishes the next page of a replay with its progress in one transaction. `Ok(true)` when
/// there may be more.
async fn replay_page(d: &Dispatcher, name: &str) -> Result<bool, DispatchError> {
    let n = name.to_string();
    let Some(r) = d.store().read(move |c| c.get_replay(&n)).await? else {
        return Ok(false);
    };
    if r.state != RUNNING {
        return Ok(false);
    }
    d.check_backlog(PAGE as u64)?;
    let inner = d.inner.clone();
    let (more, jobs) = d
        .store()
        .write(move |c| {
            // Read again inside the write: a cancel that committed since stops the page.
            let Some(mut r) = c.get_replay(&r.name)? else {
                return Ok((false, Vec::new()));
            };
            if r.state != RUNNING {
                return Ok((false, Vec::new()));
            }
            if c.get_archive(&r.archive)?.is_none() {
                r.state = FAILED.into();
                r.reason = format!("archive '{}' was deleted", r.archive);
                r.ended_ms = Some(now_ms());
                c.update_replay(&r)?;
                return Ok((false, Vec::new()));
            }
            let page = c.archive_page(
                &r.archive,
                r.start_ms,
                r.end_ms,
                (r.cursor_time, r.cursor_id),
                PAGE,
            )?;
            let Some(last) = page.last() else {
                r.state = COMPLETED.into();
                r.ended_ms = Some(now_ms());
                c.update_replay(&r)?;
                return Ok((false, Vec::new()));
            };
            r.cursor_time = last.time_ms;
            r.cursor_id = last.id;
            r.done += page.len() as u64;
            r.total = r.total.max(r.done);
            let mut events = Vec::with_capacity(page.len());
            for e in page {
                let Ok(Value::Object(mut body)) = serde_json::from_str::<Value>(&e.body) else {
                    tracing::error!(replay = %r.name, id = e.id, "archived event is not a json object; skipped");
                    continue;
                };
                body.insert("aliyunreplayname".into(), Value::String(r.name.clone()));
                body.insert("aliyuneventbusname".into(), Value::String(r.bus.clone()));
                let id = body
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let name = body
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                events.push(BusEvent {
                    source: EventSource::CloudEvent,
                    id,
                    name,
                    body,
                    s3: None,
                });
            }
            let jobs = plan_bus_events_for(&inner, c, events, &r.rules)?;
            c.update_replay(&r)?;
            Ok((true, jobs))
        })
        .await?;
    d.admit(jobs);
    Ok(more)
}

/// The archives the commit path checks, in the engine's `Inner`.
pub(crate) type Archives = std::sync::RwLock<Vec<ArchiveRule>>;
