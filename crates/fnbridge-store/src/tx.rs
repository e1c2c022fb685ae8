//! `Tx`: every operation on the store, as one trait over a transaction (writes) or a
//! consistent view (reads). Callers outside this crate see only `Tx` and the record types, never
//! SQLite: a second backend implements `Tx` and runs the same test suite
//! (`tests/store.rs`). `Store::write` and `Store::read` hand a `&dyn Tx` to their closure.

use fnbridge_event::{AsyncConfig, FunctionConfig, TriggerConfig};
use rusqlite::Connection;

use crate::StoreError;
use crate::archives::{Archive, ArchivedEvent, Replay};
use crate::blocks::TriggerBlock;
use crate::buses::EventBus;
use crate::cdn::{CdnDomain, CdnTask, CdnTaskFilter};
use crate::identity::{AccessKey, Role};
use crate::logs::LogRecord;
use crate::objects::{Bucket, ObjectRecord, Part, Upload};
use crate::registry::{Alias, StoredTrigger, Version};
use crate::retention::{Pruned, Retention};
use crate::tasks::{Attempt, AttemptOutcome, DlqEntry, NewTask, Task, TaskStatus};

/// The store's operations. Inside `Store::write` they run in one transaction: every change a
/// closure makes commits together or not at all.
pub trait Tx {
    fn get_function(&self, name: &str) -> Result<Option<FunctionConfig>, StoreError>;
    /// Inserts a new function; `Conflict` if the name is taken.
    fn insert_function(&self, f: &FunctionConfig) -> Result<(), StoreError>;
    fn update_function(&self, f: &FunctionConfig) -> Result<bool, StoreError>;
    fn delete_function(&self, name: &str) -> Result<bool, StoreError>;
    /// Functions sorted by name, after `start_after`, with an optional name prefix.
    fn list_functions(
        &self,
        prefix: &str,
        start_after: &str,
        limit: usize,
    ) -> Result<Vec<FunctionConfig>, StoreError>;
    fn insert_trigger(&self, t: &TriggerConfig) -> Result<u64, StoreError>;
    fn update_trigger(&self, t: &TriggerConfig) -> Result<Option<u64>, StoreError>;
    fn get_trigger(&self, function: &str, name: &str) -> Result<Option<StoredTrigger>, StoreError>;
    /// Deletes a trigger, returning its matcher id.
    fn delete_trigger(&self, function: &str, name: &str) -> Result<Option<u64>, StoreError>;
    fn count_triggers(&self, function: &str) -> Result<usize, StoreError>;
    fn list_triggers(
        &self,
        function: &str,
        prefix: &str,
        start_after: &str,
        limit: usize,
    ) -> Result<Vec<StoredTrigger>, StoreError>;
    /// Every trigger, for building the matcher index at start-up.
    fn all_triggers(&self) -> Result<Vec<StoredTrigger>, StoreError>;
    fn put_async_config(
        &self,
        function: &str,
        qualifier: &str,
        config: &AsyncConfig,
    ) -> Result<(), StoreError>;
    fn get_async_config(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<Option<AsyncConfig>, StoreError>;
    fn delete_async_config(&self, function: &str, qualifier: &str) -> Result<bool, StoreError>;
    /// Every async config as (function, qualifier, config), for the dispatcher's cache.
    fn all_async_configs(&self) -> Result<Vec<(String, String, AsyncConfig)>, StoreError>;
    /// Publishes the next version id of `function` (ids are never reused, even after deletes).
    fn publish_version(
        &self,
        function: &str,
        description: &str,
        created: &str,
        config: &FunctionConfig,
    ) -> Result<Version, StoreError>;
    fn list_versions(&self, function: &str) -> Result<Vec<Version>, StoreError>;
    /// Every version of every function, for the dispatcher's cache.
    fn all_versions(&self) -> Result<Vec<Version>, StoreError>;
    fn delete_version(&self, function: &str, version: u64) -> Result<bool, StoreError>;
    fn put_alias(&self, function: &str, a: &Alias, create: bool) -> Result<(), StoreError>;
    fn get_alias(&self, function: &str, name: &str) -> Result<Option<Alias>, StoreError>;
    fn delete_alias(&self, function: &str, name: &str) -> Result<bool, StoreError>;
    /// Every alias as (function, alias).
    fn all_aliases(&self) -> Result<Vec<(String, Alias)>, StoreError>;
    /// Removes versions, aliases and the version counter of a deleted function.
    fn delete_function_history(&self, function: &str) -> Result<(), StoreError>;
    /// Appends an event to the log, returning its sequence number.
    fn append_event(
        &self,
        event_id: &str,
        source: &str,
        name: &str,
        received_ms: i64,
        body: &str,
    ) -> Result<i64, StoreError>;
    fn count_events(&self) -> Result<i64, StoreError>;
    /// The stored text of event `seq`, while it is kept.
    fn event_body(&self, seq: i64) -> Result<Option<String>, StoreError>;
    /// Creates a task in state `Enqueued`, due now; returns its row id.
    fn insert_task(&self, t: &NewTask) -> Result<i64, StoreError>;
    /// Number of open tasks, for the backlog limit.
    fn count_open(&self) -> Result<u64, StoreError>;
    /// Functions that have open tasks (a skip scan over the open-task index: one probe per
    /// function, not one row per task).
    fn functions_with_open_tasks(&self) -> Result<Vec<String>, StoreError>;
    /// Open tasks of one function in the order they are due, after the cursor `(next_ms, id)`.
    /// The scheduler refills its in-memory window from here.
    fn due_tasks(
        &self,
        function: &str,
        after: Option<(i64, i64)>,
        limit: usize,
    ) -> Result<Vec<Task>, StoreError>;
    /// Every open task (tests and tools; the scheduler pages with `due_tasks`).
    fn open_tasks(&self) -> Result<Vec<Task>, StoreError>;
    fn get_task(&self, task_id: &str) -> Result<Option<(Task, Vec<Attempt>)>, StoreError>;
    /// Tasks, newest first, optionally of one function and/or one status, with ids below `before`.
    fn list_tasks(
        &self,
        function: Option<&str>,
        status: Option<TaskStatus>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Task>, StoreError>;
    /// Records an attempt and moves the task to its new state in one step.
    fn record_attempt(&self, task: i64, o: &AttemptOutcome) -> Result<(), StoreError>;
    /// Marks a task finished without a new attempt (expired before it could run again, or stopped).
    fn finish_task(
        &self,
        task: i64,
        status: TaskStatus,
        ended_ms: i64,
        last_error: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Puts a task into the dead-letter queue. A task whose payload is its event's keeps only the
    /// reference (the event is kept while a DLQ entry names it).
    fn dead_letter(
        &self,
        t: &Task,
        attempts: u32,
        reason: &str,
        last_error: Option<&str>,
        now_ms: i64,
    ) -> Result<i64, StoreError>;
    fn list_dlq(
        &self,
        function: Option<&str>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<DlqEntry>, StoreError>;
    fn get_dlq(&self, id: i64) -> Result<Option<DlqEntry>, StoreError>;
    fn delete_dlq(&self, id: i64) -> Result<bool, StoreError>;
    fn append_log(
        &self,
        function: &str,
        request_id: &str,
        qualifier: &str,
        time_ms: i64,
        text: &str,
    ) -> Result<(), StoreError>;
    /// Log records of a function after `after` (oldest first), optionally of one request.
    fn read_logs(
        &self,
        function: &str,
        request_id: Option<&str>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<LogRecord>, StoreError>;
    /// The id of the newest log record of a function (0 when none), where `--follow` starts.
    fn last_log_id(&self, function: &str) -> Result<i64, StoreError>;
    fn delete_logs(&self, function: &str) -> Result<(), StoreError>;
    fn put_test_event(&self, function: &str, name: &str, body: &str) -> Result<(), StoreError>;
    fn get_test_event(&self, function: &str, name: &str) -> Result<Option<String>, StoreError>;
    fn list_test_events(&self, function: &str) -> Result<Vec<(String, String)>, StoreError>;
    fn delete_test_event(&self, function: &str, name: &str) -> Result<bool, StoreError>;
    /// Deletes up to `batch` rows of each kind that `r` no longer keeps at time `now_ms`.
    fn prune(&self, r: &Retention, now_ms: i64, batch: usize) -> Result<Pruned, StoreError>;
    /// The schema version of the stored data.
    /// Inserts a new access key; `Conflict` if the id is taken.
    fn insert_access_key(&self, k: &AccessKey) -> Result<(), StoreError>;
    fn get_access_key(&self, id: &str) -> Result<Option<AccessKey>, StoreError>;
    /// Every access key, oldest first.
    fn list_access_keys(&self) -> Result<Vec<AccessKey>, StoreError>;
    fn count_access_keys(&self) -> Result<usize, StoreError>;
    fn delete_access_key(&self, id: &str) -> Result<bool, StoreError>;
    /// Inserts a new role; `Conflict` if the name is taken.
    fn insert_role(&self, r: &Role) -> Result<(), StoreError>;
    fn get_role(&self, name: &str) -> Result<Option<Role>, StoreError>;
    /// Every role, by name.
    fn list_roles(&self) -> Result<Vec<Role>, StoreError>;
    fn count_roles(&self) -> Result<usize, StoreError>;
    fn delete_role(&self, name: &str) -> Result<bool, StoreError>;
    fn schema_version(&self) -> Result<i64, StoreError>;
    // ---- CDN (`cdn`) ----
    /// Adds a domain; false if the name is taken.
    fn insert_cdn_domain(&self, d: &CdnDomain) -> Result<bool, StoreError>;
    fn get_cdn_domain(&self, name: &str) -> Result<Option<CdnDomain>, StoreError>;
    /// Every domain, by name.
    fn list_cdn_domains(&self) -> Result<Vec<CdnDomain>, StoreError>;
    /// False if the domain does not exist.
    fn set_cdn_domain_status(
        &self,
        name: &str,
        status: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Deletes a domain and its blocked URLs; false if it did not exist.
    fn delete_cdn_domain(&self, name: &str) -> Result<bool, StoreError>;
    /// A new task id, never handed out before.
    fn next_cdn_task_id(&self) -> Result<i64, StoreError>;
    fn insert_cdn_task(&self, t: &CdnTask) -> Result<(), StoreError>;
    /// Matching task URLs, newest first, and their total count.
    fn list_cdn_tasks(&self, f: &CdnTaskFilter) -> Result<(Vec<CdnTask>, usize), StoreError>;
    fn count_cdn_tasks_since(
        &self,
        kind: &str,
        object_type: &str,
        since_ms: i64,
    ) -> Result<usize, StoreError>;
    fn set_cdn_block(
        &self,
        url: &str,
        domain: &str,
        blocked: bool,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    fn list_cdn_blocks(&self) -> Result<Vec<String>, StoreError>;
    // ---- event buses (`buses`) ----
    /// Inserts a custom bus; `Conflict` if the name is taken.
    fn insert_bus(&self, b: &EventBus) -> Result<(), StoreError>;
    fn get_bus(&self, name: &str) -> Result<Option<EventBus>, StoreError>;
    /// Every custom bus, by name.
    fn list_buses(&self) -> Result<Vec<EventBus>, StoreError>;
    fn delete_bus(&self, name: &str) -> Result<bool, StoreError>;
    // ---- blocked triggers (`blocks`) ----
    /// Records that a trigger is blocked (or updates the error of its block).
    fn put_block(&self, b: &TriggerBlock) -> Result<(), StoreError>;
    /// Lifts a trigger's block; true if it had one.
    fn delete_block(&self, function: &str, trigger: &str) -> Result<bool, StoreError>;
    /// Every blocked trigger.
    fn all_blocks(&self) -> Result<Vec<TriggerBlock>, StoreError>;
    // ---- archives and replays (`archives`) ----
    /// Inserts an archive; `Conflict` if the name is taken.
    fn insert_archive(&self, a: &Archive) -> Result<(), StoreError>;
    fn get_archive(&self, name: &str) -> Result<Option<Archive>, StoreError>;
    /// Every archive, by name.
    fn list_archives(&self) -> Result<Vec<Archive>, StoreError>;
    /// Deletes an archive with the events it kept.
    fn delete_archive(&self, name: &str) -> Result<bool, StoreError>;
    fn append_archive_event(
        &self,
        archive: &str,
        time_ms: i64,
        archived_ms: i64,
        body: &str,
    ) -> Result<(), StoreError>;
    /// (events, bytes) of `archive` with event time in `[start_ms, end_ms)`.
    fn archive_stats(
        &self,
        archive: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<(u64, u64), StoreError>;
    /// Up to `limit` events of `archive` in `[start_ms, end_ms)` after `(time, id)`, in order.
    fn archive_page(
        &self,
        archive: &str,
        start_ms: i64,
        end_ms: i64,
        after: (i64, i64),
        limit: usize,
    ) -> Result<Vec<ArchivedEvent>, StoreError>;
    /// Inserts a replay; `Conflict` if the name is taken.
    fn insert_replay(&self, r: &Replay) -> Result<(), StoreError>;
    /// Writes a replay's state, counts and cursor.
    fn update_replay(&self, r: &Replay) -> Result<bool, StoreError>;
    fn get_replay(&self, name: &str) -> Result<Option<Replay>, StoreError>;
    /// Every replay, newest first.
    fn list_replays(&self) -> Result<Vec<Replay>, StoreError>;
    // ---- object store metadata (`objects`) ----
    /// Creates a bucket; false if the name is taken.
    fn create_bucket(&self, b: &Bucket) -> Result<bool, StoreError>;
    fn get_bucket(&self, name: &str) -> Result<Option<Bucket>, StoreError>;
    fn list_buckets(&self) -> Result<Vec<Bucket>, StoreError>;
    /// True when the bucket holds no object and no multipart upload.
    fn bucket_is_empty(&self, name: &str) -> Result<bool, StoreError>;
    fn delete_bucket(&self, name: &str) -> Result<bool, StoreError>;
    fn get_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>, StoreError>;
    /// Inserts or replaces an object, returning the one it replaced (its file is then garbage).
    fn put_object(&self, o: &ObjectRecord) -> Result<Option<ObjectRecord>, StoreError>;
    fn delete_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>, StoreError>;
    /// Objects in key order (UTF-8 bytes) starting with `prefix`, with keys after `after`.
    fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<ObjectRecord>, StoreError>;
    /// Every data file an object or part names (the start-up sweep keeps only these).
    fn all_data_ids(&self) -> Result<Vec<String>, StoreError>;
    /// Stores a small object's bytes under an inline data id (`objects::INLINE_PREFIX`), to be
    /// named by the object row written in the same transaction. Replacing or deleting the last
    /// row naming it deletes the bytes.
    fn put_object_data(&self, data_id: &str, bytes: &[u8]) -> Result<(), StoreError>;
    /// The bytes of an inline data id.
    fn get_object_data(&self, data_id: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn create_upload(&self, u: &Upload) -> Result<(), StoreError>;
    fn get_upload(&self, upload_id: &str) -> Result<Option<Upload>, StoreError>;
    /// Removes an upload and its parts, returning the parts.
    fn delete_upload(&self, upload_id: &str) -> Result<Vec<Part>, StoreError>;
    fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        key_marker: &str,
        upload_id_marker: &str,
        limit: usize,
    ) -> Result<Vec<Upload>, StoreError>;
    /// Stores a part, returning the part of the same number it replaced.
    fn put_part(&self, p: &Part) -> Result<Option<Part>, StoreError>;
    fn list_parts(
        &self,
        upload_id: &str,
        after: u32,
        limit: usize,
    ) -> Result<Vec<Part>, StoreError>;
}

/// The SQLite backend: each operation is the function of the same name in this crate.
impl Tx for Connection {
    fn get_function(&self, name: &str) -> Result<Option<FunctionConfig>, StoreError> {
        crate::registry::get_function(self, name)
    }
    fn insert_function(&self, f: &FunctionConfig) -> Result<(), StoreError> {
        crate::registry::insert_function(self, f)
    }
    fn update_function(&self, f: &FunctionConfig) -> Result<bool, StoreError> {
        crate::registry::update_function(self, f)
    }
    fn delete_function(&self, name: &str) -> Result<bool, StoreError> {
        crate::registry::delete_function(self, name)
    }
    fn list_functions(
        &self,
        prefix: &str,
        start_after: &str,
        limit: usize,
    ) -> Result<Vec<FunctionConfig>, StoreError> {
        crate::registry::list_functions(self, prefix, start_after, limit)
    }
    fn insert_trigger(&self, t: &TriggerConfig) -> Result<u64, StoreError> {
        crate::registry::insert_trigger(self, t)
    }
    fn update_trigger(&self, t: &TriggerConfig) -> Result<Option<u64>, StoreError> {
        crate::registry::update_trigger(self, t)
    }
    fn get_trigger(&self, function: &str, name: &str) -> Result<Option<StoredTrigger>, StoreError> {
        crate::registry::get_trigger(self, function, name)
    }
    fn delete_trigger(&self, function: &str, name: &str) -> Result<Option<u64>, StoreError> {
        crate::registry::delete_trigger(self, function, name)
    }
    fn count_triggers(&self, function: &str) -> Result<usize, StoreError> {
        crate::registry::count_triggers(self, function)
    }
    fn list_triggers(
        &self,
        function: &str,
        prefix: &str,
        start_after: &str,
        limit: usize,
    ) -> Result<Vec<StoredTrigger>, StoreError> {
        crate::registry::list_triggers(self, function, prefix, start_after, limit)
    }
    fn all_triggers(&self) -> Result<Vec<StoredTrigger>, StoreError> {
        crate::registry::all_triggers(self)
    }
    fn put_async_config(
        &self,
        function: &str,
        qualifier: &str,
        config: &AsyncConfig,
    ) -> Result<(), StoreError> {
        crate::registry::put_async_config(self, function, qualifier, config)
    }
    fn get_async_config(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<Option<AsyncConfig>, StoreError> {
        crate::registry::get_async_config(self, function, qualifier)
    }
    fn delete_async_config(&self, function: &str, qualifier: &str) -> Result<bool, StoreError> {
        crate::registry::delete_async_config(self, function, qualifier)
    }
    fn all_async_configs(&self) -> Result<Vec<(String, String, AsyncConfig)>, StoreError> {
        crate::registry::all_async_configs(self)
    }
    fn publish_version(
        &self,
        function: &str,
        description: &str,
        created: &str,
        config: &FunctionConfig,
    ) -> Result<Version, StoreError> {
        crate::registry::publish_version(self, function, description, created, config)
    }
    fn list_versions(&self, function: &str) -> Result<Vec<Version>, StoreError> {
        crate::registry::list_versions(self, function)
    }
    fn all_versions(&self) -> Result<Vec<Version>, StoreError> {
        crate::registry::all_versions(self)
    }
    fn delete_version(&self, function: &str, version: u64) -> Result<bool, StoreError> {
        crate::registry::delete_version(self, function, version)
    }
    fn put_alias(&self, function: &str, a: &Alias, create: bool) -> Result<(), StoreError> {
        crate::registry::put_alias(self, function, a, create)
    }
    fn get_alias(&self, function: &str, name: &str) -> Result<Option<Alias>, StoreError> {
        crate::registry::get_alias(self, function, name)
    }
    fn delete_alias(&self, function: &str, name: &str) -> Result<bool, StoreError> {
        crate::registry::delete_alias(self, function, name)
    }
    fn all_aliases(&self) -> Result<Vec<(String, Alias)>, StoreError> {
        crate::registry::all_aliases(self)
    }
    fn delete_function_history(&self, function: &str) -> Result<(), StoreError> {
        crate::registry::delete_function_history(self, function)
    }
    fn append_event(
        &self,
        event_id: &str,
        source: &str,
        name: &str,
        received_ms: i64,
        body: &str,
    ) -> Result<i64, StoreError> {
        crate::tasks::append_event(self, event_id, source, name, received_ms, body)
    }
    fn count_events(&self) -> Result<i64, StoreError> {
        crate::tasks::count_events(self)
    }
    fn event_body(&self, seq: i64) -> Result<Option<String>, StoreError> {
        crate::tasks::event_body(self, seq)
    }
    fn insert_task(&self, t: &NewTask) -> Result<i64, StoreError> {
        crate::tasks::insert_task(self, t)
    }
    fn count_open(&self) -> Result<u64, StoreError> {
        crate::tasks::count_open(self)
    }
    fn functions_with_open_tasks(&self) -> Result<Vec<String>, StoreError> {
        crate::tasks::functions_with_open_tasks(self)
    }
    fn due_tasks(
        &self,
        function: &str,
        after: Option<(i64, i64)>,
        limit: usize,
    ) -> Result<Vec<Task>, StoreError> {
        crate::tasks::due_tasks(self, function, after, limit)
    }
    fn open_tasks(&self) -> Result<Vec<Task>, StoreError> {
        crate::tasks::open_tasks(self)
    }
    fn get_task(&self, task_id: &str) -> Result<Option<(Task, Vec<Attempt>)>, StoreError> {
        crate::tasks::get_task(self, task_id)
    }
    fn list_tasks(
        &self,
        function: Option<&str>,
        status: Option<TaskStatus>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Task>, StoreError> {
        crate::tasks::list_tasks(self, function, status, before, limit)
    }
    fn record_attempt(&self, task: i64, o: &AttemptOutcome) -> Result<(), StoreError> {
        crate::tasks::record_attempt(self, task, o)
    }
    fn finish_task(
        &self,
        task: i64,
        status: TaskStatus,
        ended_ms: i64,
        last_error: Option<&str>,
    ) -> Result<(), StoreError> {
        crate::tasks::finish_task(self, task, status, ended_ms, last_error)
    }
    fn dead_letter(
        &self,
        t: &Task,
        attempts: u32,
        reason: &str,
        last_error: Option<&str>,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        crate::tasks::dead_letter(self, t, attempts, reason, last_error, now_ms)
    }
    fn list_dlq(
        &self,
        function: Option<&str>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<DlqEntry>, StoreError> {
        crate::tasks::list_dlq(self, function, after, limit)
    }
    fn get_dlq(&self, id: i64) -> Result<Option<DlqEntry>, StoreError> {
        crate::tasks::get_dlq(self, id)
    }
    fn delete_dlq(&self, id: i64) -> Result<bool, StoreError> {
        crate::tasks::delete_dlq(self, id)
    }
    fn append_log(
        &self,
        function: &str,
        request_id: &str,
        qualifier: &str,
        time_ms: i64,
        text: &str,
    ) -> Result<(), StoreError> {
        crate::logs::append_log(self, function, request_id, qualifier, time_ms, text)
    }
    fn read_logs(
        &self,
        function: &str,
        request_id: Option<&str>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<LogRecord>, StoreError> {
        crate::logs::read_logs(self, function, request_id, after, limit)
    }
    fn last_log_id(&self, function: &str) -> Result<i64, StoreError> {
        crate::logs::last_log_id(self, function)
    }
    fn delete_logs(&self, function: &str) -> Result<(), StoreError> {
        crate::logs::delete_logs(self, function)
    }
    fn put_test_event(&self, function: &str, name: &str, body: &str) -> Result<(), StoreError> {
        crate::logs::put_test_event(self, function, name, body)
    }
    fn get_test_event(&self, function: &str, name: &str) -> Result<Option<String>, StoreError> {
        crate::logs::get_test_event(self, function, name)
    }
    fn list_test_events(&self, function: &str) -> Result<Vec<(String, String)>, StoreError> {
        crate::logs::list_test_events(self, function)
    }
    fn delete_test_event(&self, function: &str, name: &str) -> Result<bool, StoreError> {
        crate::logs::delete_test_event(self, function, name)
    }
    fn prune(&self, r: &Retention, now_ms: i64, batch: usize) -> Result<Pruned, StoreError> {
        crate::retention::prune(self, r, now_ms, batch)
    }
    fn insert_access_key(&self, k: &AccessKey) -> Result<(), StoreError> {
        crate::identity::insert_access_key(self, k)
    }
    fn get_access_key(&self, id: &str) -> Result<Option<AccessKey>, StoreError> {
        crate::identity::get_access_key(self, id)
    }
    fn list_access_keys(&self) -> Result<Vec<AccessKey>, StoreError> {
        crate::identity::list_access_keys(self)
    }
    fn count_access_keys(&self) -> Result<usize, StoreError> {
        crate::identity::count_access_keys(self)
    }
    fn delete_access_key(&self, id: &str) -> Result<bool, StoreError> {
        crate::identity::delete_access_key(self, id)
    }
    fn insert_role(&self, r: &Role) -> Result<(), StoreError> {
        crate::identity::insert_role(self, r)
    }
    fn get_role(&self, name: &str) -> Result<Option<Role>, StoreError> {
        crate::identity::get_role(self, name)
    }
    fn list_roles(&self) -> Result<Vec<Role>, StoreError> {
        crate::identity::list_roles(self)
    }
    fn count_roles(&self) -> Result<usize, StoreError> {
        crate::identity::count_roles(self)
    }
    fn delete_role(&self, name: &str) -> Result<bool, StoreError> {
        crate::identity::delete_role(self, name)
    }
    fn insert_bus(&self, b: &EventBus) -> Result<(), StoreError> {
        crate::buses::insert_bus(self, b)
    }
    fn get_bus(&self, name: &str) -> Result<Option<EventBus>, StoreError> {
        crate::buses::get_bus(self, name)
    }
    fn list_buses(&self) -> Result<Vec<EventBus>, StoreError> {
        crate::buses::list_buses(self)
    }
    fn delete_bus(&self, name: &str) -> Result<bool, StoreError> {
        crate::buses::delete_bus(self, name)
    }
    fn put_block(&self, b: &TriggerBlock) -> Result<(), StoreError> {
        crate::blocks::put_block(self, b)
    }
    fn delete_block(&self, function: &str, trigger: &str) -> Result<bool, StoreError> {
        crate::blocks::delete_block(self, function, trigger)
    }
    fn all_blocks(&self) -> Result<Vec<TriggerBlock>, StoreError> {
        crate::blocks::all_blocks(self)
    }
    fn insert_archive(&self, a: &Archive) -> Result<(), StoreError> {
        crate::archives::insert_archive(self, a)
    }
    fn get_archive(&self, name: &str) -> Result<Option<Archive>, StoreError> {
        crate::archives::get_archive(self, name)
    }
    fn list_archives(&self) -> Result<Vec<Archive>, StoreError> {
        crate::archives::list_archives(self)
    }
    fn delete_archive(&self, name: &str) -> Result<bool, StoreError> {
        crate::archives::delete_archive(self, name)
    }
    fn append_archive_event(
        &self,
        archive: &str,
        time_ms: i64,
        archived_ms: i64,
        body: &str,
    ) -> Result<(), StoreError> {
        crate::archives::append_archive_event(self, archive, time_ms, archived_ms, body)
    }
    fn archive_stats(
        &self,
        archive: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<(u64, u64), StoreError> {
        crate::archives::archive_stats(self, archive, start_ms, end_ms)
    }
    fn archive_page(
        &self,
        archive: &str,
        start_ms: i64,
        end_ms: i64,
        after: (i64, i64),
        limit: usize,
    ) -> Result<Vec<ArchivedEvent>, StoreError> {
        crate::archives::archive_page(self, archive, start_ms, end_ms, after, limit)
    }
    fn insert_replay(&self, r: &Replay) -> Result<(), StoreError> {
        crate::archives::insert_replay(self, r)
    }
    fn update_replay(&self, r: &Replay) -> Result<bool, StoreError> {
        crate::archives::update_replay(self, r)
    }
    fn get_replay(&self, name: &str) -> Result<Option<Replay>, StoreError> {
        crate::archives::get_replay(self, name)
    }
    fn list_replays(&self) -> Result<Vec<Replay>, StoreError> {
        crate::archives::list_replays(self)
    }
    fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self.pragma_query_value(None, "user_version", |r| r.get(0))?)
    }
    fn insert_cdn_domain(&self, d: &CdnDomain) -> Result<bool, StoreError> {
        crate::cdn::insert_domain(self, d)
    }
    fn get_cdn_domain(&self, name: &str) -> Result<Option<CdnDomain>, StoreError> {
        crate::cdn::get_domain(self, name)
    }
    fn list_cdn_domains(&self) -> Result<Vec<CdnDomain>, StoreError> {
        crate::cdn::list_domains(self)
    }
    fn set_cdn_domain_status(
        &self,
        name: &str,
        status: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        crate::cdn::set_domain_status(self, name, status, now_ms)
    }
    fn delete_cdn_domain(&self, name: &str) -> Result<bool, StoreError> {
        crate::cdn::delete_domain(self, name)
    }
    fn next_cdn_task_id(&self) -> Result<i64, StoreError> {
        crate::cdn::next_task_id(self)
    }
    fn insert_cdn_task(&self, t: &CdnTask) -> Result<(), StoreError> {
        crate::cdn::insert_task(self, t)
    }
    fn list_cdn_tasks(&self, f: &CdnTaskFilter) -> Result<(Vec<CdnTask>, usize), StoreError> {
        crate::cdn::list_tasks(self, f)
    }
    fn count_cdn_tasks_since(
        &self,
        kind: &str,
        object_type: &str,
        since_ms: i64,
    ) -> Result<usize, StoreError> {
        crate::cdn::count_tasks_since(self, kind, object_type, since_ms)
    }
    fn set_cdn_block(
        &self,
        url: &str,
        domain: &str,
        blocked: bool,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        crate::cdn::set_block(self, url, domain, blocked, now_ms)
    }
    fn list_cdn_blocks(&self) -> Result<Vec<String>, StoreError> {
        crate::cdn::list_blocks(self)
    }
    fn create_bucket(&self, b: &Bucket) -> Result<bool, StoreError> {
        crate::objects::create_bucket(self, b)
    }
    fn get_bucket(&self, name: &str) -> Result<Option<Bucket>, StoreError> {
        crate::objects::get_bucket(self, name)
    }
    fn list_buckets(&self) -> Result<Vec<Bucket>, StoreError> {
        crate::objects::list_buckets(self)
    }
    fn bucket_is_empty(&self, name: &str) -> Result<bool, StoreError> {
        crate::objects::bucket_is_empty(self, name)
    }
    fn delete_bucket(&self, name: &str) -> Result<bool, StoreError> {
        crate::objects::delete_bucket(self, name)
    }
    fn get_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>, StoreError> {
        crate::objects::get_object(self, bucket, key)
    }
    fn put_object(&self, o: &ObjectRecord) -> Result<Option<ObjectRecord>, StoreError> {
        crate::objects::put_object(self, o)
    }
    fn delete_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>, StoreError> {
        crate::objects::delete_object(self, bucket, key)
    }
    fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<ObjectRecord>, StoreError> {
        crate::objects::list_objects(self, bucket, prefix, after, limit)
    }
    fn all_data_ids(&self) -> Result<Vec<String>, StoreError> {
        crate::objects::all_data_ids(self)
    }
    fn put_object_data(&self, data_id: &str, bytes: &[u8]) -> Result<(), StoreError> {
        crate::objects::put_object_data(self, data_id, bytes)
    }
    fn get_object_data(&self, data_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        crate::objects::get_object_data(self, data_id)
    }
    fn create_upload(&self, u: &Upload) -> Result<(), StoreError> {
        crate::objects::create_upload(self, u)
    }
    fn get_upload(&self, upload_id: &str) -> Result<Option<Upload>, StoreError> {
        crate::objects::get_upload(self, upload_id)
    }
    fn delete_upload(&self, upload_id: &str) -> Result<Vec<Part>, StoreError> {
        crate::objects::delete_upload(self, upload_id)
    }
    fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        key_marker: &str,
        upload_id_marker: &str,
        limit: usize,
    ) -> Result<Vec<Upload>, StoreError> {
        crate::objects::list_uploads(self, bucket, prefix, key_marker, upload_id_marker, limit)
    }
    fn put_part(&self, p: &Part) -> Result<Option<Part>, StoreError> {
        crate::objects::put_part(self, p)
    }
    fn list_parts(
        &self,
        upload_id: &str,
        after: u32,
        limit: usize,
    ) -> Result<Vec<Part>, StoreError> {
        crate::objects::list_parts(self, upload_id, after, limit)
    }
}
