//! The event log, delivery tasks (one per matched trigger or async invocation) with a record of
//! every attempt, and the dead-letter queue.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use crate::StoreError;

/// The persisted state of a delivery. `Running` is only ever kept in memory: a task found
/// `Enqueued`/`Retrying` after a crash is simply run again (at-least-once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TaskStatus {
    Enqueued,
    Running,
    Succeeded,
    Retrying,
    Failed,
    Expired,
    Stopped,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Enqueued => "Enqueued",
            TaskStatus::Running => "Running",
            TaskStatus::Succeeded => "Succeeded",
            TaskStatus::Retrying => "Retrying",
            TaskStatus::Failed => "Failed",
            TaskStatus::Expired => "Expired",
            TaskStatus::Stopped => "Stopped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            TaskStatus::Enqueued,
            TaskStatus::Running,
            TaskStatus::Succeeded,
            TaskStatus::Retrying,
            TaskStatus::Failed,
            TaskStatus::Expired,
            TaskStatus::Stopped,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskStatus::Succeeded | TaskStatus::Failed | TaskStatus::Expired | TaskStatus::Stopped
        )
    }
}

/// A delivery to create.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub task_id: String,
    pub function_name: String,
    pub qualifier: String,
    pub trigger_name: Option<String>,
    pub event_seq: Option<i64>,
    /// `None`: the payload is `{"events":[<the event>]}` of `event_seq`, stored once in the
    /// event log and shared by every task of that event.
    pub payload: Option<Vec<u8>>,
    pub created_ms: i64,
    /// How many destination hops led to this task (0 for events and invocations).
    pub hops: u32,
}

/// A delivery as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Task {
    pub id: i64,
    pub task_id: String,
    pub function_name: String,
    pub qualifier: String,
    pub trigger_name: Option<String>,
    pub event_seq: Option<i64>,
    #[serde(skip)]
    pub payload: Vec<u8>,
    pub status: TaskStatus,
    pub attempts: u32,
    pub created_ms: i64,
    pub next_ms: i64,
    pub ended_ms: Option<i64>,
    pub last_error: Option<String>,
    #[serde(skip)]
    pub return_payload: Option<Vec<u8>>,
    pub log: Option<String>,
    /// The payload is the event's (not stored with the task).
    #[serde(skip)]
    pub payload_from_event: bool,
    #[serde(skip)]
    pub hops: u32,
}

/// One attempt to run a task.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Attempt {
    pub n: u32,
    pub started_ms: i64,
    pub ended_ms: i64,
    /// `Succeeded` or `Failed`.
    pub status: String,
    pub error_type: Option<String>,
    pub error_message: Option<String>,
    pub instance_id: Option<String>,
}

/// A dead-lettered delivery with the error that killed it.
#[derive(Debug, Clone, Serialize)]
pub struct DlqEntry {
    pub id: i64,
    pub task_id: String,
    pub function_name: String,
    pub qualifier: String,
    pub trigger_name: Option<String>,
    pub event_seq: Option<i64>,
    #[serde(skip)]
    pub payload: Vec<u8>,
    pub attempts: u32,
    pub reason: String,
    pub last_error: Option<String>,
    pub created_ms: i64,
}

/// Appends an event to the log, returning its sequence number.
pub(crate) fn append_event(
    c: &Connection,
    event_id: &str,
    source: &str,
    name: &str,
    received_ms: i64,
    body: &str,
) -> Result<i64, StoreError> {
    c.prepare_cached(
        "INSERT INTO events(event_id, source, name, received_ms, body) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![event_id, source, name, received_ms, body])?;
    Ok(c.last_insert_rowid())
}

/// The stored text of the event with sequence `seq`, if it is still kept.
pub(crate) fn event_body(c: &Connection, seq: i64) -> Result<Option<String>, StoreError> {
    Ok(c.prepare_cached("SELECT body FROM events WHERE seq = ?1")?
        .query_row([seq], |r| r.get(0))
        .optional()?)
}

pub(crate) fn count_events(c: &Connection) -> Result<i64, StoreError> {
    Ok(c.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?)
}

/// Creates a task in state `Enqueued`, due now; returns its row id.
pub(crate) fn insert_task(c: &Connection, t: &NewTask) -> Result<i64, StoreError> {
    let n = c
        .prepare_cached(
            "INSERT INTO tasks(task_id, function_name, qualifier, trigger_name, event_seq, payload,
                               status, attempts, created_ms, next_ms, hops)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'Enqueued', 0, ?7, ?7, ?8)
             ON CONFLICT(task_id) DO NOTHING",
        )?
        .execute(params![
            t.task_id,
            t.function_name,
            t.qualifier,
            t.trigger_name,
            t.event_seq,
            t.payload,
            t.created_ms,
            t.hops
        ])?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "async task '{}' already exists",
            t.task_id
        )));
    }
    Ok(c.last_insert_rowid())
}

/// Open tasks: those a scheduler still has to run (`Running` is never stored).
const OPEN: &str = "t.status IN ('Enqueued','Retrying')";

/// A task's columns, its payload rebuilt from the event log where it is not stored inline
/// (the same text first delivered: a CloudEvent as stored, any other event as
/// `delivery_payload` of it, `{"events":[event]}`).
const TASK_COLS: &str =
    "t.id, t.task_id, t.function_name, t.qualifier, t.trigger_name, t.event_seq,
     COALESCE(t.payload, CAST(CASE e.source WHEN 'cloudevents' THEN e.body
         ELSE '{\"events\":[' || e.body || ']}' END AS BLOB), X''), t.status,
     t.attempts, t.created_ms, t.next_ms, t.ended_ms, t.last_error, t.return_payload, t.log,
     t.payload IS NULL, t.hops";
const TASK_FROM: &str = "tasks t LEFT JOIN events e ON e.seq = t.event_seq";

fn task_row(r: &Row<'_>) -> rusqlite::Result<Task> {
    let status: String = r.get(7)?;
    Ok(Task {
        id: r.get(0)?,
        task_id: r.get(1)?,
        function_name: r.get(2)?,
        qualifier: r.get(3)?,
        trigger_name: r.get(4)?,
        event_seq: r.get(5)?,
        payload: r.get(6)?,
        status: TaskStatus::parse(&status).unwrap_or(TaskStatus::Failed),
        attempts: r.get(8)?,
        created_ms: r.get(9)?,
        next_ms: r.get(10)?,
        ended_ms: r.get(11)?,
        last_error: r.get(12)?,
        return_payload: r.get(13)?,
        log: r.get(14)?,
        payload_from_event: r.get(15)?,
        hops: r.get(16)?,
    })
}

/// Number of open tasks, for the backlog limit.
pub(crate) fn count_open(c: &Connection) -> Result<u64, StoreError> {
    let n: i64 = c.query_row(
        &format!("SELECT count(*) FROM tasks t WHERE {OPEN}"),
        [],
        |r| r.get(0),
    )?;
    Ok(n as u64)
}

/// Functions that have open tasks (a skip scan over the open-task index: one probe per
/// function, not one row per task).
pub(crate) fn functions_with_open_tasks(c: &Connection) -> Result<Vec<String>, StoreError> {
    let mut st = c.prepare(&format!(
        "WITH RECURSIVE f(name) AS (
             SELECT (SELECT min(t.function_name) FROM tasks t WHERE {OPEN})
             UNION ALL
             SELECT (SELECT min(t.function_name) FROM tasks t WHERE {OPEN} AND t.function_name > f.name)
             FROM f WHERE f.name IS NOT NULL)
         SELECT name FROM f WHERE name IS NOT NULL"
    ))?;
    let rows = st
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Open tasks of one function in the order they are due, after the cursor `(next_ms, id)`.
/// The scheduler refills its in-memory window from here.
pub(crate) fn due_tasks(
    c: &Connection,
    function: &str,
    after: Option<(i64, i64)>,
    limit: usize,
) -> Result<Vec<Task>, StoreError> {
    let (after_ms, after_id) = after.unwrap_or((i64::MIN, i64::MIN));
    let mut st = c.prepare_cached(&format!(
        "SELECT {TASK_COLS} FROM {TASK_FROM}
         WHERE t.function_name = ?1 AND {OPEN} AND (t.next_ms, t.id) > (?2, ?3)
         ORDER BY t.next_ms, t.id LIMIT ?4"
    ))?;
    let rows = st
        .query_map(
            params![function, after_ms, after_id, limit as i64],
            task_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Every open task (tests and tools; the scheduler pages with `due_tasks`).
pub(crate) fn open_tasks(c: &Connection) -> Result<Vec<Task>, StoreError> {
    let mut st = c.prepare(&format!(
        "SELECT {TASK_COLS} FROM {TASK_FROM} WHERE {OPEN} ORDER BY t.id"
    ))?;
    let rows = st.query_map([], task_row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn get_task(
    c: &Connection,
    task_id: &str,
) -> Result<Option<(Task, Vec<Attempt>)>, StoreError> {
    let t = c
        .query_row(
            &format!("SELECT {TASK_COLS} FROM {TASK_FROM} WHERE t.task_id = ?1"),
            [task_id],
            task_row,
        )
        .optional()?;
    let Some(t) = t else { return Ok(None) };
    let mut st = c.prepare_cached(
        "SELECT n, started_ms, ended_ms, status, error_type, error_message, instance_id
         FROM attempts WHERE task = ?1 ORDER BY n",
    )?;
    let attempts = st
        .query_map([t.id], |r| {
            Ok(Attempt {
                n: r.get(0)?,
                started_ms: r.get(1)?,
                ended_ms: r.get(2)?,
                status: r.get(3)?,
                error_type: r.get(4)?,
                error_message: r.get(5)?,
                instance_id: r.get(6)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((t, attempts)))
}

/// Tasks, newest first, optionally of one function and/or one status, with ids below `before`.
pub(crate) fn list_tasks(
    c: &Connection,
    function: Option<&str>,
    status: Option<TaskStatus>,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<Task>, StoreError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {TASK_COLS} FROM {TASK_FROM} WHERE (?1 IS NULL OR t.function_name = ?1)
         AND (?2 IS NULL OR t.status = ?2) AND t.id < ?3 ORDER BY t.id DESC LIMIT ?4"
    ))?;
    let rows = st
        .query_map(
            params![
                function,
                status.map(|s| s.as_str()),
                before.unwrap_or(i64::MAX),
                limit as i64
            ],
            task_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The outcome of one attempt: the attempt record plus the task's new state.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub attempt: Attempt,
    pub status: TaskStatus,
    pub next_ms: i64,
    pub last_error: Option<String>,
    pub return_payload: Option<Vec<u8>>,
    pub log: Option<String>,
}

/// Records an attempt and moves the task to its new state in one step.
pub(crate) fn record_attempt(
    c: &Connection,
    task: i64,
    o: &AttemptOutcome,
) -> Result<(), StoreError> {
    let a = &o.attempt;
    c.prepare_cached(
        "INSERT OR REPLACE INTO attempts(task, n, started_ms, ended_ms, status, error_type, error_message, instance_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        task,
        a.n,
        a.started_ms,
        a.ended_ms,
        a.status,
        a.error_type,
        a.error_message,
        a.instance_id
    ])?;
    let ended = if o.status.is_final() {
        Some(a.ended_ms)
    } else {
        None
    };
    c.prepare_cached(
        "UPDATE tasks SET status = ?2, attempts = ?3, next_ms = ?4, ended_ms = ?5, last_error = ?6,
         return_payload = ?7, log = ?8 WHERE id = ?1",
    )?
    .execute(params![
        task,
        o.status.as_str(),
        a.n,
        o.next_ms,
        ended,
        o.last_error,
        o.return_payload,
        o.log
    ])?;
    Ok(())
}

/// Marks a task finished without a new attempt (expired before it could run again, or stopped).
pub(crate) fn finish_task(
    c: &Connection,
    task: i64,
    status: TaskStatus,
    ended_ms: i64,
    last_error: Option<&str>,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE tasks SET status = ?2, ended_ms = ?3, last_error = COALESCE(?4, last_error) WHERE id = ?1",
        params![task, status.as_str(), ended_ms, last_error],
    )?;
    Ok(())
}

/// Puts a task into the dead-letter queue. A task whose payload is its event's keeps only the
/// reference (the event is kept while a DLQ entry names it).
pub(crate) fn dead_letter(
    c: &Connection,
    t: &Task,
    attempts: u32,
    reason: &str,
    last_error: Option<&str>,
    now_ms: i64,
) -> Result<i64, StoreError> {
    let payload = (!t.payload_from_event).then_some(&t.payload);
    c.prepare_cached(
        "INSERT INTO dlq(task_id, function_name, qualifier, trigger_name, event_seq, payload, attempts,
                         reason, last_error, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        t.task_id,
        t.function_name,
        t.qualifier,
        t.trigger_name,
        t.event_seq,
        payload,
        attempts,
        reason,
        last_error,
        now_ms
    ])?;
    Ok(c.last_insert_rowid())
}

fn dlq_row(r: &Row<'_>) -> rusqlite::Result<DlqEntry> {
    Ok(DlqEntry {
        id: r.get(0)?,
        task_id: r.get(1)?,
        function_name: r.get(2)?,
        qualifier: r.get(3)?,
        trigger_name: r.get(4)?,
        event_seq: r.get(5)?,
        payload: r.get(6)?,
        attempts: r.get(7)?,
        reason: r.get(8)?,
        last_error: r.get(9)?,
        created_ms: r.get(10)?,
    })
}

const DLQ_COLS: &str = "d.id, d.task_id, d.function_name, d.qualifier, d.trigger_name, d.event_seq,
     COALESCE(d.payload, CAST(CASE e.source WHEN 'cloudevents' THEN e.body
         ELSE '{\"events\":[' || e.body || ']}' END AS BLOB), X''), d.attempts,
     d.reason, d.last_error, d.created_ms";
const DLQ_FROM: &str = "dlq d LEFT JOIN events e ON e.seq = d.event_seq";

pub(crate) fn list_dlq(
    c: &Connection,
    function: Option<&str>,
    after: i64,
    limit: usize,
) -> Result<Vec<DlqEntry>, StoreError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {DLQ_COLS} FROM {DLQ_FROM} WHERE (?1 IS NULL OR d.function_name = ?1) AND d.id > ?2
         ORDER BY d.id LIMIT ?3"
    ))?;
    let rows = st
        .query_map(params![function, after, limit as i64], dlq_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn get_dlq(c: &Connection, id: i64) -> Result<Option<DlqEntry>, StoreError> {
    Ok(c.query_row(
        &format!("SELECT {DLQ_COLS} FROM {DLQ_FROM} WHERE d.id = ?1"),
        [id],
        dlq_row,
    )
    .optional()?)
}

pub(crate) fn delete_dlq(c: &Connection, id: i64) -> Result<bool, StoreError> {
    Ok(c.execute("DELETE FROM dlq WHERE id = ?1", [id])? == 1)
}
