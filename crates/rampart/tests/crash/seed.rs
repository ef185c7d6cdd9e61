//! The first seed pipeline from three Kafka topics, killed repeatedly, compared view by view
//! and alert by alert with a run without crashes.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rampart_testkit::broker;
/// The seed pipeline as the benchmarks run it (reference tables written out, sources and
/// sink swapped).
use rampart_testkit::pipelines as common;

use broker::Broker;
use rampart_connectors::generator::{EventGenerator, GeneratorKind};
use rand::{Rng, SeedableRng};
use tokio_postgres::Client;

use super::*;

/// The first seed pipeline's views, compared between the crashed and the uncrashed run.
const SEED_VIEWS: [&str; 6] = [
    "normalized_events",
    "enriched_events",
    "alert_brute_force",
    "alert_impossible_travel",
    "alert_suspicious_process",
    "alert_summary",
];

/// A reference-table change made during the runs: every asset that is not tier 1 becomes
/// tier 1 too, so enrichment and `alert_suspicious_process` change for events already read.
const PROMOTE: &str =
    "INSERT INTO asset_taxonomy SELECT host_id, 'tier_1', 'crash-test' FROM asset_taxonomy WHERE asset_tier <> 'tier_1'";

/// `per_kind` events of each of the seed's three sources (firewall, auth, endpoint, as
/// `common::SOURCE_KINDS`), from the built-in generator, spread over a day of event time.
fn seed_events(per_kind: u64) -> Vec<Vec<String>> {
    let base = 1_795_000_000_000_000i64;
    let step = 86_400_000_000 / per_kind.max(1) as i64;
    [
        (GeneratorKind::Firewall, 1),
        (GeneratorKind::Auth, 2),
        (GeneratorKind::Endpoint, 3),
    ]
    .into_iter()
    .map(|(kind, seed)| {
        let mut g = EventGenerator::new(kind, seed);
        (0..per_kind).map(|i| g.next_event(base + i as i64 * step)).collect()
    })
    .collect()
}

/// Waits until `view` holds the same rows on both servers (each replays at its own pace),
/// or fails showing how they differ.
async fn assert_same_view(crashed: &Client, reference: &Client, view: &str) {
    let deadline = Instant::now() + Duration::from_secs(env_or("RAMPART_SAME_VIEW_WAIT_S", 600));
    loop {
        let count = format!("SELECT count(*) FROM {view}");
        let (a, b) = (rows(crashed, &count).await, rows(reference, &count).await);
        if a == b || Instant::now() > deadline {
            // `rows` sorts: each side is a multiset, compared as a whole.
            let all = format!("SELECT * FROM {view}");
            let (a, b) = (rows(crashed, &all).await, rows(reference, &all).await);
            if a == b {
                eprintln!("{view}: {} rows, the same in both runs", a.len());
                return;
            }
            if Instant::now() > deadline {
                let missing: Vec<_> = b.iter().filter(|r| a.binary_search(r).is_err()).take(3).collect();
                let extra: Vec<_> = a.iter().filter(|r| b.binary_search(r).is_err()).take(3).collect();
                panic!(
                    "{view} differs from the run without crashes ({} vs {} rows): missing {missing:?}, extra {extra:?}",
                    a.len(),
                    b.len()
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The alert sink's messages on `topic` as (alert without its emission time, how often it
/// was emitted).
fn alert_messages(broker: &Broker, topic: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    // Until a first message and half a second without more (the caller retries until both
    // runs agree, so a read cut short only delays the comparison).
    for (_key, payload) in broker.consume_until(topic, 1, |got| !got.is_empty()) {
        let mut v: serde_json::Value = serde_json::from_str(payload.as_deref().unwrap_or("null")).unwrap();
        if let Some(o) = v.as_object_mut() {
            o.remove("alert_fired_at");
        }
        *out.entry(v.to_string()).or_default() += 1;
    }
    out
}

/// The last emitted version of each alert, and how many times it was emitted:
/// brute-force alerts are re-emitted as their count grows (`FORMAT PLAIN` over an updating
/// view), and which versions there are depends on how events were batched, but the last
/// ones must match. (An alert can legitimately appear more than once: the sink leaves out
/// the columns that tell some view rows apart.)
fn final_versions(alerts: &BTreeMap<String, usize>) -> BTreeMap<String, usize> {
    let key_and_signal = |line: &str| {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        let signal = v["signal_value"].as_i64().unwrap_or(-1);
        if let Some(o) = v.as_object_mut() {
            o.remove("signal_value");
        }
        (v.to_string(), signal)
    };
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for line in alerts.keys() {
        let (key, signal) = key_and_signal(line);
        let e = last.entry(key).or_insert(signal);
        *e = (*e).max(signal);
    }
    alerts
        .iter()
        .filter(|(line, _)| {
            let (key, signal) = key_and_signal(line);
            last.get(&key) == Some(&signal)
        })
        .map(|(line, n)| (line.clone(), *n))
        .collect()
}

/// The first seed pipeline (three sources, normalization, enrichment against the two
/// reference tables, four detection views, the SOAR alert sink) reading three two-partition
/// Kafka topics. The server is killed with SIGKILL at random moments while the events are
/// produced, and restarted on its data directory each time; a reference table changes
/// between kills. At the end every view, and the alert sink's output, must equal a run of
/// the same pipeline over the same topics without crashes (the expected result is that
/// run's, not a hand count). `RAMPART_SEED_CRASH_KILLS` (default 4) and
/// `RAMPART_SEED_CRASH_EVENTS` (default 24000, all sources) scale it up: docs/performance.md names
/// the long run (20 kills, 1M events).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_pipeline_from_kafka_matches_a_run_without_crashes() {
    seed_pipeline_crash_run(false).await;
}

/// The same with the soak's bounded state: a 5-second `WATERMARK` on each source,
/// `EMIT ON WINDOW CLOSE` windows, and a one-hour retention on `normalized_events` and
/// `enriched_events` (the day of events keeps about an hour of each). After a kill the
/// retained views restore the rows they held, and the alert views (no retention) come back
/// from their own rows, their windows and interval join rebuilt from the retained rows.
/// What an alert view holds then depends on what the retained view held when it was
/// created and when a table changed, so the run without crashes reads topics of its own,
/// filled after its pipeline is created, and neither run changes a table. Partitions hold
/// the watermark back until their first event however long that takes
/// (`scan.watermark.idle-timeout`): a partition released as idle before its events arrive
/// lets the watermark move by the other partition alone, and the run without crashes then
/// lost four `alert_summary` windows at 1M events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_seed_pipeline_from_kafka_matches_a_run_without_crashes() {
    seed_pipeline_crash_run(true).await;
}

/// The seed crash run; `bounded`: with watermarks and retentions.
async fn seed_pipeline_crash_run(bounded: bool) {
    let kills = env_or("RAMPART_SEED_CRASH_KILLS", 4);
    let per_kind = env_or("RAMPART_SEED_CRASH_EVENTS", 24_000) / 3;
    let tmp = tempfile::tempdir().unwrap();
    let broker = Broker::start();
    for kind in common::SOURCE_KINDS {
        broker.create_topic(kind, 2).await;
    }
    let events = seed_events(per_kind);
    // The alert sink writes to a Kafka topic of its own per run, as the seed's does.
    let sql = |dir: &Path, alerts_topic: &str, topic_suffix: &str| {
        std::fs::create_dir_all(dir).unwrap();
        let file_sink = format!("connector = 'file', path = '{}'", dir.join("alerts.jsonl").display());
        let kafka_sink = format!(
            "connector = 'kafka', topic = '{alerts_topic}', properties.bootstrap.server = '{}'",
            broker.bootstrap()
        );
        let sql = common::pipeline_sql(dir, |kind| {
            format!(
                "connector = 'kafka', topic = '{kind}{topic_suffix}', properties.bootstrap.server = '{}'{}",
                broker.bootstrap(),
                // Every partition gets events: none should stop holding the watermark
                // back while its first ones are still on their way.
                if bounded {
                    ", 'scan.watermark.idle-timeout' = '10 min'"
                } else {
                    ""
                }
            )
        });
        assert!(sql.contains(&file_sink), "the pipeline's alert sink writes {file_sink}");
        let sql = sql.replace(&file_sink, &kafka_sink);
        if bounded {
            common::bounded_pipeline_sql(sql, true, Some("1 hour"))
        } else {
            sql
        }
    };
    // One broker per test: topic names need not differ between the two runs.
    broker.create_topic("alerts_crash", 1).await;
    broker.create_topic("alerts_reference", 1).await;
    let crash_dir = tmp.path().join("crash");
    let crash_sql = sql(&crash_dir, "alerts_crash", "");
    let log = crash_dir.join("server.log");
    let data = crash_dir.join("data");
    let mut server = start(&data, &log);
    let client = connect(&server).await;
    client.batch_execute(&crash_sql).await.expect("pipeline");
    drop(client);

    // The events are produced in chunks, a kill at a random moment after each but the last.
    let chunks = kills + 1;
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let started = Instant::now();
    for i in 0..chunks {
        let (lo, hi) = ((per_kind * i / chunks) as usize, (per_kind * (i + 1) / chunks) as usize);
        for (kind, events) in common::SOURCE_KINDS.iter().zip(&events) {
            let messages: Vec<(Option<i32>, String)> =
                (lo..hi).map(|j| (Some((j % 2) as i32), events[j].clone())).collect();
            broker.produce(kind, &messages);
        }
        if i == 1 && !bounded {
            connect(&server)
                .await
                .batch_execute(PROMOTE)
                .await
                .expect("table change");
        }
        if i < kills {
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..1500))).await;
            server.child.kill().expect("SIGKILL");
            server.child.wait().unwrap();
            server = start(&data, &log);
        }
    }
    eprintln!(
        "{} events produced, {kills} kills, in {:.1} s",
        3 * per_kind,
        started.elapsed().as_secs_f64()
    );

    // The run without crashes, over the same topics.
    let reference_dir = tmp.path().join("reference");
    let suffix = if bounded { "_reference" } else { "" };
    let reference_sql = sql(&reference_dir, "alerts_reference", suffix);
    let reference = start(&reference_dir.join("data"), &reference_dir.join("server.log"));
    let reference_client = connect(&reference).await;
    if bounded {
        for kind in common::SOURCE_KINDS {
            broker.create_topic(&format!("{kind}{suffix}"), 2).await;
        }
    }
    reference_client.batch_execute(&reference_sql).await.expect("pipeline");
    if bounded {
        for (kind, events) in common::SOURCE_KINDS.iter().zip(&events) {
            let messages: Vec<(Option<i32>, String)> = events
                .iter()
                .enumerate()
                .map(|(j, e)| (Some((j % 2) as i32), e.clone()))
                .collect();
            broker.produce(&format!("{kind}{suffix}"), &messages);
        }
    } else {
        reference_client.batch_execute(PROMOTE).await.expect("table change");
    }

    let crashed = connect(&server).await;
    let all = rows(&crashed, "SELECT count(*) FROM normalized_events").await;
    eprintln!("crashed run counts {} events so far", all[0][0]);
    for view in SEED_VIEWS {
        assert_same_view(&crashed, &reference_client, view).await;
    }

    // The alert sink: no alert emitted twice, and the same alerts (the last version of each)
    // as without crashes, once both have caught up with their views.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = alert_messages(&broker, "alerts_crash");
        let want = alert_messages(&broker, "alerts_reference");
        let (got_final, want_final) = (final_versions(&got), final_versions(&want));
        if got_final == want_final && !want.is_empty() {
            // Repeated: emitted more often than without crashes (a version the reference
            // did not emit at all may appear once).
            let repeated: Vec<_> = got
                .iter()
                .filter(|(line, n)| **n > want.get(*line).copied().unwrap_or(0).max(1))
                .take(3)
                .collect();
            assert!(
                repeated.is_empty(),
                "alerts emitted more often than without crashes: {repeated:?}"
            );
            eprintln!(
                "alert sink: {} alerts (last versions), the same in both runs",
                got_final.values().sum::<usize>()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alert sink: {} alerts after the crashes, {} without:\n{got_final:#?}\nwithout:\n{want_final:#?}\nlog of the run without crashes:\n{}",
            got_final.values().sum::<usize>(),
            want_final.values().sum::<usize>(),
            std::fs::read_to_string(reference_dir.join("server.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let server_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        server_log.contains("sink resumed after its inputs replayed"),
        "no sink resumed after a restart; server log:\n{server_log}"
    );
    // normalized_events reads the three topics through projections and a UNION ALL: after
    // a kill it starts from its last checkpoint, and its readers resume there.
    let from_checkpoint = server_log.matches("restoring from its last checkpoint").count();
    eprintln!("views started from their checkpoints, over the {kills} restarts: {from_checkpoint}");
    assert!(
        from_checkpoint > 0,
        "normalized_events never restored from a checkpoint:\n{server_log}"
    );
    if bounded {
        // The three alert views over enriched_events are rebuilt views: each restart that
        // restored normalized_events restored them too.
        assert!(
            from_checkpoint >= 4,
            "the rebuilt views did not restore from their checkpoints:\n{server_log}"
        );
    }
}
