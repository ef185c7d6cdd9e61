//! psql's listing meta-commands (`\d`, `\dt`, `\dm`) against a real server, through the
//! real psql binary: they read Rampart's minimal pg_catalog.

use rampart_testkit as common;

fn psql(port: u16, command: &str) -> (bool, String, String) {
    let out = common::psql(port, command);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_listing_meta_commands_show_rampart_objects() {
    let handle = common::server().await;
    let client = common::connect(&handle).await;
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("e.jsonl");
    std::fs::write(&events, "").unwrap();
    common::exec_all(
        &client,
        &format!(
            "CREATE TABLE assets (host_id VARCHAR, tier VARCHAR);
             CREATE SOURCE logins (user_id VARCHAR) WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;
             CREATE MATERIALIZED VIEW tiers AS SELECT tier, COUNT(*) AS n FROM assets GROUP BY tier;",
            events.display()
        ),
    )
    .await;
    let port = handle.addr.port();
    tokio::task::spawn_blocking(move || {
        let (ok, out, err) = psql(port, "\\dt");
        assert!(ok, "\\dt failed: {err}");
        assert!(out.lines().any(|l| l.starts_with("public|assets|table|")), "{out}");
        assert!(!out.contains("tiers"), "\\dt lists tables only: {out}");

        let (ok, out, err) = psql(port, "\\dm");
        assert!(ok, "\\dm failed: {err}");
        assert!(
            out.lines().any(|l| l.starts_with("public|tiers|materialized view|")),
            "{out}"
        );

        let (ok, out, err) = psql(port, "\\d");
        assert!(ok, "\\d failed: {err}");
        for name in ["assets", "logins", "tiers"] {
            assert!(out.contains(&format!("|{name}|")), "\\d lists {name}: {out}");
        }

        // `\d NAME` needs more of the catalog: it fails, and says what to use instead.
        let (ok, _out, err) = psql(port, "\\d tiers");
        assert!(!ok);
        assert!(err.contains("DESCRIBE"), "{err}");
    })
    .await
    .unwrap();
}
