//! What the benchmarks share: the seed pipeline with its reference tables written out,
//! its generator sources swapped for other connectors, memory figures, and one-number
//! queries.

#![allow(dead_code)]

use std::path::Path;

/// The same allocator, with the same settings, as the `rampart` binary, so the figures are
/// the binary's: each benchmark's `main` calls `alloc::tune()` first.
#[path = "../../src/alloc.rs"]
pub mod alloc;

use rampart_connectors::generator::{asset_taxonomy_csv, geo_ip_reference_csv};
use rampart_pgwire::{QueryOutput, Session, SqlBackend};

/// The demo's seed pipeline (generator sources, file alert sink).
pub const PIPELINE: &str = include_str!("../../src/demo_pipeline.sql");

/// The generator kinds of the pipeline's three sources, in order.
pub const SOURCE_KINDS: [&str; 3] = ["firewall", "auth", "endpoint"];

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

/// The seed pipeline with its reference tables written to `dir`, its alert sink writing to
/// `dir/alerts.jsonl`, and each generator source's connector options replaced by
/// `connector(kind)` (e.g. `connector = 'file', path = '...'`).
pub fn pipeline_sql(dir: &Path, connector: impl Fn(&str) -> String) -> String {
    let assets = dir.join("assets.csv");
    let geo = dir.join("geo.csv");
    std::fs::write(&assets, asset_taxonomy_csv()).expect("write csv");
    std::fs::write(&geo, geo_ip_reference_csv()).expect("write csv");
    let mut sql = PIPELINE
        .replace("{ASSETS_CSV}", &assets.display().to_string())
        .replace("{GEO_CSV}", &geo.display().to_string())
        .replace("{ALERTS_FILE}", &dir.join("alerts.jsonl").display().to_string());
    for kind in SOURCE_KINDS {
        let from = format!("connector = 'generator', kind = '{kind}', rate = '{{RATE}}'");
        let start = sql.find(&from).expect("pipeline has generator sources");
        let end = sql[start..].find(')').expect("closing paren") + start;
        sql.replace_range(start..end, &connector(kind));
    }
    sql
}

/// [`pipeline_sql`] reading each source from its file in `files` (in [`SOURCE_KINDS`]
/// order).
pub fn file_pipeline_sql(dir: &Path, files: &[std::path::PathBuf]) -> String {
    pipeline_sql(dir, |kind| {
        let i = SOURCE_KINDS.iter().position(|k| *k == kind).unwrap_or(0);
        format!("connector = 'file', path = '{}'", files[i].display())
    })
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

/// The seed pipeline `sql` (any connectors) with bounded state, as the soak runs it: a
/// `WATERMARK` of 5 seconds on each source's `event_time` and `EMIT ON WINDOW CLOSE` on the
/// window aggregates (`watermarked`), and `WITH (retention = ...)` on `normalized_events` and
/// `enriched_events` (`retention`: `None` leaves them unbounded).
pub fn bounded_pipeline_sql(mut sql: String, watermarked: bool, retention: Option<&str>) -> String {
    if let Some(retention) = retention {
        for view in ["normalized_events", "enriched_events"] {
            let plain = format!("CREATE MATERIALIZED VIEW {view} AS");
            assert!(sql.contains(&plain), "the pipeline creates {view}");
            sql = sql.replacen(
                &plain,
                &format!("CREATE MATERIALIZED VIEW {view} WITH (retention = '{retention}') AS"),
                1,
            );
        }
    }
    if watermarked {
        // The sources' column lists end the first three `)` before a `WITH (connector`
        // (the sink's query is the fourth).
        const END: &str = "\n)\nWITH (connector";
        assert!(
            sql.matches(END).count() > SOURCE_KINDS.len(),
            "three sources, then the sink"
        );
        sql = sql.replacen(
            END,
            &format!(",\n    WATERMARK FOR event_time AS event_time - INTERVAL '5 seconds'{END}"),
            SOURCE_KINDS.len(),
        );
        sql = sql
            .replace("HAVING COUNT(*) > 10;", "HAVING COUNT(*) > 10\nEMIT ON WINDOW CLOSE;")
            .replace(
                "GROUP BY window_start, window_end, rule_name, severity;",
                "GROUP BY window_start, window_end, rule_name, severity\nEMIT ON WINDOW CLOSE;",
            );
    }
    sql
}
