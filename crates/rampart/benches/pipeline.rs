//! Throughput and latency of the first seed pipeline over JSON-lines files.
//!
//! `cargo bench -p rampart --bench pipeline -- [EVENTS_PER_SOURCE]` (default 200000):
//! writes three generated JSON-lines files (auth, firewall, endpoint), runs the pipeline
//! (normalize → enrich against two reference tables → three detection views + summary)
//! from the files, and prints events/s until `enriched_events` holds every event, then the
//! latency from appending one event to seeing it counted in `enriched_events` (p50, p99 over 50
//! appends), and the process's peak RSS. `RAMPART_BENCH_STAGE=enrich` stops after
//! `enriched_events`; `RAMPART_BENCH_ONLY=alert_brute_force,...` keeps only the named
//! detection views. `RAMPART_BENCH_SPAN_S=N` spreads the events' event time over the last
//! N seconds (default 3600).

use std::io::Write;
use std::time::{Duration, Instant};

use rampart_connectors::generator::{EventGenerator, GeneratorKind};
use rampart_pgwire::SqlBackend;
use rampart_server::{start_server, ServerConfig};

mod common;

use common::{count, rss_mib};

fn main() {
    common::alloc::tune();
    let per_source: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(200_000);
    let dir = tempfile_dir();
    let now_us = chrono::Utc::now().timestamp_micros();
    let span_us = common::event_time_span_us();
    let t0 = Instant::now();
    let mut files = Vec::new();
    for (kind, name) in [
        (GeneratorKind::Firewall, "fw"),
        (GeneratorKind::Auth, "auth"),
        (GeneratorKind::Endpoint, "ep"),
    ] {
        let path = dir.join(format!("{name}.jsonl"));
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path).expect("create events file"));
        let mut g = EventGenerator::new(kind, 7);
        for i in 0..per_source {
            let t = now_us - span_us + (i as i64 * span_us / per_source as i64);
            writeln!(w, "{}", g.next_event(t)).expect("write event");
        }
        w.flush().expect("flush");
        files.push(path);
    }
    eprintln!("wrote {} events in {:.1}s", 3 * per_source, t0.elapsed().as_secs_f64());
    let mut sql = common::file_pipeline_sql(&dir, &files);
    // RAMPART_BENCH_STAGE=enrich stops after enriched_events, to see what the detections cost.
    if std::env::var("RAMPART_BENCH_STAGE").as_deref() == Ok("enrich") {
        if let Some(i) = sql.find("CREATE MATERIALIZED VIEW alert_brute_force") {
            sql.truncate(i);
        }
    }
    // RAMPART_BENCH_ONLY=view1,view2 keeps only those detection views (and no sinks), to
    // see what each costs.
    if let Ok(only) = std::env::var("RAMPART_BENCH_ONLY") {
        let keep: Vec<&str> = only.split(',').map(str::trim).collect();
        let cut = sql
            .find("CREATE MATERIALIZED VIEW alert_brute_force")
            .unwrap_or(sql.len());
        let tail = sql.split_off(cut);
        for stmt in tail.split(";\n") {
            let name = stmt
                .trim_start()
                .strip_prefix("CREATE MATERIALIZED VIEW ")
                .and_then(|r| r.split_whitespace().next());
            if name.is_some_and(|n| keep.contains(&n)) {
                sql.push_str(stmt);
                sql.push_str(";\n");
            }
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let server = start_server(ServerConfig::ephemeral("127.0.0.1:0".parse().unwrap(), workers))
            .await
            .expect("server");
        let backend: &dyn SqlBackend = server.coordinator.as_ref();
        let start = Instant::now();
        server.coordinator.execute_script(&sql).await.expect("pipeline");
        // A one-row view to watch: reading it costs nothing, so the latency below is the
        // pipeline's, not the cost of snapshotting a large view.
        server
            .coordinator
            .execute_script("CREATE MATERIALIZED VIEW bench_progress AS SELECT COUNT(*) AS n FROM enriched_events")
            .await
            .expect("progress view");
        let total = 3 * per_source as i64;
        loop {
            let n = count(backend, "SELECT n FROM bench_progress").await;
            if n >= total {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "events: {total}, seconds: {secs:.2}, throughput: {:.0} events/s, workers: {workers}",
            total as f64 / secs
        );
        // Latency: append one auth event and wait until enriched_events counts it.
        let mut lat = Vec::new();
        let mut g = EventGenerator::new(GeneratorKind::Auth, 99);
        let mut expected = total;
        for _ in 0..50 {
            let mut f = std::fs::OpenOptions::new().append(true).open(&files[1]).expect("open");
            let sent = Instant::now();
            writeln!(f, "{}", g.next_event(chrono::Utc::now().timestamp_micros())).expect("append");
            drop(f);
            expected += 1;
            while count(backend, "SELECT n FROM bench_progress").await < expected {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            lat.push(sent.elapsed().as_secs_f64() * 1000.0);
        }
        lat.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        println!(
            "append-to-view latency over {} appends: p50 {:.1} ms, p99 {:.1} ms (file append -> decode -> normalize -> enrich -> count, observed by polling every 1 ms)",
            lat.len(),
            lat[lat.len() / 2],
            lat[(lat.len() * 99 / 100).min(lat.len() - 1)]
        );
        for view in ["alert_brute_force", "alert_impossible_travel", "alert_suspicious_process", "alert_summary"] {
            let n = count(backend, &format!("SELECT COUNT(*) FROM {view}")).await;
            if n >= 0 {
                println!("{view}: {n} rows");
            }
        }
        println!("peak RSS: {:.0} MiB", rss_mib("VmHWM:"));
    });
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rampart-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}
