//! Identity records: access keys and RAM-style roles. Only what is needed to recognise them is
//! stored: an access key's secret is never written here (fnbridge-auth derives it from the key
//! id with a key kept outside the database), and a role is its name and policy document.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::StoreError;

/// An access key of the account. The secret is not part of the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessKey {
    pub access_key_id: String,
    pub description: String,
    pub created_ms: i64,
}

/// A role functions assume; its name is unique and looked up regardless of case (RAM's role
/// ARNs spell it in lower case); `policy` is the RAM policy document as JSON text, validated by
/// fnbridge-auth before it is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    pub name: String,
    pub description: String,
    pub policy: String,
    pub created_ms: i64,
}

/// Inserts a new access key; `Conflict` if the id is taken.
pub(crate) fn insert_access_key(c: &Connection, k: &AccessKey) -> Result<(), StoreError> {
    let n = c.execute(
        "INSERT INTO access_keys(id, description, created_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(id) DO NOTHING",
        params![k.access_key_id, k.description, k.created_ms],
    )?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "access key '{}' already exists",
            k.access_key_id
        )));
    }
    Ok(())
}

pub(crate) fn get_access_key(c: &Connection, id: &str) -> Result<Option<AccessKey>, StoreError> {
    Ok(
        c.prepare_cached("SELECT id, description, created_ms FROM access_keys WHERE id = ?1")?
            .query_row([id], |r| {
                Ok(AccessKey {
                    access_key_id: r.get(0)?,
                    description: r.get(1)?,
                    created_ms: r.get(2)?,
                })
            })
            .optional()?,
    )
}

pub(crate) fn list_access_keys(c: &Connection) -> Result<Vec<AccessKey>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT id, description, created_ms FROM access_keys ORDER BY created_ms, id",
    )?;
    let rows = st
        .query_map([], |r| {
            Ok(AccessKey {
                access_key_id: r.get(0)?,
                description: r.get(1)?,
                created_ms: r.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn count_access_keys(c: &Connection) -> Result<usize, StoreError> {
    let n: i64 = c.query_row("SELECT count(*) FROM access_keys", [], |r| r.get(0))?;
    Ok(n as usize)
}

pub(crate) fn delete_access_key(c: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(c.execute("DELETE FROM access_keys WHERE id = ?1", [id])? == 1)
}

/// Inserts a new role; `Conflict` if the name is taken.
pub(crate) fn insert_role(c: &Connection, r: &Role) -> Result<(), StoreError> {
    let n = c.execute(
        "INSERT INTO roles(name, description, policy, created_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(name) DO NOTHING",
        params![r.name, r.description, r.policy, r.created_ms],
    )?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "role '{}' already exists",
            r.name
        )));
    }
    Ok(())
}

fn role_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Role> {
    Ok(Role {
        name: r.get(0)?,
        description: r.get(1)?,
        policy: r.get(2)?,
        created_ms: r.get(3)?,
    })
}

pub(crate) fn get_role(c: &Connection, name: &str) -> Result<Option<Role>, StoreError> {
    Ok(
        c.prepare_cached(
            "SELECT name, description, policy, created_ms FROM roles WHERE name = ?1",
        )?
        .query_row([name], role_row)
        .optional()?,
    )
}

pub(crate) fn list_roles(c: &Connection) -> Result<Vec<Role>, StoreError> {
    let mut st =
        c.prepare_cached("SELECT name, description, policy, created_ms FROM roles ORDER BY name")?;
    let rows = st.query_map([], role_row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn count_roles(c: &Connection) -> Result<usize, StoreError> {
    let n: i64 = c.query_row("SELECT count(*) FROM roles", [], |r| r.get(0))?;
    Ok(n as usize)
}

pub(crate) fn delete_role(c: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(c.execute("DELETE FROM roles WHERE name = ?1", [name])? == 1)
}
