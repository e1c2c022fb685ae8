//! The registry service: the one way to change functions, versions, aliases, triggers and async
//! configs.
//!
//! Every mutation checks its rules inside the store's write transaction (against the stored
//! state, never against a cache), commits, and then updates the dispatcher's caches and the
//! matcher index. Mutations are serialized by one async lock held from before the write until
//! the caches are updated, so the caches and the matcher change in commit order and always end
//! equal to the store. Writes are rare next to events; one lock costs nothing measurable.
//!
//! Reads (`Dispatcher::function`, `alias`, `version`, `resolve`) use the caches.

use std::collections::{HashMap, HashSet};

use fnbridge_event::eventbridge::RunOptions;
use fnbridge_event::limits::MAX_TRIGGERS_PER_FUNCTION;
use fnbridge_event::{AsyncConfig, FunctionConfig, TriggerConfig, TriggerType};
use fnbridge_pattern::Pattern;
use fnbridge_store::Tx;
use fnbridge_store::buses::EventBus;
use fnbridge_store::registry::{Alias, Version};
use fnbridge_store::{Store, StoreError, now_ms};

use crate::cloudevents::DEFAULT_BUS;
use crate::destination::function_of_arn;
use crate::engine::{Dispatcher, plan_bus_events};
use crate::fc_events::{self, Lifecycle};
use fnbridge_event::BusEvent;

/// Why a registry change was refused. Each variant is one FC error code at the API edge.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("function '{0}' does not exist")]
    FunctionNotFound(String),
    #[error("function '{0}' already exists")]
    FunctionAlreadyExists(String),
    #[error("function '{function}' has {triggers} active trigger(s); delete them first")]
    FunctionNotEmpty { function: String, triggers: usize },
    #[error("version '{version}' of function '{function}' does not exist")]
    VersionNotFound { function: String, version: String },
    #[error("alias '{alias}' of function '{function}' does not exist")]
    AliasNotFound { function: String, alias: String },
    #[error("alias '{alias}' of function '{function}' already exists")]
    AliasAlreadyExists { function: String, alias: String },
    #[error("trigger '{trigger}' of function '{function}' does not exist")]
    TriggerNotFound { function: String, trigger: String },
    #[error("trigger '{trigger}' already exists on function '{function}'")]
    TriggerAlreadyExists { function: String, trigger: String },
    #[error("{what} is used by {users}; point them elsewhere first")]
    VersionInUse { what: String, users: String },
    #[error("{what} is used by {users}; point them elsewhere first")]
    AliasInUse { what: String, users: String },
    #[error("event bus '{0}' does not exist")]
    BusNotFound(String),
    #[error("event bus '{0}' already exists")]
    BusAlreadyExists(String),
    #[error(
        "event bus '{bus}' has {rules} rule(s) (eventbridge triggers: {names}); delete them first"
    )]
    BusNotEmpty {
        bus: String,
        rules: usize,
        names: String,
    },
    #[error("event bus '{bus}' has archive(s) {names}; delete them first")]
    BusHasArchives { bus: String, names: String },
    #[error("archive '{0}' does not exist")]
    ArchiveNotFound(String),
    #[error("archive '{0}' already exists")]
    ArchiveAlreadyExists(String),
    #[error("replay '{0}' does not exist")]
    ReplayNotFound(String),
    #[error("replay '{0}' already exists")]
    ReplayAlreadyExists(String),
    #[error("AsyncConfig for {function}:{qualifier} does not exist.")]
    AsyncConfigNotFound { function: String, qualifier: String },
    /// A request that is well-formed but breaks a rule (a limit, a loop, nothing to publish).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs `f` inside one write transaction. A store error rolls the whole operation back; a
/// rule violation is answered without writing, because every operation checks its rules before
/// its first write.
async fn write<T, F>(store: &Store, f: F) -> Result<T, RegistryError>
where
    T: Send + 'static,
    F: FnOnce(&dyn Tx) -> Result<T, RegistryError> + Send + 'static,
{
    store
        .write(move |c| match f(c) {
            Ok(v) => Ok(Ok(v)),
            Err(RegistryError::Store(e)) => Err(e),
            Err(rule) => Ok(Err(rule)),
        })
        .await?
}

impl Dispatcher {
    /// Like [`write`], and the bus events `f` returns are matched and committed with their
    /// tasks in the same transaction (`acs.fc` lifecycle events), admitted after the commit.
    /// Not refused at the backlog limit: a registry change is never held back by the queue.
    async fn write_with_events<T, F>(&self, f: F) -> Result<T, RegistryError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Tx) -> Result<(T, Vec<BusEvent>), RegistryError> + Send + 'static,
    {
        let inner = self.inner.clone();
        let (value, jobs) = self
            .store()
            .write(move |c| match f(c) {
                Ok((v, events)) => Ok(Ok((v, plan_bus_events(&inner, c, events)?))),
                Err(RegistryError::Store(e)) => Err(e),
                Err(rule) => Ok(Err(rule)),
            })
            .await??;
        self.admit(jobs);
        Ok(value)
    }

    /// The `acs.fc` event of a lifecycle change of `function`.
    fn fc_event(
        &self,
        what: Lifecycle,
        function: &str,
        config: Option<&FunctionConfig>,
        version: Option<(u64, &str)>,
    ) -> BusEvent {
        let cfg = &self.inner.cfg;
        fc_events::event(
            &cfg.region,
            &cfg.account_id,
            what,
            function,
            config,
            version,
            fnbridge_store::now_ms(),
        )
    }
}

fn function_exists(c: &dyn Tx, function: &str) -> Result<(), RegistryError> {
    match c.get_function(function)? {
        Some(_) => Ok(()),
        None => Err(RegistryError::FunctionNotFound(function.to_string())),
    }
}

/// Checks, against the stored state, that `qualifier` names LATEST, a version or an alias.
fn qualifier_exists(c: &dyn Tx, function: &str, qualifier: &str) -> Result<(), RegistryError> {
    if qualifier.is_empty() || qualifier == "LATEST" {
        return Ok(());
    }
    if let Ok(v) = qualifier.parse::<u64>() {
        let known = c.list_versions(function)?.iter().any(|x| x.version_id == v);
        return if known {
            Ok(())
        } else {
            Err(RegistryError::VersionNotFound {
                function: function.into(),
                version: qualifier.into(),
            })
        };
    }
    match c.get_alias(function, qualifier)? {
        Some(_) => Ok(()),
        None => Err(RegistryError::AliasNotFound {
            function: function.into(),
            alias: qualifier.into(),
        }),
    }
}

/// Triggers and aliases of `function` that point at `qualifier`, as stored.
fn users_of(c: &dyn Tx, function: &str, qualifier: &str) -> Result<Vec<String>, StoreError> {
    let mut out: Vec<String> = c
        .list_triggers(function, "", "", usize::MAX >> 1)?
        .into_iter()
        .filter(|t| t.trigger.qualifier == qualifier)
        .map(|t| format!("trigger '{}'", t.trigger.trigger_name))
        .collect();
    if let Ok(v) = qualifier.parse::<u64>() {
        out.extend(
            c.all_aliases()?
                .into_iter()
                .filter(|(f, a)| {
                    f == function
                        && (a.version_id == v || a.additional_version_weight.contains_key(&v))
                })
                .map(|(_, a)| format!("alias '{}'", a.alias_name)),
        );
    }
    out.sort();
    Ok(out)
}

/// The destination functions a stored or proposed async config names.
pub fn destinations_of(config: &AsyncConfig) -> Vec<String> {
    config
        .destination_config
        .all()
        .filter_map(function_of_arn)
        .map(str::to_string)
        .collect()
}

/// Refuses a destination that is the function itself or that leads back to it through other
/// functions' destinations: each hop would embed the previous record and run forever.
fn check_destination_loop(
    c: &dyn Tx,
    function: &str,
    config: &AsyncConfig,
) -> Result<(), RegistryError> {
    let mut edges: HashMap<String, Vec<String>> = HashMap::new();
    for (f, _, v) in c.all_async_configs()? {
        if f != function {
            edges.entry(f).or_default().extend(destinations_of(&v));
        }
    }
    for target in destinations_of(config) {
        if c.get_function(&target)?.is_none() {
            return Err(RegistryError::Invalid(format!(
                "destinationConfig: destination function '{target}' does not exist"
            )));
        }
        // Depth-first search from the target, remembering the path for the message.
        let mut path = vec![function.to_string(), target.clone()];
        let mut seen = HashSet::new();
        if reaches(&edges, &target, function, &mut seen, &mut path) {
            return Err(RegistryError::Invalid(format!(
                "destinationConfig: destination '{target}' would form a loop ({}); a function's destinations must not lead back to it",
                path.join(" -> ")
            )));
        }
    }
    Ok(())
}

fn reaches(
    edges: &HashMap<String, Vec<String>>,
    from: &str,
    goal: &str,
    seen: &mut HashSet<String>,
    path: &mut Vec<String>,
) -> bool {
    if from == goal {
        return true;
    }
    if !seen.insert(from.to_string()) {
        return false;
    }
    for next in edges.get(from).into_iter().flatten() {
        path.push(next.clone());
        if reaches(edges, next, goal, seen, path) {
            return true;
        }
        path.pop();
    }
    false
}

/// What a function update left behind: the code revision no longer used by LATEST or any
/// version, which the caller removes from disk.
pub struct Updated {
    pub unused_revision: Option<String>,
}

impl Dispatcher {
    /// Stores a new function (its code already unpacked under `code_dir`).
    pub async fn create_function(&self, f: FunctionConfig) -> Result<(), RegistryError> {
        let _order = self.registry_lock().await;
        let stored = f.clone();
        let ev = self.fc_event(Lifecycle::Created, &f.function_name, Some(&f), None);
        self.write_with_events(move |c| {
            if c.get_function(&stored.function_name)?.is_some() {
                return Err(RegistryError::FunctionAlreadyExists(
                    stored.function_name.clone(),
                ));
            }
            c.insert_function(&stored)?;
            Ok(((), vec![ev]))
        })
        .await?;
        self.cache_function(f);
        Ok(())
    }

    /// Replaces LATEST of an existing function.
    pub async fn update_function(&self, f: FunctionConfig) -> Result<Updated, RegistryError> {
        let _order = self.registry_lock().await;
        let stored = f.clone();
        let ev = self.fc_event(Lifecycle::Updated, &f.function_name, Some(&f), None);
        let unused = self
            .write_with_events(move |c| {
                let name = &stored.function_name;
                let Some(old) = c.get_function(name)? else {
                    return Err(RegistryError::FunctionNotFound(name.clone()));
                };
                c.update_function(&stored)?;
                // Published versions keep their code: only an unreferenced revision is removed.
                let kept = old.revision == stored.revision
                    || c.list_versions(name)?
                        .iter()
                        .any(|v| v.config.revision == old.revision);
                Ok(((!kept).then_some(old.revision), vec![ev]))
            })
            .await?;
        self.cache_function(f);
        Ok(Updated {
            unused_revision: unused,
        })
    }

    /// Deletes a function with its versions, aliases, async configs and logs. Refused while it
    /// has triggers.
    pub async fn delete_function(&self, name: &str) -> Result<(), RegistryError> {
        let _order = self.registry_lock().await;
        let n = name.to_string();
        let me = self.clone();
        self.write_with_events(move |c| {
            let Some(old) = c.get_function(&n)? else {
                return Err(RegistryError::FunctionNotFound(n));
            };
            let triggers = c.count_triggers(&n)?;
            if triggers > 0 {
                return Err(RegistryError::FunctionNotEmpty {
                    function: n,
                    triggers,
                });
            }
            c.delete_function(&n)?;
            let ev = me.fc_event(Lifecycle::Deleted, &n, Some(&old), None);
            Ok(((), vec![ev]))
        })
        .await?;
        self.uncache_function(name);
        Ok(())
    }

    /// Publishes LATEST as stored at commit time (not as cached), so a concurrent update is
    /// either wholly in the version or wholly after it.
    pub async fn publish_version(
        &self,
        function: &str,
        description: String,
        created: String,
    ) -> Result<Version, RegistryError> {
        let _order = self.registry_lock().await;
        let f = function.to_string();
        let me = self.clone();
        let v = self.write_with_events(move |c| {
            let Some(latest) = c.get_function(&f)? else {
                return Err(RegistryError::FunctionNotFound(f));
            };
            if let Some(last) = c.list_versions(&f)?.pop()
                && last.config == latest
            {
                return Err(RegistryError::Invalid(format!(
                    "function '{f}' has not changed since version {}; update it before publishing",
                    last.version_id
                )));
            }
            let v = c.publish_version(&f, &description, &created, &latest)?;
            let ev = me.fc_event(
                Lifecycle::VersionPublished,
                &f,
                Some(&v.config),
                Some((v.version_id, &v.description)),
            );
            Ok((v, vec![ev]))
        })
        .await?;
        self.cache_version(&v);
        Ok(v)
    }

    /// Deletes a version nothing points at (no trigger, no alias, checked inside the write).
    pub async fn delete_version(&self, function: &str, version: u64) -> Result<(), RegistryError> {
        let _order = self.registry_lock().await;
        let f = function.to_string();
        write(self.store(), move |c| {
            if c.get_function(&f)?.is_none() {
                return Err(RegistryError::FunctionNotFound(f));
            }
            let q = version.to_string();
            let users = users_of(c, &f, &q)?;
            if !users.is_empty() {
                return Err(RegistryError::VersionInUse {
                    what: format!("version '{version}' of function '{f}'"),
                    users: users.join(", "),
                });
            }
            if !c.delete_version(&f, version)? {
                return Err(RegistryError::VersionNotFound {
                    function: f,
                    version: q,
                });
            }
            Ok(())
        })
        .await?;
        self.uncache_version(function, version);
        Ok(())
    }

    /// Creates (`create`) or replaces an alias. `edit` turns the stored alias (or, on create,
    /// `base`) into the new one inside the transaction; every version it names must exist at
    /// commit time.
    pub async fn put_alias<E>(
        &self,
        function: &str,
        name: &str,
        create: Option<Alias>,
        edit: E,
    ) -> Result<Alias, RegistryError>
    where
        E: FnOnce(&mut Alias) -> Result<(), RegistryError> + Send + 'static,
    {
        let _order = self.registry_lock().await;
        let (f, n) = (function.to_string(), name.to_string());
        let a = write(self.store(), move |c| {
            function_exists(c, &f)?;
            let existing = c.get_alias(&f, &n)?;
            let mut a = match (existing, create) {
                (Some(_), Some(_)) => {
                    return Err(RegistryError::AliasAlreadyExists {
                        function: f,
                        alias: n,
                    });
                }
                (None, None) => {
                    return Err(RegistryError::AliasNotFound {
                        function: f,
                        alias: n,
                    });
                }
                (Some(a), None) | (None, Some(a)) => a,
            };
            edit(&mut a)?;
            let versions: HashSet<u64> =
                c.list_versions(&f)?.iter().map(|v| v.version_id).collect();
            let named = std::iter::once(("versionId".to_string(), a.version_id)).chain(
                a.additional_version_weight
                    .keys()
                    .map(|v| (format!("additionalVersionWeight.{v}"), *v)),
            );
            for (field, v) in named {
                if !versions.contains(&v) {
                    return Err(RegistryError::Invalid(format!(
                        "{field}: version '{v}' of function '{f}' does not exist"
                    )));
                }
            }
            let is_new = c.get_alias(&f, &n)?.is_none();
            c.put_alias(&f, &a, is_new)?;
            Ok(a)
        })
        .await?;
        self.cache_alias(function, a.clone());
        Ok(a)
    }

    /// Deletes an alias no trigger uses.
    pub async fn delete_alias(&self, function: &str, name: &str) -> Result<(), RegistryError> {
        let _order = self.registry_lock().await;
        let (f, n) = (function.to_string(), name.to_string());
        write(self.store(), move |c| {
            function_exists(c, &f)?;
            if c.get_alias(&f, &n)?.is_none() {
                return Err(RegistryError::AliasNotFound {
                    function: f,
                    alias: n,
                });
            }
            let users = users_of(c, &f, &n)?;
            if !users.is_empty() {
                return Err(RegistryError::AliasInUse {
                    what: format!("alias '{n}' of function '{f}'"),
                    users: users.join(", "),
                });
            }
            c.delete_alias(&f, &n)?;
            Ok(())
        })
        .await?;
        self.uncache_alias(function, name);
        Ok(())
    }

    /// Creates a trigger whose config compiled to `pattern`.
    pub async fn create_trigger(
        &self,
        t: TriggerConfig,
        pattern: Pattern,
    ) -> Result<(), RegistryError> {
        let _order = self.registry_lock().await;
        let stored = t.clone();
        let id = write(self.store(), move |c| {
            let f = &stored.function_name;
            function_exists(c, f)?;
            qualifier_exists(c, f, &stored.qualifier)?;
            if c.get_trigger(f, &stored.trigger_name)?.is_some() {
                return Err(RegistryError::TriggerAlreadyExists {
                    function: f.clone(),
                    trigger: stored.trigger_name.clone(),
                });
            }
            let n = c.count_triggers(f)?;
            if n >= MAX_TRIGGERS_PER_FUNCTION {
                return Err(RegistryError::Invalid(format!(
                    "function '{f}' already has {n} triggers, the most allowed"
                )));
            }
            check_native_oss(c, &stored)?;
            check_bus(c, &stored)?;
            Ok(c.insert_trigger(&stored)?)
        })
        .await?;
        self.cache_trigger(id, t, &pattern);
        Ok(())
    }

    /// Replaces an existing trigger's stored config and its pattern in the index.
    pub async fn update_trigger(
        &self,
        t: TriggerConfig,
        pattern: Pattern,
    ) -> Result<(), RegistryError> {
        let _order = self.registry_lock().await;
        let stored = t.clone();
        let id = write(self.store(), move |c| {
            let f = &stored.function_name;
            function_exists(c, f)?;
            qualifier_exists(c, f, &stored.qualifier)?;
            check_native_oss(c, &stored)?;
            check_bus(c, &stored)?;
            match c.update_trigger(&stored)? {
                Some(id) => Ok(id),
                None => Err(RegistryError::TriggerNotFound {
                    function: f.clone(),
                    trigger: stored.trigger_name.clone(),
                }),
            }
        })
        .await?;
        let (f, n) = (t.function_name.clone(), t.trigger_name.clone());
        self.cache_trigger(id, t, &pattern);
        // An update of a blocked trigger retries its failing event at once (with the new
        // config), rather than after the schedule's wait.
        if let Some(row) = self.inner.sched.block_holder(&f, &n)
            && self.inner.sched.retry_now(row, now_ms())
        {
            self.inner.wake.notify_one();
        }
        Ok(())
    }

    pub async fn delete_trigger(&self, function: &str, name: &str) -> Result<(), RegistryError> {
        let _order = self.registry_lock().await;
        let (f, n) = (function.to_string(), name.to_string());
        let id = write(self.store(), move |c| match c.delete_trigger(&f, &n)? {
            Some(id) => {
                c.delete_block(&f, &n)?;
                Ok(id)
            }
            None => Err(RegistryError::TriggerNotFound {
                function: f,
                trigger: n,
            }),
        })
        .await?;
        self.uncache_trigger(id);
        // Its held events are delivered under the function's async config, like any task of
        // a deleted trigger.
        if self.inner.sched.unblock(function, name, None) {
            self.inner.wake.notify_one();
        }
        Ok(())
    }

    /// Stores an async-invoke config. `config(created_time)` builds the document from the
    /// creation time of the one it replaces (or `None`), inside the transaction.
    pub async fn put_async_config<B>(
        &self,
        function: &str,
        qualifier: &str,
        build: B,
    ) -> Result<AsyncConfig, RegistryError>
    where
        B: FnOnce(Option<String>) -> AsyncConfig + Send + 'static,
    {
        let _order = self.registry_lock().await;
        let (f, q) = (function.to_string(), qualifier.to_string());
        let v = write(self.store(), move |c| {
            function_exists(c, &f)?;
            qualifier_exists(c, &f, &q)?;
            let created = c.get_async_config(&f, &q)?.map(|e| e.created_time);
            let v = build(created);
            check_destination_loop(c, &f, &v)?;
            c.put_async_config(&f, &q, &v)?;
            Ok(v)
        })
        .await?;
        self.cache_async_config(function, qualifier, &v);
        Ok(v)
    }

    pub async fn delete_async_config(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<(), RegistryError> {
        let _order = self.registry_lock().await;
        let (f, q) = (function.to_string(), qualifier.to_string());
        write(self.store(), move |c| {
            if c.delete_async_config(&f, &q)? {
                Ok(())
            } else {
                Err(RegistryError::AsyncConfigNotFound {
                    function: f,
                    qualifier: q,
                })
            }
        })
        .await?;
        self.uncache_async_config(function, qualifier);
        Ok(())
    }
}

/// Most native `oss` triggers on one bucket (FC's limit; EventBridge-based triggers lift it).
pub const MAX_OSS_TRIGGERS_PER_BUCKET: usize = 10;

/// FC's rules for native `oss` triggers, checked against the stored triggers inside the write:
/// `sourceArn` names the bucket and is required, a bucket has at most
/// `MAX_OSS_TRIGGERS_PER_BUCKET`, and two triggers of one bucket whose event sets intersect
/// must not have overlapping key filters (one event would fire both, ambiguously).
/// An `eventbridge` trigger's bus (`eventBusName`, `default` when absent) and its dead-letter
/// bus (`deadLetterQueue.Arn`), if any, must exist.
fn check_bus(c: &dyn Tx, t: &TriggerConfig) -> Result<(), RegistryError> {
    if t.trigger_type != TriggerType::EventBridge {
        return Ok(());
    }
    let o = RunOptions::from_config(&t.trigger_config);
    for bus in std::iter::once(o.bus).chain(o.dead_letter_bus) {
        if bus != DEFAULT_BUS && c.get_bus(&bus)?.is_none() {
            return Err(RegistryError::BusNotFound(bus));
        }
    }
    Ok(())
}

/// The bus names fnbridge accepts: 1-127 of `[A-Za-z0-9_.-]`, not `default`.
fn check_bus_name(name: &str) -> Result<(), RegistryError> {
    let ok = (1..=127).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !ok {
        return Err(RegistryError::Invalid(format!(
            "eventBusName: 1 to 127 letters, digits, '_', '.' or '-', got '{name}'"
        )));
    }
    if name == DEFAULT_BUS {
        return Err(RegistryError::BusAlreadyExists(name.into()));
    }
    Ok(())
}

impl Dispatcher {
    /// Creates a custom event bus.
    pub async fn create_bus(
        &self,
        name: &str,
        description: &str,
    ) -> Result<EventBus, RegistryError> {
        check_bus_name(name)?;
        let bus = EventBus {
            name: name.to_string(),
            description: description.to_string(),
            created_ms: fnbridge_store::now_ms(),
        };
        let b = bus.clone();
        write(self.store(), move |c| {
            if c.get_bus(&b.name)?.is_some() {
                return Err(RegistryError::BusAlreadyExists(b.name.clone()));
            }
            Ok(c.insert_bus(&b)?)
        })
        .await?;
        Ok(bus)
    }

    /// Deletes a custom bus; refused while an `eventbridge` trigger (a rule) or an archive names
    /// it, checked in the same transaction as the delete.
    pub async fn delete_bus(&self, name: &str) -> Result<(), RegistryError> {
        let _order = self.registry_lock().await;
        let name = name.to_string();
        write(self.store(), move |c| {
            if name == DEFAULT_BUS {
                return Err(RegistryError::Invalid(
                    "the default bus cannot be deleted".into(),
                ));
            }
            if c.get_bus(&name)?.is_none() {
                return Err(RegistryError::BusNotFound(name));
            }
            let rules: Vec<String> = c
                .all_triggers()?
                .into_iter()
                .filter(|t| {
                    let o = RunOptions::from_config(&t.trigger.trigger_config);
                    // A rule on the bus, or a trigger dead-lettering to it.
                    t.trigger.trigger_type == TriggerType::EventBridge
                        && (o.bus == name || o.dead_letter_bus.as_deref() == Some(&*name))
                })
                .map(|t| format!("{}/{}", t.trigger.function_name, t.trigger.trigger_name))
                .collect();
            if !rules.is_empty() {
                return Err(RegistryError::BusNotEmpty {
                    bus: name,
                    rules: rules.len(),
                    names: rules.join(", "),
                });
            }
            let archives: Vec<String> = c
                .list_archives()?
                .into_iter()
                .filter(|a| a.bus == name)
                .map(|a| a.name)
                .collect();
            if !archives.is_empty() {
                return Err(RegistryError::BusHasArchives {
                    bus: name,
                    names: archives.join(", "),
                });
            }
            c.delete_bus(&name)?;
            Ok(())
        })
        .await
    }

    /// A bus by name (`default` always exists).
    pub async fn get_bus(&self, name: &str) -> Result<EventBus, RegistryError> {
        if name == DEFAULT_BUS {
            return Ok(EventBus {
                name: DEFAULT_BUS.into(),
                description: "the bus built-in sources publish to".into(),
                created_ms: 0,
            });
        }
        let n = name.to_string();
        self.store()
            .read(move |c| c.get_bus(&n))
            .await?
            .ok_or_else(|| RegistryError::BusNotFound(name.to_string()))
    }

    /// Every bus, `default` first.
    pub async fn list_buses(&self) -> Result<Vec<EventBus>, RegistryError> {
        let mut all = vec![self.get_bus(DEFAULT_BUS).await?];
        all.extend(self.store().read(|c| c.list_buses()).await?);
        Ok(all)
    }
}

fn check_native_oss(c: &dyn Tx, t: &TriggerConfig) -> Result<(), RegistryError> {
    if t.trigger_type != TriggerType::Oss {
        return Ok(());
    }
    let Some(bucket) = t.source_arn.as_deref().and_then(arn_bucket) else {
        return Err(RegistryError::Invalid(
            "sourceArn is required for an oss trigger: acs:oss:{region}:{accountId}:{bucket}"
                .into(),
        ));
    };
    let mine = OssRule::of(&t.trigger_config);
    let mut on_bucket = 0;
    for other in c.all_triggers()? {
        let o = &other.trigger;
        let same = o.function_name == t.function_name && o.trigger_name == t.trigger_name;
        if same
            || o.trigger_type != TriggerType::Oss
            || o.source_arn.as_deref().and_then(arn_bucket) != Some(bucket)
        {
            continue;
        }
        on_bucket += 1;
        if on_bucket >= MAX_OSS_TRIGGERS_PER_BUCKET {
            return Err(RegistryError::Invalid(format!(
                "bucket '{bucket}' already has {MAX_OSS_TRIGGERS_PER_BUCKET} oss triggers, the most allowed (use an eventbridge trigger for more)"
            )));
        }
        if mine.conflicts(&OssRule::of(&o.trigger_config)) {
            return Err(RegistryError::Invalid(format!(
                "the events and key filter of this trigger overlap those of trigger '{}' of function '{}' on bucket '{bucket}'",
                o.trigger_name, o.function_name
            )));
        }
    }
    Ok(())
}

fn arn_bucket(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    match (parts.next(), parts.next(), parts.nth(2), parts.next()) {
        (Some("acs"), Some("oss"), Some(b), None) if !b.is_empty() => Some(b),
        _ => None,
    }
}

/// A native OSS trigger's events and key filter, from its normalized config.
struct OssRule {
    events: Vec<String>,
    prefix: String,
    suffix: String,
}

impl OssRule {
    fn of(config: &serde_json::Value) -> OssRule {
        let s = |p: &str| {
            config
                .pointer(p)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        OssRule {
            events: config
                .get("events")
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            prefix: s("/filter/key/prefix"),
            suffix: s("/filter/key/suffix"),
        }
    }

    /// Some key and event fire both: an event name in both sets (a family's `*` covers its
    /// types), a key that starts with both prefixes and ends with both suffixes.
    fn conflicts(&self, other: &OssRule) -> bool {
        let covers = |a: &str, b: &str| {
            a == b
                || a.strip_suffix('*')
                    .is_some_and(|family| b.starts_with(family))
        };
        let events = self
            .events
            .iter()
            .any(|a| other.events.iter().any(|b| covers(a, b) || covers(b, a)));
        let prefixes =
            self.prefix.starts_with(&other.prefix) || other.prefix.starts_with(&self.prefix);
        let suffixes = self.suffix.ends_with(&other.suffix) || other.suffix.ends_with(&self.suffix);
        events && prefixes && suffixes
    }
}

#[cfg(test)]
mod oss_rule_tests {
    use super::*;
    use serde_json::json;

    fn rule(events: &[&str], prefix: &str, suffix: &str) -> OssRule {
        OssRule::of(
            &json!({"events": events, "filter": {"key": {"prefix": prefix, "suffix": suffix}}}),
        )
    }

    #[test]
    fn overlap() {
        let put = "oss:ObjectCreated:PutObject";
        let all = "oss:ObjectCreated:*";
        let del = "oss:ObjectRemoved:DeleteObject";
        assert!(rule(&[put], "a/", "").conflicts(&rule(&[all], "a/b", ".jpg")));
        assert!(!rule(&[put], "a/", "").conflicts(&rule(&[put], "b/", "")));
        assert!(!rule(&[put], "", ".png").conflicts(&rule(&[put], "", ".jpg")));
        assert!(!rule(&[put], "a/", "").conflicts(&rule(&[del], "a/", "")));
        assert!(rule(&[put], "", "").conflicts(&rule(&[put], "x", ".y")));
        assert_eq!(arn_bucket("acs:oss:cn-hangzhou:123:b1"), Some("b1"));
        assert_eq!(arn_bucket("acs:oss:cn-hangzhou:123"), None);
    }
}
