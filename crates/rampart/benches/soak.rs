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
//! `WATERMARK FOR event_time AS event_time - INTERVAL '5 seconds'` on the sources and
//! `EMIT ON WINDOW CLOSE` on the two windowed aggregates. `RAMPART_SOAK_MODE=detect`
//! runs the same detections directly over the sources, without the `normalized_events` /
//! `enriched_events` views that keep every event, to show the bounded operators alone.
//!
//! Every 10 s it prints: elapsed seconds, events appended, events counted by the pipeline,
//! resident memory (VmRSS) and the alert counts.

use std::io::Write;
use std::time::{Duration, Instant};

use rampart_connectors::generator::{EventGenerator, GeneratorKind};
use rampart_server::session_api::SqlBackend;
use rampart_server::{start_server, ServerConfig};

mod common;

use common::{count, rss_mib};

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

fn soak_sql(dir: &std::path::Path, files: &[std::path::PathBuf], detect_only: bool) -> String {
    let mut sql = common::file_pipeline_sql(dir, files);
    // Each source gets a watermark after its last column.
    for file in files {
        let with = format!("\n)\nWITH (connector = 'file', path = '{}'", file.display());
        let watermarked = format!(",\n    WATERMARK FOR event_time AS event_time - INTERVAL '5 seconds'{with}");
        sql = sql.replacen(&with, &watermarked, 1);
    }
    sql = sql
        .replace("HAVING COUNT(*) > 10;", "HAVING COUNT(*) > 10\nEMIT ON WINDOW CLOSE;")
        .replace(
            "GROUP BY window_start, window_end, rule_name, severity;",
            "GROUP BY window_start, window_end, rule_name, severity\nEMIT ON WINDOW CLOSE;",
        );
    if detect_only {
        let cut = sql
            .find("CREATE TABLE asset_taxonomy")
            .expect("tables follow the sources");
        sql.truncate(cut);
        sql.push_str(DETECT_ONLY);
    } else {
        sql.push_str("\nCREATE MATERIALIZED VIEW soak_progress AS SELECT COUNT(*) AS n FROM enriched_events;\n");
    }
    sql
}

fn main() {
    common::alloc::tune();
    let mut args = std::env::args().skip(1).filter_map(|a| a.parse::<u64>().ok());
    let per_source = args.next().unwrap_or(200_000);
    let rate = args.next().unwrap_or(1_000).max(1);
    let event_ms: i64 = std::env::var("RAMPART_SOAK_EVENT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let detect_only = std::env::var("RAMPART_SOAK_MODE").as_deref() == Ok("detect");
    let dir = std::env::temp_dir().join(format!("rampart-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let files: Vec<std::path::PathBuf> = ["fw", "auth", "ep"]
        .iter()
        .map(|n| {
            let p = dir.join(format!("{n}.jsonl"));
            std::fs::write(&p, "").expect("create events file");
            p
        })
        .collect();
    let sql = soak_sql(&dir, &files, detect_only);
    println!(
        "soak: {} events per source at {rate}/s each, {event_ms} ms of event time per event, mode {}",
        per_source,
        if detect_only { "detect" } else { "seed" }
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
        server.coordinator.execute_script(&sql).await.expect("pipeline");
        let start = Instant::now();
        let total = 3 * per_source as i64;
        let mut curve = Vec::new();
        println!("seconds\tappended\tcounted\trss_mib\tbrute_force\timpossible_travel");
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            let n = count(backend, "SELECT n FROM soak_progress").await;
            let rss = rss_mib("VmRSS:");
            let bf = count(backend, "SELECT COUNT(*) FROM alert_brute_force").await;
            let it = count(backend, "SELECT COUNT(*) FROM alert_impossible_travel").await;
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
    });
    writer.join().expect("writer");
    let _ = std::fs::remove_dir_all(&dir);
}
