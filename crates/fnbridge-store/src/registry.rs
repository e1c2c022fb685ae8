//! The registry: functions, triggers and async-invoke configs, stored as JSON documents keyed by
//! name. Functions on `&Connection` so callers compose them inside one `Store::write`.

use fnbridge_event::{AsyncConfig, FunctionConfig, TriggerConfig};
use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

pub(crate) fn get_function(
    c: &Connection,
    name: &str,
) -> Result<Option<FunctionConfig>, StoreError> {
    let s: Option<String> = c
        .query_row(
            "SELECT config FROM functions WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()?;
    Ok(match s {
        Some(s) => Some(serde_json::from_str(&s)?),
        None => None,
    })
}

/// Inserts a new function; `Conflict` if the name is taken.
pub(crate) fn insert_function(c: &Connection, f: &FunctionConfig) -> Result<(), StoreError> {
    let n = c.execute(
        "INSERT INTO functions(name, config) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
        params![f.function_name, serde_json::to_string(f)?],
    )?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "function '{}' already exists",
            f.function_name
        )));
    }
    Ok(())
}

pub(crate) fn update_function(c: &Connection, f: &FunctionConfig) -> Result<bool, StoreError> {
    let n = c.execute(
        "UPDATE functions SET config = ?2 WHERE name = ?1",
        params![f.function_name, serde_json::to_string(f)?],
    )?;
    Ok(n == 1)
}

pub(crate) fn delete_function(c: &Connection, name: &str) -> Result<bool, StoreError> {
    c.execute("DELETE FROM async_configs WHERE function_name = ?1", [name])?;
    delete_function_history(c, name)?;
    crate::logs::delete_logs(c, name)?;
    Ok(c.execute("DELETE FROM functions WHERE name = ?1", [name])? == 1)
}

/// Functions sorted by name, after `start_after`, with an optional name prefix.
pub(crate) fn list_functions(
    c: &Connection,
    prefix: &str,
    start_after: &str,
    limit: usize,
) -> Result<Vec<FunctionConfig>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT config FROM functions WHERE name > ?1 AND substr(name, 1, length(?2)) = ?2
         ORDER BY name LIMIT ?3",
    )?;
    let rows = st.query_map(params![start_after, prefix, limit as i64], |r| {
        r.get::<_, String>(0)
    })?;
    let mut out = Vec::new();
    for s in rows {
        out.push(serde_json::from_str(&s?)?);
    }
    Ok(out)
}

/// A trigger with its numeric id, which is also its id in the matcher index.
#[derive(Debug, Clone)]
pub struct StoredTrigger {
    pub id: u64,
    pub trigger: TriggerConfig,
}

fn trigger_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String)> {
    Ok((r.get(0)?, r.get(1)?))
}

fn to_stored(rows: Vec<(i64, String)>) -> Result<Vec<StoredTrigger>, StoreError> {
    rows.into_iter()
        .map(|(id, s)| {
            Ok(StoredTrigger {
                id: id as u64,
                trigger: serde_json::from_str(&s)?,
            })
        })
        .collect()
}

pub(crate) fn insert_trigger(c: &Connection, t: &TriggerConfig) -> Result<u64, StoreError> {
    let n = c.execute(
        "INSERT INTO triggers(function_name, name, config) VALUES (?1, ?2, ?3)
         ON CONFLICT(function_name, name) DO NOTHING",
        params![t.function_name, t.trigger_name, serde_json::to_string(t)?],
    )?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "trigger '{}' already exists on function '{}'",
            t.trigger_name, t.function_name
        )));
    }
    Ok(c.last_insert_rowid() as u64)
}

pub(crate) fn update_trigger(c: &Connection, t: &TriggerConfig) -> Result<Option<u64>, StoreError> {
    let id: Option<i64> = c
        .query_row(
            "UPDATE triggers SET config = ?3 WHERE function_name = ?1 AND name = ?2 RETURNING id",
            params![t.function_name, t.trigger_name, serde_json::to_string(t)?],
            |r| r.get(0),
        )
        .optional()?;
    Ok(id.map(|i| i as u64))
}

pub(crate) fn get_trigger(
    c: &Connection,
    function: &str,
    name: &str,
) -> Result<Option<StoredTrigger>, StoreError> {
    let row = c
        .query_row(
            "SELECT id, config FROM triggers WHERE function_name = ?1 AND name = ?2",
            [function, name],
            trigger_row,
        )
        .optional()?;
    Ok(to_stored(row.into_iter().collect())?.pop())
}

/// Deletes a trigger, returning its matcher id.
pub(crate) fn delete_trigger(
    c: &Connection,
    function: &str,
    name: &str,
) -> Result<Option<u64>, StoreError> {
    let id: Option<i64> = c
        .query_row(
            "DELETE FROM triggers WHERE function_name = ?1 AND name = ?2 RETURNING id",
            [function, name],
            |r| r.get(0),
        )
        .optional()?;
    Ok(id.map(|i| i as u64))
}

pub(crate) fn count_triggers(c: &Connection, function: &str) -> Result<usize, StoreError> {
    let n: i64 = c.query_row(
        "SELECT count(*) FROM triggers WHERE function_name = ?1",
        [function],
        |r| r.get(0),
    )?;
    Ok(n as usize)
}

pub(crate) fn list_triggers(
    c: &Connection,
    function: &str,
    prefix: &str,
    start_after: &str,
    limit: usize,
) -> Result<Vec<StoredTrigger>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT id, config FROM triggers WHERE function_name = ?1 AND name > ?2
         AND substr(name, 1, length(?3)) = ?3 ORDER BY name LIMIT ?4",
    )?;
    let rows = st
        .query_map(
            params![function, start_after, prefix, limit as i64],
            trigger_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    to_stored(rows)
}

/// Every trigger, for building the matcher index at start-up.
pub(crate) fn all_triggers(c: &Connection) -> Result<Vec<StoredTrigger>, StoreError> {
    let mut st = c.prepare("SELECT id, config FROM triggers ORDER BY id")?;
    let rows = st
        .query_map([], trigger_row)?
        .collect::<Result<Vec<_>, _>>()?;
    to_stored(rows)
}

pub(crate) fn put_async_config(
    c: &Connection,
    function: &str,
    qualifier: &str,
    config: &AsyncConfig,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO async_configs(function_name, qualifier, config) VALUES (?1, ?2, ?3)
         ON CONFLICT(function_name, qualifier) DO UPDATE SET config = excluded.config",
        params![function, qualifier, serde_json::to_string(config)?],
    )?;
    Ok(())
}

pub(crate) fn get_async_config(
    c: &Connection,
    function: &str,
    qualifier: &str,
) -> Result<Option<AsyncConfig>, StoreError> {
    let s: Option<String> = c
        .query_row(
            "SELECT config FROM async_configs WHERE function_name = ?1 AND qualifier = ?2",
            [function, qualifier],
            |r| r.get(0),
        )
        .optional()?;
    Ok(match s {
        Some(s) => Some(serde_json::from_str(&s)?),
        None => None,
    })
}

pub(crate) fn delete_async_config(
    c: &Connection,
    function: &str,
    qualifier: &str,
) -> Result<bool, StoreError> {
    Ok(c.execute(
        "DELETE FROM async_configs WHERE function_name = ?1 AND qualifier = ?2",
        [function, qualifier],
    )? == 1)
}

/// Every async config as (function, qualifier, config), for the dispatcher's cache.
pub(crate) fn all_async_configs(
    c: &Connection,
) -> Result<Vec<(String, String, AsyncConfig)>, StoreError> {
    let mut st =
        c.prepare("SELECT function_name, qualifier, config FROM async_configs ORDER BY 1, 2")?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(f, q, s)| Ok((f, q, serde_json::from_str(&s)?)))
        .collect()
}

/// A published version: an immutable snapshot of the function's code and configuration.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    pub version_id: u64,
    pub description: String,
    pub created_time: String,
    pub config: FunctionConfig,
}

/// An alias: a name pointing at a version, optionally splitting traffic with others.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alias {
    pub alias_name: String,
    pub version_id: u64,
    /// Version id → fraction (0–1) of invocations routed to it instead of `version_id`.
    #[serde(default)]
    pub additional_version_weight: std::collections::BTreeMap<u64, f64>,
    #[serde(default)]
    pub description: String,
    pub created_time: String,
    pub last_modified_time: String,
}

/// Publishes the next version id of `function` (ids are never reused, even after deletes).
pub(crate) fn publish_version(
    c: &Connection,
    function: &str,
    description: &str,
    created: &str,
    config: &FunctionConfig,
) -> Result<Version, StoreError> {
    let last: i64 = c.query_row(
        "INSERT INTO version_counters(function_name, last) VALUES (?1, 1)
         ON CONFLICT(function_name) DO UPDATE SET last = last + 1 RETURNING last",
        [function],
        |r| r.get(0),
    )?;
    let v = Version {
        version_id: last as u64,
        description: description.to_string(),
        created_time: created.to_string(),
        config: config.clone(),
    };
    c.execute(
        "INSERT INTO versions(function_name, version_id, config) VALUES (?1, ?2, ?3)",
        params![function, last, serde_json::to_string(&v)?],
    )?;
    Ok(v)
}

pub(crate) fn list_versions(c: &Connection, function: &str) -> Result<Vec<Version>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT config FROM versions WHERE function_name = ?1 ORDER BY version_id",
    )?;
    let rows = st
        .query_map([function], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|s| Ok(serde_json::from_str(&s)?))
        .collect()
}

/// Every version of every function, for the dispatcher's cache.
pub(crate) fn all_versions(c: &Connection) -> Result<Vec<Version>, StoreError> {
    let mut st = c.prepare("SELECT config FROM versions ORDER BY function_name, version_id")?;
    let rows = st
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|s| Ok(serde_json::from_str(&s)?))
        .collect()
}

pub(crate) fn delete_version(
    c: &Connection,
    function: &str,
    version: u64,
) -> Result<bool, StoreError> {
    Ok(c.execute(
        "DELETE FROM versions WHERE function_name = ?1 AND version_id = ?2",
        params![function, version as i64],
    )? == 1)
}

pub(crate) fn put_alias(
    c: &Connection,
    function: &str,
    a: &Alias,
    create: bool,
) -> Result<(), StoreError> {
    let sql = if create {
        "INSERT INTO aliases(function_name, name, config) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING"
    } else {
        "UPDATE aliases SET config = ?3 WHERE function_name = ?1 AND name = ?2"
    };
    let n = c.execute(
        sql,
        params![function, a.alias_name, serde_json::to_string(a)?],
    )?;
    if n == 0 {
        return Err(StoreError::Conflict(if create {
            format!(
                "alias '{}' of function '{function}' already exists",
                a.alias_name
            )
        } else {
            format!(
                "alias '{}' of function '{function}' does not exist",
                a.alias_name
            )
        }));
    }
    Ok(())
}

pub(crate) fn get_alias(
    c: &Connection,
    function: &str,
    name: &str,
) -> Result<Option<Alias>, StoreError> {
    let s: Option<String> = c
        .query_row(
            "SELECT config FROM aliases WHERE function_name = ?1 AND name = ?2",
            [function, name],
            |r| r.get(0),
        )
        .optional()?;
    Ok(match s {
        Some(s) => Some(serde_json::from_str(&s)?),
        None => None,
    })
}

pub(crate) fn delete_alias(c: &Connection, function: &str, name: &str) -> Result<bool, StoreError> {
    Ok(c.execute(
        "DELETE FROM aliases WHERE function_name = ?1 AND name = ?2",
        [function, name],
    )? == 1)
}

/// Every alias as (function, alias).
pub(crate) fn all_aliases(c: &Connection) -> Result<Vec<(String, Alias)>, StoreError> {
    let mut st =
        c.prepare("SELECT function_name, config FROM aliases ORDER BY function_name, name")?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(f, s)| Ok((f, serde_json::from_str(&s)?)))
        .collect()
}

/// Removes versions, aliases and the version counter of a deleted function.
pub(crate) fn delete_function_history(c: &Connection, function: &str) -> Result<(), StoreError> {
    c.execute("DELETE FROM versions WHERE function_name = ?1", [function])?;
    c.execute("DELETE FROM aliases WHERE function_name = ?1", [function])?;
    c.execute(
        "DELETE FROM version_counters WHERE function_name = ?1",
        [function],
    )?;
    Ok(())
}
