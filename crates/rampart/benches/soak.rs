//! Soak: the first seed pipeline with a `WATERMARK` on every source, fed at a steady rate,
//! printing memory over time.
//!
//! `cargo bench -p rampart --bench soak -- [EVENTS_PER_SOURCE] [RATE_PER_SOURCE]`
//! (defaults 200000 and 1000 events/s). Events are appended to three JSON-lines files in
//! 100 ms slices at the given rate; event time advances `RAMPART_SOAK_EVENT_MS` (default
//! 200) per event and source, so an hour of event time passes every 18,000 events and the
//! 5-minute and 30-minute windows open and close many times in one run.
//!
//! `RAMPART_SOAK_MODE=seed` (default) runs the seed pipeline as written, plus
//! `WATERMARK FOR event_time AS event_time - INTERVAL '5 seconds'` on the sources,
//! `EMIT ON WINDOW CLOSE` on the two windowed aggregates and
//! `WITH (retention = '1 hour')` on `normalized_events` and `enriched_events`, the two
//! views that would otherwise keep every event (`RAMPART_SOAK_RETENTION` sets another
//! retention, `none` leaves them unbounded). `RAMPART_SOAK_MODE=detect` runs the same
//! detections directly over the sources, without those two views, to show the bounded
//! operators alone.
//!
//! Every 10 s it prints: elapsed seconds, events appended, events counted by the pipeline,
//! resident memory (VmRSS) and the alert counts. The server keeps a data directory, as
//! `rampart serve` does; at the end the bench prints its size, stops the server process
//! and times a new one recovering on that directory (catalog restored, sources replayed)
//! until every event is counted again, and checks that the alert counts came back the same.
//! Each phase runs in its own process (the bench re-runs itself with `RAMPART_SOAK_ROLE`).
//!
//! `RAMPART_SOAK_WATERMARK=none` leaves out the watermarks and `EMIT ON WINDOW CLOSE`
//! (with `RAMPART_SOAK_RETENTION=none`: the seed pipeline exactly as written). Without a
//! retention (`RAMPART_SOAK_RETENTION=none`, watermarks or not) `normalized_events` is
//! snapshotted at every checkpoint, and the recovery starts from that snapshot. `RAMPART_SOAK_COMPARE_REPLAY=1` adds a second recovery with the
//! snapshots removed, which replays every source from its start.

use std::io::Write;
use std::time::{Duration, Instant};

use rampart_connectors::generator::{EventGenerator, GeneratorKind};
use rampart_pgwire::SqlBackend;
use rampart_server::{start_server, ServerConfig};

mod common;

use common::{count, dir_bytes, print_checkpoints, rss_mib};

/// Detections straight over the sources: brute force and impossible travel on auth events.
const DETECT_ONLY: &str = "
CREATE MATERIALIZED VIEW alert_brute_force AS
SELECT window_start, window_end, source_ip AS actor_ip, user_id AS actor_user, COUNT(*) AS failure_count
FROM TUMBLE(auth_events, event_time, INTERVAL '5 minutes')
WHERE result = 'failure'
GROUP BY window_start, window_end, source_ip, user_id
HAVING COUNT(*) > 10
EMIT ON WINDOW CLOSE;
CREATE MATERIALIZED VIEW alert_impossible_travel AS
SELECT a.user_id, a.country_code AS c1, b.country_code AS c2, a.event_time AS t1, b.event_time AS t2
FROM auth_events a JOIN auth_events b
  ON a.user_id = b.user_id AND a.result = 'success' AND b.result = 'success'
  AND a.country_code <> b.country_code
  AND b.event_time > a.event_time AND b.event_time < a.event_time + INTERVAL '30 minutes';
CREATE MATERIALIZED VIEW soak_progress AS
SELECT COUNT(*) AS n FROM (
  SELECT event_time FROM auth_events UNION ALL SELECT event_time FROM firewall_logs
  UNION ALL SELECT event_time FROM endpoint_events);
";

fn soak_sql(
    dir: &std::path::Path,
    files: &[std::path::PathBuf],
    detect_only: bool,
    retention: &str,
    watermarked: bool,
) -> String {
    let mut sql = common::bounded_pipeline_sql(
        common::file_pipeline_sql(dir, files),
        watermarked,
        Some(retention).filter(|r| *r != "none"),
    );
    if detect_only {
        let cut = sql
            .find("CREATE TABLE asset_taxonomy")
            .expect("tables follow the sources");
        sql.truncate(cut);
        sql.push_str(DETECT_ONLY);
    } else {
        // Events counted per minute of event time: windows that close as the watermark
        // passes, so with a retention the view is rebuilt after a restart from the
        // retained events (a count over all time would need every event).
        sql.push_str(
            "\nCREATE MATERIALIZED VIEW soak_progress AS SELECT window_start, COUNT(*) AS n
               FROM TUMBLE(enriched_events, event_time, INTERVAL '1 minute') GROUP BY window_start, window_end;\n",
        );
    }
    sql
}

/// The events counted so far (in every mode: the detection-only `soak_progress` has one
/// row).
const PROGRESS: &str = "SELECT SUM(n) FROM soak_progress";

/// What the run phase measured, passed to the recovery phase.
const RESULT_FILE: &str = "soak-result.txt";

fn main() {
    common::alloc::tune();
    match std::env::var("RAMPART_SOAK_ROLE").as_deref() {
        Ok("run") => run(),
        Ok("recover") => recover(),
        Ok("recover-replay") => {
            let Setup { dir, .. } = setup();
            let _ = std::fs::remove_dir_all(dir.join("data").join("views"));
            println!("recovery without view checkpoints (views/ removed): every source replays from its start");
            recover()
        }
        _ => orchestrate(),
    }
}

/// Runs the soak, then the recovery, each in a child process of this bench binary, so the
/// recovery starts the way a restarted `rampart serve` does: a new process, the data
/// directory and the source files as the first one left them.
fn orchestrate() {
    let dir = std::env::temp_dir().join(format!("rampart-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let me = std::env::current_exe().expect("bench binary");
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `RAMPART_SOAK_COMPARE_REPLAY=1`: a second recovery without the view checkpoints
    // (`views/` removed first), which replays every source from its start.
    let mut roles = vec!["run", "recover"];
    if std::env::var("RAMPART_SOAK_COMPARE_REPLAY").is_ok_and(|v| v == "1") {
        roles.push("recover-replay");
    }
    for role in roles {
        let status = std::process::Command::new(&me)
            .args(&args)
            .env("RAMPART_SOAK_ROLE", role)
            .env("RAMPART_SOAK_DIR", &dir)
            .status()
            .expect("start a soak phase");
        if !status.success() {
            eprintln!("soak phase {role} failed: {status}");
            let _ = std::fs::remove_dir_all(&dir);
            std::process::exit(1);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

struct Setup {
    dir: std::path::PathBuf,
    files: Vec<std::path::PathBuf>,
    per_source: u64,
    rate: u64,
    event_ms: i64,
    detect_only: bool,
    retention: String,
    watermarked: bool,
}

fn setup() -> Setup {
    let mut args = std::env::args().skip(1).filter_map(|a| a.parse::<u64>().ok());
    let per_source = args.next().unwrap_or(200_000);
    let rate = args.next().unwrap_or(1_000).max(1);
    let event_ms: i64 = std::env::var("RAMPART_SOAK_EVENT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = std::path::PathBuf::from(std::env::var("RAMPART_SOAK_DIR").expect("RAMPART_SOAK_DIR"));
    let files = ["fw", "auth", "ep"]
        .iter()
        .map(|n| dir.join(format!("{n}.jsonl")))
        .collect();
    Setup {
        dir,
        files,
        per_source,
        rate,
        event_ms,
        detect_only: std::env::var("RAMPART_SOAK_MODE").as_deref() == Ok("detect"),
        retention: std::env::var("RAMPART_SOAK_RETENTION").unwrap_or_else(|_| "1 hour".into()),
        watermarked: std::env::var("RAMPART_SOAK_WATERMARK").as_deref() != Ok("none"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn server_config(dir: &std::path::Path) -> ServerConfig {
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let mut config = ServerConfig::ephemeral("127.0.0.1:0".parse().unwrap(), workers);
    config.data_dir = Some(dir.join("data"));
    config
}

fn run() {
    let Setup {
        dir,
        files,
        per_source,
        rate,
        event_ms,
        detect_only,
        retention,
        watermarked,
    } = setup();
    for f in &files {
        std::fs::write(f, "").expect("create events file");
    }
    let sql = soak_sql(&dir, &files, detect_only, &retention, watermarked);
    println!(
        "soak: {} events per source at {rate}/s each, {event_ms} ms of event time per event, mode {}, retention {}, watermarks {}",
        per_source,
        if detect_only { "detect" } else { "seed" },
        if detect_only { "n/a" } else { retention.as_str() },
        if watermarked { "yes" } else { "none" }
    );

    // The writer appends each source's next slice every 100 ms.
    let writer_files = files.clone();
    let appended = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let appended_w = appended.clone();
    let writer = std::thread::spawn(move || {
        let start_us = chrono::Utc::now().timestamp_micros() - per_source as i64 * event_ms * 1000;
        let mut gens = [
            EventGenerator::new(GeneratorKind::Firewall, 1),
            EventGenerator::new(GeneratorKind::Auth, 2),
            EventGenerator::new(GeneratorKind::Endpoint, 3),
        ];
        let mut outs: Vec<std::fs::File> = writer_files
            .iter()
            .map(|p| std::fs::OpenOptions::new().append(true).open(p).expect("open"))
            .collect();
        let begin = Instant::now();
        let mut sent: u64 = 0;
        while sent < per_source {
            let due = ((begin.elapsed().as_secs_f64() * rate as f64) as u64).min(per_source);
            for (g, out) in gens.iter_mut().zip(outs.iter_mut()) {
                let mut buf = String::new();
                for i in sent..due {
                    buf.push_str(&g.next_event(start_us + i as i64 * event_ms * 1000));
                    buf.push('\n');
                }
                out.write_all(buf.as_bytes()).expect("append");
            }
            appended_w.fetch_add(3 * (due - sent), std::sync::atomic::Ordering::Relaxed);
            sent = due;
            std::thread::sleep(Duration::from_millis(100));
        }
    });

    let config = server_config(&dir);
    runtime().block_on(async move {
        let server = start_server(config).await.expect("server");
        let backend: &dyn SqlBackend = server.coordinator.as_ref();
        server.coordinator.execute_script(&sql).await.expect("pipeline");
        let start = Instant::now();
        let total = 3 * per_source as i64;
        let mut curve = Vec::new();
        let (mut bf, mut it);
        println!("seconds\tappended\tcounted\trss_mib\tbrute_force\timpossible_travel");
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            let n = count(backend, PROGRESS).await;
            let rss = rss_mib("VmRSS:");
            bf = count(backend, "SELECT COUNT(*) FROM alert_brute_force").await;
            it = count(backend, "SELECT COUNT(*) FROM alert_impossible_travel").await;
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{secs:.0}\t{}\t{n}\t{rss:.0}\t{bf}\t{it}",
                appended.load(std::sync::atomic::Ordering::Relaxed)
            );
            curve.push((n, rss));
            if n >= total {
                break;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let quarter = |q: usize| curve[(curve.len() * q / 4).min(curve.len() - 1)];
        println!(
            "RSS at 25% / 50% / 75% / 100% of the run: {:.0} / {:.0} / {:.0} / {:.0} MiB (events counted {} / {} / {} / {}); peak {:.0} MiB",
            quarter(1).1,
            quarter(2).1,
            quarter(3).1,
            quarter(4).1,
            quarter(1).0,
            quarter(2).0,
            quarter(3).0,
            quarter(4).0,
            rss_mib("VmHWM:")
        );
        println!(
            "{total} events in {secs:.0} s ({:.0} events/s); data directory {:.1} MiB (catalog, table logs, sink logs); source files {:.0} MiB",
            total as f64 / secs,
            dir_bytes(&dir.join("data")) as f64 / (1024.0 * 1024.0),
            files.iter().map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)).sum::<u64>() as f64
                / (1024.0 * 1024.0)
        );
        print_checkpoints(backend, &dir.join("data")).await;
        std::fs::write(dir.join(RESULT_FILE), format!("{total} {bf} {it}")).expect("write result");
    });
    writer.join().expect("writer");
    // The process exits with the server still running: as far as the data directory
    // knows, it stopped the way a killed server does.
}

fn recover() {
    let Setup { dir, .. } = setup();
    let result = std::fs::read_to_string(dir.join(RESULT_FILE)).expect("the run's result");
    let want: Vec<i64> = result.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    let (total, bf_want, it_want) = (want[0], want[1], want[2]);
    let config = server_config(&dir);
    runtime().block_on(async move {
        let begin = Instant::now();
        let server = start_server(config).await.expect("server");
        let catalog_s = begin.elapsed().as_secs_f64();
        let backend: &dyn SqlBackend = server.coordinator.as_ref();
        let (mut bf, mut it);
        let mut all_counted: Option<Instant> = None;
        let recovered_s = loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let n = count(backend, PROGRESS).await;
            bf = count(backend, "SELECT COUNT(*) FROM alert_brute_force").await;
            it = count(backend, "SELECT COUNT(*) FROM alert_impossible_travel").await;
            if n >= total && all_counted.is_none() {
                all_counted = Some(Instant::now());
            }
            // The alerts follow the events within moments; give them 30 s to match.
            let matched = bf == bf_want && it == it_want;
            match all_counted {
                Some(at) if matched || at.elapsed() > Duration::from_secs(30) => break begin.elapsed().as_secs_f64(),
                _ => {}
            }
        };
        println!(
            "recovery: {} objects restored in {catalog_s:.1} s, every one of the {total} events counted again after {:.1} s ({:.0} events/s), peak {:.0} MiB; alerts brute force {bf} (run: {bf_want}), impossible travel {it} (run: {it_want}){}",
            server.restored,
            recovered_s,
            total as f64 / recovered_s,
            rss_mib("VmHWM:"),
            if bf == bf_want && it == it_want { "" } else { " MISMATCH" }
        );
    });
}
