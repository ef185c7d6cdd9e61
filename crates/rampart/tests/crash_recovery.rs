//! Crash recovery: a real `rampart serve` process is killed with SIGKILL at random moments
//! while events are appended to its source files and its reference table changes, and is
//! restarted on the same data directory each time. At the end every view must hold exactly
//! what the input implies, and every sink's output must hold each change exactly once.
//!
//! Two inputs: JSON-lines files, and a two-partition Kafka topic on a real Kafka-protocol
//! broker (Tansu, see `rampart_testkit::broker`). A Kafka sink is checked on its own:
//! nothing lost across kills, nothing it had logged as acknowledged sent again. The expected results are computed
//! here from the events the test wrote (a hand count in Rust), not by Rampart. `RAMPART_CRASH_KILLS` (default 6) and `RAMPART_CRASH_EVENTS`
//! (default 30000) scale it up: docs/performance.md names the long run.
//!
//! The first seed pipeline itself, from three Kafka topics, is killed the same way and
//! compared view by view, and its Kafka alert sink message by message, with a run without
//! crashes
//! (`seed_pipeline_from_kafka_matches_a_run_without_crashes`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use rampart_testkit::broker;
/// The seed pipeline as the benchmarks run it (reference tables written out, sources and
/// sink swapped).
use rampart_testkit::pipelines as common;

use broker::Broker;
use rampart_connectors::generator::{EventGenerator, GeneratorKind};
use rampart_testkit::process::RampartProcess;
use rand::{Rng, SeedableRng};
use tokio_postgres::{Client, SimpleQueryMessage};

const USERS: u64 = 40;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

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

/// A `rampart serve` process of this build.
type Server = RampartProcess;

fn start(data: &Path, log: &Path) -> Server {
    RampartProcess::start(Path::new(env!("CARGO_BIN_EXE_rampart")), data, log)
}

async fn connect(server: &Server) -> Client {
    server.connect().await
}

async fn rows(client: &Client, sql: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for m in client.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}")) {
        if let SimpleQueryMessage::Row(r) = m {
            out.push((0..r.len()).map(|i| r.get(i).unwrap_or("NULL").to_string()).collect());
        }
    }
    out.sort();
    out
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
    // Let the sinks flush what the views now hold.
    tokio::time::sleep(Duration::from_millis(500)).await;

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

/// What a restart must keep besides rows: a `latest` file source starts where it started
/// when it was created (not at the end of the file again, which would lose the lines
/// appended while the server was down), and a dropped object stays dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_latest_start_positions_and_drops() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let log = dir.join("server.log");
    let file = dir.join("ids.jsonl");
    let ids = |r: std::ops::Range<i64>| r.map(|i| format!("{{\"id\": {i}}}\n")).collect::<String>();
    std::fs::write(&file, ids(0..5)).unwrap();

    let server = start(&data, &log);
    let client = connect(&server).await;
    client
        .batch_execute(&format!(
            "CREATE SOURCE ids (id INT) WITH (connector = 'file', path = '{}', scan.startup.mode = 'latest')
               FORMAT PLAIN ENCODE JSON;
             CREATE MATERIALIZED VIEW new_ids AS SELECT id FROM ids;
             CREATE MATERIALIZED VIEW doomed AS SELECT COUNT(*) AS n FROM ids;
             DROP MATERIALIZED VIEW doomed;",
            file.display()
        ))
        .await
        .unwrap();
    let append = |text: String| {
        let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    append(ids(5..8));
    let want = |r: std::ops::Range<i64>| r.map(|i| vec![i.to_string()]).collect::<Vec<_>>();
    wait_rows(&client, "SELECT id FROM new_ids", &want(5..8)).await;
    drop(client);

    sigkill(server);
    append(ids(8..10)); // while the server is down
    let server = start(&data, &log);
    let client = connect(&server).await;
    wait_rows(&client, "SELECT id FROM new_ids", &want(5..10)).await;
    let views = rows(&client, "SHOW MATERIALIZED VIEWS").await;
    assert_eq!(views, vec![vec!["new_ids".to_string()]]);
}

/// A view of single source events (`normalized_events` as the seed writes it) is written to
/// a checkpoint as it runs; after a kill it comes back from its last checkpoint, and its
/// readers resume at the checkpoint's positions instead of replaying the file from its
/// start. The test proves where the rows came from: while the server is down it overwrites
/// the lines already read with lines of the same length but other values. A replay from
/// the start would read those; a restore from the checkpoint keeps the values the server
/// had read, and reads only the lines appended after. A view over it (a GROUP BY, rebuilt
/// from the restored rows) and the file sink over it agree, and the malformed line read
/// before the kill is still in `rampart_source_errors`. (Expected sums by hand: ids 0..N,
/// each line's `v` is 1 before the overwrite and 7 after.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshotted_view_resumes_at_its_checkpoint_instead_of_replaying() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let log = dir.join("server.log");
    let file = dir.join("events.jsonl");
    let line = |id: i64, v: i64| format!("{{\"id\": {id:<5}, \"v\": {v}}}\n");
    let lines = |r: std::ops::Range<i64>, v: i64| r.map(|i| line(i, v)).collect::<String>();
    const READ: i64 = 3000;
    // Line 1 is malformed: it goes to rampart_source_errors, and stays there after the
    // restart although nothing reads it again.
    const BAD: &str = "{\"id\": \n";
    std::fs::write(&file, BAD.to_string() + &lines(0..READ, 1)).unwrap();

    let server = start(&data, &log);
    let client = connect(&server).await;
    client
        .batch_execute(&format!(
            "CREATE SOURCE events (id INT, v INT) WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;
             CREATE MATERIALIZED VIEW scaled AS SELECT id, v * 10 AS v10 FROM events WHERE id >= 0;
             CREATE MATERIALIZED VIEW totals AS SELECT COUNT(*) AS n, SUM(v10) AS s FROM scaled;
             CREATE SINK scaled_out FROM scaled
               WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;",
            file.display(),
            dir.join("scaled.jsonl").display()
        ))
        .await
        .unwrap();
    let total = |n: i64, s: i64| vec![vec![n.to_string(), s.to_string()]];
    wait_rows(&client, "SELECT n, s FROM totals", &total(READ, READ * 10)).await;
    wait_checkpoint_settled(&client, "scaled").await;
    drop(client);
    sigkill(server);

    // While the server is down: the lines it read now say v = 7, and 500 more arrive.
    const MORE: i64 = 500;
    std::fs::write(
        &file,
        BAD.to_string() + &lines(0..READ, 7) + &lines(READ..READ + MORE, 1) + BAD,
    )
    .unwrap();
    let server = start(&data, &log);
    let client = connect(&server).await;
    let n = READ + MORE;
    wait_rows(&client, "SELECT n, s FROM totals", &total(n, n * 10)).await;
    // Line numbers count from the file's start, also for the reader that resumed.
    let last_line = (1 + READ + MORE + 1).to_string();
    wait_rows(
        &client,
        "SELECT line_or_offset FROM rampart_source_errors",
        &[vec!["1".to_string()], vec![last_line]],
    )
    .await;
    let distinct = rows(&client, "SELECT COUNT(DISTINCT id), MIN(v10), MAX(v10) FROM scaled").await;
    assert_eq!(distinct, vec![vec![n.to_string(), "10".into(), "10".into()]]);
    let restored = std::fs::read_to_string(&log).unwrap();
    assert!(
        restored.contains("restoring from its last checkpoint"),
        "the server log says where scaled came from"
    );
    // The sink emitted every row once, across the kill.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = std::fs::read_to_string(dir.join("scaled.jsonl")).unwrap_or_default();
        let ids: BTreeSet<i64> = out
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        if ids.len() as i64 == n {
            assert_eq!(out.lines().count() as i64, n, "no row emitted twice");
            break;
        }
        assert!(Instant::now() < deadline, "sink holds {} of {n} ids", ids.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A view of a source with a `WATERMARK` is snapshotted too, and after a kill the
/// watermark comes back with it. The source's reader resumes with the largest event time it
/// had read, so the first line after the restart that is behind that watermark is late, as
/// it would have been without the kill; the window aggregate over the view closes the
/// windows the watermark had closed from the restored rows alone (before any new line),
/// and the late line read before the kill is still in `rampart_late_events`. The lines
/// read before the kill are overwritten while the server is down (user `a` becomes `z`,
/// same length), so a replay from the file's start would show `z`. Expected windows by
/// hand: one event per second, 10-second windows, 5 seconds of delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watermarked_snapshotted_view_resumes_with_its_watermark() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let log = dir.join("server.log");
    let file = dir.join("ev.jsonl");
    // Seconds 0..30, then second 3: behind the watermark (29 - 5), so late.
    std::fs::write(&file, ev_lines("a", 0..30) + &ev_line("a", 3)).unwrap();

    let server = start(&data, &log);
    let client = connect(&server).await;
    client
        .batch_execute(&format!(
            "CREATE SOURCE ev (u VARCHAR, t TIMESTAMPTZ, WATERMARK FOR t AS t - INTERVAL '5 seconds')
               WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;
             CREATE MATERIALIZED VIEW evs AS SELECT u, t FROM ev;
             CREATE MATERIALIZED VIEW per_window AS
               SELECT window_start, u, COUNT(*) AS n FROM TUMBLE(evs, t, INTERVAL '10 seconds')
               GROUP BY window_start, window_end, u EMIT ON WINDOW CLOSE;",
            file.display()
        ))
        .await
        .unwrap();
    let windows = |closed: &[(u32, i64)]| {
        closed
            .iter()
            .map(|(s, n)| vec![format!("2026-11-22 10:00:{s:02}+00"), "a".to_string(), n.to_string()])
            .collect::<Vec<_>>()
    };
    const WINDOWS: &str = "SELECT window_start, u, n FROM per_window ORDER BY window_start";
    const LATE: &str = "SELECT line_or_offset FROM rampart_late_events ORDER BY line_or_offset";
    wait_rows(&client, WINDOWS, &windows(&[(0, 10), (10, 10)])).await;
    wait_rows(&client, LATE, &[vec!["31".to_string()]]).await;
    wait_checkpoint_settled(&client, "evs").await;
    drop(client);
    sigkill(server);

    std::fs::write(&file, ev_lines("z", 0..30) + &ev_line("z", 3)).unwrap();
    let server = start(&data, &log);
    let client = connect(&server).await;
    // From the restored rows and watermark alone: nothing new has been read.
    wait_rows(&client, WINDOWS, &windows(&[(0, 10), (10, 10)])).await;
    wait_rows(&client, LATE, &[vec!["31".to_string()]]).await;
    let users = rows(&client, "SELECT u, COUNT(*) FROM evs GROUP BY u").await;
    assert_eq!(
        users,
        vec![vec!["a".to_string(), "30".to_string()]],
        "restored, not replayed"
    );

    // Second 22 is behind the restored watermark (29 - 5): late. Then seconds 30..50 close
    // the windows at 20 (still 10 events: not 11) and 30.
    let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
    f.write_all((ev_line("a", 22) + &ev_lines("a", 30..50)).as_bytes())
        .unwrap();
    drop(f);
    wait_rows(&client, WINDOWS, &windows(&[(0, 10), (10, 10), (20, 10), (30, 10)])).await;
    wait_rows(&client, LATE, &[vec!["31".to_string()], vec!["32".to_string()]]).await;
    let restored = std::fs::read_to_string(&log).unwrap();
    assert!(restored.contains("restoring from its last checkpoint"));
    drop(client);
    sigkill(server);
}

/// The restored watermark waits until every restored row is in: with 40,000 restored rows
/// (more than the 16,384 a worker puts in per dataflow time, so restoring spans several
/// times), a watermark that came first would close windows before their rows arrived, and
/// those rows would be late. Expected by hand: one event per second for 40,000 s, 10-second
/// windows, 5 s of delay: the watermark 39,994 s closes the 3,999 windows before 39,990 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_watermark_waits_for_every_restored_row() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let log = dir.join("server.log");
    let file = dir.join("ev.jsonl");
    const EVENTS: u32 = 40_000;
    let text: String = (0..EVENTS)
        .map(|s| {
            let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
            format!("{{\"t\": \"2026-11-22T{h:02}:{m:02}:{s:02}Z\"}}\n")
        })
        .collect();
    std::fs::write(&file, text).unwrap();
    let server = start(&data, &log);
    let client = connect(&server).await;
    client
        .batch_execute(&format!(
            "CREATE SOURCE ev (t TIMESTAMPTZ, WATERMARK FOR t AS t - INTERVAL '5 seconds')
               WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;
             CREATE MATERIALIZED VIEW evs AS SELECT t FROM ev;
             CREATE MATERIALIZED VIEW per_window AS
               SELECT window_start, COUNT(*) AS n FROM TUMBLE(evs, t, INTERVAL '10 seconds')
               GROUP BY window_start, window_end EMIT ON WINDOW CLOSE;",
            file.display()
        ))
        .await
        .unwrap();
    const SUMMARY: &str = "SELECT COUNT(*), SUM(n), MAX(n) FROM per_window";
    let closed = vec![vec!["3999".to_string(), "39990".to_string(), "10".to_string()]];
    wait_rows(&client, SUMMARY, &closed).await;
    wait_checkpoint_settled(&client, "evs").await;
    drop(client);
    sigkill(server);

    let server = start(&data, &log);
    let client = connect(&server).await;
    wait_rows(&client, SUMMARY, &closed).await;
    let late = rows(&client, "SELECT COUNT(*) FROM rampart_late_events").await;
    assert_eq!(late, vec![vec!["0".to_string()]], "no restored row was late");
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("restoring from its last checkpoint"));
    drop(client);
    sigkill(server);
}

/// A view with a retention over a source is snapshotted too: after a kill it comes back
/// with the rows it held (not replayed: the lines read before the kill are overwritten
/// while the server is down), expires them as the watermark moves on, and a retained view
/// over it rebuilds from them. Once a view without a retention reads it (it keeps what it
/// derived from expired rows, which no checkpoint holds), the retained view stops being
/// snapshotted and a restart replays its source. Expected rows by hand: one event per
/// second, 5 s of delay, 20 s of retention: at watermark W a view holds the seconds > W - 20.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retained_view_is_snapshotted_until_a_view_without_retention_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let log = dir.join("server.log");
    let file = dir.join("ev.jsonl");
    std::fs::write(&file, ev_lines("a", 0..60)).unwrap();
    let server = start(&data, &log);
    let client = connect(&server).await;
    client
        .batch_execute(&format!(
            "CREATE SOURCE ev (u VARCHAR, t TIMESTAMPTZ, WATERMARK FOR t AS t - INTERVAL '5 seconds')
               WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;
             CREATE MATERIALIZED VIEW recent WITH (retention = '20 seconds') AS SELECT u, t FROM ev;
             CREATE MATERIALIZED VIEW recent_named WITH (retention = '20 seconds') AS
               SELECT u, t FROM recent WHERE u <> 'nobody';",
            file.display()
        ))
        .await
        .unwrap();
    // (user, rows, first second held) of each view.
    let held = |u: &str, n: u32, first: u32| {
        vec![vec![
            u.to_string(),
            n.to_string(),
            format!("2026-11-22 10:{:02}:{:02}+00", first / 60, first % 60),
        ]]
    };
    let query = |view: &str| format!("SELECT u, COUNT(*), MIN(t) FROM {view} GROUP BY u");
    // Watermark 54: seconds 35..=59.
    wait_rows(&client, &query("recent"), &held("a", 25, 35)).await;
    wait_rows(&client, &query("recent_named"), &held("a", 25, 35)).await;
    wait_checkpoint_settled(&client, "recent").await;
    drop(client);
    sigkill(server);

    std::fs::write(&file, ev_lines("z", 0..60)).unwrap();
    let server = start(&data, &log);
    let client = connect(&server).await;
    wait_rows(&client, &query("recent"), &held("a", 25, 35)).await;
    wait_rows(&client, &query("recent_named"), &held("a", 25, 35)).await;
    let restores = |text: &str| text.matches("restoring from its last checkpoint").count();
    assert_eq!(restores(&std::fs::read_to_string(&log).unwrap()), 1);
    // Ten more seconds: watermark 64, seconds 45..=69, the restored rows expiring too.
    let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
    f.write_all(ev_lines("a", 60..70).as_bytes()).unwrap();
    drop(f);
    wait_rows(&client, &query("recent"), &held("a", 25, 45)).await;
    wait_rows(&client, &query("recent_named"), &held("a", 25, 45)).await;

    // A view without a retention over it: no longer snapshotted.
    client
        .batch_execute("CREATE MATERIALIZED VIEW every_user AS SELECT DISTINCT u FROM recent")
        .await
        .unwrap();
    assert!(!data.join("views").join("recent.log").exists(), "its log is deleted");
    let listed = rows(&client, "SELECT view FROM rampart_checkpoints").await;
    assert!(!listed.contains(&vec!["recent".to_string()]), "{listed:?}");
    drop(client);
    sigkill(server);
    let server = start(&data, &log);
    let client = connect(&server).await;
    // Replayed from the file's start: seconds 45..=59 now say z.
    wait_rows(
        &client,
        "SELECT u, COUNT(*) FROM recent GROUP BY u ORDER BY u",
        &[
            vec!["a".to_string(), "10".to_string()],
            vec!["z".to_string(), "15".to_string()],
        ],
    )
    .await;
    assert_eq!(
        restores(&std::fs::read_to_string(&log).unwrap()),
        1,
        "not restored again"
    );
    drop(client);
    drop(server);
}

/// Views without a retention over a retained snapshotted view (the alert views over
/// `enriched_events` with a retention) are saved with their rows at every checkpoint, and
/// after a kill rebuild their windows' state from the retained view's restored rows with
/// what that produces muted, next to their own restored rows: every window closed before
/// the kill comes back once (including those whose events have expired), and the window
/// open at the kill counts its events from both sides of it. The lines read before the
/// kill are overwritten while the server is down, so a replay would show user `z`.
/// Expected by hand: one event per second, 5 s of delay, 5-second windows, 20 s of
/// retention (the window's state needs 10 s: twice the key's lag).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_over_a_retained_view_come_back_from_their_own_rows_and_its_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let log = dir.join("server.log");
    let file = dir.join("ev.jsonl");
    // The views exist before the first line (a view created over a retained view later
    // starts from the rows it still holds).
    std::fs::write(&file, "").unwrap();
    let server = start(&data, &log);
    let client = connect(&server).await;
    client
        .batch_execute(&format!(
            "CREATE SOURCE ev (u VARCHAR, t TIMESTAMPTZ, WATERMARK FOR t AS t - INTERVAL '5 seconds')
               WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;
             CREATE MATERIALIZED VIEW recent WITH (retention = '20 seconds') AS SELECT u, t FROM ev;
             CREATE MATERIALIZED VIEW per_window AS
               SELECT window_start, u, COUNT(*) AS n FROM TUMBLE(recent, t, INTERVAL '5 seconds')
               GROUP BY window_start, window_end, u EMIT ON WINDOW CLOSE;
             CREATE MATERIALIZED VIEW everything AS SELECT u, t FROM recent WHERE u <> 'nobody';",
            file.display()
        ))
        .await
        .unwrap();
    const WINDOWS: &str =
        "SELECT COUNT(*), COUNT(DISTINCT window_start), SUM(n), MIN(n), MAX(n), MIN(u), MAX(u) FROM per_window";
    const EVERYTHING: &str = "SELECT COUNT(*), COUNT(DISTINCT t), MIN(u), MAX(u) FROM everything";
    let summary = |windows: u32, events: u32| {
        vec![vec![
            windows.to_string(),
            windows.to_string(),
            events.to_string(),
            "5".to_string(),
            "5".to_string(),
            "a".to_string(),
            "a".to_string(),
        ]]
    };
    let all = |n: u32| vec![vec![n.to_string(), n.to_string(), "a".to_string(), "a".to_string()]];
    // Seconds 0..=62: watermark 57, windows up to [50, 55) closed; [60, 65) holds 3.
    std::fs::write(&file, ev_lines("a", 0..63)).unwrap();
    wait_rows(&client, WINDOWS, &summary(11, 55)).await;
    wait_rows(&client, EVERYTHING, &all(63)).await;
    for view in ["recent", "per_window", "everything"] {
        wait_checkpoint_settled(&client, view).await;
    }
    drop(client);
    sigkill(server);

    // While it is down, seconds 63..=69 arrive: read as soon as the restore is complete
    // (not before: what the rebuilt views make before then is muted), they close
    // [55, 60) with watermark 64.
    std::fs::write(&file, ev_lines("z", 0..63) + &ev_lines("a", 63..70)).unwrap();
    let server = start(&data, &log);
    let client = connect(&server).await;
    wait_rows(&client, WINDOWS, &summary(12, 60)).await;
    wait_rows(&client, EVERYTHING, &all(70)).await;
    let restored = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        restored.matches("restoring from its last checkpoint").count(),
        3,
        "{restored}"
    );
    // Seconds 70..=80: watermark 75 closes up to [70, 75), [60, 65) with 3 events from
    // before the kill and 2 after it.
    let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
    f.write_all(ev_lines("a", 70..81).as_bytes()).unwrap();
    drop(f);
    wait_rows(&client, WINDOWS, &summary(15, 75)).await;
    wait_rows(&client, EVERYTHING, &all(81)).await;
    let late = rows(&client, "SELECT COUNT(*) FROM rampart_late_events").await;
    assert_eq!(late, vec![vec!["0".to_string()]]);

    // A view that needs every row (a count over all time) cannot be rebuilt: the retained
    // view and the views rebuilt over it stop being snapshotted.
    client
        .batch_execute("CREATE MATERIALIZED VIEW total AS SELECT COUNT(*) AS n FROM recent")
        .await
        .unwrap();
    for view in ["recent", "per_window", "everything"] {
        assert!(
            !data.join("views").join(format!("{view}.log")).exists(),
            "{view}'s log is deleted"
        );
    }
    drop(client);
    sigkill(server);
    let server = start(&data, &log);
    let client = connect(&server).await;
    // Replayed from the file's start: the first 63 seconds now say z.
    wait_rows(
        &client,
        "SELECT u, COUNT(*) FROM everything GROUP BY u ORDER BY u",
        &[
            vec!["a".to_string(), "18".to_string()],
            vec!["z".to_string(), "63".to_string()],
        ],
    )
    .await;
    // `total` started from the 25 rows `recent` held when it was created (seconds
    // 56..=80), and comes back so.
    wait_rows(&client, "SELECT n FROM total", &[vec!["25".to_string()]]).await;
    drop(client);
    drop(server);
}

/// A view without a retention created over a retained view starts from the rows that view
/// holds then. A restart replays every source from the start, so the rebuilt view sees
/// rows that had expired before it was created; the expiry floor recorded in the catalog
/// at creation makes them leave again, and the view comes back as it was; a sink created
/// then over the retained view does not emit them after the restart either. (Expected
/// rows by hand: `recent` keeps t + 20 s above the watermark, max t - 5 s.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_created_over_a_retained_view_comes_back_the_same_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let log = dir.join("server.log");
    let file = dir.join("ev.jsonl");
    std::fs::write(&file, "").unwrap();
    let append = |events: &[(&str, u32)]| {
        let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
        for (u, s) in events {
            writeln!(f, "{{\"u\": \"{u}\", \"t\": \"2026-11-22T10:00:{s:02}Z\"}}").unwrap();
        }
    };
    let counts = |pairs: &[(&str, i64)]| {
        pairs
            .iter()
            .map(|(u, n)| vec![u.to_string(), n.to_string()])
            .collect::<Vec<_>>()
    };

    let server = start(&data, &log);
    let client = connect(&server).await;
    client
        .batch_execute(&format!(
            "CREATE SOURCE ev (u VARCHAR, t TIMESTAMPTZ, WATERMARK FOR t AS t - INTERVAL '5 seconds')
               WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;
             CREATE MATERIALIZED VIEW recent WITH (retention = '20 seconds') AS SELECT u, t FROM ev;",
            file.display()
        ))
        .await
        .unwrap();
    append(&[("a", 1), ("a", 2), ("a", 3)]);
    wait_rows(
        &client,
        "SELECT u, COUNT(*) FROM recent GROUP BY u",
        &counts(&[("a", 3)]),
    )
    .await;
    // b at 40: watermark 35, past a's expiry (t + 20 <= 23).
    append(&[("b", 40)]);
    wait_rows(
        &client,
        "SELECT u, COUNT(*) FROM recent GROUP BY u",
        &counts(&[("b", 1)]),
    )
    .await;
    let out = dir.join("recent_out.jsonl");
    client
        .batch_execute(&format!(
            "CREATE MATERIALIZED VIEW later_count AS SELECT u, COUNT(*) AS n FROM recent GROUP BY u;
             CREATE SINK recent_out FROM recent WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;",
            out.display()
        ))
        .await
        .unwrap();
    append(&[("c", 50)]);
    let want = counts(&[("b", 1), ("c", 1)]);
    wait_rows(&client, "SELECT u, n FROM later_count", &want).await;
    let users = || -> Vec<String> {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let mut us: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["u"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        us.sort();
        us
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while users() != ["b", "c"] {
        assert!(Instant::now() < deadline, "sink wrote {:?}", users());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(client);

    sigkill(server);
    let server = start(&data, &log);
    let client = connect(&server).await;
    wait_rows(
        &client,
        "SELECT u, COUNT(*) FROM recent GROUP BY u",
        &counts(&[("b", 1), ("c", 1)]),
    )
    .await;
    wait_rows(&client, "SELECT u, n FROM later_count", &want).await;
    // Not a passing state of the replay: it stays so.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rows(&client, "SELECT u, n FROM later_count").await, want);
    // The sink carries on after its restart with d, and never emits a's rows.
    append(&[("d", 55)]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !users().contains(&"d".to_string()) {
        assert!(Instant::now() < deadline, "sink wrote {:?}", users());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(users(), ["b", "c", "d"]);
    drop(server);
}

/// Kills a server with SIGKILL and waits for it to exit.
fn sigkill(server: Server) {
    server.sigkill();
}

/// One line of the `ev` source the watermark tests read: user `u` at `s` seconds after
/// 10:00 on 2026-11-22.
fn ev_line(u: &str, s: u32) -> String {
    format!(
        "{{\"u\": \"{u}\", \"t\": \"2026-11-22T10:{:02}:{:02}Z\"}}\n",
        s / 60,
        s % 60
    )
}

/// [`ev_line`] for each second of `seconds`.
fn ev_lines(u: &str, seconds: std::ops::Range<u32>) -> String {
    seconds.map(|s| ev_line(u, s)).collect()
}

/// Waits until `view` has been checkpointed and no checkpoint followed for 500 ms (the
/// checkpointer runs every 50 ms in these tests and writes only when the view has new
/// rows), so the last checkpoint holds every row the caller saw.
async fn wait_checkpoint_settled(client: &Client, view: &str) {
    let sql = format!("SELECT checkpoints FROM rampart_checkpoints WHERE view = '{view}'");
    let count = |cp: Vec<Vec<String>>| cp.first().map_or(0, |r| r[0].parse::<i64>().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut last, mut since) = (0, Instant::now());
    loop {
        let now = count(rows(client, &sql).await);
        if now != last {
            (last, since) = (now, Instant::now());
        } else if now > 0 && since.elapsed() >= Duration::from_millis(500) {
            return;
        }
        assert!(Instant::now() < deadline, "{view}: {now} checkpoints, still changing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_rows(client: &Client, sql: &str, want: &[Vec<String>]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = rows(client, sql).await;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{sql}: got {got:?}, want {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Kafka `latest` source keeps the offsets it started at when it was created: after a
/// restart it replays from them, including what arrived while the server was down. (The
/// topic starts empty: the test broker reports too-low end offsets after batches, see
/// ../shared/DESIGN.md, so "latest" over existing messages is not testable with it.)
/// `{"id": n}` messages for partition 0, one per id in `ids`.
fn id_messages(ids: std::ops::Range<i64>) -> Vec<(Option<i32>, String)> {
    ids.map(|i| (Some(0), format!("{{\"id\": {i}}}"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_latest_start_survives_restart() {
    let broker = Broker::start();
    broker.create_topic("ids", 1).await;
    let tmp = tempfile::tempdir().unwrap();
    let (data, log) = (tmp.path().join("data"), tmp.path().join("server.log"));
    let server = start(&data, &log);
    let client = connect(&server).await;
    client
        .batch_execute(&format!(
            "CREATE SOURCE ids (id INT) WITH (connector = 'kafka', topic = 'ids',
               properties.bootstrap.server = '{}', scan.startup.mode = 'latest') FORMAT PLAIN ENCODE JSON;
             CREATE MATERIALIZED VIEW new_ids AS SELECT id FROM ids;",
            broker.bootstrap()
        ))
        .await
        .unwrap();
    broker.produce("ids", &id_messages(0..3));
    let want = |r: std::ops::Range<i64>| r.map(|i| vec![i.to_string()]).collect::<Vec<_>>();
    wait_rows(&client, "SELECT id FROM new_ids", &want(0..3)).await;
    drop(client);
    sigkill(server);
    broker.produce("ids", &id_messages(3..5)); // while the server is down
    let server = start(&data, &log);
    let client = connect(&server).await;
    wait_rows(&client, "SELECT id FROM new_ids", &want(0..5)).await;
}

/// The ids (`{"id": n}`) in the payloads of `messages`, counted.
fn id_counts(messages: &[(Option<String>, Option<String>)]) -> BTreeMap<i64, usize> {
    let mut counts = BTreeMap::new();
    for (_, payload) in messages {
        let v: serde_json::Value = serde_json::from_str(payload.as_deref().unwrap_or("null")).unwrap();
        *counts.entry(v["id"].as_i64().expect("id")).or_insert(0) += 1;
    }
    counts
}

/// A Kafka sink across SIGKILLs: its writes only queue messages and a batch is logged once
/// the broker acknowledged it, so a kill loses nothing; messages that reached the broker but
/// were not logged yet are found again by reading the topic back after the restart, so none
/// is sent twice: exactly once, counted from the alert topic itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_sink_sends_every_change_exactly_once_across_sigkill() {
    let broker = Broker::start();
    broker.create_topic("ids", 1).await;
    broker.create_topic("ids_out", 1).await;
    let tmp = tempfile::tempdir().unwrap();
    let (data, log) = (tmp.path().join("data"), tmp.path().join("server.log"));
    let mut server = start(&data, &log);
    let client = connect(&server).await;
    client
        .batch_execute(&format!(
            "CREATE SOURCE ids (id INT) WITH (connector = 'kafka', topic = 'ids',
               properties.bootstrap.server = '{b}') FORMAT PLAIN ENCODE JSON;
             CREATE SINK ids_out AS SELECT id FROM ids WITH (connector = 'kafka', topic = 'ids_out',
               properties.bootstrap.server = '{b}') FORMAT PLAIN ENCODE JSON;",
            b = broker.bootstrap()
        ))
        .await
        .unwrap();
    drop(client);
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let (chunks, per_chunk) = (5i64, 400i64);
    for c in 0..chunks {
        broker.produce("ids", &id_messages(c * per_chunk..(c + 1) * per_chunk));
        // Kill at a random moment while the chunk is read and sent (a restarted sink reads
        // the topic back for at least half a second before it sends again).
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..1500))).await;
        server.child.kill().expect("SIGKILL");
        server.child.wait().unwrap();
        server = start(&data, &log);
    }
    let total = chunks * per_chunk;
    let out = broker.consume_until("ids_out", 1, |got| id_counts(got).len() as i64 >= total);
    let counts = id_counts(&out);
    let missing: Vec<i64> = (0..total).filter(|i| !counts.contains_key(i)).collect();
    assert!(
        missing.is_empty(),
        "{} ids never sent, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(counts.keys().all(|i| (0..total).contains(i)), "unexpected ids");
    let repeated: Vec<(&i64, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "{} ids sent more than once across {chunks} kills, first (id, times) {:?}",
        repeated.len(),
        &repeated[..repeated.len().min(10)]
    );
    let server_log = std::fs::read_to_string(&log).unwrap_or_default();
    let read_back = server_log
        .matches("counted what reached the destination after the sink's last record")
        .count();
    eprintln!("{total} ids sent across {chunks} kills, each once; {read_back} restarts read the topic back");
    assert!(read_back > 0, "a restarted sink reads its topic back:\n{server_log}");

    // Everything is acknowledged; once the sink's log is synced (every second), a kill
    // must not send any of it again.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
    let _server = start(&data, &log);
    broker.produce("ids", &id_messages(total..total + 1));
    let out = broker.consume_until("ids_out", 1, |got| id_counts(got).contains_key(&total));
    let after = id_counts(&out);
    assert_eq!(after.get(&total), Some(&1), "the new id is sent once");
    let resent: Vec<i64> = (0..total).filter(|i| after.get(i) != counts.get(i)).collect();
    assert!(
        resent.is_empty(),
        "{} acknowledged and logged ids were sent again, first {:?}",
        resent.len(),
        &resent[..resent.len().min(10)]
    );
}

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
