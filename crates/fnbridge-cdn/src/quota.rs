//! Call-rate quotas of the control plane (cdn.md §2, §6): a sliding window of the times of the
//! calls it admitted, bounded by its limit, read against an injectable clock so tests move time
//! instead of sleeping.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::error::CdnError;

/// At most `limit` calls of `action` in any `window_ms`.
#[derive(Debug)]
pub struct CallWindow {
    action: &'static str,
    limit: usize,
    window_ms: i64,
    /// Admitted calls' times, oldest first; never more than `limit`.
    calls: Mutex<VecDeque<i64>>,
}

impl CallWindow {
    pub fn new(action: &'static str, limit: usize, window_ms: i64) -> CallWindow {
        CallWindow {
            action,
            limit,
            window_ms: window_ms.max(1),
            calls: Mutex::new(VecDeque::with_capacity(limit.min(1024))),
        }
    }

    /// Admits a call at `now_ms`, or refuses it with `Throttling` naming the limit and when the
    /// next call will be admitted.
    pub fn admit(&self, now_ms: i64) -> Result<(), CdnError> {
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        while calls.front().is_some_and(|t| *t <= now_ms - self.window_ms) {
            calls.pop_front();
        }
        if calls.len() >= self.limit {
            let retry_ms = calls
                .front()
                .map(|t| t + self.window_ms - now_ms)
                .unwrap_or(self.window_ms)
                .max(1);
            return Err(CdnError::new(
                400,
                "Throttling",
                format!(
                    "{} is limited to {} calls per {} s; retry in {} s",
                    self.action,
                    self.limit,
                    self.window_ms / 1000,
                    (retry_ms + 999) / 1000
                ),
            ));
        }
        calls.push_back(now_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sliding_window_under_a_fake_clock() {
        let w = CallWindow::new("AddCdnDomain", 3, 3_600_000);
        let t0 = 1_000_000_000;
        w.admit(t0).unwrap();
        w.admit(t0 + 10).unwrap();
        w.admit(t0 + 20).unwrap();
        let e = w.admit(t0 + 30).unwrap_err();
        assert_eq!(e.code, "Throttling");
        assert!(
            e.message
                .contains("AddCdnDomain is limited to 3 calls per 3600 s; retry in 3600 s"),
            "{}",
            e.message
        );
        // A refused call takes no slot; the first one leaves the window an hour after it.
        assert!(w.admit(t0 + 3_599_999).is_err());
        w.admit(t0 + 3_600_000).unwrap();
        assert!(w.admit(t0 + 3_600_005).is_err());
        w.admit(t0 + 3_600_010).unwrap();
        // Long idle: the whole window is free again.
        for i in 0..3 {
            w.admit(t0 + 10 * 3_600_000 + i).unwrap();
        }
        assert!(w.admit(t0 + 10 * 3_600_000 + 5).is_err());
    }

    #[test]
    fn a_zero_limit_refuses_everything() {
        let w = CallWindow::new("DescribeCdnDomainLogs", 0, 1000);
        assert_eq!(w.admit(5).unwrap_err().code, "Throttling");
    }
}
