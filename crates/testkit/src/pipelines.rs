//! The demo's seed pipeline as tests and benchmarks run it: its reference tables written
//! out, its generator sources swapped for other connectors, and its bounded variant.

use std::path::Path;

use rampart_connectors::generator::{asset_taxonomy_csv, geo_ip_reference_csv};

/// The demo's seed pipeline (generator sources, file alert sink).
pub const PIPELINE: &str = include_str!("../../rampart/src/demo_pipeline.sql");

/// The generator kinds of the pipeline's three sources, in order.
pub const SOURCE_KINDS: [&str; 3] = ["firewall", "auth", "endpoint"];

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
