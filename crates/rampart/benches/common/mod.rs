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
use rampart_server::session_api::{QueryOutput, SqlBackend};

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
    for o in backend.execute(q).await {
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
