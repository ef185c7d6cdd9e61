//! End-to-end tests of the two seed SIEM pipelines (fixtures/seeds/risingwave-streaming-siem.txt
//! and risingwave-siem-pipeline.txt) against a real server over pgwire, with file sources.
//!
//! Every expected result is computed independently in plain Rust from the generated events
//! (the reference models of `rampart_testkit::seed1` and `seed2`, HashMaps and loops), never
//! by asking the engine.

use rampart_testkit as common;
use rampart_testkit::row;
use rampart_testkit::{seed1, seed2};

use std::path::Path;

use chrono::Utc;
use common::{append_lines, assert_error_names_column, connect, exec_all, psql, server, shuffle, wait_for, Row};
use rampart_testkit::seed::{at, base_time, check_blocks_against_document, Connectors};
use seed1::{
    check_fired_at, check_pipeline1, exec_json, expected1, firewall_noise, geo_rows, initial_tiers, json_row, login,
    login_json, pipeline1_events, pipeline1_sql, region, seed_view_sql, soar_sink_file_sql, write_geo_csv, Login,
    GEO_QUERY, SOAR_COLUMNS,
};
use seed2::{auth, check_pipeline2, expected2, fw, json_lines, pipeline2_events, pipeline2_sql, proc_ev, Auth};

// ---------------------------------------------------------------------------------------
// Pipeline 2: risingwave-streaming-siem.txt (SQL, events and expectations in
// rampart_testkit::seed2)
// ---------------------------------------------------------------------------------------

/// Writes the events' lines shuffled (out of time order), with malformed lines at fixed
/// positions; returns the 1-based line numbers of the malformed lines.
fn write_jsonl(path: &Path, mut good: Vec<String>, bad: &[(usize, &str)], seed: u64) -> Vec<i64> {
    shuffle(&mut good, seed);
    let mut lines = good;
    let mut bad_lines = Vec::new();
    for (pos, text) in bad {
        lines.insert(*pos, text.to_string());
        bad_lines.push(*pos as i64 + 1);
    }
    std::fs::write(path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    bad_lines
}

/// The SQL the pipeline-2 tests run is the seed document's (see `seed2::SEED2_BLOCKS`).
#[test]
fn seed2_sql_is_the_seed_document_verbatim() {
    check_blocks_against_document(seed2::SEED2_DOC, &seed2::SEED2_BLOCKS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_siem_pipeline_with_file_sources() {
    let dir = tempfile::tempdir().unwrap();
    let (auth_path, fw_path, proc_path) = (
        dir.path().join("auth.jsonl"),
        dir.path().join("fw.jsonl"),
        dir.path().join("proc.jsonl"),
    );
    let now = Utc::now();
    let base = base_time();
    let (mut a, mut f, mut p) = pipeline2_events(base, now);

    let auth_bad = write_jsonl(
        &auth_path,
        json_lines(&a, "a"),
        &[(7, r#"{"event_id": "a-bad", "user_id": "x", "#)],
        1,
    );
    let fw_bad = write_jsonl(
        &fw_path,
        json_lines(&f, "f"),
        &[
            (2, r#"{"log_id": "f-bad1", "src_ip": "1.2.3.4""#),
            (
                5,
                r#"{"log_id": "f-bad2", "src_ip": "1.2.3.4", "dst_port": "eighty", "action": "deny"}"#,
            ),
        ],
        2,
    );
    let proc_bad = write_jsonl(
        &proc_path,
        json_lines(&p, "p"),
        &[
            (0, "not json at all"),
            (4, r#"{"event_id": "p-bad", "host_id": "h", "parent_pid": "twelve"}"#),
        ],
        3,
    );

    let handle = server().await;
    let client = connect(&handle).await;
    let conn = Connectors::File {
        auth: &auth_path,
        fw: &fw_path,
        ep: &proc_path,
    };
    exec_all(&client, &pipeline2_sql(&conn)).await;

    let exp = expected2(&a, &f, &p, now);
    // The data must contain each kind of detection (guards against a vacuous test).
    assert_eq!(exp.brute.len(), 1, "only the spray IP crosses 20 failures");
    assert_eq!(exp.procs.len(), 5);
    assert_eq!(exp.blocked_auth.len(), 2);
    check_pipeline2(&client, &exp).await;

    // Malformed lines: each (source, file, line). DISTINCT because a source read by two
    // views is read twice (see `source_error_recorded_once_per_bad_line`).
    let mut want_errors: Vec<Row> = Vec::new();
    for (src, path, lines) in [
        ("auth_events", &auth_path, &auth_bad),
        ("firewall_logs", &fw_path, &fw_bad),
        ("process_events", &proc_path, &proc_bad),
    ] {
        for l in lines {
            want_errors.push(row![src, path.display(), l]);
        }
    }
    wait_for(
        &client,
        "SELECT DISTINCT source, location, line_or_offset FROM rampart_source_errors",
        &want_errors,
    )
    .await;
    assert_error_names_column(&client, "firewall_logs", "dst_port").await;

    // Incremental: append to the files after the views exist.
    let more_a: Vec<Auth> = (0..5)
        .map(|i| {
            auth(
                &format!("acct{}", 3 + i),
                "10.0.0.20",
                "login_failure",
                at(base, 100 + i),
            )
        })
        .collect();
    let more_f = vec![fw("198.51.100.7", "deny", at(base, 510))];
    let more_p = vec![proc_ev("ws-09", 900, 901, "cmd.exe", "cmd /c whoami", at(base, 520))];
    append_lines(&auth_path, &json_lines(&more_a, "a2"));
    append_lines(&fw_path, &json_lines(&more_f, "f2"));
    append_lines(&proc_path, &json_lines(&more_p, "p2"));
    a.extend(more_a);
    f.extend(more_f);
    p.extend(more_p);
    let exp = expected2(&a, &f, &p, now);
    assert_eq!(exp.brute.len(), 2, "the 20-failure IP now has 25");
    assert_eq!(exp.blocked_auth.len(), 3, "bob's IP is now blocked");
    check_pipeline2(&client, &exp).await;
}

/// A malformed line of a source read by two materialized views should be one row of
/// `rampart_source_errors` (it is one bad line), not one per view.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_error_recorded_once_per_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.jsonl");
    std::fs::write(&path, "{\"a\": 1}\n{\"a\": \n{\"a\": 2}\n").unwrap();
    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(
        &client,
        &format!(
            "CREATE SOURCE s (a INT) WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;\n\
             CREATE MATERIALIZED VIEW v1 AS SELECT a FROM s;\n\
             CREATE MATERIALIZED VIEW v2 AS SELECT COUNT(*) AS n FROM s;\n",
            path.display()
        ),
    )
    .await;
    wait_for(&client, "SELECT a FROM v1", &[row![1], row![2]]).await;
    wait_for(&client, "SELECT n FROM v2", &[row![2]]).await;
    wait_for(
        &client,
        "SELECT source, line_or_offset FROM rampart_source_errors",
        &[row!["s", 2]],
    )
    .await;
}

/// A line that is not valid UTF-8 is one error with its own line number, and the lines
/// after it keep theirs; a character split across two writes is read whole once the rest
/// arrives. (Expected by hand: lines 1, 3 and 5 are good, line 2 has a bad byte, line 4
/// is malformed JSON; line 5's "é" arrives in two appends.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_is_one_error_and_split_characters_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u.jsonl");
    let mut bytes =
        b"{\"a\": 1, \"s\": \"x\"}\n{\"a\": 9, \"s\": \"\xff\"}\n{\"a\": 3, \"s\": \"y\"}\n{\"a\": \n".to_vec();
    bytes.extend_from_slice(b"{\"a\": 5, \"s\": \"caf\xc3");
    std::fs::write(&path, &bytes).unwrap();
    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(
        &client,
        &format!(
            "CREATE SOURCE u (a INT, s VARCHAR) WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;\n\
             CREATE MATERIALIZED VIEW uv AS SELECT a, s FROM u;\n",
            path.display()
        ),
    )
    .await;
    wait_for(&client, "SELECT a, s FROM uv", &[row![1, "x"], row![3, "y"]]).await;
    // The rest of the split character, and the line's end.
    let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut f, b"\xa9\"}\n").unwrap();
    drop(f);
    wait_for(
        &client,
        "SELECT a, s FROM uv",
        &[row![1, "x"], row![3, "y"], row![5, "café"]],
    )
    .await;
    wait_for(
        &client,
        "SELECT line_or_offset, reason LIKE '%invalid UTF-8%' FROM rampart_source_errors WHERE source = 'u'",
        &[row![2, true], row![4, false]],
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Pipeline 1: risingwave-siem-pipeline.txt (SQL, events and expectations in
// rampart_testkit::seed1)
// ---------------------------------------------------------------------------------------

/// The sink file's rows (sorted), canonicalized like query rows, and its lines.
fn sink_rows(path: &Path) -> (Vec<Row>, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut rows: Vec<Row> = lines.iter().map(|l| json_row(l, &SOAR_COLUMNS)).collect();
    rows.sort();
    (rows, lines)
}

async fn wait_for_sink(path: &Path, expected: &[Row]) -> Vec<String> {
    let mut expected = expected.to_vec();
    expected.sort();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (got, fired) = sink_rows(path);
        if got == expected {
            return fired;
        }
        if std::time::Instant::now() > deadline {
            assert_eq!(got, expected, "sink file {}", path.display());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The SQL the pipeline-1 tests run is the seed document's (see `seed1::SEED1_BLOCKS`).
#[test]
fn seed1_sql_is_the_seed_document_verbatim() {
    check_blocks_against_document(seed1::SEED1_DOC, &seed1::SEED1_BLOCKS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn siem_pipeline_with_reference_tables_and_sink() {
    let dir = tempfile::tempdir().unwrap();
    let (auth_path, fw_path, ep_path, geo_path, alerts_path) = (
        dir.path().join("auth.jsonl"),
        dir.path().join("fw.jsonl"),
        dir.path().join("ep.jsonl"),
        dir.path().join("geo.csv"),
        dir.path().join("out/alerts.jsonl"),
    );
    let base = base_time();
    let (mut l, e) = pipeline1_events(base);
    let mut auth_lines: Vec<String> = l.iter().enumerate().map(|(i, x)| login_json(x, i)).collect();
    shuffle(&mut auth_lines, 11);
    let mut ep_lines: Vec<String> = e.iter().enumerate().map(|(i, x)| exec_json(x, i)).collect();
    shuffle(&mut ep_lines, 12);
    let fw_lines = firewall_noise(base);
    append_lines(&auth_path, &auth_lines);
    append_lines(&ep_path, &ep_lines);
    append_lines(&fw_path, &fw_lines);
    write_geo_csv(&geo_path);

    let handle = server().await;
    let client = connect(&handle).await;
    let conn = Connectors::File {
        auth: &auth_path,
        fw: &fw_path,
        ep: &ep_path,
    };
    exec_all(&client, &pipeline1_sql(&conn, &geo_path)).await;
    wait_for(&client, GEO_QUERY, &geo_rows()).await;

    // EXPLAIN of the seed's views names the joins they run as (the physical plan the
    // dataflow renders): enriched_events' two LEFT JOINs as one enrichment operator, its
    // first LEFT JOIN alone as a lookup join, impossible travel as an interval join (no
    // WATERMARK in the seed, so its state is kept).
    let explain = |sql: String| {
        let client = &client;
        async move {
            let rows = client
                .simple_query(&format!("EXPLAIN {sql}"))
                .await
                .expect("EXPLAIN runs");
            rows.iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                    _ => None,
                })
                .collect::<Vec<String>>()
        }
    };
    let enriched = explain(seed_view_sql("enriched_events").replace("enriched_events", "x")).await;
    assert!(
        enriched
            .iter()
            .any(|l| l.trim_start().starts_with("Enrichment join: lookup on [ne.target_resource] = [\"at\".host_id], then range inet_aton(ne.actor_ip) between gi.ip_range_start and gi.ip_range_end")),
        "{enriched:#?}"
    );
    let lookup = explain(
        "SELECT ne.actor_user, at.asset_tier FROM normalized_events ne \
         LEFT JOIN asset_taxonomy at ON ne.target_resource = at.host_id"
            .to_string(),
    )
    .await;
    assert!(
        lookup.iter().any(|l| l
            .trim_start()
            .starts_with("Lookup join (left) on [ne.target_resource] = [\"at\".host_id]")),
        "{lookup:#?}"
    );
    let travel = explain(seed_view_sql("alert_impossible_travel").replace("alert_impossible_travel", "x")).await;
    assert!(
        travel.iter().any(|l| l
            .trim_start()
            .starts_with("Interval join (inner) on [a.actor_user] = [b.actor_user]")
            && l.contains("kept forever (no WATERMARK on both sides)")),
        "{travel:#?}"
    );
    assert!(
        enriched
            .iter()
            .chain(&lookup)
            .chain(&travel)
            .all(|l| l.chars().count() < 400),
        "EXPLAIN lines stay readable"
    );

    let mut tiers = initial_tiers();
    let exp = expected1(&l, &e, &tiers);
    assert_eq!(
        (exp.brute.len(), exp.travel.len(), exp.susp.len()),
        (2, 3, 3),
        "the data covers every rule"
    );
    check_pipeline1(&client, &exp).await;

    // The real psql binary reads the same alerts.
    let port = handle.addr.port();
    let out = tokio::task::spawn_blocking(move || {
        psql(
            port,
            "SELECT actor_ip, actor_user, failure_count FROM alert_brute_force",
        )
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    got.sort();
    let mut want: Vec<String> = exp
        .brute
        .iter()
        .map(|r| format!("{}|{}|{}", r[2], r[3], r[4]))
        .collect();
    want.sort();
    assert_eq!(got, want, "psql output");

    // The sink writes the brute-force and impossible-travel alerts as JSON lines.
    let started = Utc::now();
    exec_all(&client, &soar_sink_file_sql(&alerts_path)).await;
    for line in wait_for_sink(&alerts_path, &exp.sink).await {
        check_fired_at(&line, started, Utc::now());
    }

    // Deleting a host's asset row retracts its enrichment: dc-01 becomes 'unknown' and its
    // alerts disappear (and the summary follows); re-inserting brings them back.
    exec_all(&client, "DELETE FROM asset_taxonomy WHERE host_id = 'dc-01'").await;
    tiers.remove("dc-01");
    let exp_deleted = expected1(&l, &e, &tiers);
    assert_eq!(exp_deleted.susp.len(), 1);
    check_pipeline1(&client, &exp_deleted).await;
    wait_for(
        &client,
        "SELECT target_resource, asset_tier FROM enriched_events WHERE event_category = 'process_execution' \
         AND target_resource = 'dc-01'",
        &[row!["dc-01", "unknown"], row!["dc-01", "unknown"]],
    )
    .await;
    exec_all(&client, "INSERT INTO asset_taxonomy VALUES ('dc-01', 'tier_1', 'it')").await;
    tiers.insert("dc-01", "tier_1");
    check_pipeline1(&client, &expected1(&l, &e, &tiers)).await;

    // Incremental: a new burst of 11 failures appended to the file reaches the views and
    // is appended to the sink file.
    let more: Vec<Login> = (0..11)
        .map(|i| login("eve", "192.0.2.66", "failure", at(base, 320 + i * 5)))
        .collect();
    append_lines(
        &auth_path,
        &more
            .iter()
            .enumerate()
            .map(|(i, x)| login_json(x, 100 + i))
            .collect::<Vec<_>>(),
    );
    l.extend(more);
    let exp = expected1(&l, &e, &tiers);
    assert_eq!(exp.brute.len(), 3);
    check_pipeline1(&client, &exp).await;
    wait_for_sink(&alerts_path, &exp.sink).await;

    // Deleting a GeoIP range retracts the region of every login from an IP it covered
    // (the IPs expected here are the test's own logins in 203.0.113.0/24); inserting it
    // again brings every view back to the full expected result. (Last: the sink, append-only,
    // writes the new version of each alert whose regions change, here alice's travel.)
    let mut apac: Vec<&str> = l
        .iter()
        .map(|x| x.ip.as_str())
        .filter(|ip| region(ip) == "apac")
        .collect();
    apac.sort();
    apac.dedup();
    assert!(!apac.is_empty(), "the test data has logins from the apac range");
    exec_all(&client, "DELETE FROM geo_ip_reference WHERE region = 'apac'").await;
    wait_for(
        &client,
        "SELECT DISTINCT actor_ip, geo_region FROM enriched_events \
         WHERE event_category = 'authentication' AND actor_ip LIKE '203.0.113.%'",
        &apac.iter().map(|ip| row![*ip, "unknown"]).collect::<Vec<_>>(),
    )
    .await;
    exec_all(
        &client,
        "INSERT INTO geo_ip_reference VALUES (3405803776, 3405804031, 'apac', 'AU')",
    )
    .await;
    check_pipeline1(&client, &expected1(&l, &e, &tiers)).await;
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

fn sqlstate(e: &tokio_postgres::Error) -> (String, String, Option<u32>) {
    let db = e.as_db_error().unwrap_or_else(|| panic!("not a server error: {e:?}"));
    let pos = match db.position() {
        Some(tokio_postgres::error::ErrorPosition::Original(p)) => Some(*p),
        _ => None,
    };
    (db.code().code().to_string(), db.message().to_string(), pos)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_errors_carry_sqlstate_and_position() {
    let handle = server().await;
    let client = connect(&handle).await;

    // (statement, first character the position may point at): the error is at or after it.
    for (bad, from) in [
        ("SELEC 1", 1),
        ("SELECT * FROM t WHERE a = = 1", 27),
        ("CREATE TABLE x (a INT,, b INT)", 23),
        ("CREATE MATERIALIZED VIEW v AS SELECT a FROM t GROUP", 47),
    ] {
        let (code, msg, pos) = sqlstate(&client.simple_query(bad).await.unwrap_err());
        assert_eq!(code, "42601", "{bad}: {msg}");
        let pos = pos.unwrap_or_else(|| panic!("syntax error without a position: {bad}: {msg}"));
        assert!(
            pos >= from && pos as usize <= bad.len() + 1,
            "{bad}: position {pos}, expected >= {from}: {msg}"
        );
    }

    let (code, msg, _) = sqlstate(&client.query("SELECT * FROM no_such_table", &[]).await.unwrap_err());
    assert_eq!(code, "42P01", "{msg}");
    assert!(msg.contains("no_such_table"), "{msg}");

    exec_all(&client, "CREATE TABLE t (a INT, b VARCHAR)").await;
    let (code, msg, _) = sqlstate(
        &client
            .simple_query("CREATE MATERIALIZED VIEW v AS SELECT * FROM t LIMIT 5")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "0A000", "{msg}");
    assert!(msg.to_uppercase().contains("LIMIT"), "{msg}");
    // The failed view was not created, and the session still works.
    let (code, _, _) = sqlstate(&client.query("SELECT * FROM v", &[]).await.unwrap_err());
    assert_eq!(code, "42P01");
    exec_all(&client, "INSERT INTO t VALUES (1, 'x')").await;
    wait_for(&client, "SELECT a, b FROM t", &[row![1, "x"]]).await;

    // psql shows the error and exits non-zero.
    let port = handle.addr.port();
    let out = tokio::task::spawn_blocking(move || psql(port, "SELECT * FROM missing_rel"))
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing_rel"), "{out:?}");
}

/// PostgreSQL rejects a keyword used as a bare table name (`syntax error at or near "FROM"`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_keyword_as_table_name_is_a_syntax_error() {
    let handle = server().await;
    let client = connect(&handle).await;
    let (code, msg, pos) = sqlstate(&client.simple_query("SELECT 1 FROM FROM").await.unwrap_err());
    assert_eq!(code, "42601", "{msg}");
    assert_eq!(pos, Some(15), "{msg}");
}
