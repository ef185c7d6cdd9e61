//! `rampart demo`: the seed pipeline over the built-in generator, with alerts printed as
//! they fire.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rampart_connectors::generator::{asset_taxonomy_csv, geo_ip_reference_csv};
use rampart_pgwire::{QueryOutput, Session, SqlBackend};
use rampart_server::{start_server, ServerConfig};

const PIPELINE: &str = include_str!("demo_pipeline.sql");

const ALERT_QUERIES: [(&str, &str); 3] = [
    (
        "brute_force",
        "SELECT actor_ip, actor_user, failure_count, window_start FROM alert_brute_force",
    ),
    (
        "impossible_travel",
        "SELECT actor_user, region_first, region_second, time_second FROM alert_impossible_travel",
    ),
    (
        "encoded_powershell",
        "SELECT host_id, actor_user, raw_command FROM alert_suspicious_process",
    ),
];

/// The demo always starts over: it clears the catalog, table and sink state a previous
/// demo left in `dir` (after checking no server is using it). `rampart serve --data-dir
/// DIR` is how to resume a stopped demo instead.
fn start_fresh(dir: &std::path::Path) -> Result<(), String> {
    let data = rampart_storage::DataDir::open(dir).map_err(|e| e.to_string())?;
    let catalog = data.catalog_path();
    if catalog.exists() {
        println!(
            "Starting the demo over in {} (to resume the previous one instead: rampart serve --data-dir {})",
            dir.display(),
            dir.display()
        );
    }
    // Everything the previous demo left: its objects, their logs and checkpoints, its
    // rejected and late input, and its alerts.
    let files = [
        catalog,
        data.errors_path(),
        data.late_events_path(),
        data.rounds_path(),
        dir.join("soar_alerts.jsonl"),
    ];
    for p in files.iter().filter(|p| p.exists()) {
        std::fs::remove_file(p).map_err(|e| format!("cannot remove {}: {e}", p.display()))?;
    }
    for sub in ["tables", "sinks", "views"] {
        let p = dir.join(sub);
        if p.exists() {
            std::fs::remove_dir_all(&p).map_err(|e| format!("cannot remove {}: {e}", p.display()))?;
        }
    }
    drop(data);
    Ok(())
}

pub async fn run(config: ServerConfig, rate: f64, seconds: Option<u64>) -> Result<(), String> {
    let dir = config.data_dir.clone().unwrap_or_else(|| crate::DEMO_DATA_DIR.into());
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    start_fresh(&dir)?;
    let assets = dir.join("asset_taxonomy.csv");
    let geo = dir.join("geo_ip_reference.csv");
    let alerts = dir.join("soar_alerts.jsonl");
    std::fs::write(&assets, asset_taxonomy_csv()).map_err(|e| e.to_string())?;
    std::fs::write(&geo, geo_ip_reference_csv()).map_err(|e| e.to_string())?;
    let sql = PIPELINE
        .replace("{RATE}", &rate.to_string())
        .replace("{ASSETS_CSV}", &assets.display().to_string())
        .replace("{GEO_CSV}", &geo.display().to_string())
        .replace("{ALERTS_FILE}", &alerts.display().to_string());
    let server = start_server(config).await.map_err(|e| e.to_string())?;
    server
        .coordinator
        .execute_script(&sql)
        .await
        .map_err(|e| format!("demo pipeline: {e}"))?;
    println!("Rampart demo: 3 generated sources at {rate} events/s each -> normalize -> enrich -> detect.");
    println!(
        "Look around with: psql -h {} -p {} -U root -d dev",
        server.addr.ip(),
        server.addr.port()
    );
    println!("  e.g. SELECT * FROM alert_summary;  SHOW MATERIALIZED VIEWS;  SELECT * FROM rampart_source_errors;");
    println!("High-severity alerts are also appended to {}", alerts.display());
    let started = Instant::now();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        for (rule, q) in ALERT_QUERIES {
            for outcome in server.coordinator.execute(&mut Session::internal(), q).await {
                if let Ok(QueryOutput::Rows { batches, .. }) = outcome.result {
                    for b in &batches {
                        let rows = rampart_repr::batch_to_rows(b).map_err(|e| e.to_string())?;
                        for r in rows {
                            let line = r.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(" | ");
                            if seen.insert(format!("{rule}:{line}")) {
                                println!("[{:>5.1}s] ALERT {rule:<18} {line}", started.elapsed().as_secs_f64());
                            }
                        }
                    }
                }
            }
        }
        if seconds.is_some_and(|s| started.elapsed() >= Duration::from_secs(s)) {
            return Ok(());
        }
    }
}
