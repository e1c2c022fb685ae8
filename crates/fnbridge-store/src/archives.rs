//! Event archives and replays. An archive keeps a copy of every event of its bus that matches
//! its pattern (the CloudEvent text as committed, its event time and when it was archived), for
//! `retention_days` (0: for ever). A replay re-publishes an archive's events of an event-time
//! range into a bus (or one rule of it), in pages; its cursor and counts commit with each page,
//! so a restart resumes where the last committed page ended.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::StoreError;

pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS archives(
    name TEXT PRIMARY KEY,
    bus TEXT NOT NULL,
    pattern TEXT NOT NULL,
    description TEXT NOT NULL,
    retention_days INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS archive_events(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    archive TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    archived_ms INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS archive_events_by_time ON archive_events(archive, time_ms, id);
CREATE INDEX IF NOT EXISTS archive_events_by_age ON archive_events(archived_ms);
CREATE TABLE IF NOT EXISTS replays(
    name TEXT PRIMARY KEY,
    archive TEXT NOT NULL,
    bus TEXT NOT NULL,
    rules TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    total INTEGER NOT NULL,
    done INTEGER NOT NULL,
    cursor_time INTEGER NOT NULL,
    cursor_id INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    ended_ms INTEGER
);
"#;

/// An archive of a bus's events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Archive {
    pub name: String,
    pub bus: String,
    /// The event pattern (JSON text) an event must match to be kept.
    pub pattern: String,
    pub description: String,
    /// Days an archived event is kept; 0 keeps it for ever.
    pub retention_days: u32,
    pub created_ms: i64,
}

/// One archived event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedEvent {
    pub id: i64,
    /// The event's own time (its `time`, else when it was published), which replays select by.
    pub time_ms: i64,
    /// The CloudEvent as committed (compact JSON).
    pub body: String,
}

/// A replay of an archive's events into a bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replay {
    pub name: String,
    pub archive: String,
    pub bus: String,
    /// `function/trigger` names the events go to; empty: every rule of the bus.
    pub rules: Vec<String>,
    /// Event-time range, `[start_ms, end_ms)`.
    pub start_ms: i64,
    pub end_ms: i64,
    /// `RUNNING`, `COMPLETED`, `CANCELLED` or `FAILED`.
    pub state: String,
    pub reason: String,
    pub total: u64,
    pub done: u64,
    /// The last replayed event's (time, id): the next page starts after it.
    pub cursor_time: i64,
    pub cursor_id: i64,
    pub created_ms: i64,
    pub ended_ms: Option<i64>,
}

pub(crate) fn insert_archive(c: &Connection, a: &Archive) -> Result<(), StoreError> {
    let n = c.execute(
        "INSERT INTO archives(name, bus, pattern, description, retention_days, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(name) DO NOTHING",
        params![
            a.name,
            a.bus,
            a.pattern,
            a.description,
            a.retention_days,
            a.created_ms
        ],
    )?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "archive '{}' already exists",
            a.name
        )));
    }
    Ok(())
}

fn archive_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Archive> {
    Ok(Archive {
        name: r.get(0)?,
        bus: r.get(1)?,
        pattern: r.get(2)?,
        description: r.get(3)?,
        retention_days: r.get(4)?,
        created_ms: r.get(5)?,
    })
}

const ARCHIVE_COLS: &str = "name, bus, pattern, description, retention_days, created_ms";

pub(crate) fn get_archive(c: &Connection, name: &str) -> Result<Option<Archive>, StoreError> {
    Ok(c.prepare_cached(&format!(
        "SELECT {ARCHIVE_COLS} FROM archives WHERE name = ?1"
    ))?
    .query_row([name], archive_row)
    .optional()?)
}

pub(crate) fn list_archives(c: &Connection) -> Result<Vec<Archive>, StoreError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {ARCHIVE_COLS} FROM archives ORDER BY name"
    ))?;
    let rows = st
        .query_map([], archive_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Deletes an archive and every event it kept.
pub(crate) fn delete_archive(c: &Connection, name: &str) -> Result<bool, StoreError> {
    c.execute("DELETE FROM archive_events WHERE archive = ?1", [name])?;
    Ok(c.execute("DELETE FROM archives WHERE name = ?1", [name])? == 1)
}

pub(crate) fn append_archive_event(
    c: &Connection,
    archive: &str,
    time_ms: i64,
    archived_ms: i64,
    body: &str,
) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO archive_events(archive, time_ms, archived_ms, body) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![archive, time_ms, archived_ms, body])?;
    Ok(())
}

/// Events of `archive` and their bytes, with event time in `[start_ms, end_ms)`.
pub(crate) fn archive_stats(
    c: &Connection,
    archive: &str,
    start_ms: i64,
    end_ms: i64,
) -> Result<(u64, u64), StoreError> {
    Ok(c.prepare_cached(
        "SELECT count(*), coalesce(sum(length(body)), 0) FROM archive_events
         WHERE archive = ?1 AND time_ms >= ?2 AND time_ms < ?3",
    )?
    .query_row(params![archive, start_ms, end_ms], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
    })?)
}

/// Up to `limit` events of `archive` with event time in `[start_ms, end_ms)`, after the cursor
/// `(time, id)`, in (time, id) order.
pub(crate) fn archive_page(
    c: &Connection,
    archive: &str,
    start_ms: i64,
    end_ms: i64,
    after: (i64, i64),
    limit: usize,
) -> Result<Vec<ArchivedEvent>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT id, time_ms, body FROM archive_events
         WHERE archive = ?1 AND time_ms >= ?2 AND time_ms < ?3
           AND (time_ms > ?4 OR (time_ms = ?4 AND id > ?5))
         ORDER BY time_ms, id LIMIT ?6",
    )?;
    let rows = st
        .query_map(
            params![archive, start_ms, end_ms, after.0, after.1, limit as i64],
            |r| {
                Ok(ArchivedEvent {
                    id: r.get(0)?,
                    time_ms: r.get(1)?,
                    body: r.get(2)?,
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Removes up to `batch` archived events past their archive's retention; returns how many.
pub(crate) fn prune_archives(
    c: &Connection,
    now_ms: i64,
    batch: usize,
) -> Result<usize, StoreError> {
    Ok(c.prepare_cached(
        "DELETE FROM archive_events WHERE id IN (
             SELECT e.id FROM archive_events e JOIN archives a ON a.name = e.archive
             WHERE a.retention_days > 0 AND e.archived_ms < ?1 - a.retention_days * 86400000
             LIMIT ?2)",
    )?
    .execute(params![now_ms, batch as i64])?)
}

pub(crate) fn insert_replay(c: &Connection, r: &Replay) -> Result<(), StoreError> {
    let rules = serde_json::to_string(&r.rules).unwrap_or_else(|_| "[]".into());
    let n = c.execute(
        "INSERT INTO replays(name, archive, bus, rules, start_ms, end_ms, state, reason, total,
             done, cursor_time, cursor_id, created_ms, ended_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT(name) DO NOTHING",
        params![
            r.name,
            r.archive,
            r.bus,
            rules,
            r.start_ms,
            r.end_ms,
            r.state,
            r.reason,
            r.total as i64,
            r.done as i64,
            r.cursor_time,
            r.cursor_id,
            r.created_ms,
            r.ended_ms
        ],
    )?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "replay '{}' already exists",
            r.name
        )));
    }
    Ok(())
}

/// Writes a replay's state, counts and cursor.
pub(crate) fn update_replay(c: &Connection, r: &Replay) -> Result<bool, StoreError> {
    Ok(c.prepare_cached(
        "UPDATE replays SET state = ?2, reason = ?3, total = ?4, done = ?5, cursor_time = ?6,
             cursor_id = ?7, ended_ms = ?8 WHERE name = ?1",
    )?
    .execute(params![
        r.name,
        r.state,
        r.reason,
        r.total as i64,
        r.done as i64,
        r.cursor_time,
        r.cursor_id,
        r.ended_ms
    ])? == 1)
}

const REPLAY_COLS: &str = "name, archive, bus, rules, start_ms, end_ms, state, reason, total, done,
    cursor_time, cursor_id, created_ms, ended_ms";

fn replay_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Replay> {
    let rules: String = r.get(3)?;
    Ok(Replay {
        name: r.get(0)?,
        archive: r.get(1)?,
        bus: r.get(2)?,
        rules: serde_json::from_str(&rules).unwrap_or_default(),
        start_ms: r.get(4)?,
        end_ms: r.get(5)?,
        state: r.get(6)?,
        reason: r.get(7)?,
        total: r.get::<_, i64>(8)? as u64,
        done: r.get::<_, i64>(9)? as u64,
        cursor_time: r.get(10)?,
        cursor_id: r.get(11)?,
        created_ms: r.get(12)?,
        ended_ms: r.get(13)?,
    })
}

pub(crate) fn get_replay(c: &Connection, name: &str) -> Result<Option<Replay>, StoreError> {
    Ok(c.prepare_cached(&format!(
        "SELECT {REPLAY_COLS} FROM replays WHERE name = ?1"
    ))?
    .query_row([name], replay_row)
    .optional()?)
}

/// Every replay, newest first.
pub(crate) fn list_replays(c: &Connection) -> Result<Vec<Replay>, StoreError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {REPLAY_COLS} FROM replays ORDER BY created_ms DESC, name"
    ))?;
    let rows = st
        .query_map([], replay_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Removes up to `batch` replays that ended before `cutoff_ms` (running ones are kept).
pub(crate) fn prune_replays(
    c: &Connection,
    cutoff_ms: i64,
    batch: usize,
) -> Result<usize, StoreError> {
    Ok(c.prepare_cached(
        "DELETE FROM replays WHERE name IN (
             SELECT name FROM replays WHERE ended_ms IS NOT NULL AND ended_ms < ?1 LIMIT ?2)",
    )?
    .execute(params![cutoff_ms, batch as i64])?)
}
