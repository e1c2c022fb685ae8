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
    payload BLOB NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    next_ms INTEGER NOT NULL,
    ended_ms INTEGER,
    last_error TEXT,
    return_payload BLOB,
    log TEXT
);
CREATE INDEX IF NOT EXISTS tasks_open ON tasks(status) WHERE status IN ('Enqueued','Retrying','Running');
CREATE INDEX IF NOT EXISTS tasks_by_function ON tasks(function_name, id);
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
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL,
    reason TEXT NOT NULL,
    last_error TEXT,
    created_ms INTEGER NOT NULL
);
