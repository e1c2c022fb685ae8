//! CDN state: accelerated domains (the registry objects the CDN control plane writes), the
//! refresh/push/block tasks it ran (one row per URL, grouped by task id), and the blocked URLs
//! the edge refuses.

use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS cdn_domains(
    name TEXT PRIMARY KEY,
    cdn_type TEXT NOT NULL,
    sources TEXT NOT NULL,
    scope TEXT NOT NULL,
    status TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cdn_tasks(
    row INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_path TEXT NOT NULL,
    domain TEXT NOT NULL,
    status TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS cdn_tasks_by_id ON cdn_tasks(task_id);
CREATE INDEX IF NOT EXISTS cdn_tasks_by_time ON cdn_tasks(created_ms);
CREATE TABLE IF NOT EXISTS cdn_task_ids(
    id INTEGER PRIMARY KEY AUTOINCREMENT
);
CREATE TABLE IF NOT EXISTS cdn_blocks(
    url TEXT PRIMARY KEY,
    domain TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
"#;

/// An accelerated domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdnDomain {
    pub name: String,
    /// `web`, `download` or `video`.
    pub cdn_type: String,
    /// The origins as a JSON array, in the normalized form the CDN crate writes.
    pub sources: String,
    pub scope: String,
    /// `online` or `offline`.
    pub status: String,
    pub created_ms: i64,
    pub modified_ms: i64,
}

/// One URL of a refresh, push or block task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdnTask {
    pub task_id: i64,
    /// `refresh`, `push`, `block` or `unblock`.
    pub kind: String,
    /// As the request named it: `File`, `Directory`, `Regex`, `IgnoreParams`.
    pub object_type: String,
    /// The URL as `http://domain/path`.
    pub object_path: String,
    pub domain: String,
    pub status: String,
    pub created_ms: i64,
}

/// Filters of `list_cdn_tasks`; `None` matches anything.
#[derive(Debug, Clone, Default)]
pub struct CdnTaskFilter {
    pub task_ids: Option<Vec<i64>>,
    pub object_path: Option<String>,
    pub domain: Option<String>,
    pub kinds: Option<Vec<String>>,
    pub status: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub offset: usize,
    pub limit: usize,
}

fn domain_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<CdnDomain> {
    Ok(CdnDomain {
        name: r.get(0)?,
        cdn_type: r.get(1)?,
        sources: r.get(2)?,
        scope: r.get(3)?,
        status: r.get(4)?,
        created_ms: r.get(5)?,
        modified_ms: r.get(6)?,
    })
}

const DOMAIN_COLS: &str = "name, cdn_type, sources, scope, status, created_ms, modified_ms";

pub(crate) fn insert_domain(c: &Connection, d: &CdnDomain) -> Result<bool, StoreError> {
    let n = c.execute(
        "INSERT INTO cdn_domains(name, cdn_type, sources, scope, status, created_ms, modified_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(name) DO NOTHING",
        params![
            d.name,
            d.cdn_type,
            d.sources,
            d.scope,
            d.status,
            d.created_ms,
            d.modified_ms
        ],
    )?;
    Ok(n == 1)
}

pub(crate) fn get_domain(c: &Connection, name: &str) -> Result<Option<CdnDomain>, StoreError> {
    Ok(c.query_row(
        &format!("SELECT {DOMAIN_COLS} FROM cdn_domains WHERE name = ?1"),
        [name],
        domain_of,
    )
    .optional()?)
}

pub(crate) fn list_domains(c: &Connection) -> Result<Vec<CdnDomain>, StoreError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {DOMAIN_COLS} FROM cdn_domains ORDER BY name"
    ))?;
    let rows = st.query_map([], domain_of)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn set_domain_status(
    c: &Connection,
    name: &str,
    status: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let n = c.execute(
        "UPDATE cdn_domains SET status = ?2, modified_ms = ?3 WHERE name = ?1",
        params![name, status, now_ms],
    )?;
    Ok(n == 1)
}

pub(crate) fn delete_domain(c: &Connection, name: &str) -> Result<bool, StoreError> {
    c.execute("DELETE FROM cdn_blocks WHERE domain = ?1", [name])?;
    Ok(c.execute("DELETE FROM cdn_domains WHERE name = ?1", [name])? == 1)
}

pub(crate) fn next_task_id(c: &Connection) -> Result<i64, StoreError> {
    c.execute("INSERT INTO cdn_task_ids DEFAULT VALUES", [])?;
    let id = c.last_insert_rowid();
    // Only the sequence matters; the rows themselves are not kept.
    c.execute("DELETE FROM cdn_task_ids WHERE id < ?1", [id])?;
    Ok(id)
}

pub(crate) fn insert_task(c: &Connection, t: &CdnTask) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO cdn_tasks(task_id, kind, object_type, object_path, domain, status, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            t.task_id,
            t.kind,
            t.object_type,
            t.object_path,
            t.domain,
            t.status,
            t.created_ms
        ],
    )?;
    Ok(())
}

/// Matching tasks, newest first, with the total count before paging.
pub(crate) fn list_tasks(
    c: &Connection,
    f: &CdnTaskFilter,
) -> Result<(Vec<CdnTask>, usize), StoreError> {
    let mut sql = String::from(" FROM cdn_tasks WHERE 1=1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    use rusqlite::types::Value as V;
    if let Some(ids) = &f.task_ids {
        sql.push_str(" AND task_id IN (");
        for (i, id) in ids.iter().enumerate() {
            sql.push_str(if i == 0 { "?" } else { ",?" });
            args.push(V::Integer(*id));
        }
        sql.push(')');
        if ids.is_empty() {
            sql.push_str(" AND 0");
        }
    }
    if let Some(p) = &f.object_path {
        sql.push_str(" AND object_path = ?");
        args.push(V::Text(p.clone()));
    }
    if let Some(d) = &f.domain {
        sql.push_str(" AND domain = ?");
        args.push(V::Text(d.clone()));
    }
    if let Some(kinds) = &f.kinds {
        sql.push_str(" AND (0");
        for k in kinds {
            sql.push_str(" OR kind || ':' || lower(object_type) = ?");
            args.push(V::Text(k.clone()));
        }
        sql.push(')');
    }
    if let Some(s) = &f.status {
        sql.push_str(" AND status = ?");
        args.push(V::Text(s.clone()));
    }
    if let Some(t) = f.since_ms {
        sql.push_str(" AND created_ms >= ?");
        args.push(V::Integer(t));
    }
    if let Some(t) = f.until_ms {
        sql.push_str(" AND created_ms <= ?");
        args.push(V::Integer(t));
    }
    let total: i64 = c.query_row(
        &format!("SELECT count(*){sql}"),
        rusqlite::params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let mut st = c.prepare(&format!(
        "SELECT task_id, kind, object_type, object_path, domain, status, created_ms{sql}
         ORDER BY row DESC LIMIT {} OFFSET {}",
        f.limit, f.offset
    ))?;
    let rows = st.query_map(rusqlite::params_from_iter(args.iter()), |r| {
        Ok(CdnTask {
            task_id: r.get(0)?,
            kind: r.get(1)?,
            object_type: r.get(2)?,
            object_path: r.get(3)?,
            domain: r.get(4)?,
            status: r.get(5)?,
            created_ms: r.get(6)?,
        })
    })?;
    Ok((rows.collect::<Result<_, _>>()?, total as usize))
}

/// URLs of tasks of `kind` whose object type is `object_type`, created at or after `since_ms`
/// (the daily quotas).
pub(crate) fn count_tasks_since(
    c: &Connection,
    kind: &str,
    object_type: &str,
    since_ms: i64,
) -> Result<usize, StoreError> {
    let n: i64 = c.query_row(
        "SELECT count(*) FROM cdn_tasks WHERE kind = ?1 AND object_type = ?2 AND created_ms >= ?3",
        params![kind, object_type, since_ms],
        |r| r.get(0),
    )?;
    Ok(n as usize)
}

pub(crate) fn set_block(
    c: &Connection,
    url: &str,
    domain: &str,
    blocked: bool,
    now_ms: i64,
) -> Result<(), StoreError> {
    if blocked {
        c.execute(
            "INSERT INTO cdn_blocks(url, domain, created_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT(url) DO NOTHING",
            params![url, domain, now_ms],
        )?;
    } else {
        c.execute("DELETE FROM cdn_blocks WHERE url = ?1", [url])?;
    }
    Ok(())
}

pub(crate) fn list_blocks(c: &Connection) -> Result<Vec<String>, StoreError> {
    let mut st = c.prepare_cached("SELECT url FROM cdn_blocks ORDER BY url")?;
    let rows = st.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
