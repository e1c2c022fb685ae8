//! The store test suite: registry CRUD, group commit under concurrency, task state and the
//! dead-letter queue, and durability across a reopen. Written against `Store` so a second
//! backend can run the same cases.

use fnbridge_store::tasks::AttemptOutcome;
use fnbridge_store::{Attempt, NewTask, Store, StoreError, TaskStatus};

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
        payload: Some(b"{}".to_vec()),
        created_ms: 1,
        hops: 0,
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
                let seq = c.append_event(&format!("e{i}"), "cdn", "LogFileCreated", 1, "{}")?;
                let mut t = new_task(&format!("task-{i}"));
                t.event_seq = Some(seq);
                c.insert_task(&t)
            })
            .await
        }));
    }
    for h in handles {
        h.await.unwrap().unwrap();
    }
    let n = store.read(|c| c.count_events()).await.unwrap();
    assert_eq!(n, 500);
    let open = store.read(|c| c.open_tasks()).await.unwrap();
    assert_eq!(open.len(), 500);
    assert!(open.iter().all(|t| t.status == TaskStatus::Enqueued));
}

#[tokio::test]
async fn failing_job_rolls_back_only_itself() {
    let (_d, store) = open();
    let ok = store.write(|c| c.insert_task(&new_task("a")));
    let dup = store.write(|c| {
        c.insert_task(&new_task("b"))?;
        c.insert_task(&new_task("b")) // conflict: rolls back the first insert of b too
    });
    let (ok, dup) = tokio::join!(ok, dup);
    ok.unwrap();
    assert!(matches!(dup, Err(StoreError::Conflict(_))));
    let open = store.read(|c| c.open_tasks()).await.unwrap();
    assert_eq!(
        open.iter().map(|t| t.task_id.as_str()).collect::<Vec<_>>(),
        ["a"]
    );
}

#[tokio::test]
async fn attempts_and_dead_letters_are_recorded() {
    let (_d, store) = open();
    let id = store
        .write(|c| c.insert_task(&new_task("x")))
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
            c.record_attempt(id, &o)?;
            let (t, _) = c.get_task("x")?.unwrap();
            c.dead_letter(&t, 1, "RetriesExhausted", Some("boom"), 30)
        })
        .await
        .unwrap();
    let (t, attempts) = store.read(|c| c.get_task("x")).await.unwrap().unwrap();
    assert_eq!(t.status, TaskStatus::Failed);
    assert_eq!(t.ended_ms, Some(20));
    assert_eq!(attempts, vec![outcome.attempt]);
    let dlq = store.read(|c| c.list_dlq(Some("f"), 0, 10)).await.unwrap();
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].last_error.as_deref(), Some("boom"));
    assert!(store.read(|c| c.open_tasks()).await.unwrap().is_empty());
}

#[tokio::test]
async fn state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    {
        let store = Store::open(&path).unwrap();
        store
            .write(|c| c.insert_task(&new_task("kept")))
            .await
            .unwrap();
        store
            .write(|c| {
                c.put_async_config(
                    "f",
                    "LATEST",
                    &fnbridge_event::AsyncConfig {
                        max_async_retry_attempts: 1,
                        max_async_event_age_in_seconds: 60,
                        async_task: false,
                        destination_config: Default::default(),
                        function_arn: "acs:fc:r:1:functions/f".into(),
                        qualifier: "LATEST".into(),
                        created_time: "t".into(),
                        last_modified_time: "t".into(),
                    },
                )
            })
            .await
            .unwrap();
        store.close();
    }
    let store = Store::open(&path).unwrap();
    let open = store.read(|c| c.open_tasks()).await.unwrap();
    assert_eq!(open[0].task_id, "kept");
    let cfg = store
        .read(|c| c.get_async_config("f", "LATEST"))
        .await
        .unwrap();
    assert_eq!(cfg.unwrap().max_async_retry_attempts, 1);
}

/// A database written by the first release (schema version 0, no version stamp) opens,
/// migrates, and keeps its tasks and dead letters.
#[tokio::test]
async fn a_version_0_database_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(include_str!("schema_v0.sql")).unwrap();
        c.execute_batch(
            "INSERT INTO events(event_id, source, name, received_ms, body) VALUES ('e', 'cdn', 'X', 1, '{}');
             INSERT INTO tasks(task_id, function_name, qualifier, trigger_name, event_seq, payload, status, attempts, created_ms, next_ms)
                 VALUES ('old-open', 'f', 'LATEST', 't', 1, X'7B7D', 'Retrying', 2, 1, 5);
             INSERT INTO tasks(task_id, function_name, qualifier, trigger_name, event_seq, payload, status, attempts, created_ms, next_ms)
                 VALUES ('old-running', 'f', 'LATEST', 't', 1, X'7B7D', 'Running', 0, 1, 1);
             INSERT INTO dlq(task_id, function_name, qualifier, payload, attempts, reason, created_ms)
                 VALUES ('dead', 'f', 'LATEST', X'7B7D', 4, 'RetriesExhausted', 9);",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let v: i64 = store.read(|c| c.schema_version()).await.unwrap();
    assert_eq!(v, fnbridge_store::SCHEMA_VERSION);
    // The identity tables came with the migration.
    assert_eq!(store.read(|c| c.count_access_keys()).await.unwrap(), 0);
    let open = store.read(|c| c.open_tasks()).await.unwrap();
    let ids: Vec<&str> = open.iter().map(|t| t.task_id.as_str()).collect();
    assert_eq!(
        ids,
        ["old-open", "old-running"],
        "a stored Running task runs again"
    );
    assert_eq!(open[0].payload, b"{}");
    assert_eq!(open[0].attempts, 2);
    assert!(!open[0].payload_from_event);
    let dlq = store.read(|c| c.list_dlq(None, 0, 10)).await.unwrap();
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].payload, b"{}");
    // A new task with its payload in the event log reads back the event's text.
    store
        .write(|c| {
            let seq = c.append_event("e2", "cdn", "X", 2, "{\"a\":1}")?;
            let mut t = new_task("new");
            t.event_seq = Some(seq);
            t.payload = None;
            c.insert_task(&t)
        })
        .await
        .unwrap();
    let (t, _) = store.read(|c| c.get_task("new")).await.unwrap().unwrap();
    assert_eq!(t.payload, b"{\"events\":[{\"a\":1}]}");
    assert!(t.payload_from_event);
    // A CloudEvent's task reads back the event itself, as PutEvents first delivered it, and
    // so does its dead letter.
    let ce = r#"{"id":"1","source":"app","specversion":"1.0","type":"t","data":{"a":1}}"#;
    store
        .write(move |c| {
            let seq = c.append_event("1", "cloudevents", "t", 2, ce)?;
            let mut t = new_task("ce");
            t.event_seq = Some(seq);
            t.payload = None;
            c.insert_task(&t)?;
            let task = c.get_task("ce")?.unwrap().0;
            c.dead_letter(&task, 1, "RetriesExhausted", None, 3)?;
            Ok(())
        })
        .await
        .unwrap();
    let (t, _) = store.read(|c| c.get_task("ce")).await.unwrap().unwrap();
    assert_eq!(t.payload, ce.as_bytes());
    assert!(t.payload_from_event);
    let dlq = store.read(|c| c.list_dlq(None, 0, 10)).await.unwrap();
    let d = dlq.iter().find(|d| d.task_id == "ce").expect("dead letter");
    assert_eq!(d.payload, ce.as_bytes());
    drop(store);
    // A schema newer than this build is refused, not guessed at.
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
    }
    let err = Store::open(&path).err().expect("refused");
    assert!(err.to_string().contains("version 99"), "{err}");
}

#[tokio::test]
async fn retention_prunes_finished_tasks_and_unneeded_events_only() {
    let (_d, store) = open();
    store
        .write(|c| {
            for i in 0..5 {
                let seq = c.append_event(&format!("e{i}"), "cdn", "X", 10, "{}")?;
                let mut t = new_task(&format!("t{i}"));
                t.event_seq = Some(seq);
                t.payload = None;
                let row = c.insert_task(&t)?;
                if i < 3 {
                    c.finish_task(row, TaskStatus::Succeeded, 20, None)?;
                }
                if i == 0 {
                    let task = c.get_task(&format!("t{i}"))?.unwrap().0;
                    c.dead_letter(&task, 1, "RetriesExhausted", None, 20)?;
                }
            }
            Ok(())
        })
        .await
        .unwrap();
    let r = fnbridge_store::retention::Retention {
        max_age_ms: 100,
        max_finished_tasks: 1000,
    };
    // Nothing is old enough yet.
    let p = store.write(move |c| c.prune(&r, 50, 100)).await.unwrap();
    assert_eq!(p.total(), 0);
    let p = store.write(move |c| c.prune(&r, 1000, 100)).await.unwrap();
    // The 3 finished tasks go; of the events, those of open tasks (3, 4) and of the dead
    // letter (0) stay.
    assert_eq!(p.tasks, 3);
    assert_eq!(p.events, 2);
    assert_eq!(store.read(|c| c.open_tasks()).await.unwrap().len(), 2);
    let dlq = store.read(|c| c.list_dlq(None, 0, 10)).await.unwrap();
    assert_eq!(dlq[0].payload, b"{\"events\":[{}]}");
    // By count: keep only the newest finished task.
    let r1 = fnbridge_store::retention::Retention {
        max_age_ms: i64::MAX / 2,
        max_finished_tasks: 1,
    };
    store
        .write(|c| {
            for id in ["t3", "t4"] {
                let row = c.get_task(id)?.unwrap().0.id;
                c.finish_task(row, TaskStatus::Succeeded, 30, None)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let p = store.write(move |c| c.prune(&r1, 1000, 100)).await.unwrap();
    assert_eq!(p.tasks, 1);
    let left = store
        .read(|c| c.list_tasks(None, None, None, 10))
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].task_id, "t4");
}

/// Archives keep events in (time, id) order for paging, count them per range, lose them past
/// their retention (by when they were archived) or with the archive; replays store their
/// progress and go once ended longer ago than finished tasks are kept.
#[tokio::test]
async fn archives_page_by_time_and_are_pruned_by_retention() {
    use fnbridge_store::archives::{Archive, Replay};
    let (_d, store) = open();
    let day = 86_400_000i64;
    store
        .write(move |c| {
            for (name, days) in [("week", 7), ("ever", 0)] {
                c.insert_archive(&Archive {
                    name: name.into(),
                    bus: "default".into(),
                    pattern: "{}".into(),
                    description: String::new(),
                    retention_days: days,
                    created_ms: 1,
                })?;
            }
            // Event times out of order; archived at day 0 and day 10.
            for (i, t) in [(0, 300), (1, 100), (2, 200), (3, 200)] {
                let archived = if i == 3 { 10 * day } else { 0 };
                c.append_archive_event("week", t, archived, &format!("{{\"n\":{i}}}"))?;
                c.append_archive_event("ever", t, archived, "{}")?;
            }
            Ok(())
        })
        .await
        .unwrap();
    assert!(
        store
            .write(|c| c.insert_archive(&Archive {
                name: "week".into(),
                bus: "b".into(),
                pattern: "{}".into(),
                description: String::new(),
                retention_days: 1,
                created_ms: 2,
            }))
            .await
            .is_err()
    );
    let (n, bytes) = store
        .read(|c| c.archive_stats("week", 100, 300))
        .await
        .unwrap();
    assert_eq!((n, bytes), (3, 21));
    // Pages of 2 from the start of [100, 301): (100,#2) (200,#3), then (200,#4) (300,#1).
    let first = store
        .read(|c| c.archive_page("week", 100, 301, (i64::MIN, 0), 2))
        .await
        .unwrap();
    let times: Vec<i64> = first.iter().map(|e| e.time_ms).collect();
    assert_eq!(times, [100, 200]);
    let after = (first[1].time_ms, first[1].id);
    let second = store
        .read(move |c| c.archive_page("week", 100, 301, after, 2))
        .await
        .unwrap();
    let bodies: Vec<&str> = second.iter().map(|e| e.body.as_str()).collect();
    assert_eq!(bodies, ["{\"n\":3}", "{\"n\":0}"]);

    // Replays keep their progress.
    let replay = Replay {
        name: "r".into(),
        archive: "week".into(),
        bus: "default".into(),
        rules: vec!["f/t".into()],
        start_ms: 0,
        end_ms: 1000,
        state: "RUNNING".into(),
        reason: String::new(),
        total: 4,
        done: 0,
        cursor_time: i64::MIN,
        cursor_id: 0,
        created_ms: 5,
        ended_ms: None,
    };
    let mut r = replay.clone();
    store.write(move |c| c.insert_replay(&r)).await.unwrap();
    r = replay.clone();
    r.done = 4;
    r.state = "COMPLETED".into();
    r.ended_ms = Some(day);
    let r2 = r.clone();
    assert!(store.write(move |c| c.update_replay(&r2)).await.unwrap());
    assert_eq!(store.read(|c| c.get_replay("r")).await.unwrap(), Some(r));
    assert_eq!(store.read(|c| c.list_replays()).await.unwrap().len(), 1);

    // Day 9: the week archive's day-0 events are past 7 days; the one archived on day 10 and
    // every event of the archive kept for ever stay; the replay ended 8 days ago goes.
    let keep = fnbridge_store::retention::Retention {
        max_age_ms: 7 * day,
        max_finished_tasks: 1000,
    };
    let p = store
        .write(move |c| c.prune(&keep, 9 * day, 100))
        .await
        .unwrap();
    assert_eq!((p.archived, p.replays), (3, 1));
    assert_eq!(
        store
            .read(|c| c.archive_stats("week", i64::MIN, i64::MAX))
            .await
            .unwrap()
            .0,
        1
    );
    assert_eq!(
        store
            .read(|c| c.archive_stats("ever", i64::MIN, i64::MAX))
            .await
            .unwrap()
            .0,
        4
    );
    assert!(store.read(|c| c.get_replay("r")).await.unwrap().is_none());
    assert!(store.write(|c| c.delete_archive("ever")).await.unwrap());
    assert_eq!(
        store
            .read(|c| c.archive_stats("ever", i64::MIN, i64::MAX))
            .await
            .unwrap()
            .0,
        0
    );
}

/// Access keys and roles: unique, listed, deleted; a migrated version 0 database has the tables.
#[tokio::test]
async fn access_keys_and_roles_are_stored_without_secrets() {
    use fnbridge_store::identity::{AccessKey, Role};
    let (_d, store) = open();
    let key = AccessKey {
        access_key_id: "LTAIexample".into(),
        description: "ci".into(),
        created_ms: 5,
    };
    let k = key.clone();
    store.write(move |c| c.insert_access_key(&k)).await.unwrap();
    let k = key.clone();
    let again = store.write(move |c| c.insert_access_key(&k)).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let role = Role {
        name: "reader".into(),
        description: String::new(),
        policy: r#"{"Statement":[]}"#.into(),
        created_ms: 6,
    };
    let r = role.clone();
    store.write(move |c| c.insert_role(&r)).await.unwrap();
    let (keys, n, got, roles) = store
        .read(|c| {
            Ok((
                c.list_access_keys()?,
                c.count_roles()?,
                c.get_role("READER")?,
                c.list_roles()?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(keys, [key]);
    assert_eq!((n, got.as_ref()), (1, Some(&role)));
    assert_eq!(roles, [role]);
    let gone = store
        .write(|c| {
            Ok((
                c.delete_access_key("LTAIexample")?,
                c.delete_role("reader")?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(gone, (true, true));
    let left = store
        .read(|c| Ok((c.count_access_keys()?, c.get_access_key("LTAIexample")?)))
        .await
        .unwrap();
    assert_eq!(left, (0, None));
}

#[tokio::test]
async fn cdn_domains_tasks_and_blocks() {
    use fnbridge_store::cdn::{CdnDomain, CdnTask, CdnTaskFilter};
    let (_d, store) = open();
    let d = CdnDomain {
        name: "cdn.example.com".into(),
        cdn_type: "web".into(),
        sources: "[]".into(),
        scope: "domestic".into(),
        status: "online".into(),
        created_ms: 1,
        modified_ms: 1,
    };
    store
        .write(move |tx| {
            assert!(tx.insert_cdn_domain(&d)?);
            assert!(!tx.insert_cdn_domain(&d)?, "a name is taken once");
            assert!(tx.set_cdn_domain_status("cdn.example.com", "offline", 2)?);
            assert!(!tx.set_cdn_domain_status("nope.example.com", "offline", 2)?);
            let a = tx.next_cdn_task_id()?;
            let b = tx.next_cdn_task_id()?;
            assert!(b > a, "task ids only grow");
            for (i, kind) in ["refresh", "push"].iter().enumerate() {
                tx.insert_cdn_task(&CdnTask {
                    task_id: a + i as i64,
                    kind: kind.to_string(),
                    object_type: "File".into(),
                    object_path: format!("http://cdn.example.com/{i}"),
                    domain: "cdn.example.com".into(),
                    status: "Complete".into(),
                    created_ms: 10 + i as i64,
                })?;
            }
            tx.set_cdn_block("cdn.example.com/x", "cdn.example.com", true, 3)?;
            Ok(())
        })
        .await
        .unwrap();
    store
        .read_blocking(|tx| {
            let got = tx.get_cdn_domain("cdn.example.com")?.unwrap();
            assert_eq!(got.status, "offline");
            assert_eq!(tx.list_cdn_domains()?.len(), 1);
            let f = CdnTaskFilter {
                kinds: Some(vec!["push:file".into()]),
                limit: 10,
                ..Default::default()
            };
            let (tasks, total) = tx.list_cdn_tasks(&f)?;
            assert_eq!((tasks.len(), total), (1, 1));
            assert_eq!(tasks[0].object_path, "http://cdn.example.com/1");
            assert_eq!(tx.count_cdn_tasks_since("refresh", "File", 0)?, 1);
            assert_eq!(tx.count_cdn_tasks_since("refresh", "File", 11)?, 0);
            assert_eq!(tx.list_cdn_blocks()?, vec!["cdn.example.com/x".to_string()]);
            Ok(())
        })
        .unwrap();
    // Deleting a domain drops its blocks.
    store
        .write(|tx| {
            assert!(tx.delete_cdn_domain("cdn.example.com")?);
            assert!(tx.list_cdn_blocks()?.is_empty());
            Ok(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn event_buses_are_created_listed_and_deleted() {
    use fnbridge_store::buses::EventBus;
    let (_d, store) = open();
    let bus = EventBus {
        name: "orders".into(),
        description: "shop".into(),
        created_ms: 7,
    };
    let b = bus.clone();
    store.write(move |c| c.insert_bus(&b)).await.unwrap();
    let b = bus.clone();
    let again = store.write(move |c| c.insert_bus(&b)).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(
        store.read(|c| c.get_bus("orders")).await.unwrap(),
        Some(bus.clone())
    );
    assert_eq!(store.read(|c| c.list_buses()).await.unwrap(), vec![bus]);
    assert!(store.write(|c| c.delete_bus("orders")).await.unwrap());
    assert!(!store.write(|c| c.delete_bus("orders")).await.unwrap());
    assert_eq!(store.read(|c| c.get_bus("orders")).await.unwrap(), None);
}

#[tokio::test]
async fn a_trigger_block_keeps_its_holder_and_survives_a_reopen() {
    use fnbridge_store::blocks::TriggerBlock;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let store = Store::open(&path).unwrap();
    let block = TriggerBlock {
        function_name: "f".into(),
        trigger_name: "t".into(),
        task_row: 7,
        task_id: "task-7".into(),
        error: "first".into(),
        since_ms: 100,
    };
    let b = block.clone();
    store.write(move |c| c.put_block(&b)).await.unwrap();
    // The same holder failing again updates the error, not the start.
    let again = TriggerBlock {
        error: "second".into(),
        since_ms: 200,
        ..block.clone()
    };
    store.write(move |c| c.put_block(&again)).await.unwrap();
    // Another task cannot take the block over.
    let other = TriggerBlock {
        task_row: 8,
        task_id: "task-8".into(),
        error: "other".into(),
        ..block.clone()
    };
    store.write(move |c| c.put_block(&other)).await.unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    let expected = TriggerBlock {
        error: "second".into(),
        ..block
    };
    assert_eq!(
        store.read(|c| c.all_blocks()).await.unwrap(),
        vec![expected]
    );
    assert!(store.write(|c| c.delete_block("f", "t")).await.unwrap());
    assert!(!store.write(|c| c.delete_block("f", "t")).await.unwrap());
    assert!(store.read(|c| c.all_blocks()).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_events_text_is_read_back_by_its_sequence() {
    let (_d, store) = open();
    let seq = store
        .write(|c| c.append_event("e1", "cloudevent", "t", 1, r#"{"id":"e1"}"#))
        .await
        .unwrap();
    assert_eq!(
        store
            .read(move |c| c.event_body(seq))
            .await
            .unwrap()
            .as_deref(),
        Some(r#"{"id":"e1"}"#)
    );
    assert_eq!(
        store.read(move |c| c.event_body(seq + 1)).await.unwrap(),
        None
    );
}

fn object(key: &str, data_id: &str) -> fnbridge_store::objects::ObjectRecord {
    fnbridge_store::objects::ObjectRecord {
        bucket: "b".into(),
        key: key.into(),
        data_id: data_id.into(),
        size: 3,
        etag: "e".into(),
        crc64: u64::MAX,
        content_type: "text/plain".into(),
        meta: vec![],
        kind: fnbridge_store::objects::ObjectKind::Normal,
        modified_ms: 1,
    }
}

/// Inline bytes are written with their row and go with the last row that names them: replaced
/// by another object, or deleted. A file-backed object's id has no inline bytes.
#[tokio::test]
async fn inline_object_bytes_live_and_die_with_their_row() {
    let (_d, store) = open();
    store
        .write(|c| {
            c.create_bucket(&fnbridge_store::objects::Bucket {
                name: "b".into(),
                created_ms: 1,
            })?;
            c.put_object_data("inline-1", b"one")?;
            c.put_object(&object("k", "inline-1"))?;
            c.put_object_data("inline-2", b"two")?;
            c.put_object(&object("gone", "inline-2"))
        })
        .await
        .unwrap();
    let got = store.read(|c| c.get_object_data("inline-1")).await.unwrap();
    assert_eq!(got.as_deref(), Some(&b"one"[..]));
    // Overwritten by a file-backed object: the inline bytes are dropped in that commit.
    let old = store
        .write(|c| c.put_object(&object("k", "0123abcd")))
        .await
        .unwrap();
    assert_eq!(old.unwrap().data_id, "inline-1");
    assert_eq!(
        store.read(|c| c.get_object_data("inline-1")).await.unwrap(),
        None
    );
    store.write(|c| c.delete_object("b", "gone")).await.unwrap();
    assert_eq!(
        store.read(|c| c.get_object_data("inline-2")).await.unwrap(),
        None
    );
    // Only inline ids are accepted for inline bytes.
    let err = store
        .write(|c| c.put_object_data("0123abcd", b"x"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("inline-"), "{err}");
}

/// A version-5 database (objects all in files) migrates to 6: its objects stay as they were and
/// small objects can then be stored inline.
#[tokio::test]
async fn a_version_5_database_gains_inline_object_data_and_archives() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    {
        let store = Store::open(&path).unwrap();
        store
            .write(|c| {
                c.create_bucket(&fnbridge_store::objects::Bucket {
                    name: "b".into(),
                    created_ms: 1,
                })?;
                c.put_object(&object("old", "00ff00ff"))
            })
            .await
            .unwrap();
        store.close();
    }
    {
        // Back to what version 5 had: no object_data (6), archives or replays (7) tables.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "DROP TABLE object_data; DROP TABLE archive_events; DROP TABLE archives; \
             DROP TABLE replays; PRAGMA user_version = 5;",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.read(|c| c.schema_version()).await.unwrap(), 7);
    assert!(store.read(|c| c.list_archives()).await.unwrap().is_empty());
    let old = store.read(|c| c.get_object("b", "old")).await.unwrap();
    assert_eq!(old.unwrap().data_id, "00ff00ff");
    store
        .write(|c| {
            c.put_object_data("inline-x", b"abc")?;
            c.put_object(&object("new", "inline-x"))
        })
        .await
        .unwrap();
    assert_eq!(
        store.read(|c| c.get_object_data("inline-x")).await.unwrap(),
        Some(b"abc".to_vec())
    );
    assert_eq!(fnbridge_store::SCHEMA_VERSION, 7);
}
