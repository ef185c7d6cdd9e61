//! The small pipeline over JSON-lines files and a two-partition Kafka topic, killed at
//! random moments while events arrive: every view equals the hand count and every sink
//! holds each change exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use rampart_testkit::broker;

use broker::Broker;
use rand::{Rng, SeedableRng};

use super::*;

const USERS: u64 = 40;

/// One generated authentication event.
struct Event {
    seq: u64,
    user: String,
    failure: bool,
}

impl Event {
    fn new(seq: u64, rng: &mut impl Rng) -> Self {
        Event {
            seq,
            user: format!("u{}", rng.random_range(0..USERS)),
            failure: rng.random_bool(0.3),
        }
    }

    fn json(&self) -> String {
        serde_json::json!({
            "seq": self.seq,
            "event_time": format!("2026-11-22T10:{:02}:{:02}.{:03}Z", (self.seq / 60_000) % 60, (self.seq / 1000) % 60, self.seq % 1000),
            "user_name": self.user,
            "status": if self.failure { "failure" } else { "success" },
        })
        .to_string()
    }
}

/// Where the events come from.
enum Input {
    /// `auth-0.jsonl` and `auth-1.jsonl` under the test directory's `events/`.
    Files,
    /// Topic `auth` with two partitions.
    Kafka(Broker),
}

impl Input {
    fn source_options(&self, dir: &Path) -> String {
        match self {
            Input::Files => format!(
                "connector = 'file', path = '{}/auth-*.jsonl'",
                dir.join("events").display()
            ),
            Input::Kafka(b) => format!(
                "connector = 'kafka', topic = 'auth', properties.bootstrap.server = '{}'",
                b.bootstrap()
            ),
        }
    }

    /// Delivers chunk `i` of the events, and one malformed record after it.
    fn deliver(&self, dir: &Path, i: usize, events: &[Event]) {
        let malformed = "{\"seq\": \"not a number\", \"user_name\": ".to_string();
        match self {
            Input::Files => append(&dir.join("events").join(format!("auth-{}.jsonl", i % 2)), events, true),
            Input::Kafka(b) => {
                let mut messages: Vec<(Option<i32>, String)> =
                    events.iter().map(|e| (Some((e.seq % 2) as i32), e.json())).collect();
                messages.push((Some((i % 2) as i32), malformed));
                b.produce("auth", &messages);
            }
        }
    }
}

fn pipeline(dir: &Path, input: &Input) -> String {
    format!(
        "CREATE SOURCE auth (seq BIGINT, event_time TIMESTAMPTZ, user_name VARCHAR, status VARCHAR)
           WITH ({source}) FORMAT PLAIN ENCODE JSON;
         CREATE TABLE watchlist (user_name VARCHAR, reason VARCHAR);
         INSERT INTO watchlist VALUES ('u1', 'contractor'), ('u2', 'departed');
         CREATE MATERIALIZED VIEW failures AS
           SELECT seq, user_name FROM auth WHERE status = 'failure';
         CREATE MATERIALIZED VIEW failures_per_user AS
           SELECT user_name, COUNT(*) AS n FROM auth WHERE status = 'failure' GROUP BY user_name;
         CREATE MATERIALIZED VIEW watched_logins AS
           SELECT a.user_name, w.reason, COUNT(*) AS n
           FROM auth a JOIN watchlist w ON a.user_name = w.user_name
           GROUP BY a.user_name, w.reason;
         CREATE SINK failure_alerts FROM failures
           WITH (connector = 'file', path = '{out}/failures.jsonl') FORMAT PLAIN ENCODE JSON;
         CREATE SINK failure_counts FROM failures_per_user
           WITH (connector = 'file', path = '{out}/counts.jsonl') FORMAT UPSERT ENCODE JSON;",
        source = input.source_options(dir),
        out = dir.join("out").display()
    )
}

fn append(path: &Path, events: &[Event], malformed: bool) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut text = String::new();
    for e in events {
        text.push_str(&e.json());
        text.push('\n');
    }
    if malformed {
        text.push_str("{\"seq\": \"not a number\", \"user_name\": \n");
    }
    f.write_all(text.as_bytes()).unwrap();
}

/// The rows an UPSERT sink's output leaves after applying its changes in order, checking
/// that no change takes a row below 0 or above 1 copies.
fn upsert_state(path: &Path) -> Vec<Vec<String>> {
    let mut state: BTreeMap<Vec<String>, i64> = BTreeMap::new();
    for v in lines(path) {
        let row = vec![
            v["row"]["user_name"].as_str().unwrap().to_string(),
            v["row"]["n"].as_i64().unwrap().to_string(),
        ];
        let n = state.entry(row.clone()).or_default();
        *n += if v["op"] == "upsert" { 1 } else { -1 };
        assert!(
            (0..=1).contains(n),
            "upsert sink change {v} leaves {row:?} with count {n}"
        );
        if *n == 0 {
            state.remove(&row);
        }
    }
    state.into_keys().collect()
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // A line still being written (no newline yet) is not read.
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad sink line {l:?}: {e}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sources_views_and_sinks_are_exact_after_repeated_sigkill() {
    crash_and_check(Input::Files).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_source_views_and_sinks_are_exact_after_repeated_sigkill() {
    let broker = Broker::start();
    broker.create_topic("auth", 2).await;
    crash_and_check(Input::Kafka(broker)).await;
}

async fn crash_and_check(input: Input) {
    let kills = env_or("RAMPART_CRASH_KILLS", 6);
    let total = env_or("RAMPART_CRASH_EVENTS", 30_000);
    let tmp = tempfile::tempdir().unwrap();
    // RAMPART_CRASH_KEEP=1 keeps the directory (data, events, sink output, server log).
    let (dir, _cleanup) = if std::env::var_os("RAMPART_CRASH_KEEP").is_some() {
        let kept = tmp.keep();
        eprintln!("crash test directory: {}", kept.display());
        (kept, None)
    } else {
        (tmp.path().to_path_buf(), Some(tmp))
    };
    let dir = dir.as_path();
    let data = dir.join("data");
    std::fs::create_dir_all(dir.join("events")).unwrap();
    let log = dir.join("server.log");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);

    let mut server = start(&data, &log);
    let client = connect(&server).await;
    client.batch_execute(&pipeline(dir, &input)).await.expect("pipeline");
    drop(client);

    // The input, appended in chunks across the run: two files, a malformed line per chunk.
    let events: Vec<Event> = (0..total).map(|i| Event::new(i, &mut rng)).collect();
    let chunks = (kills + 1) as usize;
    let per_chunk = events.len().div_ceil(chunks);
    let chunks = events.chunks(per_chunk).len();
    let mut watchlist: BTreeMap<String, String> =
        BTreeMap::from([("u1".into(), "contractor".into()), ("u2".into(), "departed".into())]);
    for (i, chunk) in events.chunks(per_chunk).enumerate() {
        input.deliver(dir, i, chunk);
        // Table changes between crashes: they must survive too.
        let client = connect(&server).await;
        if i == 1 {
            client
                .batch_execute("INSERT INTO watchlist VALUES ('u3', 'new hire')")
                .await
                .unwrap();
            watchlist.insert("u3".into(), "new hire".into());
        }
        if i == 3 {
            client
                .batch_execute("DELETE FROM watchlist WHERE user_name = 'u1'")
                .await
                .unwrap();
            watchlist.remove("u1");
        }
        drop(client);
        if (i as u64) < kills {
            // Kill at a random moment while the chunk is being read and checkpointed.
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..400))).await;
            server.child.kill().expect("SIGKILL");
            server.child.wait().unwrap();
            server = start(&data, &log);
        }
    }

    // Expected, counted from the events written.
    let expected_failures: BTreeSet<(u64, String)> = events
        .iter()
        .filter(|e| e.failure)
        .map(|e| (e.seq, e.user.clone()))
        .collect();
    let mut per_user: BTreeMap<String, u64> = BTreeMap::new();
    let mut watched: BTreeMap<(String, String), u64> = BTreeMap::new();
    for e in &events {
        if e.failure {
            *per_user.entry(e.user.clone()).or_default() += 1;
        }
        if let Some(reason) = watchlist.get(&e.user) {
            *watched.entry((e.user.clone(), reason.clone())).or_default() += 1;
        }
    }
    let expected_per_user: Vec<Vec<String>> = per_user.iter().map(|(u, n)| vec![u.clone(), n.to_string()]).collect();
    let mut expected_watched: Vec<Vec<String>> = watched
        .iter()
        .map(|((u, r), n)| vec![u.clone(), r.clone(), n.to_string()])
        .collect();
    expected_watched.sort();

    // Wait for the last restart to replay everything.
    let client = connect(&server).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = rows(&client, "SELECT count(*) FROM failures").await;
        let sink_lines = lines(&dir.join("out/failures.jsonl")).len();
        if n[0][0] == expected_failures.len().to_string() && sink_lines >= expected_failures.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not caught up: view has {} of {} failures, sink {} lines; server log:\n{}",
            n[0][0],
            expected_failures.len(),
            sink_lines,
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Views: exactly the hand count (each view replays with its own reader, so each is
    // waited for).
    wait_rows(
        &client,
        "SELECT user_name, n FROM failures_per_user",
        &expected_per_user,
    )
    .await;
    wait_rows(
        &client,
        "SELECT user_name, reason, n FROM watched_logins",
        &expected_watched,
    )
    .await;
    wait_rows(
        &client,
        "SELECT count(*) FROM rampart_source_errors",
        &[vec![chunks.to_string()]],
    )
    .await;
    let errors = rows(&client, "SELECT count(*) FROM rampart_source_errors").await;
    assert_eq!(
        errors[0][0],
        chunks.to_string(),
        "one error per malformed line, recorded once"
    );
    // The views hold every event now: once every sink has passed this moment, it has
    // written what they hold.
    rampart_testkit::wait_settled(&client, std::time::SystemTime::now()).await;

    // PLAIN sink over an append-only view: every failure exactly once.
    let mut seen: BTreeMap<(u64, String), usize> = BTreeMap::new();
    for v in lines(&dir.join("out/failures.jsonl")) {
        let key = (v["seq"].as_u64().unwrap(), v["user_name"].as_str().unwrap().to_string());
        *seen.entry(key).or_default() += 1;
    }
    let duplicated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicated.is_empty(), "rows emitted more than once: {duplicated:?}");
    let emitted: BTreeSet<(u64, String)> = seen.into_keys().collect();
    let missing: Vec<_> = expected_failures.difference(&emitted).take(5).collect();
    let extra: Vec<_> = emitted.difference(&expected_failures).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );

    // UPSERT sink over an updating view: replaying its changes in order never deletes a
    // row it has not emitted, never emits a row twice, and ends at the view's contents
    // (once the sink has caught up with the view).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let final_rows = upsert_state(&dir.join("out/counts.jsonl"));
        if final_rows == expected_per_user {
            break;
        }
        assert!(Instant::now() < deadline, "upsert sink ends at {final_rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The recovery path ran: restarted sinks resumed from their logs.
    let server_log = std::fs::read_to_string(&log).unwrap_or_default();
    let resumed = server_log.matches("sink resumed after its inputs replayed").count();
    assert!(
        resumed >= 1,
        "no sink resumed after a restart; server log:\n{server_log}"
    );
}
