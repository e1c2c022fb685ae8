//! Opens the SQLite database, creates the schema, and hands out the `Store` handle: `write`
//! (group-committed, durable when it returns) and `read` (a pooled reader connection).

use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::{Connection, OpenFlags};

use crate::writer::{self, Job};
use crate::{StoreError, Tx};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS functions(
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS triggers(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    function_name TEXT NOT NULL,
    name TEXT NOT NULL,
    config TEXT NOT NULL,
    UNIQUE(function_name, name)
);
CREATE TABLE IF NOT EXISTS versions(
    function_name TEXT NOT NULL,
    version_id INTEGER NOT NULL,
    config TEXT NOT NULL,
    PRIMARY KEY(function_name, version_id)
);
CREATE TABLE IF NOT EXISTS version_counters(
    function_name TEXT PRIMARY KEY,
    last INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS aliases(
    function_name TEXT NOT NULL,
    name TEXT NOT NULL,
    config TEXT NOT NULL,
    PRIMARY KEY(function_name, name)
);
CREATE TABLE IF NOT EXISTS test_events(
    function_name TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY(function_name, name)
);
CREATE TABLE IF NOT EXISTS logs(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    function_name TEXT NOT NULL,
    request_id TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_by_function ON logs(function_name, id);
CREATE INDEX IF NOT EXISTS logs_by_request ON logs(request_id);
CREATE TABLE IF NOT EXISTS async_configs(
    function_name TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    config TEXT NOT NULL,
    PRIMARY KEY(function_name, qualifier)
);
CREATE TABLE IF NOT EXISTS events(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    source TEXT NOT NULL,
    name TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL UNIQUE,
    function_name TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    trigger_name TEXT,
    event_seq INTEGER,
    payload BLOB,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    next_ms INTEGER NOT NULL,
    ended_ms INTEGER,
    last_error TEXT,
    return_payload BLOB,
    log TEXT,
    hops INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tasks_due ON tasks(function_name, next_ms, id)
    WHERE status IN ('Enqueued','Retrying');
CREATE INDEX IF NOT EXISTS tasks_by_function ON tasks(function_name, id);
CREATE INDEX IF NOT EXISTS tasks_by_event ON tasks(event_seq) WHERE event_seq IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_finished ON tasks(ended_ms) WHERE ended_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS attempts(
    task INTEGER NOT NULL,
    n INTEGER NOT NULL,
    started_ms INTEGER NOT NULL,
    ended_ms INTEGER NOT NULL,
    status TEXT NOT NULL,
    error_type TEXT,
    error_message TEXT,
    instance_id TEXT,
    PRIMARY KEY(task, n)
);
CREATE TABLE IF NOT EXISTS dlq(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    function_name TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    trigger_name TEXT,
    event_seq INTEGER,
    payload BLOB,
    attempts INTEGER NOT NULL,
    reason TEXT NOT NULL,
    last_error TEXT,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dlq_by_event ON dlq(event_seq) WHERE event_seq IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_by_time ON events(received_ms);
CREATE INDEX IF NOT EXISTS logs_by_time ON logs(time_ms);
CREATE TABLE IF NOT EXISTS access_keys(
    id TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS roles(
    name TEXT PRIMARY KEY COLLATE NOCASE,
    description TEXT NOT NULL,
    policy TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
"#;

/// The schema version this build writes (`PRAGMA user_version`). Databases of an older version
/// are migrated at open by `MIGRATIONS`; a newer one is refused.
pub const SCHEMA_VERSION: i64 = 7;

/// `MIGRATIONS[n]` brings a database from version `n` to `n + 1`. Version 0 is the first
/// release's layout (no version stamped).
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: a task's payload may live in the event log (NULL here), destination hops are
    // counted, and the open-task index is keyed for per-function paging by due time.
    r#"
    DROP INDEX IF EXISTS tasks_open;
    DROP INDEX IF EXISTS tasks_by_function;
    ALTER TABLE tasks RENAME TO tasks_v0;
    CREATE TABLE tasks(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        task_id TEXT NOT NULL UNIQUE,
        function_name TEXT NOT NULL,
        qualifier TEXT NOT NULL,
        trigger_name TEXT,
        event_seq INTEGER,
        payload BLOB,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_ms INTEGER NOT NULL,
        next_ms INTEGER NOT NULL,
        ended_ms INTEGER,
        last_error TEXT,
        return_payload BLOB,
        log TEXT,
        hops INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO tasks(id, task_id, function_name, qualifier, trigger_name, event_seq, payload,
                      status, attempts, created_ms, next_ms, ended_ms, last_error, return_payload, log)
        SELECT id, task_id, function_name, qualifier, trigger_name, event_seq, payload,
               CASE status WHEN 'Running' THEN 'Enqueued' ELSE status END,
               attempts, created_ms, next_ms, ended_ms, last_error, return_payload, log
        FROM tasks_v0;
    DROP TABLE tasks_v0;
    ALTER TABLE dlq RENAME TO dlq_v0;
    CREATE TABLE dlq(
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        task_id TEXT NOT NULL,
        function_name TEXT NOT NULL,
        qualifier TEXT NOT NULL,
        trigger_name TEXT,
        event_seq INTEGER,
        payload BLOB,
        attempts INTEGER NOT NULL,
        reason TEXT NOT NULL,
        last_error TEXT,
        created_ms INTEGER NOT NULL
    );
    INSERT INTO dlq SELECT * FROM dlq_v0;
    DROP TABLE dlq_v0;
    "#,
    // 1 -> 2: object-store metadata (buckets, objects, multipart uploads and parts).
    crate::objects::SCHEMA,
    // 2 -> 3: identity (access keys without their secrets, and roles with their policies;
    // role names are case-insensitive, as in RAM, whose ARNs spell them in lower case).
    r#"
    CREATE TABLE IF NOT EXISTS access_keys(
        id TEXT PRIMARY KEY,
        description TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS roles(
        name TEXT PRIMARY KEY COLLATE NOCASE,
        description TEXT NOT NULL,
        policy TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    "#,
    // 3 -> 4: the CDN's domains, refresh/push/block tasks and blocked URLs.
    crate::cdn::SCHEMA,
    // 4 -> 5: custom event buses.
    crate::buses::SCHEMA,
    // 5 -> 6: small objects' bytes inline (existing objects keep their files).
    crate::objects::DATA_SCHEMA,
    // 6 -> 7: event archives and replays.
    crate::archives::SCHEMA,
];

/// Brings the schema to `SCHEMA_VERSION`: a new database gets the current layout, an older one
/// its migrations, each in one transaction with the version stamp.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "the database schema is version {version}, newer than this fnbridge understands ({SCHEMA_VERSION}); run a newer fnbridge on this data dir"
        )));
    }
    let existing: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'tasks'",
        [],
        |r| r.get(0),
    )?;
    if existing == 0 {
        conn.execute_batch(&format!(
            "BEGIN; {SCHEMA} {} {} {} {} {} {} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;",
            crate::objects::SCHEMA,
            crate::objects::DATA_SCHEMA,
            crate::cdn::SCHEMA,
            crate::buses::SCHEMA,
            crate::blocks::SCHEMA,
            crate::archives::SCHEMA
        ))?;
        return Ok(());
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let to = from + 1;
        tracing::info!(from, to, "store: migrating the database schema");
        conn.execute_batch(&format!("BEGIN; {sql} PRAGMA user_version = {to}; COMMIT;"))
            .inspect_err(|_| {
                let _ = conn.execute_batch("ROLLBACK");
            })?;
    }
    // Indexes and tables added without a version bump (all IF NOT EXISTS).
    conn.execute_batch(SCHEMA)?;
    conn.execute_batch(crate::blocks::SCHEMA)?;
    Ok(())
}

const READERS: usize = 4;

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    readers: Mutex<Vec<Connection>>,
    path: std::path::PathBuf,
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    // WAL + synchronous=FULL: a commit is on disk (fsynced) when it returns, and readers never
    // wait for the writer.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the database file at `path` and starts the writer thread.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        configure(&conn)?;
        migrate(&conn)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            r.busy_timeout(std::time::Duration::from_secs(5))?;
            readers.push(r);
        }
        let checkpoints = crate::checkpoint::start(&conn, path)?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("fnbridge-store-writer".into())
            .spawn(move || writer::run(conn, rx, checkpoints))
            .map_err(|e| StoreError::Corrupt(format!("cannot start writer thread: {e}")))?;
        Ok(Store {
            inner: Arc::new(Inner {
                tx: Mutex::new(Some(tx)),
                readers: Mutex::new(readers),
                path: path.to_path_buf(),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn submit(&self, job: Job) -> Result<(), StoreError> {
        let guard = self.inner.tx.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(tx) => tx.send(job).map_err(|_| StoreError::Closed),
            None => Err(StoreError::Closed),
        }
    }

    /// Runs `f` in the next group-committed transaction; resolves once the commit is durable.
    /// An `Err` from `f` rolls back only `f`'s own changes.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Tx) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_sql(move |c| f(c)).await
    }

    /// `write` on the connection itself, for this crate's own tests and maintenance.
    pub(crate) async fn write_sql<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.submit(writer::job(f, move |r| {
            let _ = reply.send(r);
        }))?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues `f` for the next transaction without waiting: for bookkeeping whose loss in a
    /// crash is harmless (the work it records is redone), never for acknowledgements.
    pub fn write_detached<F>(&self, f: F)
    where
        F: FnOnce(&dyn Tx) -> Result<(), StoreError> + Send + 'static,
    {
        let r = self.submit(writer::job(
            move |c: &Connection| f(c),
            |r| {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "store: background write failed");
                }
            },
        ));
        if let Err(e) = r {
            tracing::warn!(error = %e, "store: background write dropped");
        }
    }

    /// Runs `f` on a reader connection on a blocking thread.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Tx) -> Result<T, StoreError> + Send + 'static,
    {
        self.read_sql(move |c| f(c)).await
    }

    /// `read` on the connection itself, for this crate's own tests.
    pub(crate) async fn read_sql<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.with_reader(f))
            .await
            .map_err(|e| StoreError::Corrupt(format!("reader task failed: {e}")))?
    }

    /// Blocking read, for start-up and tests.
    pub fn read_blocking<T>(
        &self,
        f: impl FnOnce(&dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.inner.with_reader(|c| f(c))
    }

    /// Stops accepting writes; queued writes still commit.
    pub fn close(&self) {
        self.inner
            .tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
}

impl Inner {
    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
                c.busy_timeout(std::time::Duration::from_secs(5))?;
                c
            }
        };
        let r = f(&conn);
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < READERS {
            pool.push(conn);
        }
        r
    }
}
