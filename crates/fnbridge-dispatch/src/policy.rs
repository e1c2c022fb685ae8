//! The retry policy as data: given what happened to an attempt, say what to do next.
//!
//! FC's async semantics (delivery.md §1): function errors are retried up to
//! `maxAsyncRetryAttempts` times (default 3), every retry inside `maxAsyncEventAgeInSeconds`
//! (default 86400) from acceptance. FC does not document the wait between retries; fnbridge waits
//! `base * 2^(n-1)` (n = retries so far + 1) with ±20% jitter, capped at `max`: with the default
//! base of 1 s that is about 1 s, 2 s, 4 s. fnbridge's own internal errors are retried the same way
//! without spending the function's retry budget, because an accepted event must not be lost.

use std::time::Duration;

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
}
