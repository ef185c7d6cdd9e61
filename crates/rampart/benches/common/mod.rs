//! What the benchmarks share: the seed pipeline (from `rampart-testkit`), memory figures,
//! and one-number queries.

#![allow(dead_code)]

use std::path::Path;

/// The same allocator, with the same settings, as the `rampart` binary, so the figures are
/// the binary's: each benchmark's `main` calls `alloc::tune()` first.
#[path = "../../src/alloc.rs"]
pub mod alloc;

// Each benchmark uses its own part of these (this module is compiled into each).
use rampart_pgwire::{QueryOutput, Session, SqlBackend};
#[allow(unused_imports)]
pub use rampart_testkit::pipelines::{bounded_pipeline_sql, file_pipeline_sql, pipeline_sql, PIPELINE, SOURCE_KINDS};

/// How far back the pre-written events' event time reaches, in microseconds:
/// `RAMPART_BENCH_SPAN_S` seconds (default one hour). The generator has 256 users, so a
/// short span makes every user log in every few seconds, and impossible travel (every
/// later login from home within 30 minutes of a login elsewhere) then fires hundreds of
/// times per scenario: at millions of events, spread them over a day or more.
pub fn event_time_span_us() -> i64 {
    std::env::var("RAMPART_BENCH_SPAN_S")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(3_600)
        * 1_000_000
}

/// A memory figure of this process from `/proc/self/status` in MiB (`VmHWM:` peak,
/// `VmRSS:` current).
pub fn rss_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|k| k.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// The integer in the first column of the first row of `q` (-1 when it fails).
pub async fn count(backend: &dyn SqlBackend, q: &str) -> i64 {
    for o in backend.execute(&mut Session::internal(), q).await {
        if let Ok(QueryOutput::Rows { batches, .. }) = o.result {
            if let Some(b) = batches.first() {
                if let Ok(rows) = rampart_repr::batch_to_rows(b) {
                    return rows.first().and_then(|r| r[0].as_int()).unwrap_or(0);
                }
            }
        }
    }
    -1
}

/// Total size of the files under `dir`, in bytes.
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Prints the size of the data directory `data` (and of its view checkpoints) and each
/// snapshotted view's checkpoint figures from `rampart_checkpoints`.
pub async fn print_checkpoints(backend: &dyn SqlBackend, data: &Path) {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "data directory {:.1} MiB, of which view checkpoints {:.1} MiB",
        mib(dir_bytes(data)),
        mib(dir_bytes(&data.join("views")))
    );
    let sql = "SELECT view, checkpoints, last_rows, last_duration_ms, log_bytes FROM rampart_checkpoints";
    for o in backend.execute(&mut Session::internal(), sql).await {
        let Ok(QueryOutput::Rows { batches, .. }) = o.result else {
            continue;
        };
        for b in &batches {
            for r in rampart_repr::batch_to_rows(b).unwrap_or_default() {
                let text = |i: usize| match &r[i] {
                    rampart_repr::Datum::Str(s) => s.to_string(),
                    rampart_repr::Datum::Int(n) => n.to_string(),
                    rampart_repr::Datum::Float(f) => format!("{:.1}", f.0),
                    other => format!("{other:?}"),
                };
                println!(
                    "checkpoints of {}: {} written, the last {} rows in {} ms, log {:.1} MiB",
                    text(0),
                    text(1),
                    text(2),
                    text(3),
                    mib(r[4].as_int().unwrap_or(0) as u64)
                );
            }
        }
    }
}
