//! `fnbridge logs`: a function's log records, and `--follow` with reconnection when the server
//! restarts.

use super::*;

/// How long `logs --follow` keeps trying to reach a server that went away before giving up.
pub(super) const FOLLOW_GIVE_UP: Duration = Duration::from_secs(300);

/// The longest wait between two reconnection attempts.
pub(super) const FOLLOW_MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Whether an error is the transport failing (server down or restarting), not an API answer.
pub(super) fn is_transport(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<reqwest::Error>())
}

/// `logs`: prints a function's log records, then (with `--follow`) new ones as they arrive,
/// reconnecting with a bounded backoff when the server restarts.
pub(super) fn logs(c: &Client, a: &LogsArgs) -> anyhow::Result<i32> {
    let path = format!("{V}/functions/{}/logs", seg(&a.function));
    let mut next = String::new();
    let mut printed = 0usize;
    let mut down_since: Option<Instant> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut rb = c.request(Method::GET, &path).query(&[("limit", "1000")]);
        if let Some(r) = &a.request_id {
            rb = rb.query(&[("requestId", r)]);
        }
        if !next.is_empty() {
            rb = rb.query(&[("nextToken", &next)]);
        }
        let v = match c.json(rb) {
            Ok(v) => v,
            Err(e) if a.follow && is_transport(&e) => {
                let since = *down_since.get_or_insert_with(|| {
                    eprintln!("fnbridge: lost the server ({e:#}); reconnecting");
                    Instant::now()
                });
                if since.elapsed() > FOLLOW_GIVE_UP {
                    return Err(e.context(format!(
                        "gave up after {} s without the server",
                        FOLLOW_GIVE_UP.as_secs()
                    )));
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(FOLLOW_MAX_BACKOFF);
                continue;
            }
            Err(e) => return Err(e),
        };
        if down_since.take().is_some() {
            eprintln!("fnbridge: reconnected");
            backoff = Duration::from_millis(100);
        }
        let records = v["logs"].as_array().cloned().unwrap_or_default();
        for r in &records {
            if a.global.json {
                output::json_line(r);
            } else {
                let text = r["text"].as_str().unwrap_or("");
                out!("{text}");
                if !text.ends_with('\n') {
                    outln!();
                }
            }
        }
        printed += records.len();
        output::flush();
        next = v["nextToken"].as_str().unwrap_or("").to_string();
        if records.len() < 1000 {
            if !a.follow {
                if printed == 0
                    && let Some(r) = &a.request_id
                {
                    bail!(
                        "function '{}' has no log record of request '{r}' (see `fnbridge logs {}` for the ids it has)",
                        a.function,
                        a.function
                    );
                }
                return Ok(0);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}
