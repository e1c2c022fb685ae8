//! Blocked triggers: an `eventbridge` trigger with `errorsTolerance: NONE` whose event ran out of
//! retries stops delivering later events until that one succeeds. The block names the task that
//! holds it and its last error; it is written in the same transaction as the attempt record that
//! caused it, and removed with the one that ends it (or with the trigger), so a restart finds
//! the trigger still blocked.

use rusqlite::{Connection, params};
use serde::Serialize;

use crate::StoreError;

pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS trigger_blocks(
    function_name TEXT NOT NULL,
    trigger_name TEXT NOT NULL,
    task_row INTEGER NOT NULL,
    task_id TEXT NOT NULL,
    error TEXT NOT NULL,
    since_ms INTEGER NOT NULL,
    PRIMARY KEY(function_name, trigger_name)
);
"#;

/// A trigger held by one failing event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerBlock {
    pub function_name: String,
    pub trigger_name: String,
    /// The row of the task that holds the block (the scheduler's key).
    pub task_row: i64,
    pub task_id: String,
    /// The last error of that task.
    pub error: String,
    /// When the block began (ms); kept while the same task keeps failing.
    pub since_ms: i64,
}

/// Inserts the block; if the trigger is already blocked by the same task, updates its error
/// (its `since` stays); a block held by another task is kept as it is.
pub(crate) fn put_block(c: &Connection, b: &TriggerBlock) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO trigger_blocks(function_name, trigger_name, task_row, task_id, error, since_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(function_name, trigger_name) DO UPDATE SET error = excluded.error
             WHERE trigger_blocks.task_row = excluded.task_row",
    )?
    .execute(params![
        b.function_name,
        b.trigger_name,
        b.task_row,
        b.task_id,
        b.error,
        b.since_ms
    ])?;
    Ok(())
}

/// Removes the block of a trigger; true if there was one.
pub(crate) fn delete_block(
    c: &Connection,
    function: &str,
    trigger: &str,
) -> Result<bool, StoreError> {
    Ok(c.prepare_cached(
        "DELETE FROM trigger_blocks WHERE function_name = ?1 AND trigger_name = ?2",
    )?
    .execute([function, trigger])?
        == 1)
}

/// Every block (start-up).
pub(crate) fn all_blocks(c: &Connection) -> Result<Vec<TriggerBlock>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT function_name, trigger_name, task_row, task_id, error, since_ms
         FROM trigger_blocks ORDER BY function_name, trigger_name",
    )?;
    let rows = st
        .query_map([], |r| {
            Ok(TriggerBlock {
                function_name: r.get(0)?,
                trigger_name: r.get(1)?,
                task_row: r.get(2)?,
                task_id: r.get(3)?,
                error: r.get(4)?,
                since_ms: r.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
