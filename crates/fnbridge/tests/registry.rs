//! The registry service under concurrency, end to end against the real server: concurrent
//! trigger changes leave the matcher, the caches and the store in agreement; an alias created
//! while its version is deleted never points at a missing version; destination loops are
//! refused at configuration time.

mod common;

use std::collections::BTreeSet;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const NOOP: &str = "def handler(event, context):\n    return 'ok'\n";
const DOMAINS: [&str; 4] = [
    "a.example.com",
    "b.example.com",
    "c.example.com",
    "d.example.com",
];

/// A small deterministic generator, so a failure can be replayed from its seed.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn cdn_config(domain: &str) -> String {
    json!({"eventName": "LogFileCreated", "eventVersion": "1.0.0", "filter": {"domain": [domain]}})
        .to_string()
}

fn event_for(domain: &str) -> Value {
    json!({"events": [{
        "eventName": "LogFileCreated", "eventSource": "cdn", "region": "cn-hangzhou",
        "eventVersion": "1.0.0", "eventTime": "2018-06-14T15:31:49+08:00",
        "traceId": format!("trace-{domain}"), "userIdentity": {"aliUid": "1"},
        "resource": {"domain": domain},
        "eventParameter": {"domain": domain, "startTime": 1, "endTime": 2, "fileSize": 3,
                           "filePath": "http://x/y.gz"}
    }]})
}

#[test]
fn concurrent_trigger_changes_leave_matcher_cache_and_store_in_agreement() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    ok_json(s.deploy("f", &[("index.py", NOOP)], json!({})));
    let base = 0xfeed_u64;
    std::thread::scope(|scope| {
        for worker in 0..4u64 {
            let s = &s;
            scope.spawn(move || {
                let mut rng = Lcg(base + worker);
                for _ in 0..60 {
                    let name = format!("t{}", rng.next(6));
                    let domain = DOMAINS[rng.next(DOMAINS.len() as u64) as usize];
                    let path = format!("/2023-03-30/functions/f/triggers/{name}");
                    let status = match rng.next(3) {
                        0 => s
                            .post(
                                "/2023-03-30/functions/f/triggers",
                                &json!({"triggerName": name, "triggerType": "cdn_events",
                                        "triggerConfig": cdn_config(domain)}),
                            )
                            .status()
                            .as_u16(),
                        1 => s
                            .req(Method::PUT, &path)
                            .json(&json!({"triggerConfig": cdn_config(domain)}))
                            .send()
                            .unwrap()
                            .status()
                            .as_u16(),
                        _ => s
                            .req(Method::DELETE, &path)
                            .send()
                            .unwrap()
                            .status()
                            .as_u16(),
                    };
                    // Only the outcomes a race can produce: done, already there, not there.
                    assert!(
                        [200, 204, 404, 409].contains(&status),
                        "unexpected status {status}"
                    );
                }
            });
        }
    });
    // What the store holds.
    let listed = s.get("/2023-03-30/functions/f/triggers?limit=100");
    let stored: Vec<(String, String)> = listed["triggers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let cfg: Value = serde_json::from_str(t["triggerConfig"].as_str().unwrap()).unwrap();
            (
                t["triggerName"].as_str().unwrap().to_string(),
                cfg["filter"]["domain"][0].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        !stored.is_empty(),
        "the random walk should leave some triggers"
    );
    // What the matcher and the trigger cache do: each domain's event fans out to exactly the
    // stored triggers for that domain.
    for domain in DOMAINS {
        let receipt = ok_json(s.post("/events", &event_for(domain)));
        let task_ids = receipt["events"][0]["taskIds"].as_array().unwrap().clone();
        let matched: BTreeSet<String> = task_ids
            .iter()
            .map(|id| {
                let t = s.get(&format!(
                    "/2023-03-30/functions/f/async-tasks/{}",
                    id.as_str().unwrap()
                ));
                t["triggerName"].as_str().unwrap().to_string()
            })
            .collect();
        let expected: BTreeSet<String> = stored
            .iter()
            .filter(|(_, d)| d == domain)
            .map(|(n, _)| n.clone())
            .collect();
        assert_eq!(matched, expected, "domain {domain}: matcher vs store");
        assert_eq!(
            task_ids.len(),
            expected.len(),
            "one task per matching trigger"
        );
    }
    // And a restart, which builds the index from the store alone, agrees with the live one.
    let mut s = s;
    s.restart();
    let listed_again = s.get("/2023-03-30/functions/f/triggers?limit=100");
    assert_eq!(listed["triggers"], listed_again["triggers"]);
}

#[test]
fn an_alias_never_points_at_a_version_deleted_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    ok_json(s.deploy("f", &[("index.py", NOOP)], json!({})));
    let mut aliased_deleted = 0;
    for round in 0..20 {
        // A fresh version for each round.
        ok_json(
            s.req(Method::PUT, "/2023-03-30/functions/f")
                .json(&json!({"description": format!("round {round}")}))
                .send()
                .unwrap(),
        );
        let v = ok_json(s.post("/2023-03-30/functions/f/versions", &json!({})));
        let vid = v["versionId"].as_str().unwrap().to_string();
        let alias = format!("a{round}");
        let (created, deleted) = std::thread::scope(|scope| {
            let c = scope.spawn(|| {
                s.post(
                    "/2023-03-30/functions/f/aliases",
                    &json!({"aliasName": alias, "versionId": vid}),
                )
                .status()
                .as_u16()
            });
            let d = scope.spawn(|| {
                s.req(
                    Method::DELETE,
                    &format!("/2023-03-30/functions/f/versions/{vid}"),
                )
                .send()
                .unwrap()
                .status()
                .as_u16()
            });
            (c.join().unwrap(), d.join().unwrap())
        });
        // Exactly one of the two wins: an alias to a live version, or a deleted version and a
        // refused alias.
        match (created, deleted) {
            (200, 409) => {
                let a = s.get(&format!("/2023-03-30/functions/f/aliases/{alias}"));
                assert_eq!(a["versionId"], vid.as_str());
                // The version still answers through the alias.
                let r = s
                    .req(
                        Method::POST,
                        &format!("/2023-03-30/functions/f/invocations?qualifier={alias}"),
                    )
                    .body("{}")
                    .send()
                    .unwrap();
                assert_eq!(r.status(), 200);
                assert_eq!(r.text().unwrap(), "ok");
            }
            (400, 204) => aliased_deleted += 1,
            other => panic!("round {round}: alias create / version delete gave {other:?}"),
        }
    }
    // Nothing stored points at a missing version.
    let versions: BTreeSet<String> =
        s.get("/2023-03-30/functions/f/versions?limit=100")["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["versionId"].as_str().unwrap().to_string())
            .collect();
    for a in s.get("/2023-03-30/functions/f/aliases?limit=100")["aliases"]
        .as_array()
        .unwrap()
    {
        assert!(versions.contains(a["versionId"].as_str().unwrap()), "{a}");
    }
    let _ = aliased_deleted;
}

#[test]
fn destination_loops_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    for f in ["a", "b", "c"] {
        ok_json(s.deploy(f, &[("index.py", NOOP)], json!({})));
    }
    let arn = |f: &str| format!("acs:fc:cn-hangzhou:1:functions/{f}");
    let put = |f: &str, target: &str| {
        s.req(
            Method::PUT,
            &format!("/2023-03-30/functions/{f}/async-invoke-config"),
        )
        .json(&json!({"destinationConfig": {"onFailure": {"destination": arn(target)}}}))
        .send()
        .unwrap()
    };
    // Itself.
    expect_error(put("a", "a"), 400, "InvalidArgument", "a -> a");
    // A chain is fine...
    ok_json(put("a", "b"));
    ok_json(put("b", "c"));
    // ...closing it is not.
    expect_error(put("c", "a"), 400, "InvalidArgument", "c -> a -> b -> c");
    // Nothing was stored by the refusals.
    expect_error(
        s.req(Method::GET, "/2023-03-30/functions/c/async-invoke-config")
            .send()
            .unwrap(),
        404,
        "AsyncConfigNotExists",
        "c:LATEST",
    );
}
