//! A closed period's offline-log file becomes its gzip object in the log bucket and its
//! `LogFileCreated` in ONE commit through the object store's `EventSink` (a sink that records
//! what each commit carries shows both together), and the local file is removed only then.
//! The file is one a previous run left (a closed period found at start), so no clock is waited on.

use std::io::Read;
use std::sync::{Arc, Mutex};

use fnbridge_cdn::events::Identity;
use fnbridge_cdn::logs::LogConfig;
use fnbridge_cdn::{Cdn, CdnConfig};
use fnbridge_objectstore::{Change, EventSink, LogOnlySink, SinkError};
use futures::future::BoxFuture;

/// Commits through `LogOnlySink`, recording the event names of every commit.
struct Recording {
    inner: LogOnlySink,
    commits: Arc<Mutex<Vec<Vec<String>>>>,
}

impl EventSink for Recording {
    fn commit(
        &self,
        change: Change,
    ) -> BoxFuture<'static, Result<Box<dyn std::any::Any + Send>, SinkError>> {
        let commits = self.commits.clone();
        self.inner.commit(Box::new(move |tx| {
            let (v, events) = change(tx)?;
            commits
                .lock()
                .unwrap()
                .push(events.iter().map(|e| e.name.clone()).collect());
            Ok((v, events))
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_object_and_log_file_created_commit_together() {
    let dir = tempfile::tempdir().unwrap();
    let store = fnbridge_store::Store::open(&dir.path().join("db")).unwrap();
    let commits = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::new(Recording {
        inner: LogOnlySink(store.clone()),
        commits: commits.clone(),
    });
    let objects = fnbridge_objectstore::ObjectStore::open(
        store.clone(),
        &dir.path().join("objects"),
        sink.clone(),
        fnbridge_objectstore::Identity {
            region: "cn-hangzhou".into(),
            account_id: "1".into(),
            cos_region: "ap-guangzhou".into(),
        },
        Default::default(),
    )
    .await
    .unwrap();
    let cfg = CdnConfig::new(Identity {
        region: "cn-hangzhou".into(),
        account_id: "1".into(),
    });
    let cdn = Cdn::open(store, objects.clone(), sink, cfg).await.unwrap();

    // What a previous run left: the file of the hour 2026-11-22 01:00-02:00Z.
    let logs = dir.path().join("cdn-logs");
    std::fs::create_dir_all(&logs).unwrap();
    let start = 1_795_309_200i64;
    let local = logs.join(format!("example.com@{start}.log"));
    let line = "[22/Nov/2026:09:30:00 +0800] 1.1.1.1 - 1 \"-\" \"GET http://example.com/a\" 200 10 20 HIT \"-\" \"-\" 1.1.1.1\n";
    std::fs::write(&local, line).unwrap();
    commits.lock().unwrap().clear();

    cdn.start_logs(LogConfig {
        dir: logs.clone(),
        period_s: 3600,
        bucket: "cdnlog".into(),
        oss_endpoint: "http://127.0.0.1:9".into(),
        access_key_id: "ak".into(),
        access_key_secret: "sk".into(),
        url_validity: std::time::Duration::from_secs(60),
    })
    .unwrap();
    // The closer finishes it on its first tick; wait for the local file to go (bounded).
    for _ in 0..500 {
        if !local.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!local.exists(), "the closed period's file was not finished");

    let key = "example.com/2026_11_22/example.com_2026_11_22_090000_100000.gz";
    let (rec, mut f) = objects.open_object("cdnlog", key).await.unwrap();
    let mut gz = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut f, &mut gz)
        .await
        .unwrap();
    assert_eq!(rec.size as usize, gz.len());
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, line);

    // Exactly one commit carries LogFileCreated, and it is the one that put the object.
    let commits = commits.lock().unwrap().clone();
    let with_log: Vec<_> = commits
        .iter()
        .filter(|c| c.iter().any(|n| n == "LogFileCreated"))
        .collect();
    assert_eq!(with_log.len(), 1, "{commits:?}");
    assert!(
        with_log[0].iter().any(|n| n.starts_with("ObjectCreated:")),
        "LogFileCreated committed apart from its object: {commits:?}"
    );
}
