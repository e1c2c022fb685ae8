//! The warm pool of one function: idle instances per revision, a cap on instances across
//! revisions, and a fair (FIFO) queue for invocations beyond it.
//!
//! A semaphore with `max` permits admits invocations; each admitted invocation holds one
//! instance slot until it returns the instance (or drops it). Since holders never exceed
//! `max`, a function at its cap with nothing idle in the wanted revision always has an idle
//! instance of another revision to evict, so instances never exceed `max` either.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::instance::Instance;

#[derive(Debug)]
pub(crate) struct FunctionPool {
    max: usize,
    permits: Arc<Semaphore>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Idle instances by revision, most recently used last.
    idle: HashMap<String, Vec<Idle>>,
    /// Idle instances plus slots held by leases (busy or starting instances).
    instances: usize,
    /// Set once the pool is retired or reaped: nothing goes in any more.
    closed: bool,
}

#[derive(Debug)]
struct Idle {
    instance: Instance,
    since: Instant,
}

/// The right to run one invocation: a permit and an instance slot, with the warm instance
/// that fills the slot if there was one. Dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct Lease {
    pool: Arc<FunctionPool>,
    revision: String,
    warm: Option<Instance>,
    holds_slot: bool,
    // Released last (fields drop in order), after the instance is back in the idle list, so the
    // next queued invocation finds it there.
    _permit: OwnedSemaphorePermit,
}

impl FunctionPool {
    pub(crate) fn new(max: usize) -> Arc<FunctionPool> {
        let max = max.max(1);
        Arc::new(FunctionPool {
            max,
            permits: Arc::new(Semaphore::new(max)),
            state: Mutex::new(State::default()),
        })
    }

    /// Waits for a turn (first come, first served) and takes a warm instance of `revision` or
    /// a slot to start one in. `None` if the pool was closed meanwhile: look it up again.
    pub(crate) async fn lease(self: &Arc<Self>, revision: &str) -> Option<Lease> {
        let permit = Arc::clone(&self.permits).acquire_owned().await.ok()?;
        let (warm, evicted) = {
            let mut st = self.lock();
            if st.closed {
                return None;
            }
            match st.pop_idle(revision) {
                Some(instance) => (Some(instance), None),
                None => {
                    let evicted = if st.instances >= self.max {
                        st.evict_oldest()
                    } else {
                        None
                    };
                    // An evicted instance hands over its slot; otherwise take a new one.
                    if evicted.is_none() {
                        st.instances += 1;
                    }
                    (None, evicted)
                }
            }
        };
        // Killed outside the lock; its slot is now ours.
        drop(evicted);
        Some(Lease {
            pool: Arc::clone(self),
            revision: revision.to_owned(),
            warm,
            holds_slot: true,
            _permit: permit,
        })
    }

    /// Closes the pool and hands back its idle instances; busy ones are dropped when returned.
    pub(crate) fn close(&self) -> Vec<Instance> {
        let mut st = self.lock();
        st.closed = true;
        self.permits.close();
        let idle = std::mem::take(&mut st.idle);
        st.instances -= idle.values().map(Vec::len).sum::<usize>();
        idle.into_values().flatten().map(|i| i.instance).collect()
    }

    /// Takes out the instances idle since before `cutoff`. If that leaves the pool with no
    /// instances and no invocations, it is closed and `unused` is true.
    pub(crate) fn reap(&self, cutoff: Instant) -> (Vec<Instance>, bool) {
        let mut st = self.lock();
        let mut expired = Vec::new();
        for list in st.idle.values_mut() {
            let fresh = list.partition_point(|i| i.since < cutoff);
            expired.extend(list.drain(..fresh).map(|i| i.instance));
        }
        st.idle.retain(|_, list| !list.is_empty());
        st.instances -= expired.len();
        // Checked under the state lock: a lease that got its permit before the close still
        // finds the pool closed when it takes the lock.
        let unused = st.instances == 0 && self.permits.available_permits() == self.max;
        if unused {
            st.closed = true;
            self.permits.close();
        }
        (expired, unused)
    }

    pub(crate) fn instance_count(&self) -> usize {
        self.lock().instances
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn pop_idle(&mut self, revision: &str) -> Option<Instance> {
        let list = self.idle.get_mut(revision)?;
        let idle = list.pop();
        if list.is_empty() {
            self.idle.remove(revision);
        }
        idle.map(|i| i.instance)
    }

    /// The least recently used idle instance of any revision.
    fn evict_oldest(&mut self) -> Option<Instance> {
        let revision = self
            .idle
            .iter()
            .filter_map(|(rev, list)| list.first().map(|i| (i.since, rev)))
            .min()
            .map(|(_, rev)| rev.clone())?;
        let list = self.idle.get_mut(&revision)?;
        let idle = list.remove(0);
        if list.is_empty() {
            self.idle.remove(&revision);
        }
        Some(idle.instance)
    }
}

impl Lease {
    pub(crate) fn take_warm(&mut self) -> Option<Instance> {
        self.warm.take()
    }

    /// Ends the lease: a reusable instance goes back to the idle list, any other is killed.
    pub(crate) fn give_back(mut self, instance: Instance, reusable: bool) {
        let mut st = self.pool.lock();
        if reusable && !st.closed {
            let since = Instant::now();
            st.idle
                .entry(std::mem::take(&mut self.revision))
                .or_default()
                .push(Idle { instance, since });
            // The slot now belongs to the idle instance.
            self.holds_slot = false;
            return;
        }
        st.instances -= 1;
        self.holds_slot = false;
        drop(st);
        drop(instance);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.holds_slot {
            self.pool.lock().instances -= 1;
        }
    }
}
