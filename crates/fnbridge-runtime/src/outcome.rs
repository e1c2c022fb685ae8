//! What an invocation produced: `InvokeOutcome`, and `FunctionError` for how a function failed.

use std::time::Duration;

use bytes::Bytes;

/// How an invocation failed. All of them are `UnhandledInvocationError` to FC clients; the
/// variant says why, for records and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FunctionError {
    /// The handler raised, or the module or handler could not be loaded.
    Unhandled,
    /// The invocation ran past the function's timeout; the instance was killed.
    Timeout,
    /// The instance exited in the middle of the invocation; it was replaced.
    Crashed,
    /// The instance ran out of its memory allowance; it was replaced.
    OutOfMemory,
    /// The initializer failed or timed out; the instance was discarded.
    InitFailed,
    /// A custom-runtime instance could not be started: its command is missing or not
    /// executable, or the process exited or never became ready. The body's `errorType` is FC's
    /// code for it: `CAFileNotFound`, `CAFilePermission` or `CAExited` (FC answers these with
    /// HTTP 412 rather than an `UnhandledInvocationError`; mapping that is the API's business).
    StartFailed,
}

impl FunctionError {
    /// The `x-fc-error-type` header value.
    pub fn error_type(self) -> &'static str {
        "UnhandledInvocationError"
    }

    /// A short stable name for invocation records and metrics.
    pub fn kind(self) -> &'static str {
        match self {
            FunctionError::Unhandled => "unhandled",
            FunctionError::Timeout => "timeout",
            FunctionError::Crashed => "crashed",
            FunctionError::OutOfMemory => "out_of_memory",
            FunctionError::InitFailed => "init_failed",
            FunctionError::StartFailed => "start_failed",
        }
    }
}

impl std::fmt::Display for FunctionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

/// The result of one invocation, successful or not.
#[derive(Debug, Clone)]
pub struct InvokeOutcome {
    pub error: Option<FunctionError>,
    /// The result bytes, or `{"errorMessage","errorType","stackTrace"}` when `error` is set.
    pub body: Bytes,
    /// This invocation's log, markers included (initializer lines first on a cold start).
    pub log: String,
    /// Time the handler ran, from sending the event to receiving the result; queueing, start-up
    /// and the initializer are not included.
    pub duration: Duration,
    pub instance_id: String,
}

/// The error JSON for failures the platform detects itself (timeouts, crashes), in the shape
/// the bootstrap uses for exceptions.
pub(crate) fn platform_error_body(error_type: &str, message: &str) -> Bytes {
    let body = serde_json::json!({
        "errorMessage": message,
        "errorType": error_type,
        "stackTrace": [],
    });
    Bytes::from(body.to_string())
}

/// `3s` → `3`, `1500ms` → `1.5`: the number in "timed out after N seconds".
pub(crate) fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{}", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_seconds_read_naturally() {
        assert_eq!(seconds(Duration::from_secs(3)), "3");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5");
        assert_eq!(seconds(Duration::from_millis(250)), "0.25");
    }

    #[test]
    fn platform_errors_have_the_exception_shape() {
        let body = platform_error_body("FunctionTimeout", "Function timed out after 3 seconds");
        assert_eq!(
            &body[..],
            br#"{"errorMessage":"Function timed out after 3 seconds","errorType":"FunctionTimeout","stackTrace":[]}"#
        );
    }
}
