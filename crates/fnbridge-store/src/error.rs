//! The store's error type. SQLite errors that are the disk's fault (full, or failing I/O) get
//! their own variants, so callers can answer them as server-side trouble with a message that
//! names the database, instead of as a generic or "corrupt record" error.

use rusqlite::ErrorCode;

/// What a disk error names until the writer knows the database file.
const THE_DATABASE: &str = "the database";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    /// `SQLITE_FULL`: the file system holding the database has no space left.
    #[error("no space left on the disk holding {path}: {detail}")]
    DiskFull { path: String, detail: String },
    /// `SQLITE_IOERR*`: the operating system failed a read, write or sync of the database.
    #[error("cannot read or write {path} (I/O error): {detail}")]
    Io { path: String, detail: String },
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the store is not accepting writes (shut down, or its writer thread stopped)")]
    Closed,
    /// The writer could not run or commit this write (it panicked, or the commit failed for a
    /// reason other than the disk).
    #[error("store writer: {0}")]
    Writer(String),
}

impl StoreError {
    /// Classifies a SQLite error by reference (a batch's commit error is reported to every job
    /// of the batch). `path` is the database file.
    pub(crate) fn from_sqlite_ref(e: &rusqlite::Error, path: &str, context: &str) -> StoreError {
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StoreError::DiskFull {
                path: path.into(),
                detail: format!("{context}: {e}"),
            },
            Some(ErrorCode::SystemIoFailure) => StoreError::Io {
                path: path.into(),
                detail: format!("{context}: {e}"),
            },
            _ => StoreError::Writer(format!("{context}: {e}")),
        }
    }

    /// Names the database file in a disk error that was raised without it.
    pub(crate) fn at(self, db: &str) -> StoreError {
        match self {
            StoreError::DiskFull { path, detail } if path == THE_DATABASE => StoreError::DiskFull {
                path: db.into(),
                detail,
            },
            StoreError::Io { path, detail } if path == THE_DATABASE => StoreError::Io {
                path: db.into(),
                detail,
            },
            other => other,
        }
    }

    /// Whether the disk, not the request or the data, is at fault.
    pub fn is_disk(&self) -> bool {
        matches!(self, StoreError::DiskFull { .. } | StoreError::Io { .. })
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StoreError::DiskFull {
                path: THE_DATABASE.into(),
                detail: e.to_string(),
            },
            Some(ErrorCode::SystemIoFailure) => StoreError::Io {
                path: THE_DATABASE.into(),
                detail: e.to_string(),
            },
            _ => StoreError::Sqlite(e),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(code: std::ffi::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn disk_errors_are_told_apart_from_other_sqlite_errors() {
        let full = StoreError::from(sqlite(rusqlite::ffi::SQLITE_FULL));
        assert!(full.is_disk());
        assert!(
            full.at("/d/fnbridge.db")
                .to_string()
                .starts_with("no space left on the disk holding /d/fnbridge.db")
        );
        let io = StoreError::from(sqlite(rusqlite::ffi::SQLITE_IOERR_WRITE));
        assert!(matches!(io, StoreError::Io { .. }));
        let busy = StoreError::from(sqlite(rusqlite::ffi::SQLITE_BUSY));
        assert!(matches!(busy, StoreError::Sqlite(_)) && !busy.is_disk());
        let commit =
            StoreError::from_sqlite_ref(&sqlite(rusqlite::ffi::SQLITE_FULL), "/d/x.db", "commit");
        assert!(commit.to_string().contains("/d/x.db: commit"));
    }
}
