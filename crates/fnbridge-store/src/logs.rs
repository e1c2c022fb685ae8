//! Function logs, one record per invocation (markers included), kept for `fnbridge logs`; and the
//! test events saved per function (the console's "Configure Test Parameters").

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::StoreError;

/// Log records kept per function; older ones are dropped as new ones arrive.
pub const KEEP_PER_FUNCTION: i64 = 10_000;

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LogRecord {
    pub id: i64,
    pub request_id: String,
    pub qualifier: String,
    pub time_ms: i64,
    pub text: String,
}

pub(crate) fn append_log(
    c: &Connection,
    function: &str,
    request_id: &str,
    qualifier: &str,
    time_ms: i64,
    text: &str,
) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO logs(function_name, request_id, qualifier, time_ms, text) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![function, request_id, qualifier, time_ms, text])?;
    let id = c.last_insert_rowid();
    // Trim now and then rather than on every insert: one indexed range delete per 256 records.
    if id % 256 == 0 {
        c.prepare_cached(
            "DELETE FROM logs WHERE function_name = ?1 AND id <= (
                 SELECT id FROM logs WHERE function_name = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        )?
        .execute(params![function, KEEP_PER_FUNCTION])?;
    }
    Ok(())
}

/// Log records of a function after `after` (oldest first), optionally of one request.
pub(crate) fn read_logs(
    c: &Connection,
    function: &str,
    request_id: Option<&str>,
    after: i64,
    limit: usize,
) -> Result<Vec<LogRecord>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT id, request_id, qualifier, time_ms, text FROM logs
         WHERE function_name = ?1 AND (?2 IS NULL OR request_id = ?2) AND id > ?3 ORDER BY id LIMIT ?4",
    )?;
    let rows = st
        .query_map(params![function, request_id, after, limit as i64], |r| {
            Ok(LogRecord {
                id: r.get(0)?,
                request_id: r.get(1)?,
                qualifier: r.get(2)?,
                time_ms: r.get(3)?,
                text: r.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The id of the newest log record of a function (0 when none), where `--follow` starts.
pub(crate) fn last_log_id(c: &Connection, function: &str) -> Result<i64, StoreError> {
    Ok(c.query_row(
        "SELECT COALESCE(MAX(id), 0) FROM logs WHERE function_name = ?1",
        [function],
        |r| r.get(0),
    )?)
}

pub(crate) fn delete_logs(c: &Connection, function: &str) -> Result<(), StoreError> {
    c.execute("DELETE FROM logs WHERE function_name = ?1", [function])?;
    c.execute(
        "DELETE FROM test_events WHERE function_name = ?1",
        [function],
    )?;
    Ok(())
}

pub(crate) fn put_test_event(
    c: &Connection,
    function: &str,
    name: &str,
    body: &str,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO test_events(function_name, name, body) VALUES (?1, ?2, ?3)
         ON CONFLICT(function_name, name) DO UPDATE SET body = excluded.body",
        params![function, name, body],
    )?;
    Ok(())
}

pub(crate) fn get_test_event(
    c: &Connection,
    function: &str,
    name: &str,
) -> Result<Option<String>, StoreError> {
    Ok(c.query_row(
        "SELECT body FROM test_events WHERE function_name = ?1 AND name = ?2",
        [function, name],
        |r| r.get(0),
    )
    .optional()?)
}

pub(crate) fn list_test_events(
    c: &Connection,
    function: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT name, body FROM test_events WHERE function_name = ?1 ORDER BY name",
    )?;
    let rows = st
        .query_map([function], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn delete_test_event(
    c: &Connection,
    function: &str,
    name: &str,
) -> Result<bool, StoreError> {
    Ok(c.execute(
        "DELETE FROM test_events WHERE function_name = ?1 AND name = ?2",
        [function, name],
    )? == 1)
}
