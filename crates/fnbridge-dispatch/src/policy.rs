//! The retry policy as data: given what happened to an attempt, say what to do next.
//!
//! FC's async semantics (delivery.md §1): function errors are retried up to
//! `maxAsyncRetryAttempts` times (default 3), every retry inside `maxAsyncEventAgeInSeconds`
//! (default 86400) from acceptance. FC does not document the wait between retries; fnbridge waits
//! `base * 2^(n-1)` (n = retries so far + 1) with ±20% jitter, capped at `max`: with the default
//! base of 1 s that is about 1 s, 2 s, 4 s. fnbridge's own internal errors are retried the same way
//! without spending the function's retry budget, because an accepted event must not be lost.
//!
//! `eventbridge` triggers retry by their own `retryStrategy` instead (delivery.md §3): the two
//! push schedules are the tables [`BACKOFF_RETRY`] and [`EXPONENTIAL_DECAY_RETRY`], decided by
//! [`decide_push`]. With `errorsTolerance: NONE` (the default) an event that runs out of
//! retries or time is not dropped: [`RetryAction::Block`] keeps retrying it on the schedule
//! (continuing at its last interval) while its trigger holds every later event.

use std::time::Duration;

use fnbridge_event::eventbridge::{PushRetryStrategy, RunOptions};
use serde::{Deserialize, Serialize};

/// Per function and qualifier, from PutAsyncInvokeConfig.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AsyncPolicy {
    pub max_retries: u32,
    pub max_age: Duration,
    /// `acs:fc:…:functions/{name}` destinations, resolved by the dispatcher.
    pub on_success: Option<String>,
    pub on_failure: Option<String>,
}

pub const DEFAULT_MAX_RETRIES: u32 = 3;
pub const DEFAULT_MAX_AGE_S: u64 = 86_400;

impl Default for AsyncPolicy {
    fn default() -> Self {
        AsyncPolicy {
            max_retries: DEFAULT_MAX_RETRIES,
            max_age: Duration::from_secs(DEFAULT_MAX_AGE_S),
            on_success: None,
            on_failure: None,
        }
    }
}

/// Backoff between retries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The wait before retry number `n` (1-based). `jitter` is a sample in [0, 1).
    pub fn delay(&self, n: u32, jitter: f64) -> Duration {
        let exp = self.base.as_secs_f64() * 2f64.powi(n.saturating_sub(1).min(30) as i32);
        let capped = exp.min(self.max.as_secs_f64());
        let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
        Duration::from_secs_f64((capped * factor).min(self.max.as_secs_f64()))
    }
}

/// How an attempt ended, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    Success,
    /// The function failed (error, timeout, crash, out of memory): spends the retry budget.
    FunctionError,
    /// fnbridge could not run the function (cannot start a worker, function missing): retried
    /// within the maximum age without spending the budget.
    PlatformError,
}

/// What to do with a task after an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RetryAction {
    Succeeded,
    Retry {
        after: Duration,
    },
    /// Out of retries (or out of time): dead-letter it with this reason.
    DeadLetter {
        reason: DeadLetterReason,
    },
    /// Out of retries (or out of time) on an `eventbridge` trigger that tolerates no errors:
    /// retry after `after` while the trigger holds its later events.
    Block {
        after: Duration,
        reason: DeadLetterReason,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DeadLetterReason {
    RetriesExhausted,
    EventAgeExceeded,
}

impl DeadLetterReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::RetriesExhausted => "RetriesExhausted",
            DeadLetterReason::EventAgeExceeded => "EventAgeExceeded",
        }
    }
}

/// Decides the next step. `function_errors` counts failed attempts that spent the budget,
/// including this one; `age` is the time since the event was accepted, measured now.
pub fn decide(
    policy: &AsyncPolicy,
    backoff: &Backoff,
    result: AttemptResult,
    function_errors: u32,
    platform_errors: u32,
    age: Duration,
    jitter: f64,
) -> RetryAction {
    let retry_no = match result {
        AttemptResult::Success => return RetryAction::Succeeded,
        AttemptResult::FunctionError => {
            if function_errors > policy.max_retries {
                return RetryAction::DeadLetter {
                    reason: DeadLetterReason::RetriesExhausted,
                };
            }
            function_errors
        }
        AttemptResult::PlatformError => platform_errors,
    };
    let after = backoff.delay(retry_no, jitter);
    if age + after > policy.max_age {
        return RetryAction::DeadLetter {
            reason: DeadLetterReason::EventAgeExceeded,
        };
    }
    RetryAction::Retry { after }
}

/// The wait before a push retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushDelay {
    /// A whole number of seconds drawn uniformly from `lo..=hi`.
    Uniform { lo_s: u64, hi_s: u64 },
    /// Retry n waits `steps[n-1]` seconds, and `then` seconds once the steps are used up.
    Table { steps: &'static [u64], then: u64 },
}

/// An EventBridge push retry schedule: how many retries, and the wait before each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushSchedule {
    pub retries: u32,
    pub delay: PushDelay,
}

/// `BACKOFF_RETRY`: up to 3 retries, each after a uniform random 10-20 s.
pub const BACKOFF_RETRY: PushSchedule = PushSchedule {
    retries: 3,
    delay: PushDelay::Uniform { lo_s: 10, hi_s: 20 },
};

/// `EXPONENTIAL_DECAY_RETRY`: up to 176 retries, 1, 2, 4, ... 256 s, then 512 s for the
/// remaining 167 (86,015 s in all, "one day").
pub const EXPONENTIAL_DECAY_RETRY: PushSchedule = PushSchedule {
    retries: 176,
    delay: PushDelay::Table {
        steps: &[1, 2, 4, 8, 16, 32, 64, 128, 256],
        then: 512,
    },
};

impl PushSchedule {
    pub fn of(strategy: PushRetryStrategy) -> PushSchedule {
        match strategy {
            PushRetryStrategy::BackoffRetry => BACKOFF_RETRY,
            PushRetryStrategy::ExponentialDecayRetry => EXPONENTIAL_DECAY_RETRY,
        }
    }

    /// The wait before retry `n` (1-based); `sample` is uniform in [0, 1).
    pub fn delay(&self, n: u32, sample: f64) -> Duration {
        let secs = match self.delay {
            PushDelay::Uniform { lo_s, hi_s } => {
                let span = (hi_s - lo_s + 1) as f64;
                lo_s + ((sample.clamp(0.0, 1.0) * span) as u64).min(hi_s - lo_s)
            }
            PushDelay::Table { steps, then } => steps
                .get(n.saturating_sub(1) as usize)
                .copied()
                .unwrap_or(then),
        };
        Duration::from_secs(secs)
    }
}

/// An `eventbridge` trigger's retry policy: its schedule, and the optional
/// `MaximumRetryAttempts`/`MaximumEventAgeInSeconds` (whichever limit comes first).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PushPolicy {
    pub schedule: PushSchedule,
    pub max_retries: Option<u32>,
    pub max_age: Option<Duration>,
    /// `errorsTolerance: NONE`: an exhausted event blocks its trigger instead of leaving.
    pub block_on_exhaustion: bool,
}

impl PushPolicy {
    pub fn from_options(o: &RunOptions) -> PushPolicy {
        PushPolicy {
            schedule: PushSchedule::of(o.strategy),
            max_retries: o.max_retries,
            max_age: o.max_age_s.map(Duration::from_secs),
            block_on_exhaustion: !o.tolerate_all,
        }
    }
}

/// [`decide`] for an `eventbridge` trigger: function errors spend the schedule's retries;
/// platform errors are retried on the same schedule without spending them, within the age limit.
/// When the limits are reached, `ALL` dead-letters the event and `NONE` blocks on it: it is
/// retried after the schedule's next wait (its last interval, once the table is used up).
pub fn decide_push(
    p: &PushPolicy,
    result: AttemptResult,
    function_errors: u32,
    platform_errors: u32,
    age: Duration,
    sample: f64,
) -> RetryAction {
    match decide_push_limits(p, result, function_errors, platform_errors, age, sample) {
        RetryAction::DeadLetter { reason } if p.block_on_exhaustion => {
            let n = match result {
                AttemptResult::PlatformError => platform_errors,
                _ => function_errors,
            };
            RetryAction::Block {
                after: p.schedule.delay(n.max(1), sample),
                reason,
            }
        }
        other => other,
    }
}

fn decide_push_limits(
    p: &PushPolicy,
    result: AttemptResult,
    function_errors: u32,
    platform_errors: u32,
    age: Duration,
    sample: f64,
) -> RetryAction {
    let retries = p
        .max_retries
        .map_or(p.schedule.retries, |m| m.min(p.schedule.retries));
    let retry_no = match result {
        AttemptResult::Success => return RetryAction::Succeeded,
        AttemptResult::FunctionError => {
            if function_errors > retries {
                return RetryAction::DeadLetter {
                    reason: DeadLetterReason::RetriesExhausted,
                };
            }
            function_errors
        }
        AttemptResult::PlatformError => platform_errors,
    };
    let after = p.schedule.delay(retry_no, sample);
    if p.max_age.is_some_and(|max| age + after > max) {
        return RetryAction::DeadLetter {
            reason: DeadLetterReason::EventAgeExceeded,
        };
    }
    RetryAction::Retry { after }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn backoff_doubles_with_bounded_jitter_and_cap() {
        let b = Backoff {
            base: S(1),
            max: S(10),
        };
        assert_eq!(b.delay(1, 0.5), S(1));
        assert_eq!(b.delay(2, 0.5), S(2));
        assert_eq!(b.delay(3, 0.5), S(4));
        assert_eq!(b.delay(3, 0.0), Duration::from_secs_f64(3.2));
        assert_eq!(b.delay(3, 1.0).as_millis(), 4800);
        assert_eq!(b.delay(10, 0.5), S(10));
        assert_eq!(b.delay(u32::MAX, 1.0), S(10));
    }

    #[test]
    fn function_errors_spend_the_budget_then_dead_letter() {
        let p = AsyncPolicy::default();
        let b = Backoff::default();
        let r = |n| decide(&p, &b, AttemptResult::FunctionError, n, 0, S(0), 0.5);
        assert_eq!(r(1), RetryAction::Retry { after: S(1) });
        assert_eq!(r(2), RetryAction::Retry { after: S(2) });
        assert_eq!(r(3), RetryAction::Retry { after: S(4) });
        assert_eq!(
            r(4),
            RetryAction::DeadLetter {
                reason: DeadLetterReason::RetriesExhausted
            }
        );
    }

    #[test]
    fn zero_retries_dead_letters_at_once() {
        let p = AsyncPolicy {
            max_retries: 0,
            ..Default::default()
        };
        let a = decide(
            &p,
            &Backoff::default(),
            AttemptResult::FunctionError,
            1,
            0,
            S(0),
            0.5,
        );
        assert_eq!(
            a,
            RetryAction::DeadLetter {
                reason: DeadLetterReason::RetriesExhausted
            }
        );
    }

    #[test]
    fn age_limit_wins_over_remaining_retries() {
        let p = AsyncPolicy {
            max_age: S(60),
            ..Default::default()
        };
        let b = Backoff::default();
        assert_eq!(
            decide(
                &p,
                &b,
                AttemptResult::FunctionError,
                1,
                0,
                Duration::from_millis(59_500),
                0.5
            ),
            RetryAction::DeadLetter {
                reason: DeadLetterReason::EventAgeExceeded
            }
        );
        assert_eq!(
            decide(&p, &b, AttemptResult::PlatformError, 0, 7, S(0), 0.5),
            RetryAction::DeadLetter {
                reason: DeadLetterReason::EventAgeExceeded
            }
        );
    }

    #[test]
    fn platform_errors_do_not_spend_the_budget() {
        let p = AsyncPolicy::default();
        let a = decide(
            &p,
            &Backoff::default(),
            AttemptResult::PlatformError,
            3,
            1,
            S(0),
            0.5,
        );
        assert_eq!(a, RetryAction::Retry { after: S(1) });
    }

    #[test]
    fn success_is_final() {
        let a = decide(
            &AsyncPolicy::default(),
            &Backoff::default(),
            AttemptResult::Success,
            9,
            9,
            S(999_999),
            0.5,
        );
        assert_eq!(a, RetryAction::Succeeded);
    }

    /// Runs a push policy against a fake clock: every attempt fails at once, the clock jumps by
    /// each wait. Returns the seconds at which each retry starts and the reason it stopped.
    fn run_push(p: &PushPolicy, samples: &mut dyn FnMut() -> f64) -> (Vec<u64>, RetryAction) {
        let mut clock = Duration::ZERO;
        let mut at = Vec::new();
        let mut errors = 0;
        loop {
            errors += 1;
            match decide_push(p, AttemptResult::FunctionError, errors, 0, clock, samples()) {
                RetryAction::Retry { after } => {
                    clock += after;
                    at.push(clock.as_secs());
                }
                other => return (at, other),
            }
        }
    }

    #[test]
    fn exponential_decay_schedule_to_the_second() {
        let p = PushPolicy::from_options(&RunOptions {
            enabled: true,
            schema: fnbridge_event::eventbridge::EventSchema::CloudEvents,
            strategy: PushRetryStrategy::ExponentialDecayRetry,
            max_retries: None,
            max_age_s: None,
            tolerate_all: true,
            bus: "default".into(),
            dead_letter_bus: None,
            asynchronous: false,
            batch: None,
        });
        let (at, end) = run_push(&p, &mut || 0.5);
        assert_eq!(at.len(), 176);
        assert_eq!(&at[..11], &[1, 3, 7, 15, 31, 63, 127, 255, 511, 1023, 1535]);
        assert!(at.windows(2).skip(9).all(|w| w[1] - w[0] == 512));
        assert_eq!(*at.last().unwrap(), 86_015);
        assert_eq!(
            end,
            RetryAction::DeadLetter {
                reason: DeadLetterReason::RetriesExhausted
            }
        );
        // MaximumRetryAttempts and MaximumEventAgeInSeconds: whichever comes first.
        let capped = PushPolicy {
            max_retries: Some(5),
            ..p
        };
        assert_eq!(run_push(&capped, &mut || 0.5).0, vec![1, 3, 7, 15, 31]);
        let aged = PushPolicy {
            max_age: Some(S(100)),
            ..p
        };
        let (at, end) = run_push(&aged, &mut || 0.5);
        assert_eq!(at, vec![1, 3, 7, 15, 31, 63]);
        assert_eq!(
            end,
            RetryAction::DeadLetter {
                reason: DeadLetterReason::EventAgeExceeded
            }
        );
    }

    #[test]
    fn backoff_schedule_to_the_second() {
        let p = PushPolicy {
            schedule: BACKOFF_RETRY,
            max_retries: None,
            max_age: None,
            block_on_exhaustion: false,
        };
        // The extremes of the sample give exactly 10 s and 20 s.
        assert_eq!(run_push(&p, &mut || 0.0).0, vec![10, 20, 30]);
        assert_eq!(run_push(&p, &mut || 0.999_999).0, vec![20, 40, 60]);
        // Whole seconds, each 10-20 s, three retries, every value reachable.
        let mut seen = std::collections::BTreeSet::new();
        let mut x = 0.0f64;
        for _ in 0..200 {
            let (at, end) = run_push(&p, &mut || {
                x = (x + 0.618_033_988_75) % 1.0;
                x
            });
            assert_eq!(at.len(), 3);
            assert!(matches!(end, RetryAction::DeadLetter { .. }));
            let mut prev = 0;
            for t in at {
                assert!((10..=20).contains(&(t - prev)), "{}", t - prev);
                seen.insert(t - prev);
                prev = t;
            }
        }
        assert_eq!(seen.len(), 11);
    }

    #[test]
    fn errors_tolerance_none_blocks_and_keeps_retrying_at_the_last_interval() {
        let p = PushPolicy {
            schedule: EXPONENTIAL_DECAY_RETRY,
            max_retries: Some(2),
            max_age: Some(S(100)),
            block_on_exhaustion: true,
        };
        let f = |n, age| decide_push(&p, AttemptResult::FunctionError, n, 0, S(age), 0.5);
        assert_eq!(f(2, 0), RetryAction::Retry { after: S(2) });
        // Out of retries: blocked, retried on the schedule (4 s for the third wait) ...
        assert_eq!(
            f(3, 0),
            RetryAction::Block {
                after: S(4),
                reason: DeadLetterReason::RetriesExhausted
            }
        );
        // ... which continues at its last interval, 512 s, however long it fails.
        assert_eq!(
            f(500, 0),
            RetryAction::Block {
                after: S(512),
                reason: DeadLetterReason::RetriesExhausted
            }
        );
        assert_eq!(
            f(1, 100),
            RetryAction::Block {
                after: S(1),
                reason: DeadLetterReason::EventAgeExceeded
            }
        );
        assert_eq!(
            decide_push(&p, AttemptResult::Success, 900, 0, S(9999), 0.5),
            RetryAction::Succeeded
        );
        // ALL dead-letters instead.
        let all = PushPolicy {
            block_on_exhaustion: false,
            ..p
        };
        assert!(matches!(
            decide_push(&all, AttemptResult::FunctionError, 3, 0, S(0), 0.5),
            RetryAction::DeadLetter { .. }
        ));
    }
}
