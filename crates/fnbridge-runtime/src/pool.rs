//! The warm pool of one function: its instances (idle or busy) of every revision, a cap on
//! instances across revisions, and a fair (FIFO) queue for invocations beyond it.
//!
//! Each instance has a capacity: 1 for Python workers, `instanceConcurrency` for custom
//! runtimes. An instance is available while it serves fewer invocations than that; an
//! available instance of the wanted revision is used first (the busiest one, so a
//! concurrent instance fills up before another starts), then a new one is started if the
//! function is under its cap, else the least recently used idle instance of another revision
//! makes room. Otherwise the invocation waits in line.
//!
//! The line is strictly first come, first served: a newcomer queues behind anyone already
//! waiting, and whoever frees a slot (returning an instance, finishing a start, dropping a lease)
//! hands out what is now possible to the waiters in order, under the state lock, by sending them
//! their lease. So no newcomer can barge in, and no waiter starves: while the first one waits,
//! nobody else is given anything, so the busy instances drain until one is free for it.
//!
//! Instances are counted per slot: a starting instance counts, a busy one counts once however
//! many invocations it serves, so the number of instances never exceeds the cap (instances
//! running their PreStop hook after they left the pool are not counted).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::oneshot;

use crate::instance::{Instance, dispose};

#[derive(Debug)]
pub(crate) struct FunctionPool {
    max: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: Vec<Entry>,
    /// Slots held by leases that are starting an instance.
    starting: usize,
    waiters: VecDeque<Waiter>,
    /// Set once the pool is retired or reaped: nothing goes in any more.
    closed: bool,
    next_entry: u64,
}

/// A started instance.
#[derive(Debug)]
struct Entry {
    id: u64,
    revision: String,
    /// The pool's handle. `None` while an instance of capacity 1 is out with its invocation.
    instance: Option<Instance>,
    capacity: usize,
    busy: usize,
    /// When it was last handed out or became idle: LRU order for eviction and the idle timeout.
    since: Instant,
}

#[derive(Debug)]
struct Waiter {
    revision: String,
    tx: oneshot::Sender<Lease>,
}

/// The right to run one invocation: a slot on a warm instance (with a handle to it), or a slot
/// to start a new instance in. Dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct Lease {
    pool: Arc<FunctionPool>,
    revision: String,
    claim: Claim,
}

#[derive(Debug)]
enum Claim {
    /// A slot on entry `entry`; `instance` until `take_warm`.
    Warm {
        entry: u64,
        instance: Option<Instance>,
    },
    /// A slot for an instance that is not started yet (or was started into a closed pool).
    Start,
    /// Given back.
    Done,
}

/// What must be dropped after the state lock is released: killing instances takes time, and
/// dropping a lease takes the lock.
#[derive(Debug, Default)]
struct Leftovers {
    /// Leave service for good (PreStop, if any, then killed).
    retired: Vec<Instance>,
    /// Broken: killed now, even if other invocations hold them.
    broken: Vec<Instance>,
    /// Handles of instances that stay in service elsewhere.
    handles: Vec<Instance>,
    /// Granted to waiters that gave up meanwhile.
    leases: Vec<Lease>,
}

impl Leftovers {
    fn release(self) {
        for instance in self.broken {
            instance.discard();
        }
        dispose(self.retired);
        drop(self.handles);
        drop(self.leases);
    }
}

impl FunctionPool {
    pub(crate) fn new(max: usize) -> Arc<FunctionPool> {
        Arc::new(FunctionPool {
            max: max.max(1),
            state: Mutex::new(State::default()),
        })
    }

    /// Waits for a turn (first come, first served) and takes a slot on a warm instance of
    /// `revision`, or a slot to start one in. `None` if the pool was closed meanwhile: look it
    /// up again.
    pub(crate) async fn lease(self: &Arc<Self>, revision: &str) -> Option<Lease> {
        let rx = {
            let mut st = self.lock();
            if st.closed {
                return None;
            }
            if st.waiters.iter().all(|w| w.tx.is_closed()) {
                st.waiters.clear();
                if let Some((claim, evicted)) = st.claim(revision, self.max) {
                    drop(st);
                    dispose(evicted);
                    return Some(self.new_lease(revision.to_owned(), claim));
                }
            }
            let (tx, rx) = oneshot::channel();
            st.waiters.push_back(Waiter {
                revision: revision.to_owned(),
                tx,
            });
            rx
        };
        // Dropping this future leaves a closed sender in the line, skipped by `dispatch`; a
        // lease already sent to it is dropped with the channel, freeing its slot.
        rx.await.ok()
    }

    /// Closes the pool and hands back its idle instances. Busy ones are stopped by the last
    /// invocation using them; waiters are told to look again.
    pub(crate) fn close(&self) -> Vec<Instance> {
        let mut st = self.lock();
        st.closed = true;
        st.waiters.clear();
        let mut idle = Vec::new();
        let mut handles = Vec::new();
        for entry in std::mem::take(&mut st.entries) {
            if entry.busy == 0 {
                idle.extend(entry.instance);
            } else {
                handles.extend(entry.instance);
            }
        }
        drop(st);
        drop(handles);
        idle
    }

    /// Takes out the instances idle since before `cutoff`. If that leaves the pool with no
    /// instances, no leases and nobody waiting, it is closed and `unused` is true.
    pub(crate) fn reap(self: &Arc<Self>, cutoff: Instant) -> (Vec<Instance>, bool) {
        let mut st = self.lock();
        let mut expired = Vec::new();
        let mut i = 0;
        while i < st.entries.len() {
            let e = &st.entries[i];
            if e.busy == 0 && e.since < cutoff {
                expired.extend(st.entries.remove(i).instance);
            } else {
                i += 1;
            }
        }
        st.waiters.retain(|w| !w.tx.is_closed());
        // Checked under the state lock: a lease being granted holds a slot counted here.
        let unused = st.entries.is_empty() && st.starting == 0 && st.waiters.is_empty();
        let leftovers = if unused {
            st.closed = true;
            Leftovers::default()
        } else {
            self.dispatch(&mut st)
        };
        drop(st);
        leftovers.release();
        (expired, unused)
    }

    /// Instances (idle, busy or starting) the function has right now.
    pub(crate) fn instance_count(&self) -> usize {
        let st = self.lock();
        st.entries.len() + st.starting
    }

    fn new_lease(self: &Arc<Self>, revision: String, claim: Claim) -> Lease {
        Lease {
            pool: Arc::clone(self),
            revision,
            claim,
        }
    }

    /// Hands out what is possible now to the waiters, in order, stopping at the first one that
    /// cannot be served.
    fn dispatch(self: &Arc<Self>, st: &mut State) -> Leftovers {
        let mut out = Leftovers::default();
        while let Some(waiter) = st.waiters.pop_front() {
            if waiter.tx.is_closed() {
                continue;
            }
            let Some((claim, evicted)) = st.claim(&waiter.revision, self.max) else {
                st.waiters.push_front(waiter);
                break;
            };
            out.retired.extend(evicted);
            let lease = self.new_lease(waiter.revision, claim);
            if let Err(lease) = waiter.tx.send(lease) {
                out.leases.push(lease);
            }
        }
        out
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// A slot for `revision`, if one can be had now, and the instance evicted to make room.
    fn claim(&mut self, revision: &str, max: usize) -> Option<(Claim, Option<Instance>)> {
        let now = Instant::now();
        let warm = self
            .entries
            .iter_mut()
            .filter(|e| e.revision == revision && e.busy < e.capacity && e.instance.is_some())
            .max_by_key(|e| (e.busy, e.since));
        if let Some(e) = warm {
            e.busy += 1;
            e.since = now;
            let instance = if e.capacity == 1 {
                e.instance.take()
            } else {
                e.instance.as_ref().and_then(Instance::share)
            };
            let claim = Claim::Warm {
                entry: e.id,
                instance,
            };
            return Some((claim, None));
        }
        if self.entries.len() + self.starting < max {
            self.starting += 1;
            return Some((Claim::Start, None));
        }
        // An idle instance of the wanted revision would have been taken above, so this is
        // one of another revision; it hands its slot over.
        let (oldest, _) = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.busy == 0)
            .min_by_key(|(_, e)| e.since)?;
        let evicted = self.entries.remove(oldest);
        self.starting += 1;
        Some((Claim::Start, evicted.instance))
    }

    fn position(&self, entry: u64) -> Option<usize> {
        self.entries.iter().position(|e| e.id == entry)
    }
}

impl Lease {
    pub(crate) fn take_warm(&mut self) -> Option<Instance> {
        match &mut self.claim {
            Claim::Warm { instance, .. } => instance.take(),
            _ => None,
        }
    }

    /// The warm instance turned out to be dead: it leaves the pool, and its slot becomes one to
    /// start a new instance in.
    pub(crate) fn discard_warm(&mut self, dead: Instance) {
        let mut out = Leftovers::default();
        out.broken.push(dead);
        if let Claim::Warm { entry, .. } = self.claim {
            let mut st = self.pool.lock();
            if let Some(at) = st.position(entry) {
                out.broken.extend(st.entries.remove(at).instance);
            }
            st.starting += 1;
            self.claim = Claim::Start;
        }
        out.release();
    }

    /// Puts a freshly started instance in the pool, busy with this lease's invocation. An
    /// instance that serves several invocations at once is then offered to the waiters.
    pub(crate) fn attach(&mut self, instance: &Instance) {
        if !matches!(self.claim, Claim::Start) {
            return;
        }
        let mut st = self.pool.lock();
        if st.closed {
            // Used for this invocation only; `give_back` stops it.
            return;
        }
        st.starting -= 1;
        let id = st.next_entry;
        st.next_entry += 1;
        let capacity = instance.capacity();
        st.entries.push(Entry {
            id,
            revision: self.revision.clone(),
            instance: if capacity > 1 { instance.share() } else { None },
            capacity,
            busy: 1,
            since: Instant::now(),
        });
        self.claim = Claim::Warm {
            entry: id,
            instance: None,
        };
        let out = if capacity > 1 {
            self.pool.dispatch(&mut st)
        } else {
            Leftovers::default()
        };
        drop(st);
        out.release();
    }

    /// Ends the lease: a reusable instance goes back to the pool, a broken one is killed, and
    /// one whose pool is closed is stopped (after its PreStop hook, if any).
    pub(crate) fn give_back(mut self, instance: Instance, reusable: bool) {
        let claim = std::mem::replace(&mut self.claim, Claim::Done);
        let mut out = Leftovers::default();
        let mut st = self.pool.lock();
        let entry = match claim {
            Claim::Warm { entry, .. } => st.position(entry),
            Claim::Start => {
                st.starting -= 1;
                None
            }
            Claim::Done => None,
        };
        match entry {
            Some(at) if reusable => {
                let e = &mut st.entries[at];
                e.busy -= 1;
                if e.busy == 0 {
                    e.since = Instant::now();
                }
                if e.instance.is_none() {
                    e.instance = Some(instance);
                } else {
                    out.handles.push(instance);
                }
            }
            Some(at) => {
                out.broken.extend(st.entries.remove(at).instance);
                out.broken.push(instance);
            }
            // Left the pool meanwhile (closed, or discarded by another invocation).
            None if reusable => out.retired.push(instance),
            None => out.broken.push(instance),
        }
        let granted = self.pool.dispatch(&mut st);
        drop(st);
        out.release();
        granted.release();
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let claim = std::mem::replace(&mut self.claim, Claim::Done);
        if matches!(claim, Claim::Done) {
            return;
        }
        let mut out = Leftovers::default();
        let mut st = self.pool.lock();
        match claim {
            Claim::Start => st.starting -= 1,
            Claim::Warm { entry, instance } => {
                if let Some(at) = st.position(entry) {
                    let e = &mut st.entries[at];
                    e.busy -= 1;
                    match instance {
                        // Never used (its waiter gave up): back where it came from.
                        Some(instance) if e.instance.is_none() => e.instance = Some(instance),
                        Some(handle) => out.handles.push(handle),
                        // An instance of capacity 1 was in use by a cancelled invocation, which
                        // dropped it mid-request: it is gone.
                        None if e.capacity == 1 => {
                            st.entries.remove(at);
                        }
                        // A shared one survives the cancelled request.
                        None => {}
                    }
                    if let Some(e) = st.entries.get_mut(at).filter(|e| e.id == entry)
                        && e.busy == 0
                    {
                        e.since = Instant::now();
                    }
                } else {
                    out.handles.extend(instance);
                }
            }
            Claim::Done => {}
        }
        let granted = self.pool.dispatch(&mut st);
        drop(st);
        out.release();
        granted.release();
    }
}
