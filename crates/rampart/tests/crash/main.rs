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
//!
//! One module per concern; the helpers here are what they share.

mod files;
mod kafka_sink;
mod retention;
mod seed;
mod snapshots;
mod start_positions;
mod stop;

use std::path::Path;
use std::time::{Duration, Instant};

use rampart_testkit::process::RampartProcess;
use tokio_postgres::{Client, SimpleQueryMessage};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
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

/// `{"id": n}` messages for partition 0, one per id in `ids`.
fn id_messages(ids: std::ops::Range<i64>) -> Vec<(Option<i32>, String)> {
    ids.map(|i| (Some(0), format!("{{\"id\": {i}}}"))).collect()
}
