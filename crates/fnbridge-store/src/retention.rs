//! Retention: finished tasks with their attempts, events no open task or dead letter needs, and
//! function logs are deleted by age and count, a bounded batch per call so that pruning never
//! holds the writer for long. The dead-letter queue is kept until a user deletes an entry.

use rusqlite::{Connection, params};

use crate::StoreError;

/// What to keep.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Finished tasks, unreferenced events and logs older than this many ms are deleted.
    pub max_age_ms: i64,
    /// At most this many finished tasks are kept (the newest).
    pub max_finished_tasks: i64,
}

/// What one `prune` call deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub tasks: usize,
    pub events: usize,
    pub logs: usize,
    /// Archived events past their archive's retention.
    pub archived: usize,
    /// Replays that ended longer ago than finished tasks are kept.
    pub replays: usize,
}

impl Pruned {
    pub fn total(&self) -> usize {
        self.tasks + self.events + self.logs + self.archived + self.replays
    }
}

/// Deletes up to `batch` rows of each kind that `r` no longer keeps at time `now_ms`.
pub(crate) fn prune(
    c: &Connection,
    r: &Retention,
    now_ms: i64,
    batch: usize,
) -> Result<Pruned, StoreError> {
    let cutoff = now_ms.saturating_sub(r.max_age_ms);
    // The oldest finished task to keep by count (ids grow with time).
    let keep_from: i64 = c
        .query_row(
            "SELECT id FROM tasks WHERE ended_ms IS NOT NULL ORDER BY id DESC LIMIT 1 OFFSET ?1",
            [r.max_finished_tasks.max(0)],
            |row| row.get(0),
        )
        .unwrap_or(i64::MIN);
    let ids: Vec<i64> = {
        let mut st = c.prepare_cached(
            "SELECT id FROM tasks WHERE ended_ms IS NOT NULL AND (ended_ms < ?1 OR id <= ?2)
             ORDER BY id LIMIT ?3",
        )?;
        st.query_map(params![cutoff, keep_from, batch as i64], |row| row.get(0))?
            .collect::<Result<_, _>>()?
    };
    {
        let mut del_attempts = c.prepare_cached("DELETE FROM attempts WHERE task = ?1")?;
        let mut del_task = c.prepare_cached("DELETE FROM tasks WHERE id = ?1")?;
        for id in &ids {
            del_attempts.execute([id])?;
            del_task.execute([id])?;
        }
    }
    // An event goes once it is old and nothing that may still deliver or show it names it.
    let events = c
        .prepare_cached(
            "DELETE FROM events WHERE seq IN (
                 SELECT e.seq FROM events e WHERE e.received_ms < ?1
                 AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.event_seq = e.seq AND t.ended_ms IS NULL)
                 AND NOT EXISTS (SELECT 1 FROM dlq d WHERE d.event_seq = e.seq)
                 ORDER BY e.received_ms LIMIT ?2)",
        )?
        .execute(params![cutoff, batch as i64])?;
    let logs = c
        .prepare_cached(
            "DELETE FROM logs WHERE id IN (SELECT id FROM logs WHERE time_ms < ?1 ORDER BY time_ms LIMIT ?2)",
        )?
        .execute(params![cutoff, batch as i64])?;
    let archived = crate::archives::prune_archives(c, now_ms, batch)?;
    let replays = crate::archives::prune_replays(c, cutoff, batch)?;
    Ok(Pruned {
        tasks: ids.len(),
        events,
        logs,
        archived,
        replays,
    })
}
