//! Delivery: the scheduling loop that starts attempts from the scheduler's window, the refill
//! that tops the window up from the store, one attempt of a task and everything its outcome
//! implies (the attempt record, retry or dead letter, destinations), and the retention loop.
//! An `eventbridge` trigger adds three things here: a trigger blocked on an event that ran out
//! of retries (`errorsTolerance: NONE`), `event-streaming` batches (one attempt recorded on every
//! task of the batch), and dead letters published on a bus in the same commit as the record.
//!
//! Cancellation contract: an attempt that started runs to its end; its record is then written
//! until it commits (a failed write, a full disk say, is retried with backoff, never dropped),
//! and only then does the task leave the window. At shutdown the loops end at their next wait;
//! a record not yet committed leaves its task open in the store, so it runs again after the
//! restart (at-least-once).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use fnbridge_event::limits::MAX_ASYNC_PAYLOAD;
use fnbridge_event::{BusEvent, EventSource};
use fnbridge_store::blocks::TriggerBlock;
use fnbridge_store::tasks::AttemptOutcome;
use fnbridge_store::{Attempt, NewTask, StoreError, TaskStatus, Tx, now_ms};
use rand::Rng;

use crate::destination::{DestinationRecord, function_of_arn};
use crate::engine::{DispatchError, Dispatcher, Inner};
use crate::ids;
use crate::policy::{AsyncPolicy, AttemptResult, RetryAction, decide, decide_push};
use crate::scheduler::{Job, cost_of};

/// Destination records may lead to further destinations (a chain of functions); configuration
/// refuses loops, and this bounds any chain at run time as well.
pub const MAX_DESTINATION_HOPS: u32 = 8;

/// Tasks read from the store per refill query.
const REFILL_PAGE: usize = 512;

/// The scheduling loop: start what may start, plan refills, then sleep until there is news
/// (new work, a freed slot), the next timer is due, or shutdown.
pub(crate) async fn run_loop(inner: Arc<Inner>) {
    let mut stop = inner.stop.subscribe();
    loop {
        if *stop.borrow() {
            break;
        }
        let now = now_ms();
        for job in inner.sched.take_startable(now) {
            let inner = inner.clone();
            tokio::spawn(async move { run_job(&inner, job).await });
        }
        if let Some(plan) = inner.sched.plan_refill() {
            let inner = inner.clone();
            tokio::spawn(async move {
                for (function, room, generation) in plan.functions {
                    if let Err(e) = refill(&inner, &function, room, generation).await {
                        tracing::warn!(function = %function, error = %e, "refill from the store failed; will retry");
                    }
                }
                inner.sched.refill_done();
                inner.wake.notify_one();
            });
        }
        let sleep = match inner.sched.next_due() {
            Some(due) => Duration::from_millis((due - now_ms()).clamp(0, 60_000) as u64),
            None => Duration::from_secs(60),
        };
        tokio::select! {
            _ = inner.wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Reads up to `room` open tasks of `function` that are not resident, in due order, into the
/// window.
async fn refill(
    inner: &Arc<Inner>,
    function: &Arc<str>,
    room: usize,
    generation: u64,
) -> Result<(), StoreError> {
    let mut cursor = None;
    let mut found = Vec::new();
    let mut exhausted = false;
    while found.len() < room {
        let f = function.to_string();
        let page = inner
            .store
            .read(move |c| c.due_tasks(&f, cursor, REFILL_PAGE))
            .await?;
        let last = page.last().map(|t| (t.next_ms, t.id));
        let n = page.len();
        for t in page {
            if found.len() < room
                && !inner.sched.is_resident(t.id)
                && !inner
                    .sched
                    .is_held(&t.function_name, t.trigger_name.as_deref(), t.id)
            {
                found.push(Job::from_task(t));
            }
        }
        if n < REFILL_PAGE {
            exhausted = found.len() < room || n == 0;
            break;
        }
        cursor = last;
    }
    inner
        .sched
        .refilled(function, found, exhausted, generation, now_ms());
    Ok(())
}

/// The record of an attempt, written until it commits.
struct Completion {
    row: i64,
    record: AttemptOutcome,
    function: String,
    request_id: String,
    qualifier: String,
    ended_ms: i64,
    dead: Option<(fnbridge_store::Task, &'static str)>,
    expired: Option<String>,
    destination: Option<NewTask>,
    /// The trigger this attempt blocks (`errorsTolerance: NONE`, out of retries).
    block: Option<TriggerBlock>,
    /// The trigger whose block this attempt lifts (its holder succeeded or left).
    unblock: Option<(String, String)>,
    /// The other tasks of a batch: the same attempt, recorded on each.
    members: Vec<MemberRecord>,
    /// Where dead letters go instead of fnbridge's queue: an `eventbridge` trigger's
    /// `deadLetterQueue` bus, and the trigger's ARN they name.
    dead_letter_bus: Option<(String, String)>,
}

/// Most bytes of the last error carried by a dead-letter event.
const DEAD_LETTER_ERROR_MAX: usize = 1024;

/// The CloudEvent a dead-lettered task publishes on its trigger's dead-letter bus: the original
/// event (same `id`, `source`, `type`, `data`) on that bus, with the error as extension
/// attributes (`deadletterreason`, `deadlettererror`, `deadlettertrigger`,
/// `deadletterattempts`). `None` when the event is no longer kept, or was itself a dead letter
/// (one hop only, so two triggers dead-lettering to each other's bus cannot loop).
fn dead_letter_event(
    c: &dyn Tx,
    task: &fnbridge_store::Task,
    reason: &str,
    error: Option<&str>,
    (bus, trigger_arn): &(String, String),
) -> Result<Option<BusEvent>, StoreError> {
    let Some(seq) = task.event_seq else {
        return Ok(None);
    };
    let Some(text) = c.event_body(seq)? else {
        return Ok(None);
    };
    let Ok(serde_json::Value::Object(mut body)) = serde_json::from_str(&text) else {
        return Ok(None);
    };
    if body.contains_key("deadletterreason") {
        return Ok(None);
    }
    let field = |k: &str| {
        body.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let (id, name) = (field("id"), field("type"));
    let mut error = error.unwrap_or("").to_string();
    if error.len() > DEAD_LETTER_ERROR_MAX {
        let mut end = DEAD_LETTER_ERROR_MAX;
        while !error.is_char_boundary(end) {
            end -= 1;
        }
        error.truncate(end);
    }
    body.insert("aliyuneventbusname".into(), bus.as_str().into());
    body.insert("deadletterreason".into(), reason.into());
    body.insert("deadlettererror".into(), error.into());
    body.insert("deadlettertrigger".into(), trigger_arn.as_str().into());
    body.insert("deadletterattempts".into(), task.attempts.into());
    Ok(Some(BusEvent {
        source: EventSource::CloudEvent,
        id,
        name,
        body,
        s3: None,
    }))
}

/// Dead-letters `task`: published on the trigger's dead-letter bus when `publish` (and it can
/// be), else into fnbridge's dead-letter queue.
fn dead_letter(
    c: &dyn Tx,
    w: &Completion,
    publish: bool,
    (task, reason): &(fnbridge_store::Task, &'static str),
    last_error: Option<&str>,
    events: &mut Vec<BusEvent>,
) -> Result<(), StoreError> {
    if publish
        && let Some(dl) = &w.dead_letter_bus
        && let Some(ev) = dead_letter_event(c, task, reason, last_error, dl)?
    {
        events.push(ev);
        return Ok(());
    }
    c.dead_letter(task, task.attempts, reason, last_error, w.ended_ms)?;
    Ok(())
}

/// A batch member's share of an attempt.
struct MemberRecord {
    row: i64,
    record: AttemptOutcome,
    dead: Option<(fnbridge_store::Task, &'static str)>,
}

fn write_completion(
    c: &dyn Tx,
    w: &Completion,
    publish: bool,
) -> Result<(Option<i64>, Vec<BusEvent>), StoreError> {
    let mut events = Vec::new();
    match &w.expired {
        Some(msg) => c.finish_task(w.row, TaskStatus::Expired, w.ended_ms, Some(msg))?,
        None => {
            c.record_attempt(w.row, &w.record)?;
            if let Some(log) = w.record.log.as_deref().filter(|l| !l.is_empty()) {
                c.append_log(&w.function, &w.request_id, &w.qualifier, w.ended_ms, log)?;
            }
        }
    }
    if let Some(dead) = &w.dead {
        let error = w.record.last_error.as_deref();
        dead_letter(c, w, publish, dead, error, &mut events)?;
    }
    for m in &w.members {
        match &w.expired {
            Some(msg) => c.finish_task(m.row, TaskStatus::Expired, w.ended_ms, Some(msg))?,
            None => c.record_attempt(m.row, &m.record)?,
        }
        if let Some(dead) = &m.dead {
            let error = m.record.last_error.as_deref();
            dead_letter(c, w, publish, dead, error, &mut events)?;
        }
    }
    if let Some(b) = &w.block {
        c.put_block(b)?;
    }
    if let Some((function, trigger)) = &w.unblock {
        c.delete_block(function, trigger)?;
    }
    let dest = match &w.destination {
        Some(t) => match c.insert_task(t) {
            Ok(row) => Some(row),
            // Inserted by an earlier try whose commit reported failure but held.
            Err(StoreError::Conflict(_)) => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    Ok((dest, events))
}

/// Writes a completion until it commits; backs off between tries. Returns the row of the
/// destination task it created, if any, or `None` if shutdown came first.
async fn commit_completion(inner: &Arc<Inner>, w: Completion) -> Option<Option<i64>> {
    // Dead letters bound for a bus commit with the record, matched like any published event.
    let mut publish = w.dead_letter_bus.is_some()
        && (w.dead.is_some() || w.members.iter().any(|m| m.dead.is_some()));
    let w = Arc::new(w);
    let mut delay = Duration::from_millis(50);
    loop {
        let job = w.clone();
        let result = if publish {
            let d = Dispatcher {
                inner: inner.clone(),
            };
            d.commit_with_events(move |c| write_completion(c, &job, true))
                .await
        } else {
            inner
                .store
                .write(move |c| write_completion(c, &job, false).map(|(dest, _)| dest))
                .await
                .map_err(DispatchError::from)
        };
        match result {
            Ok(dest) => return Some(dest),
            Err(DispatchError::Backlogged { open }) => {
                // The bus takes no more now; the record must not wait for it.
                tracing::warn!(task = %w.request_id, open,
                    "backlogged: dead letter kept in fnbridge's queue instead of its bus");
                publish = false;
            }
            Err(e) => {
                tracing::error!(task = %w.request_id, error = %e, retry_in_ms = delay.as_millis() as u64,
                    "cannot record the outcome of a delivery; retrying");
                if inner.stopping.load(Ordering::Acquire) {
                    // Left open in the store: the next start runs it again.
                    return None;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// One attempt of one task, and everything its outcome implies.
async fn run_job(inner: &Arc<Inner>, mut job: Job) {
    let d = Dispatcher {
        inner: inner.clone(),
    };
    let function = job.function.clone();
    // Every row this job holds in the window: its own and its batch's.
    let rows: Vec<(i64, usize)> = std::iter::once(&job)
        .chain(job.members.iter())
        .map(|j| (j.row, cost_of(j)))
        .collect();
    let policy = d.policy(&job.function, &job.qualifier);
    // An `eventbridge` trigger's own retryStrategy replaces the function's async retries and
    // age limit, unless its pushes are asynchronous (`asyncInvocationType`).
    let push = d.push_policy(&job.function, job.trigger.as_deref());
    let started = now_ms();
    let age = Duration::from_millis((started - job.created_ms).max(0) as u64);
    if push.is_none() && age > policy.max_age {
        inner.sched.attempt_ended(&function, None);
        inner.wake.notify_one();
        let msg = format!(
            "event expired after {} s without a successful attempt",
            age.as_secs()
        );
        inner.dead_lettered.fetch_add(1, Ordering::Relaxed);
        let destination = destination(&d, &job, &policy, "EventAgeExceeded", None, b"");
        let members = job
            .members
            .iter()
            .map(|m| MemberRecord {
                row: m.row,
                record: expired_outcome(m.attempts, started, &msg),
                dead: Some((m.as_task(), "EventAgeExceeded")),
            })
            .collect();
        let w = Completion {
            row: job.row,
            record: expired_outcome(job.attempts, started, &msg),
            function: job.function.to_string(),
            request_id: job.task_id.clone(),
            qualifier: job.qualifier.clone(),
            ended_ms: started,
            dead: Some((job.as_task(), "EventAgeExceeded")),
            expired: Some(msg),
            destination,
            block: None,
            unblock: None,
            members,
            dead_letter_bus: None,
        };
        finish(inner, &function, rows, w, true).await;
        return;
    }
    let entry = d.resolve_entry(&job.function, &job.qualifier);
    inner
        .running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(job.task_id.clone(), started);
    inner.attempts.fetch_add(1, Ordering::Relaxed);
    let outcome = match &entry {
        Ok((e, version_id)) => {
            let inv = d
                .invocation(
                    e,
                    &job.task_id,
                    &job.qualifier,
                    version_id,
                    payload_of(&job),
                )
                .await;
            inner
                .runtime
                .invoke(&e.spec, inv)
                .await
                .map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    };
    inner
        .running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&job.task_id);
    let ended = now_ms();
    job.attempts += 1;
    let (result, error_type, error_message, body, log, instance) = match &outcome {
        Ok(o) => match &o.error {
            None => (
                AttemptResult::Success,
                None,
                None,
                o.body.clone(),
                o.log.clone(),
                Some(o.instance_id.clone()),
            ),
            Some(err) => (
                AttemptResult::FunctionError,
                Some(err.error_type().to_string()),
                Some(summarize_error(err.kind(), &o.body)),
                o.body.clone(),
                o.log.clone(),
                Some(o.instance_id.clone()),
            ),
        },
        Err(msg) => (
            AttemptResult::PlatformError,
            Some("InternalError".to_string()),
            Some(msg.clone()),
            Bytes::new(),
            String::new(),
            None,
        ),
    };
    match result {
        AttemptResult::Success => {
            let n = 1 + job.members.len() as u64;
            inner.succeeded.fetch_add(n, Ordering::Relaxed);
        }
        AttemptResult::FunctionError => {
            job.function_errors += 1;
            inner.failed_attempts.fetch_add(1, Ordering::Relaxed);
        }
        AttemptResult::PlatformError => {
            job.platform_errors += 1;
            inner.failed_attempts.fetch_add(1, Ordering::Relaxed);
        }
    }
    let jitter: f64 = rand::rng().random();
    let now_age = Duration::from_millis((ended - job.created_ms).max(0) as u64);
    let action = match &push {
        Some(p) => decide_push(
            p,
            result,
            job.function_errors,
            job.platform_errors,
            now_age,
            jitter,
        ),
        None => decide(
            &policy,
            &inner.cfg.backoff,
            result,
            job.function_errors,
            job.platform_errors,
            now_age,
            jitter,
        ),
    };
    let attempt = Attempt {
        n: job.attempts,
        started_ms: started,
        ended_ms: ended,
        status: if result == AttemptResult::Success {
            "Succeeded"
        } else {
            "Failed"
        }
        .to_string(),
        error_type: error_type.clone(),
        error_message: error_message.clone(),
        instance_id: instance,
    };
    let (status, next_ms) = match action {
        RetryAction::Succeeded => (TaskStatus::Succeeded, ended),
        RetryAction::Retry { after } | RetryAction::Block { after, .. } => {
            (TaskStatus::Retrying, ended + after.as_millis() as i64)
        }
        RetryAction::DeadLetter { reason } => (
            if reason.as_str() == "EventAgeExceeded" {
                TaskStatus::Expired
            } else {
                TaskStatus::Failed
            },
            ended,
        ),
    };
    let record = AttemptOutcome {
        attempt,
        status,
        next_ms,
        last_error: error_message.clone(),
        return_payload: Some(body.to_vec()),
        log: Some(log),
    };
    let dest = match action {
        // A batch has no one request payload for a destination record.
        _ if job.batched => None,
        RetryAction::Succeeded => destination(&d, &job, &policy, "Success", None, &body),
        RetryAction::DeadLetter { reason } => {
            let cond = if reason.as_str() == "EventAgeExceeded" {
                "EventAgeExceeded".to_string()
            } else {
                error_type
                    .clone()
                    .unwrap_or_else(|| "UnhandledInvocationError".into())
            };
            destination(&d, &job, &policy, &cond, error_type.as_deref(), &body)
        }
        RetryAction::Retry { .. } | RetryAction::Block { .. } => None,
    };
    let dead = match action {
        RetryAction::DeadLetter { reason } => Some((job.as_task(), reason.as_str())),
        _ => None,
    };
    // A batch succeeds, fails, retries and leaves as one: each member records the attempt.
    let members: Vec<MemberRecord> = job
        .members
        .iter_mut()
        .map(|m| {
            m.attempts += 1;
            match result {
                AttemptResult::FunctionError => m.function_errors += 1,
                AttemptResult::PlatformError => m.platform_errors += 1,
                AttemptResult::Success => {}
            }
            m.next_ms = next_ms;
            MemberRecord {
                row: m.row,
                record: AttemptOutcome {
                    attempt: Attempt {
                        n: m.attempts,
                        ..record.attempt.clone()
                    },
                    status,
                    next_ms,
                    last_error: error_message.clone(),
                    return_payload: Some(body.to_vec()),
                    log: None,
                },
                dead: match action {
                    RetryAction::DeadLetter { reason } => Some((m.as_task(), reason.as_str())),
                    _ => None,
                },
            }
        })
        .collect();
    if dead.is_some() {
        let n = 1 + job.members.len() as u64;
        inner.dead_lettered.fetch_add(n, Ordering::Relaxed);
    }
    let dead_letter_bus = match (action, job.trigger.as_deref()) {
        (RetryAction::DeadLetter { .. }, Some(trigger)) => {
            d.dead_letter_bus(&job.function, Some(trigger)).map(|bus| {
                let arn = format!("{}/triggers/{trigger}", function_arn(&d, &job.function));
                (bus, arn)
            })
        }
        _ => None,
    };
    // errorsTolerance NONE: the trigger holds its later events while this one keeps failing,
    // and lets them go once it succeeds (or leaves, say after an update to ALL).
    let mut block = None;
    let mut unblock = None;
    if let Some(trigger) = job.trigger.as_deref() {
        match action {
            RetryAction::Block { reason, .. } => {
                inner.sched.block(&function, trigger, job.row);
                let error = error_message
                    .clone()
                    .unwrap_or_else(|| reason.as_str().to_string());
                block = Some(TriggerBlock {
                    function_name: job.function.to_string(),
                    trigger_name: trigger.to_string(),
                    task_row: job.row,
                    task_id: job.task_id.clone(),
                    error,
                    since_ms: ended,
                });
            }
            RetryAction::Succeeded | RetryAction::DeadLetter { .. }
                if inner.sched.block_holder(&function, trigger) == Some(job.row) =>
            {
                unblock = Some((job.function.to_string(), trigger.to_string()));
            }
            _ => {}
        }
    }
    let w = Completion {
        row: job.row,
        record,
        function: job.function.to_string(),
        request_id: job.task_id.clone(),
        qualifier: job.qualifier.clone(),
        ended_ms: ended,
        dead,
        expired: None,
        destination: dest,
        block,
        unblock,
        members,
        dead_letter_bus,
    };
    // The running slot is free now; the record is written while others run.
    let final_outcome = !matches!(
        action,
        RetryAction::Retry { .. } | RetryAction::Block { .. }
    );
    if final_outcome {
        inner.sched.attempt_ended(&function, None);
    } else {
        job.next_ms = next_ms;
        inner.sched.attempt_ended(&function, Some(job.clone()));
    }
    inner.wake.notify_one();
    finish(inner, &function, rows, w, final_outcome).await;
}

/// The record of a task that expired before attempt `n` could start: a failed attempt of no
/// duration, `Expired`, with `msg` as its last error.
fn expired_outcome(n: u32, at_ms: i64, msg: &str) -> AttemptOutcome {
    AttemptOutcome {
        attempt: Attempt {
            n,
            started_ms: at_ms,
            ended_ms: at_ms,
            status: "Failed".into(),
            error_type: None,
            error_message: None,
            instance_id: None,
        },
        status: TaskStatus::Expired,
        next_ms: at_ms,
        last_error: Some(msg.to_string()),
        return_payload: None,
        log: None,
    }
}

/// What an attempt delivers: the task's payload, or a batch's payloads as one JSON array.
fn payload_of(job: &Job) -> Bytes {
    if !job.batched {
        return job.payload.clone();
    }
    let len: usize = job.payload.len()
        + job
            .members
            .iter()
            .map(|m| m.payload.len() + 1)
            .sum::<usize>();
    let mut out = Vec::with_capacity(len + 2);
    out.push(b'[');
    out.extend_from_slice(&job.payload);
    for m in &job.members {
        out.push(b',');
        out.extend_from_slice(&m.payload);
    }
    out.push(b']');
    Bytes::from(out)
}

/// Commits a completion, then lets a finished task leave the window and admits the destination
/// task it created.
async fn finish(
    inner: &Arc<Inner>,
    function: &Arc<str>,
    rows: Vec<(i64, usize)>,
    w: Completion,
    last: bool,
) {
    let row = w.row;
    let dest = w.destination.clone();
    let unblock = w.unblock.clone();
    let committed = commit_completion(inner, w).await;
    if let (Some(_), Some((function, trigger))) = (&committed, unblock) {
        // Durable now: the trigger's held events may go (read back by the next refill).
        inner.sched.unblock(&function, &trigger, Some(row));
        inner.wake.notify_one();
    }
    if last {
        for (row, cost) in &rows {
            inner.sched.release(function, *row, *cost);
        }
        if committed.is_some() {
            inner.open.fetch_sub(rows.len() as u64, Ordering::Relaxed);
        }
        inner.wake.notify_one();
    }
    if let (Some(Some(dest_row)), Some(t)) = (committed, dest) {
        let payload = Bytes::from(t.payload.clone().unwrap_or_default());
        let d = Dispatcher {
            inner: inner.clone(),
        };
        d.admit(vec![Job::new(dest_row, t, payload)]);
    }
}

fn summarize_error(kind: &str, body: &[u8]) -> String {
    let v: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let msg = v
        .as_ref()
        .and_then(|v| {
            let t = v.get("errorType").and_then(|x| x.as_str()).unwrap_or("");
            let m = v.get("errorMessage").and_then(|x| x.as_str())?;
            Some(if t.is_empty() {
                m.to_string()
            } else {
                format!("{t}: {m}")
            })
        })
        .unwrap_or_else(|| {
            let end = body.len().min(512);
            String::from_utf8_lossy(&body[..end]).into_owned()
        });
    format!("{kind}: {msg}")
}

fn function_arn(d: &Dispatcher, name: &str) -> String {
    format!(
        "acs:fc:{}:{}:functions/{name}",
        d.config().region,
        d.config().account_id
    )
}

/// The destination task for a finished job: `onSuccess` when the condition is `Success`, else
/// `onFailure`. `None` when none is configured, the target is gone, or the chain of
/// destinations is already `MAX_DESTINATION_HOPS` long.
fn destination(
    d: &Dispatcher,
    job: &Job,
    p: &AsyncPolicy,
    condition: &str,
    function_error: Option<&str>,
    body: &[u8],
) -> Option<NewTask> {
    let arn = if condition == "Success" {
        p.on_success.as_ref()?
    } else {
        p.on_failure.as_ref()?
    };
    let Some(target) = function_of_arn(arn) else {
        tracing::warn!(destination = %arn, "unsupported destination ARN; skipped");
        return None;
    };
    if d.function(target).is_none() {
        tracing::warn!(destination = %arn, "destination function does not exist; skipped");
        return None;
    }
    if job.hops >= MAX_DESTINATION_HOPS {
        tracing::warn!(task = %job.task_id, destination = %arn, hops = job.hops,
            "destination chain too long; not invoking the next destination");
        return None;
    }
    let fa = function_arn(d, &job.function);
    let record = DestinationRecord {
        timestamp_ms: now_ms(),
        request_id: &job.task_id,
        function_arn: &fa,
        qualifier: &job.qualifier,
        condition,
        approximate_invoke_count: job.attempts,
        request_payload: &job.payload,
        function_error,
        response_payload: body,
    };
    Some(NewTask {
        task_id: ids::request_id(),
        function_name: target.to_string(),
        qualifier: "LATEST".into(),
        trigger_name: None,
        event_seq: None,
        payload: Some(record.to_json_within(MAX_ASYNC_PAYLOAD).into_bytes()),
        created_ms: now_ms(),
        hops: job.hops + 1,
    })
}

/// Prunes finished work every `prune_every`, in bounded batches, until shutdown.
pub(crate) async fn retention_loop(inner: Arc<Inner>) {
    let mut stop = inner.stop.subscribe();
    let r = inner.cfg.retention;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(inner.cfg.prune_every) => {}
            _ = stop.changed() => return,
        }
        // Batches until one comes back short, so the writer is never held for long.
        loop {
            if *stop.borrow() {
                return;
            }
            let now = now_ms();
            match inner.store.write(move |c| c.prune(&r, now, 2000)).await {
                Ok(p) => {
                    if p.total() > 0 {
                        tracing::debug!(
                            tasks = p.tasks,
                            events = p.events,
                            logs = p.logs,
                            "pruned"
                        );
                    }
                    if p.tasks < 2000 && p.events < 2000 && p.logs < 2000 {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pruning failed; will try again later");
                    break;
                }
            }
        }
    }
}
