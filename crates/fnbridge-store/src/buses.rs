//! Event buses: the custom buses users create (the `default` bus always exists and is not
//! stored). A bus is its name and description.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::StoreError;

pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS event_buses(
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
"#;

/// A custom event bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventBus {
    pub name: String,
    pub description: String,
    pub created_ms: i64,
}

/// Inserts a new bus; `Conflict` if the name is taken.
pub(crate) fn insert_bus(c: &Connection, b: &EventBus) -> Result<(), StoreError> {
    let n = c.execute(
        "INSERT INTO event_buses(name, description, created_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(name) DO NOTHING",
        params![b.name, b.description, b.created_ms],
    )?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "event bus '{}' already exists",
            b.name
        )));
    }
    Ok(())
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventBus> {
    Ok(EventBus {
        name: r.get(0)?,
        description: r.get(1)?,
        created_ms: r.get(2)?,
    })
}

pub(crate) fn get_bus(c: &Connection, name: &str) -> Result<Option<EventBus>, StoreError> {
    Ok(
        c.prepare_cached("SELECT name, description, created_ms FROM event_buses WHERE name = ?1")?
            .query_row([name], row)
            .optional()?,
    )
}

pub(crate) fn list_buses(c: &Connection) -> Result<Vec<EventBus>, StoreError> {
    let mut st =
        c.prepare_cached("SELECT name, description, created_ms FROM event_buses ORDER BY name")?;
    let rows = st.query_map([], row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn delete_bus(c: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(c.execute("DELETE FROM event_buses WHERE name = ?1", [name])? == 1)
}
