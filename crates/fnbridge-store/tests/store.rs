//! The store test suite: registry CRUD, group commit under concurrency, task state and the
//! dead-letter queue, and durability across a reopen. Written against `Store` so a second
//! backend can run the same cases.

use fnbridge_store::tasks::{self, AttemptOutcome};
use fnbridge_store::{Attempt, NewTask, Store, StoreError, TaskStatus, registry};

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
    (dir, store)
}

fn new_task(id: &str) -> NewTask {
    NewTask {
        task_id: id.into(),
        function_name: "f".into(),
        qualifier: "LATEST".into(),
        trigger_name: Some("t".into()),
        event_seq: None,
        payload: b"{}".to_vec(),
        created_ms: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_are_all_committed() {
    let (_d, store) = open();
    let mut handles = Vec::new();
    for i in 0..500 {
        let s = store.clone();
        handles.push(tokio::spawn(async move {
            s.write(move |c| {
                let seq =
                    tasks::append_event(c, &format!("e{i}"), "cdn", "LogFileCreated", 1, "{}")?;
                let mut t = new_task(&format!("task-{i}"));
                t.event_seq = Some(seq);
                tasks::insert_task(c, &t)
            })
            .await
        }));
    }
    for h in handles {
        h.await.unwrap().unwrap();
    }
    let n = store.read(tasks::count_events).await.unwrap();
    assert_eq!(n, 500);
    let open = store.read(tasks::open_tasks).await.unwrap();
    assert_eq!(open.len(), 500);
    assert!(open.iter().all(|t| t.status == TaskStatus::Enqueued));
}

#[tokio::test]
async fn failing_job_rolls_back_only_itself() {
    let (_d, store) = open();
    let ok = store.write(|c| tasks::insert_task(c, &new_task("a")));
    let dup = store.write(|c| {
        tasks::insert_task(c, &new_task("b"))?;
        tasks::insert_task(c, &new_task("b")) // conflict: rolls back the first insert of b too
    });
    let (ok, dup) = tokio::join!(ok, dup);
    ok.unwrap();
    assert!(matches!(dup, Err(StoreError::Conflict(_))));
    let open = store.read(tasks::open_tasks).await.unwrap();
    assert_eq!(
        open.iter().map(|t| t.task_id.as_str()).collect::<Vec<_>>(),
        ["a"]
    );
}

#[tokio::test]
async fn attempts_and_dead_letters_are_recorded() {
    let (_d, store) = open();
    let id = store
        .write(|c| tasks::insert_task(c, &new_task("x")))
        .await
        .unwrap();
    let outcome = AttemptOutcome {
        attempt: Attempt {
            n: 1,
            started_ms: 10,
            ended_ms: 20,
            status: "Failed".into(),
            error_type: Some("UnhandledInvocationError".into()),
            error_message: Some("boom".into()),
            instance_id: Some("i-1".into()),
        },
        status: TaskStatus::Failed,
        next_ms: 20,
        last_error: Some("boom".into()),
        return_payload: None,
        log: Some("FC Invoke Start".into()),
    };
    let o = outcome.clone();
    store
        .write(move |c| {
            tasks::record_attempt(c, id, &o)?;
            let (t, _) = tasks::get_task(c, "x")?.unwrap();
            tasks::dead_letter(c, &t, 1, "RetriesExhausted", Some("boom"), 30)
        })
        .await
        .unwrap();
    let (t, attempts) = store
        .read(|c| tasks::get_task(c, "x"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.status, TaskStatus::Failed);
    assert_eq!(t.ended_ms, Some(20));
    assert_eq!(attempts, vec![outcome.attempt]);
    let dlq = store
        .read(|c| tasks::list_dlq(c, Some("f"), 0, 10))
        .await
        .unwrap();
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].last_error.as_deref(), Some("boom"));
    assert!(store.read(tasks::open_tasks).await.unwrap().is_empty());
}

#[tokio::test]
async fn state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    {
        let store = Store::open(&path).unwrap();
        store
            .write(|c| tasks::insert_task(c, &new_task("kept")))
            .await
            .unwrap();
        store
            .write(|c| {
                registry::put_async_config(
                    c,
                    "f",
                    "LATEST",
                    &serde_json::json!({"maxAsyncRetryAttempts": 1}),
                )
            })
            .await
            .unwrap();
        store.close();
    }
    let store = Store::open(&path).unwrap();
    let open = store.read(tasks::open_tasks).await.unwrap();
    assert_eq!(open[0].task_id, "kept");
    let cfg = store
        .read(|c| registry::get_async_config(c, "f", "LATEST"))
        .await
        .unwrap();
    assert_eq!(cfg.unwrap()["maxAsyncRetryAttempts"], 1);
}
