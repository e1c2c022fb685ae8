//! The scheduler's memory: a bounded window of the store's open tasks, per function, with one
//! timer structure for everything not yet due, and a fair choice of what runs next.
//!
//! The store is the queue; this is a window onto it. A task is *resident* from the moment it
//! is admitted until the record of its final attempt has committed. Admission is refused (the
//! task is *spilled*: it stays only in the store) when its function's window, the total window
//! or the payload-byte budget is full; a spilled function is refilled from the store, in due
//! order, as its window drains. So memory does not grow with the backlog, a restart loads a
//! window instead of every open task, and a function with a huge backlog holds at most its own
//! window and its own share of running slots: other functions' tasks are admitted and started
//! at once (round robin over functions with ready work).
//!
//! An `eventbridge` trigger that tolerates no errors can be *blocked* by one failing task (the
//! holder): its other tasks are not started; one that comes up is dropped from the window (it
//! stays open in the store) and the refill skips them, so a blocked backlog neither runs nor
//! crowds out the function's other work. Lifting the block marks the function spilled, and the
//! refill reads the held tasks back in due order.
//!
//! An `event-streaming` trigger has a batch window: its tasks that become ready wait in a
//! *forming* batch until it holds `count` of them or `wait_ms` has passed since it opened
//! (measured on the `now_ms` the caller passes, so tests drive it with a fake clock); the batch
//! is then sealed into one job (a leader with members) that runs, retries and finishes as one.
//!
//! Everything here is synchronous and under one mutex; `engine.rs` runs the loop that starts
//! work and the refills that read the store.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use fnbridge_store::{NewTask, Task, TaskStatus};

/// A task in memory: what a worker needs to run one attempt.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub row: i64,
    pub task_id: String,
    pub function: Arc<str>,
    pub qualifier: String,
    pub trigger: Option<String>,
    pub event_seq: Option<i64>,
    pub payload: Bytes,
    /// The payload is the event's, not stored with the task.
    pub payload_from_event: bool,
    pub created_ms: i64,
    pub next_ms: i64,
    pub function_errors: u32,
    pub platform_errors: u32,
    pub attempts: u32,
    pub hops: u32,
    /// Cut by an `event-streaming` trigger's batch window: delivered as a JSON array of its own
    /// payload and its `members'`, retried whole.
    pub batched: bool,
    /// The other tasks of the batch this one leads (each resident in its own right).
    pub members: Vec<Job>,
}

impl Job {
    /// A task just inserted; `payload` is the text delivered (the event's, when the task
    /// stores none).
    pub fn new(row: i64, t: NewTask, payload: Bytes) -> Job {
        Job {
            row,
            task_id: t.task_id,
            function: Arc::from(t.function_name),
            qualifier: t.qualifier,
            trigger: t.trigger_name,
            event_seq: t.event_seq,
            payload_from_event: t.payload.is_none(),
            payload,
            created_ms: t.created_ms,
            next_ms: t.created_ms,
            function_errors: 0,
            platform_errors: 0,
            attempts: 0,
            hops: t.hops,
            batched: false,
            members: Vec::new(),
        }
    }

    /// A task read back from the store.
    pub fn from_task(t: Task) -> Job {
        Job {
            row: t.id,
            task_id: t.task_id,
            function: Arc::from(t.function_name),
            qualifier: t.qualifier,
            trigger: t.trigger_name,
            event_seq: t.event_seq,
            payload: Bytes::from(t.payload),
            payload_from_event: t.payload_from_event,
            created_ms: t.created_ms,
            next_ms: t.next_ms,
            function_errors: t.attempts,
            platform_errors: 0,
            attempts: t.attempts,
            hops: t.hops,
            batched: false,
            members: Vec::new(),
        }
    }

    pub fn as_task(&self) -> Task {
        Task {
            id: self.row,
            task_id: self.task_id.clone(),
            function_name: self.function.to_string(),
            qualifier: self.qualifier.clone(),
            trigger_name: self.trigger.clone(),
            event_seq: self.event_seq,
            payload: self.payload.to_vec(),
            status: TaskStatus::Running,
            attempts: self.attempts,
            created_ms: self.created_ms,
            next_ms: self.next_ms,
            ended_ms: None,
            last_error: None,
            return_payload: None,
            log: None,
            payload_from_event: self.payload_from_event,
            hops: self.hops,
        }
    }

    fn cost(&self) -> usize {
        self.payload.len() + 256
    }
}

/// How much the window holds and how much runs at once.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Resident tasks per function.
    pub window_per_function: usize,
    /// Resident tasks in all.
    pub window: usize,
    /// Payload bytes of resident tasks in all.
    pub window_bytes: usize,
    /// Attempts running at once in all.
    pub in_flight: usize,
    /// Attempts running at once per function, so one function cannot hold every slot.
    pub in_flight_per_function: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            window_per_function: 1024,
            window: 16_384,
            window_bytes: 64 << 20,
            in_flight: 256,
            in_flight_per_function: 16,
        }
    }
}

#[derive(Default)]
struct FnQueue {
    ready: VecDeque<Job>,
    /// Resident tasks of this function: ready, waiting in the timers, running, or recording.
    resident: usize,
    running: usize,
    /// The store holds open tasks of this function that are not resident.
    spilled: bool,
    /// Bumped at every spill, so a refill that raced one does not clear `spilled`.
    spill_gen: u64,
    /// In the rotation.
    queued: bool,
    /// This function's entries in `State::timers`, so the latest can be evicted.
    timers: BTreeSet<(i64, i64)>,
}

#[derive(Default)]
struct State {
    functions: HashMap<Arc<str>, FnQueue>,
    /// Functions with ready tasks, in turn order.
    rotation: VecDeque<Arc<str>>,
    /// Tasks waiting for a time: (due ms, row).
    timers: BTreeMap<(i64, i64), Job>,
    resident_rows: HashSet<i64>,
    resident_bytes: usize,
    running: usize,
    /// Rows released while a refill was reading: not to be admitted by it.
    released_during_refill: HashSet<i64>,
    refilling: bool,
    stopping: bool,
    /// Blocked triggers: function → trigger → the row of the task that holds the block.
    held_by: HashMap<Arc<str>, HashMap<String, i64>>,
    /// Batch windows of `event-streaming` triggers: function → trigger → window.
    windows: HashMap<Arc<str>, HashMap<String, Window>>,
    /// Batches being filled, by (function, trigger).
    forming: HashMap<(Arc<str>, String), Forming>,
}

/// An `event-streaming` trigger's batch window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// Most tasks in one batch.
    pub count: usize,
    /// How long a batch waits for more once its first task is ready.
    pub wait_ms: i64,
}

struct Forming {
    jobs: Vec<Job>,
    /// When it is sealed whatever its size.
    due_ms: i64,
}

impl State {
    /// A task of a blocked trigger other than the one holding the block.
    fn is_held(&self, function: &str, trigger: Option<&str>, row: i64) -> bool {
        trigger
            .and_then(|t| self.held_by.get(function)?.get(t))
            .is_some_and(|holder| *holder != row)
    }
}

/// A refill to run: for each function, how many tasks to read and the spill generation seen.
pub(crate) struct RefillPlan {
    pub functions: Vec<(Arc<str>, usize, u64)>,
}

pub(crate) struct Scheduler {
    limits: Limits,
    state: Mutex<State>,
}

impl Scheduler {
    pub fn new(limits: Limits) -> Scheduler {
        Scheduler {
            limits,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing under this lock can panic halfway through an update that matters more than
        // carrying on: recover the state rather than wedge the scheduler.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks a function as having open tasks in the store that are not resident (start-up).
    pub fn mark_spilled(&self, function: &str) {
        let mut st = self.lock();
        let f = st.functions.entry(Arc::from(function)).or_default();
        f.spilled = true;
        f.spill_gen += 1;
    }

    /// Takes a task into the window if there is room; otherwise it stays in the store only
    /// and its function is refilled later. Returns whether it became resident.
    pub fn admit(&self, job: Job, now_ms: i64) -> bool {
        let mut st = self.lock();
        Self::admit_locked(&self.limits, &mut st, job, now_ms)
    }

    fn admit_locked(limits: &Limits, st: &mut State, job: Job, now_ms: i64) -> bool {
        if st.resident_rows.contains(&job.row) {
            return true;
        }
        if st.stopping {
            return false;
        }
        let full = |st: &State| {
            let f = st.functions.get(&job.function);
            f.is_some_and(|f| f.resident >= limits.window_per_function)
                || st.resident_rows.len() >= limits.window
                || st.resident_bytes + job.cost() > limits.window_bytes
        };
        // A task due sooner than this function's latest waiting retry takes its place: a window
        // full of retries due in minutes must not keep out work that is due now.
        while full(st) && Self::evict_latest_timer(st, &job.function, job.next_ms) {}
        if full(st) {
            let f = st.functions.entry(job.function.clone()).or_default();
            f.spilled = true;
            f.spill_gen += 1;
            return false;
        }
        let f = st.functions.entry(job.function.clone()).or_default();
        f.resident += 1;
        st.resident_bytes += job.cost();
        st.resident_rows.insert(job.row);
        if job.next_ms <= now_ms {
            Self::push_ready(st, job, now_ms);
        } else {
            Self::push_timer(st, job);
        }
        true
    }

    fn push_timer(st: &mut State, job: Job) {
        if let Some(f) = st.functions.get_mut(&job.function) {
            f.timers.insert((job.next_ms, job.row));
        }
        st.timers.insert((job.next_ms, job.row), job);
    }

    /// Drops `function`'s latest waiting task from memory if it is due after `before` (it stays
    /// open in the store; the function is marked spilled so a refill reads it back).
    fn evict_latest_timer(st: &mut State, function: &Arc<str>, before: i64) -> bool {
        let Some(f) = st.functions.get_mut(function) else {
            return false;
        };
        let Some(&(due, row)) = f.timers.last() else {
            return false;
        };
        if due <= before
            || st
                .timers
                .get(&(due, row))
                .is_some_and(|j| !j.members.is_empty())
        {
            return false;
        }
        f.timers.remove(&(due, row));
        f.resident = f.resident.saturating_sub(1);
        f.spilled = true;
        f.spill_gen += 1;
        if let Some(job) = st.timers.remove(&(due, row)) {
            st.resident_bytes = st.resident_bytes.saturating_sub(job.cost());
        }
        st.resident_rows.remove(&row);
        true
    }

    /// A task is due: into its trigger's forming batch when the trigger has a window (a task of
    /// a blocked trigger leaves the window instead), else into its function's ready queue.
    fn push_ready(st: &mut State, job: Job, now_ms: i64) {
        let window = match job.trigger.as_deref() {
            Some(t) if !job.batched => st.windows.get(&job.function).and_then(|w| w.get(t)),
            _ => None,
        };
        let Some(&window) = window else {
            return Self::push_ready_now(st, job);
        };
        if st.is_held(&job.function, job.trigger.as_deref(), job.row) {
            return Self::drop_resident(st, &job);
        }
        let key = (
            job.function.clone(),
            job.trigger.clone().unwrap_or_default(),
        );
        let b = st.forming.entry(key.clone()).or_insert_with(|| Forming {
            jobs: Vec::new(),
            due_ms: now_ms.saturating_add(window.wait_ms),
        });
        b.jobs.push(job);
        if b.jobs.len() >= window.count {
            Self::seal(st, &key);
        }
    }

    /// Seals the forming batch of `key` into one job and queues it.
    fn seal(st: &mut State, key: &(Arc<str>, String)) {
        let Some(b) = st.forming.remove(key) else {
            return;
        };
        let mut jobs = b.jobs.into_iter();
        let Some(mut leader) = jobs.next() else {
            return;
        };
        leader.batched = true;
        leader.members = jobs.collect();
        Self::push_ready_now(st, leader);
    }

    /// Takes a task (and its batch's members) out of the window; it stays open in the store.
    fn drop_resident(st: &mut State, job: &Job) {
        for j in std::iter::once(job).chain(job.members.iter()) {
            if st.resident_rows.remove(&j.row) {
                st.resident_bytes = st.resident_bytes.saturating_sub(j.cost());
                if let Some(f) = st.functions.get_mut(&j.function) {
                    f.resident = f.resident.saturating_sub(1);
                }
            }
            if st.refilling {
                st.released_during_refill.insert(j.row);
            }
        }
    }

    fn push_ready_now(st: &mut State, job: Job) {
        let name = job.function.clone();
        let f = st.functions.entry(name.clone()).or_default();
        f.ready.push_back(job);
        if !f.queued {
            f.queued = true;
            st.rotation.push_back(name);
        }
    }

    /// Moves due timers to their ready queues, then takes what may start now: round robin over
    /// functions with ready tasks, within the total and per-function running limits.
    pub fn take_startable(&self, now_ms: i64) -> Vec<Job> {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.stopping {
            return Vec::new();
        }
        while let Some(entry) = st.timers.first_entry() {
            if entry.key().0 > now_ms {
                break;
            }
            let key = *entry.key();
            let job = entry.remove();
            if let Some(f) = st.functions.get_mut(&job.function) {
                f.timers.remove(&key);
            }
            Self::push_ready(st, job, now_ms);
        }
        let due: Vec<(Arc<str>, String)> = st
            .forming
            .iter()
            .filter(|(_, b)| b.due_ms <= now_ms)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            Self::seal(st, &key);
        }
        let mut out = Vec::new();
        // Each function in the rotation is looked at until none can start more.
        let mut blocked = 0;
        while st.running < self.limits.in_flight && blocked < st.rotation.len() {
            let Some(name) = st.rotation.pop_front() else {
                break;
            };
            let per_fn = self.limits.in_flight_per_function;
            let f = st
                .functions
                .get_mut(&name)
                .expect("rotation names a known function");
            if f.running >= per_fn {
                st.rotation.push_back(name);
                blocked += 1;
                continue;
            }
            let Some(job) = f.ready.pop_front() else {
                f.queued = false;
                continue;
            };
            let held = job
                .trigger
                .as_deref()
                .and_then(|t| st.held_by.get(&job.function)?.get(t))
                .is_some_and(|holder| *holder != job.row);
            if held {
                // Its trigger is blocked: it leaves the window and waits in the store.
                if f.ready.is_empty() {
                    f.queued = false;
                } else {
                    st.rotation.push_back(name);
                }
                Self::drop_resident(st, &job);
                continue;
            }
            f.running += 1;
            if f.ready.is_empty() {
                f.queued = false;
            } else {
                st.rotation.push_back(name);
            }
            st.running += 1;
            blocked = 0;
            out.push(job);
        }
        out
    }

    /// Blocks `trigger` of `function` on the task in `row` (kept if another already holds it).
    pub fn block(&self, function: &Arc<str>, trigger: &str, row: i64) {
        self.lock()
            .held_by
            .entry(function.clone())
            .or_default()
            .entry(trigger.to_string())
            .or_insert(row);
    }

    /// The row holding `trigger`'s block, if it is blocked.
    pub fn block_holder(&self, function: &str, trigger: &str) -> Option<i64> {
        self.lock().held_by.get(function)?.get(trigger).copied()
    }

    /// Lifts `trigger`'s block (only if `row` holds it, when given). Its held tasks are read
    /// back from the store by the next refill. Returns whether a block was lifted.
    pub fn unblock(&self, function: &str, trigger: &str, row: Option<i64>) -> bool {
        let mut st = self.lock();
        let Some(m) = st.held_by.get_mut(function) else {
            return false;
        };
        if row.is_some_and(|r| m.get(trigger) != Some(&r)) || m.remove(trigger).is_none() {
            return false;
        }
        if m.is_empty() {
            st.held_by.remove(function);
        }
        let f = st.functions.entry(Arc::from(function)).or_default();
        f.spilled = true;
        f.spill_gen += 1;
        true
    }

    /// A task of a blocked trigger that is not its holder (the refill leaves it in the store).
    pub fn is_held(&self, function: &str, trigger: Option<&str>, row: i64) -> bool {
        self.lock().is_held(function, trigger, row)
    }

    /// Makes the waiting task in `row` due now (a blocked trigger was updated).
    pub fn retry_now(&self, row: i64, now_ms: i64) -> bool {
        let mut st = self.lock();
        let Some(key) = st.timers.keys().find(|(_, r)| *r == row).copied() else {
            return false;
        };
        let Some(mut job) = st.timers.remove(&key) else {
            return false;
        };
        if let Some(f) = st.functions.get_mut(&job.function) {
            f.timers.remove(&key);
        }
        job.next_ms = now_ms;
        Self::push_ready(&mut st, job, now_ms);
        true
    }

    /// When the earliest timer is due.
    pub fn next_due(&self) -> Option<i64> {
        let st = self.lock();
        let timer = st.timers.keys().next().map(|(t, _)| *t);
        let batch = st.forming.values().map(|b| b.due_ms).min();
        match (timer, batch) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sets (or, with `None`, removes) the batch window of an `event-streaming` trigger. A batch
    /// forming under a removed window is sealed at once.
    pub fn set_window(&self, function: &str, trigger: &str, window: Option<Window>) {
        let mut guard = self.lock();
        let st = &mut *guard;
        match window {
            Some(w) => {
                st.windows
                    .entry(Arc::from(function))
                    .or_default()
                    .insert(trigger.to_string(), w);
            }
            None => {
                if let Some(m) = st.windows.get_mut(function) {
                    m.remove(trigger);
                    if m.is_empty() {
                        st.windows.remove(function);
                    }
                }
                Self::seal(st, &(Arc::from(function), trigger.to_string()));
            }
        }
    }

    /// An attempt ended: its running slot is free. A retry stays resident, waiting in the
    /// timers until `job.next_ms`.
    pub fn attempt_ended(&self, function: &Arc<str>, retry: Option<Job>) {
        let mut st = self.lock();
        st.running = st.running.saturating_sub(1);
        if let Some(f) = st.functions.get_mut(function) {
            f.running = f.running.saturating_sub(1);
        }
        if let Some(job) = retry {
            if st.stopping {
                return;
            }
            Self::push_timer(&mut st, job);
        }
    }

    /// The task's final record has committed (or shutdown gave up on it): it leaves the window.
    pub fn release(&self, function: &Arc<str>, row: i64, cost: usize) {
        let mut st = self.lock();
        if st.resident_rows.remove(&row) {
            st.resident_bytes = st.resident_bytes.saturating_sub(cost);
            if let Some(f) = st.functions.get_mut(function) {
                f.resident = f.resident.saturating_sub(1);
            }
        }
        if st.refilling {
            st.released_during_refill.insert(row);
        }
    }

    /// Which spilled functions have room to refill, and how much. `None` while another refill
    /// runs or nothing needs one.
    pub fn plan_refill(&self) -> Option<RefillPlan> {
        let mut st = self.lock();
        if st.refilling || st.stopping {
            return None;
        }
        let total_room = self.limits.window.saturating_sub(st.resident_rows.len());
        let per_fn = self.limits.window_per_function;
        let mut functions = Vec::new();
        for (name, f) in &st.functions {
            // Refill at half empty, so a draining window is topped up before it runs dry.
            if f.spilled && f.resident <= per_fn / 2 {
                let room = (per_fn - f.resident).min(total_room);
                if room > 0 {
                    functions.push((name.clone(), room, f.spill_gen));
                }
            }
        }
        if functions.is_empty() {
            return None;
        }
        st.refilling = true;
        st.released_during_refill.clear();
        Some(RefillPlan { functions })
    }

    /// Rows of `function` resident now (the refill skips them in the store).
    pub fn is_resident(&self, row: i64) -> bool {
        self.lock().resident_rows.contains(&row)
    }

    /// Admits what a refill read. `exhausted` says the store had no more open tasks of the
    /// function beyond what was read; then, unless it spilled again meanwhile, it is no longer
    /// spilled.
    pub fn refilled(
        &self,
        function: &Arc<str>,
        jobs: Vec<Job>,
        exhausted: bool,
        generation: u64,
        now_ms: i64,
    ) {
        let mut st = self.lock();
        for job in jobs {
            if st.released_during_refill.contains(&job.row) {
                continue;
            }
            Self::admit_locked(&self.limits, &mut st, job, now_ms);
        }
        if exhausted
            && let Some(f) = st.functions.get_mut(function)
            && f.spill_gen == generation
        {
            f.spilled = false;
        }
    }

    pub fn refill_done(&self) {
        let mut st = self.lock();
        st.refilling = false;
        st.released_during_refill.clear();
    }

    /// Stops starting and admitting work; timers and ready queues are dropped (their tasks are
    /// open in the store, where the next start finds them).
    pub fn stop(&self) {
        let mut st = self.lock();
        st.stopping = true;
        st.timers.clear();
        st.rotation.clear();
        st.forming.clear();
        for f in st.functions.values_mut() {
            f.ready.clear();
            f.timers.clear();
        }
    }

    pub fn running(&self) -> usize {
        self.lock().running
    }

    /// Resident tasks and their payload bytes (stats and tests).
    pub fn resident(&self) -> (usize, usize) {
        let st = self.lock();
        (st.resident_rows.len(), st.resident_bytes)
    }
}

pub(crate) fn cost_of(job: &Job) -> usize {
    job.cost()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(row: i64, function: &str, next_ms: i64) -> Job {
        Job {
            row,
            task_id: format!("t{row}"),
            function: Arc::from(function),
            qualifier: "LATEST".into(),
            trigger: None,
            event_seq: None,
            payload: Bytes::from_static(b"{}"),
            payload_from_event: false,
            created_ms: 0,
            next_ms,
            function_errors: 0,
            platform_errors: 0,
            attempts: 0,
            hops: 0,
            batched: false,
            members: Vec::new(),
        }
    }

    fn limits() -> Limits {
        Limits {
            window_per_function: 4,
            window: 10,
            window_bytes: 1 << 20,
            in_flight: 3,
            in_flight_per_function: 2,
        }
    }

    #[test]
    fn a_backlogged_function_spills_and_others_still_start() {
        let s = Scheduler::new(limits());
        let admitted = (0..100).filter(|i| s.admit(job(*i, "slow", 0), 0)).count();
        assert_eq!(admitted, 4, "only the function's window is resident");
        assert!(s.admit(job(1000, "fast", 0), 0));
        let started = s.take_startable(0);
        let names: Vec<&str> = started.iter().map(|j| &*j.function).collect();
        // Two of "slow" (its per-function limit) and the one of "fast", in turn.
        assert_eq!(names, ["slow", "fast", "slow"]);
        // Nothing more may start while those run.
        assert!(s.take_startable(0).is_empty());
        let plan = s.plan_refill();
        assert!(plan.is_none(), "slow's window is still more than half full");
    }

    #[test]
    fn retries_wait_in_the_timers_and_are_due_in_order() {
        let s = Scheduler::new(limits());
        s.admit(job(1, "f", 0), 0);
        let mut j = s.take_startable(0).pop().unwrap();
        j.next_ms = 500;
        s.attempt_ended(&j.function.clone(), Some(j));
        assert!(s.take_startable(499).is_empty());
        assert_eq!(s.next_due(), Some(500));
        let due = s.take_startable(500);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].row, 1);
    }

    #[test]
    fn refill_is_planned_when_a_spilled_window_drains_and_skips_released_rows() {
        let s = Scheduler::new(limits());
        for i in 0..6 {
            s.admit(job(i, "f", 0), 0);
        }
        let f: Arc<str> = Arc::from("f");
        for j in s.take_startable(0) {
            s.attempt_ended(&f, None);
            s.release(&f, j.row, cost_of(&j));
        }
        // 4 were resident, 2 ran and left: 2 resident, half of the window: refill.
        let plan = s.plan_refill().expect("refill planned");
        assert_eq!(plan.functions.len(), 1);
        let (_, room, generation) = plan.functions[0].clone();
        assert_eq!(room, 2);
        s.release(&f, 2, cost_of(&job(2, "f", 0))); // finished while the refill reads
        s.refilled(
            &f,
            vec![job(2, "f", 0), job(4, "f", 0)],
            true,
            generation,
            0,
        );
        s.refill_done();
        let (resident, _) = s.resident();
        assert_eq!(
            resident, 2,
            "row 2 was released during the refill and is not re-admitted"
        );
        assert!(s.is_resident(4));
    }

    #[test]
    fn work_due_now_displaces_later_retries_from_a_full_window() {
        let s = Scheduler::new(limits());
        for i in 0..4 {
            assert!(s.admit(job(i, "f", 10_000 + i), 0), "retries due later");
        }
        // The window of "f" is full of retries; a task due now takes the latest one's place.
        assert!(s.admit(job(100, "f", 0), 0));
        assert!(s.is_resident(100));
        assert!(!s.is_resident(3), "the latest retry went back to the store");
        assert_eq!(s.resident().0, 4);
        let started = s.take_startable(0);
        assert_eq!(started.iter().map(|j| j.row).collect::<Vec<_>>(), [100]);
        // A task due after every waiting retry does not displace one.
        assert!(!s.admit(job(101, "f", 99_999), 0));
        // The evicted retry is read back once room frees up.
        let plan = s.plan_refill();
        assert!(plan.is_none(), "window still full");
    }

    #[test]
    fn byte_budget_bounds_the_window() {
        let mut l = limits();
        l.window_bytes = 1500;
        let s = Scheduler::new(l);
        let mut big = job(1, "f", 0);
        big.payload = Bytes::from(vec![b'x'; 900]);
        assert!(s.admit(big, 0));
        let mut big2 = job(2, "g", 0);
        big2.payload = Bytes::from(vec![b'x'; 900]);
        assert!(!s.admit(big2, 0), "over the byte budget: spilled");
    }

    #[test]
    fn a_blocked_trigger_holds_its_other_tasks_until_unblocked() {
        let s = Scheduler::new(limits());
        let f: Arc<str> = Arc::from("f");
        let with = |row, trigger: &str| {
            let mut j = job(row, "f", 0);
            j.trigger = Some(trigger.into());
            j
        };
        s.block(&f, "t", 1);
        assert!(s.is_held("f", Some("t"), 2));
        assert!(!s.is_held("f", Some("t"), 1), "the holder itself runs");
        assert!(!s.is_held("f", Some("u"), 2));
        s.admit(with(2, "t"), 0);
        s.admit(with(3, "u"), 0);
        s.admit(with(1, "t"), 0);
        let rows: Vec<i64> = s.take_startable(0).iter().map(|j| j.row).collect();
        assert_eq!(rows, [3, 1], "row 2 is held");
        assert!(
            !s.is_resident(2),
            "a held task waits in the store, not in memory"
        );
        assert!(s.plan_refill().is_none());
        assert!(!s.unblock("f", "t", Some(7)), "only the holder lifts it");
        assert!(s.unblock("f", "t", Some(1)));
        assert!(!s.is_held("f", Some("t"), 2));
        // The function is read again from the store.
        assert!(s.plan_refill().is_some());
    }

    #[test]
    fn retry_now_makes_a_waiting_task_due() {
        let s = Scheduler::new(limits());
        s.admit(job(1, "f", 0), 0);
        let mut j = s.take_startable(0).pop().unwrap();
        j.next_ms = 60_000;
        s.attempt_ended(&j.function.clone(), Some(j));
        assert!(s.take_startable(10).is_empty());
        assert!(s.retry_now(1, 10));
        assert_eq!(s.take_startable(10).len(), 1);
        assert!(!s.retry_now(1, 10));
    }

    fn streaming(s: &Scheduler, count: usize, wait_ms: i64) {
        s.set_window("f", "t", Some(Window { count, wait_ms }));
    }

    fn on_t(row: i64, due: i64) -> Job {
        let mut j = job(row, "f", due);
        j.trigger = Some("t".into());
        j
    }

    fn rows(b: &Job) -> Vec<i64> {
        std::iter::once(b.row)
            .chain(b.members.iter().map(|m| m.row))
            .collect()
    }

    #[test]
    fn batches_are_cut_by_count() {
        let mut l = limits();
        l.window_per_function = 100;
        l.window = 100;
        let s = Scheduler::new(l);
        streaming(&s, 3, 10_000);
        for i in 0..7 {
            assert!(s.admit(on_t(i, 0), 0));
        }
        let got = s.take_startable(0);
        assert_eq!(
            got.iter().map(rows).collect::<Vec<_>>(),
            [vec![0, 1, 2], vec![3, 4, 5]]
        );
        assert!(got.iter().all(|b| b.batched));
        // The seventh waits for more, or for the time window.
        assert_eq!(s.next_due(), Some(10_000));
        let f: Arc<str> = Arc::from("f");
        s.attempt_ended(&f, None);
        s.attempt_ended(&f, None);
        assert!(s.take_startable(9_999).is_empty());
        let last = s.take_startable(10_000);
        assert_eq!(last.iter().map(rows).collect::<Vec<_>>(), [vec![6]]);
        assert!(last[0].batched, "a batch of one is still a batch");
        // Tasks of other triggers (or none) of the function are not batched.
        assert!(s.admit(job(50, "f", 0), 0));
        let single = s.take_startable(10_000);
        assert_eq!(single.len(), 1);
        assert!(!single[0].batched && single[0].members.is_empty());
    }

    #[test]
    fn batches_are_cut_by_time_on_the_callers_clock() {
        let mut l = limits();
        l.window_per_function = 100;
        l.window = 100;
        let s = Scheduler::new(l);
        streaming(&s, 100, 1_000);
        s.admit(on_t(1, 0), 0);
        s.admit(on_t(2, 0), 0);
        assert!(s.take_startable(500).is_empty());
        s.admit(on_t(3, 600), 600);
        assert_eq!(s.next_due(), Some(1_000));
        assert!(s.take_startable(999).is_empty());
        let got = s.take_startable(1_000);
        assert_eq!(got.iter().map(rows).collect::<Vec<_>>(), [vec![1, 2, 3]]);
        // The next batch opens with the next task.
        s.admit(on_t(4, 1_500), 1_500);
        assert_eq!(s.next_due(), Some(2_500));
        // A window of 0 s sends whatever was ready together at the next look.
        streaming(&s, 100, 0);
        s.admit(on_t(5, 1_500), 1_500);
        let f: Arc<str> = Arc::from("f");
        s.attempt_ended(&f, None);
        let got = s.take_startable(2_500);
        assert_eq!(got.iter().map(rows).collect::<Vec<_>>(), [vec![4, 5]]);
    }

    #[test]
    fn a_failed_batch_is_retried_whole_and_removing_the_window_flushes() {
        let mut l = limits();
        l.window_per_function = 100;
        l.window = 100;
        let s = Scheduler::new(l);
        streaming(&s, 2, 60_000);
        for i in 0..3 {
            s.admit(on_t(i, 0), 0);
        }
        let mut b = s.take_startable(0).pop().unwrap();
        assert_eq!(rows(&b), [0, 1]);
        b.next_ms = 5_000;
        let f: Arc<str> = Arc::from("f");
        s.attempt_ended(&f, Some(b));
        assert_eq!(s.next_due(), Some(5_000));
        let again = s.take_startable(5_000);
        assert_eq!(again.iter().map(rows).collect::<Vec<_>>(), [vec![0, 1]]);
        // The trigger leaves streaming mode: its forming batch goes at once.
        s.set_window("f", "t", None);
        let rest = s.take_startable(5_000);
        assert_eq!(rest.iter().map(rows).collect::<Vec<_>>(), [vec![2]]);
    }
}
