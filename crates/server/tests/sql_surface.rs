//! End-to-end tests of the SQL surface beyond the seed pipelines: HOP windows, Top-N with
//! retractions, plain views and DROP ... CASCADE, SHOW / DESCRIBE / EXPLAIN and batch
//! SELECTs, sink formats, file source startup modes and globs, rejected statements and
//! JSON type decoding.
//!
//! Every expected result is computed independently in plain Rust (loops, maps, sorting)
//! from the same data the test writes, never by asking the engine.

use rampart_testkit as common;
use rampart_testkit::row;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use common::{append_lines, connect, connect_with_notices, exec_all, floor_to, rows, server, ts, wait_for, Row};
use serde_json::json;
use tokio_postgres::Client;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// (SQLSTATE, message) of a server error.
fn sqlstate(e: &tokio_postgres::Error) -> (String, String) {
    let db = e.as_db_error().unwrap_or_else(|| panic!("not a server error: {e:?}"));
    (db.code().code().to_string(), db.message().to_string())
}

/// Runs one statement that must fail; returns (SQLSTATE, message).
async fn fails(client: &Client, sql: &str) -> (String, String) {
    match client.simple_query(sql).await {
        Ok(_) => panic!("statement unexpectedly succeeded: {sql}"),
        Err(e) => sqlstate(&e),
    }
}

/// Notices received so far (after a short grace period for the connection task).
async fn drain_notices(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> Vec<String> {
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut out = Vec::new();
    while let Ok(n) = rx.try_recv() {
        out.push(n);
    }
    out
}

/// Runs a query and renders its rows like `common::rows`, keeping the server's row order.
async fn ordered_rows(client: &Client, sql: &str) -> Vec<Row> {
    let result = client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql} failed: {e:?}"));
    result.iter().map(|r| common::render_row(r, sql)).collect()
}

/// The single column of a SHOW statement, sorted.
async fn show(client: &Client, what: &str) -> Vec<String> {
    let mut v: Vec<String> = rows(client, &format!("SHOW {what}"))
        .await
        .unwrap_or_else(|e| panic!("SHOW {what}: {e:?}"))
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    v.sort();
    v
}

fn strs(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// A fixed instant (no temporal filters are involved, so history is fine).
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 10, 0, 0).unwrap()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Polls `f` every 100 ms for up to 20 s until it returns true.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------
// 1. HOP windows
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_counts_each_event_in_five_windows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ev.jsonl");
    let base = t0();
    // Offsets in seconds, including exact minute boundaries and a gap of several minutes.
    let events: Vec<(&str, i64)> = vec![
        ("u1", 0),
        ("u1", 59),
        ("u2", 60),
        ("u1", 61),
        ("u2", 125),
        ("u1", 299),
        ("u2", 300),
        ("u1", 301),
        ("u2", 900),
        ("u1", 905),
        ("u1", 1199),
    ];
    let lines: Vec<String> = events
        .iter()
        .map(|(u, s)| json!({"user_id": u, "t": rfc3339(base + chrono::Duration::seconds(*s))}).to_string())
        .collect();
    append_lines(&path, &lines);

    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(
        &client,
        &format!(
            "CREATE SOURCE ev (user_id VARCHAR, t TIMESTAMPTZ) WITH (connector = 'file', path = '{}') \
             FORMAT PLAIN ENCODE JSON;\n\
             CREATE MATERIALIZED VIEW hop_all AS SELECT window_start, window_end, COUNT(*) AS n \
             FROM HOP(ev, t, INTERVAL '1 minute', INTERVAL '5 minutes') GROUP BY window_start, window_end;\n\
             CREATE MATERIALIZED VIEW hop_user AS SELECT user_id, window_start, COUNT(*) AS n \
             FROM HOP(ev, t, INTERVAL '1 minute', INTERVAL '5 minutes') GROUP BY user_id, window_start;\n",
            path.display()
        ),
    )
    .await;

    // Hand computation: an event at minute m (floored) is in the windows starting at
    // m-4, ..., m minutes, each 5 minutes long.
    let mut all: BTreeMap<i64, i64> = BTreeMap::new();
    let mut per_user: BTreeMap<(&str, i64), i64> = BTreeMap::new();
    for (u, s) in &events {
        let t = base + chrono::Duration::seconds(*s);
        let m = floor_to(t, 60).timestamp();
        for k in 0..5 {
            let start = m - k * 60;
            *all.entry(start).or_default() += 1;
            *per_user.entry((u, start)).or_default() += 1;
        }
    }
    let dt = |s: i64| DateTime::from_timestamp(s, 0).unwrap();
    let want_all: Vec<Row> = all.iter().map(|(s, n)| row![ts(dt(*s)), ts(dt(s + 300)), n]).collect();
    let want_user: Vec<Row> = per_user.iter().map(|((u, s), n)| row![u, ts(dt(*s)), n]).collect();
    // Sanity of the hand computation itself: 11 events x 5 windows.
    assert_eq!(all.values().sum::<i64>(), 5 * events.len() as i64);
    wait_for(&client, "SELECT window_start, window_end, n FROM hop_all", &want_all).await;
    wait_for(&client, "SELECT user_id, window_start, n FROM hop_user", &want_user).await;
    wait_for(&client, "SELECT SUM(n) FROM hop_all", &[row![5 * events.len()]]).await;
    // The window containing the burst at 60..61 s and the boundary event at 0 s: [0s, 5m).
    wait_for(
        &client,
        &format!("SELECT n FROM hop_all WHERE window_start = '{}'", rfc3339(base)),
        &[row![all[&base.timestamp()]]],
    )
    .await;

    // An appended event is counted in 5 more windows.
    append_lines(
        &path,
        &[json!({"user_id": "u3", "t": rfc3339(base + chrono::Duration::seconds(130))}).to_string()],
    );
    wait_for(&client, "SELECT SUM(n) FROM hop_all", &[row![5 * (events.len() + 1)]]).await;
    let m = floor_to(base + chrono::Duration::seconds(130), 60).timestamp();
    let want_u3: Vec<Row> = (0..5).map(|k| row!["u3", ts(dt(m - k * 60)), 1]).collect();
    wait_for(
        &client,
        "SELECT user_id, window_start, n FROM hop_user WHERE user_id = 'u3'",
        &want_u3,
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// 2. Top-N with retractions
// ---------------------------------------------------------------------------------------

/// The top 2 per department by n (descending), as (user_id, n, rank); n is unique per
/// department in the data, so the ranking is deterministic.
fn top2(rows_in: &[(String, String, i64)]) -> Vec<Row> {
    let mut by_dept: HashMap<&str, Vec<(&str, i64)>> = HashMap::new();
    for (u, d, n) in rows_in {
        by_dept.entry(d).or_default().push((u, *n));
    }
    let mut out = Vec::new();
    for (_, mut v) in by_dept {
        v.sort_by_key(|x| std::cmp::Reverse(x.1));
        for (i, (u, n)) in v.into_iter().take(2).enumerate() {
            out.push(row![u, n, i + 1]);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_n_follows_inserts_and_deletes() {
    let handle = server().await;
    let client = connect(&handle).await;
    let mut data: Vec<(String, String, i64)> = vec![
        ("alice", "eng", 10),
        ("bob", "eng", 30),
        ("carol", "eng", 20),
        ("dan", "ops", 5),
        ("erin", "ops", 7),
        ("fay", "sales", 1),
    ]
    .into_iter()
    .map(|(u, d, n)| (u.to_string(), d.to_string(), n))
    .collect();
    exec_all(
        &client,
        "CREATE TABLE t (user_id VARCHAR, dept VARCHAR, n INT);\n\
         INSERT INTO t VALUES ('alice', 'eng', 10), ('bob', 'eng', 30), ('carol', 'eng', 20), \
         ('dan', 'ops', 5), ('erin', 'ops', 7), ('fay', 'sales', 1);\n\
         CREATE MATERIALIZED VIEW top2 AS SELECT * FROM (SELECT user_id, n, ROW_NUMBER() OVER \
         (PARTITION BY dept ORDER BY n DESC) AS rk FROM t) WHERE rk <= 2;\n",
    )
    .await;
    let q = "SELECT user_id, n, rk FROM top2";
    let want = top2(&data);
    assert_eq!(want.len(), 5, "eng and ops have 2, sales 1");
    wait_for(&client, q, &want).await;

    // A new leader in eng pushes carol out and shifts bob to rank 2.
    exec_all(&client, "INSERT INTO t VALUES ('gus', 'eng', 40)").await;
    data.push(("gus".into(), "eng".into(), 40));
    let want = top2(&data);
    assert!(!want.contains(&row!["carol", 20, 2]));
    wait_for(&client, q, &want).await;

    // Deleting the leader brings carol back; deleting from ops leaves one row there.
    exec_all(
        &client,
        "DELETE FROM t WHERE user_id = 'gus';\nDELETE FROM t WHERE user_id = 'erin'",
    )
    .await;
    data.retain(|(u, _, _)| u != "gus" && u != "erin");
    wait_for(&client, q, &top2(&data)).await;

    // A row below the top 2 changes nothing; a whole department disappearing retracts it.
    exec_all(
        &client,
        "INSERT INTO t VALUES ('hal', 'eng', 2);\nDELETE FROM t WHERE dept = 'sales'",
    )
    .await;
    data.push(("hal".into(), "eng".into(), 2));
    data.retain(|(_, d, _)| d != "sales");
    let want = top2(&data);
    assert_eq!(want.len(), 3);
    wait_for(&client, q, &want).await;
}

// ---------------------------------------------------------------------------------------
// 3. Plain views, and DROP with and without CASCADE
// ---------------------------------------------------------------------------------------

/// Rows of the plain view pv (`SELECT k, v * 2 FROM t WHERE v > 0`) and of mv (its sums per
/// key), computed from the table's rows.
fn pv_mv_expected(data: &[(&str, i64)]) -> (Vec<Row>, Vec<Row>) {
    let pv: Vec<Row> = data
        .iter()
        .filter(|(_, v)| *v > 0)
        .map(|(k, v)| row![k, v * 2])
        .collect();
    let mut sums: BTreeMap<&str, i64> = BTreeMap::new();
    for (k, v) in data.iter().filter(|(_, v)| *v > 0) {
        *sums.entry(k).or_default() += v * 2;
    }
    (pv, sums.iter().map(|(k, s)| row![k, s]).collect())
}

const PV_MV_SQL: &str = "CREATE TABLE t (k VARCHAR, v INT);\n\
    INSERT INTO t VALUES ('a', 1), ('a', 2), ('b', 5), ('c', -3);\n\
    CREATE VIEW pv AS SELECT k, v * 2 AS v2 FROM t WHERE v > 0;\n\
    CREATE MATERIALIZED VIEW mv AS SELECT k, SUM(v2) AS s FROM pv GROUP BY k;\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_views_and_drop_cascade() {
    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(&client, PV_MV_SQL).await;
    let mut data = vec![("a", 1), ("a", 2), ("b", 5), ("c", -3)];
    let (_, mv_want) = pv_mv_expected(&data);
    wait_for(&client, "SELECT k, s FROM mv", &mv_want).await;

    // The materialized view over the plain view follows a change to the table.
    exec_all(&client, "INSERT INTO t VALUES ('c', 4)").await;
    data.push(("c", 4));
    let (_, mv_want) = pv_mv_expected(&data);
    assert!(mv_want.contains(&row!["c", 8]));
    wait_for(&client, "SELECT k, s FROM mv", &mv_want).await;
    assert_eq!(show(&client, "VIEWS").await, strs(&["pv"]));
    assert_eq!(show(&client, "MATERIALIZED VIEWS").await, strs(&["mv"]));
    // PostgreSQL types `v * 2` as integer; DataFusion's integer literals are bigint, so
    // either integer type is accepted here.
    let d = ordered_rows(&client, "DESCRIBE pv").await;
    assert_eq!(d.len(), 2, "{d:?}");
    assert_eq!(d[0], row!["k", "character varying"]);
    assert!(d[1] == row!["v2", "integer"] || d[1] == row!["v2", "bigint"], "{d:?}");

    // Without CASCADE the drop fails, naming both dependents, and drops nothing.
    let (code, msg) = fails(&client, "DROP TABLE t").await;
    assert_eq!(code, "2BP01", "{msg}");
    assert!(msg.contains("pv") && msg.contains("mv"), "{msg}");
    assert_eq!(show(&client, "TABLES").await, strs(&["t"]));
    assert_eq!(show(&client, "VIEWS").await, strs(&["pv"]));
    exec_all(&client, "DELETE FROM t WHERE k = 'b'").await;
    data.retain(|(k, _)| *k != "b");
    wait_for(&client, "SELECT k, s FROM mv", &pv_mv_expected(&data).1).await;

    // With CASCADE everything goes.
    client.simple_query("DROP TABLE t CASCADE").await.expect("drop cascade");
    assert!(show(&client, "TABLES").await.is_empty());
    assert!(show(&client, "VIEWS").await.is_empty());
    assert!(show(&client, "MATERIALIZED VIEWS").await.is_empty());
    for rel in ["t", "pv", "mv"] {
        let (code, msg) = sqlstate(&client.query(&format!("SELECT * FROM {rel}"), &[]).await.unwrap_err());
        assert_eq!(code, "42P01", "{rel}: {msg}");
    }
    // The names are free again.
    exec_all(
        &client,
        "CREATE TABLE t (k VARCHAR);\nINSERT INTO t VALUES ('z');\n\
         CREATE MATERIALIZED VIEW mv AS SELECT k FROM t;\n",
    )
    .await;
    wait_for(&client, "SELECT k FROM mv", &[row!["z"]]).await;
}

/// A plain (non-materialized) view can be queried like a table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_from_plain_view() {
    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(&client, PV_MV_SQL).await;
    let data = vec![("a", 1), ("a", 2), ("b", 5), ("c", -3)];
    let (pv_want, mv_want) = pv_mv_expected(&data);
    wait_for(&client, "SELECT k, s FROM mv", &mv_want).await;
    wait_for(&client, "SELECT k, v2 FROM pv", &pv_want).await;
    // Joined with the materialized view built on it.
    let mut joined: Vec<Row> = Vec::new();
    for r in &pv_want {
        for m in mv_want.iter().filter(|m| m[0] == r[0]) {
            joined.push(row![r[0], r[1], m[1]]);
        }
    }
    wait_for(
        &client,
        "SELECT pv.k, pv.v2, mv.s FROM pv JOIN mv ON pv.k = mv.k",
        &joined,
    )
    .await;
}

/// In PostgreSQL a view a materialized view reads cannot be dropped without CASCADE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_plain_view_read_by_materialized_view_needs_cascade() {
    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(
        &client,
        "CREATE TABLE t (k VARCHAR, v INT);\n\
         CREATE VIEW pv AS SELECT k, v FROM t WHERE v > 0;\n\
         CREATE MATERIALIZED VIEW mv AS SELECT k, COUNT(*) AS n FROM pv GROUP BY k;\n",
    )
    .await;
    let (code, msg) = fails(&client, "DROP VIEW pv").await;
    assert_eq!(code, "2BP01", "{msg}");
    assert!(msg.contains("mv"), "{msg}");
    client.simple_query("DROP VIEW pv CASCADE").await.expect("drop cascade");
    assert!(show(&client, "MATERIALIZED VIEWS").await.is_empty());
}

// ---------------------------------------------------------------------------------------
// 4. SHOW, DESCRIBE, EXPLAIN and batch SELECTs over materialized views
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_describe_explain_and_batch_selects() {
    let dir = tempfile::tempdir().unwrap();
    let src_path = dir.path().join("logins.jsonl");
    let sink_path = dir.path().join("out.jsonl");
    // (user, ok, bytes)
    let logins: Vec<(&str, bool, i64)> = vec![
        ("alice", true, 100),
        ("alice", false, 10),
        ("alice", true, 50),
        ("bob", false, 7),
        ("bob", false, 3),
        ("carol", true, 1000),
        ("dave", true, 1),
    ];
    append_lines(
        &src_path,
        &logins
            .iter()
            .map(|(u, ok, b)| json!({"user_id": u, "ok": ok, "bytes": b}).to_string())
            .collect::<Vec<_>>(),
    );
    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(
        &client,
        &format!(
            "CREATE SOURCE logins (user_id VARCHAR, ok BOOLEAN, bytes BIGINT) \
             WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;\n\
             CREATE TABLE users (user_id VARCHAR, dept VARCHAR, score DOUBLE PRECISION);\n\
             INSERT INTO users VALUES ('alice', 'eng', 1.5), ('bob', 'ops', 2.0), ('carol', 'eng', 0.25);\n\
             CREATE MATERIALIZED VIEW per_user AS SELECT user_id, COUNT(*) AS n, \
             SUM(bytes) AS total, COUNT(*) FILTER (WHERE NOT ok) AS failures FROM logins GROUP BY user_id;\n\
             CREATE MATERIALIZED VIEW user_dept AS SELECT u.user_id, u.dept, p.total \
             FROM users u JOIN per_user p ON u.user_id = p.user_id;\n\
             CREATE SINK dept_sink FROM user_dept WITH (connector = 'file', path = '{}') \
             FORMAT UPSERT ENCODE JSON;\n",
            src_path.display(),
            sink_path.display()
        ),
    )
    .await;

    assert_eq!(show(&client, "TABLES").await, strs(&["users"]));
    assert_eq!(show(&client, "SOURCES").await, strs(&["logins"]));
    assert_eq!(
        show(&client, "MATERIALIZED VIEWS").await,
        strs(&["per_user", "user_dept"])
    );
    assert_eq!(show(&client, "SINKS").await, strs(&["dept_sink"]));

    // DESCRIBE keeps declaration order, and derives the view's column types.
    let describe = |name: &'static str| {
        let client = &client;
        async move { ordered_rows(client, &format!("DESCRIBE {name}")).await }
    };
    assert_eq!(
        describe("logins").await,
        vec![
            row!["user_id", "character varying"],
            row!["ok", "boolean"],
            row!["bytes", "bigint"]
        ]
    );
    assert_eq!(
        describe("users").await,
        vec![
            row!["user_id", "character varying"],
            row!["dept", "character varying"],
            row!["score", "double precision"]
        ]
    );
    assert_eq!(
        describe("per_user").await,
        vec![
            row!["user_id", "character varying"],
            row!["n", "bigint"],
            row!["total", "bigint"],
            row!["failures", "bigint"]
        ]
    );
    // Every system table can be described (its columns as the operations docs list them).
    assert_eq!(
        describe("rampart_frontiers").await,
        vec![
            row!["name", "character varying"],
            row!["kind", "character varying"],
            row!["frontier", "timestamp with time zone"]
        ]
    );
    for table in [
        "rampart_sources",
        "rampart_checkpoints",
        "rampart_source_errors",
        "rampart_late_events",
    ] {
        assert!(
            !ordered_rows(&client, &format!("DESCRIBE {table}")).await.is_empty(),
            "{table}"
        );
    }
    let (code, msg) = fails(&client, "DESCRIBE no_such_thing").await;
    assert_eq!(code, "42P01", "{msg}");

    // EXPLAIN names the operators.
    let explain = |sql: String| {
        let client = &client;
        async move {
            ordered_rows(client, &sql)
                .await
                .into_iter()
                .map(|r| r[0].clone())
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    let plan = explain(
        "EXPLAIN CREATE MATERIALIZED VIEW x AS SELECT user_id, COUNT(*) AS n FROM logins GROUP BY user_id".into(),
    )
    .await;
    assert!(plan.contains("Reduce"), "{plan}");
    assert!(!plan.contains("Join"), "{plan}");
    let plan = explain(
        "EXPLAIN CREATE MATERIALIZED VIEW x AS SELECT u.dept, COUNT(*) AS n FROM users u \
         JOIN logins l ON u.user_id = l.user_id GROUP BY u.dept"
            .into(),
    )
    .await;
    assert!(plan.contains("Reduce") && plan.contains("Join"), "{plan}");
    assert!(plan.contains("logins") && plan.contains("users"), "{plan}");
    // EXPLAIN created nothing.
    assert_eq!(
        show(&client, "MATERIALIZED VIEWS").await,
        strs(&["per_user", "user_dept"])
    );

    // Expected aggregates, by hand.
    let mut per: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
    for (u, ok, b) in &logins {
        let e = per.entry(u).or_default();
        e.0 += 1;
        e.1 += b;
        e.2 += i64::from(!ok);
    }
    let depts: BTreeMap<&str, (&str, f64)> = [("alice", ("eng", 1.5)), ("bob", ("ops", 2.0)), ("carol", ("eng", 0.25))]
        .into_iter()
        .collect();
    wait_for(
        &client,
        "SELECT user_id, n, total, failures FROM per_user",
        &per.iter().map(|(u, (n, t, f))| row![u, n, t, f]).collect::<Vec<_>>(),
    )
    .await;
    let joined: Vec<(&str, &str, i64)> = per
        .iter()
        .filter_map(|(u, (_, t, _))| depts.get(u).map(|(d, _)| (*u, *d, *t)))
        .collect();
    wait_for(
        &client,
        "SELECT user_id, dept, total FROM user_dept",
        &joined.iter().map(|(u, d, t)| row![u, d, t]).collect::<Vec<_>>(),
    )
    .await;

    // A batch join of two materialized views with ORDER BY and LIMIT (order checked).
    let mut by_total: Vec<(&str, i64, i64)> = joined.iter().map(|(u, _, t)| (*u, *t, per[u].2)).collect();
    by_total.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let want: Vec<Row> = by_total.iter().take(2).map(|(u, t, f)| row![u, t, f]).collect();
    let got = ordered_rows(
        &client,
        "SELECT d.user_id, d.total, p.failures FROM user_dept d JOIN per_user p ON d.user_id = p.user_id \
         ORDER BY d.total DESC, d.user_id LIMIT 2",
    )
    .await;
    assert_eq!(got, want);

    // Aggregates over the join of the two views, grouped and ordered.
    let mut per_dept: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
    for (u, d, t) in &joined {
        let e = per_dept.entry(d).or_default();
        e.0 += 1;
        e.1 += t;
        e.2 += per[u].2;
    }
    let want: Vec<Row> = per_dept.iter().map(|(d, (c, t, f))| row![d, c, t, f]).collect();
    let got = ordered_rows(
        &client,
        "SELECT d.dept, COUNT(*) AS c, SUM(d.total) AS t, SUM(p.failures) AS f FROM user_dept d \
         JOIN per_user p ON d.user_id = p.user_id GROUP BY d.dept ORDER BY d.dept",
    )
    .await;
    assert_eq!(got, want);
    // A LEFT JOIN from the view keeps users without a department; MAX/MIN over it.
    let left: Vec<Row> = per
        .keys()
        .map(|u| row![u, depts.get(u).map(|d| d.0).unwrap_or("NULL")])
        .collect();
    wait_for(
        &client,
        "SELECT p.user_id, d.dept FROM per_user p LEFT JOIN user_dept d ON p.user_id = d.user_id",
        &left,
    )
    .await;
    let max_total = per.values().map(|v| v.1).max().unwrap();
    let min_total = per.values().map(|v| v.1).min().unwrap();
    wait_for(
        &client,
        "SELECT MAX(total), MIN(total), COUNT(*) FROM per_user",
        &[row![max_total, min_total, per.len()]],
    )
    .await;

    // The sink file has one upsert per joined row.
    eventually("the sink file", || {
        std::fs::read_to_string(&sink_path).unwrap_or_default().lines().count() == joined.len()
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// 5. Sinks: UPSERT carries updates and deletes; PLAIN warns and writes inserts only
// ---------------------------------------------------------------------------------------

/// The sink file's lines as (op, k, s), in file order; PLAIN lines have op "plain".
fn sink_lines(path: &Path) -> Vec<(String, String, i64)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("sink line {l}: {e}"));
            let (op, r) = match v.get("op") {
                Some(op) => (op.as_str().unwrap().to_string(), v["row"].clone()),
                None => ("plain".to_string(), v.clone()),
            };
            (
                op,
                r["k"].as_str().unwrap_or_else(|| panic!("no k in {l}")).to_string(),
                r["s"].as_i64().unwrap_or_else(|| panic!("no s in {l}")),
            )
        })
        .collect()
}

/// Waits until the file has `prev + expected.len()` lines and checks the new ones are
/// `expected` (as a multiset: lines of one change may come in any order).
async fn expect_new_lines(path: &Path, prev: usize, expected: &[(&str, &str, i64)]) -> usize {
    let total = prev + expected.len();
    eventually(&format!("{total} lines in {}", path.display()), || {
        sink_lines(path).len() >= total
    })
    .await;
    // Give a stray extra line a moment to show up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = sink_lines(path);
    assert_eq!(lines.len(), total, "{}: {lines:?}", path.display());
    let mut got: Vec<(String, String, i64)> = lines[prev..].to_vec();
    got.sort();
    let mut want: Vec<(String, String, i64)> = expected
        .iter()
        .map(|(o, k, s)| (o.to_string(), k.to_string(), *s))
        .collect();
    want.sort();
    assert_eq!(got, want, "{}: all lines {lines:?}", path.display());
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upsert_and_plain_sinks() {
    let dir = tempfile::tempdir().unwrap();
    let upsert = dir.path().join("upsert.jsonl");
    let plain = dir.path().join("plain.jsonl");
    let handle = server().await;
    let (client, mut notices) = connect_with_notices(&handle).await;
    exec_all(
        &client,
        "CREATE TABLE t (k VARCHAR, v INT);\n\
         INSERT INTO t VALUES ('a', 1), ('b', 2);\n\
         CREATE MATERIALIZED VIEW totals AS SELECT k, SUM(v) AS s FROM t GROUP BY k;\n",
    )
    .await;
    let _ = drain_notices(&mut notices).await;

    client
        .simple_query(&format!(
            "CREATE SINK su FROM totals WITH (connector = 'file', path = '{}') FORMAT UPSERT ENCODE JSON",
            upsert.display()
        ))
        .await
        .expect("create upsert sink");
    let n = drain_notices(&mut notices).await;
    assert!(n.is_empty(), "UPSERT sinks raise no notice: {n:?}");
    client
        .simple_query(&format!(
            "CREATE SINK sp FROM totals WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON",
            plain.display()
        ))
        .await
        .expect("create plain sink");
    let n = drain_notices(&mut notices).await;
    assert_eq!(n.len(), 1, "{n:?}");
    assert!(
        n[0].contains("sp") && n[0].contains("append-only") && n[0].to_lowercase().contains("delet"),
        "{n:?}"
    );
    assert_eq!(show(&client, "SINKS").await, strs(&["sp", "su"]));

    // Step 1: the existing rows (totals a=1, b=2).
    let mut pu = expect_new_lines(&upsert, 0, &[("upsert", "a", 1), ("upsert", "b", 2)]).await;
    let mut pp = expect_new_lines(&plain, 0, &[("plain", "a", 1), ("plain", "b", 2)]).await;
    // Step 2: a's total changes 1 -> 6: UPSERT retracts the old row and upserts the new
    // one; PLAIN writes the new version only.
    exec_all(&client, "INSERT INTO t VALUES ('a', 5)").await;
    pu = expect_new_lines(&upsert, pu, &[("delete", "a", 1), ("upsert", "a", 6)]).await;
    pp = expect_new_lines(&plain, pp, &[("plain", "a", 6)]).await;
    // Step 3: b disappears: a delete for UPSERT, nothing for PLAIN.
    exec_all(&client, "DELETE FROM t WHERE k = 'b'").await;
    pu = expect_new_lines(&upsert, pu, &[("delete", "b", 2)]).await;
    // Step 4: a new key (so PLAIN's line count tells step 3 wrote nothing).
    exec_all(&client, "INSERT INTO t VALUES ('c', 9)").await;
    pu = expect_new_lines(&upsert, pu, &[("upsert", "c", 9)]).await;
    pp = expect_new_lines(&plain, pp, &[("plain", "c", 9)]).await;
    assert!(sink_lines(&plain).iter().all(|l| l.0 == "plain"));

    // Replaying the UPSERT file line by line (a row's identity is the whole row) gives the
    // view's current content.
    let mut state: BTreeMap<(String, i64), i64> = BTreeMap::new();
    for (op, k, s) in sink_lines(&upsert) {
        let c = state.entry((k, s)).or_default();
        if op == "upsert" {
            *c += 1;
        } else {
            assert!(*c > 0, "delete of a row that is not there");
            *c -= 1;
        }
    }
    state.retain(|_, c| *c > 0);
    let replayed: Vec<Row> = state.keys().map(|(k, s)| row![k, s]).collect();
    assert_eq!(replayed, vec![row!["a", 6], row!["c", 9]]);
    wait_for(&client, "SELECT k, s FROM totals", &replayed).await;

    // Dropping the sinks stops the files from growing.
    exec_all(&client, "DROP SINK su;\nDROP SINK sp").await;
    assert!(show(&client, "SINKS").await.is_empty());
    exec_all(&client, "INSERT INTO t VALUES ('d', 1)").await;
    wait_for(&client, "SELECT k, s FROM totals WHERE k = 'd'", &[row!["d", 1]]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink_lines(&upsert).len(), pu);
    assert_eq!(sink_lines(&plain).len(), pp);
}

/// An upsert consumer keyed by the view's key (the GROUP BY column) must see an update's
/// delete of the old row before the upsert of the new one; otherwise applying the file in
/// order deletes the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upsert_sink_deletes_old_version_before_upserting_new() {
    let dir = tempfile::tempdir().unwrap();
    let upsert = dir.path().join("upsert.jsonl");
    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(
        &client,
        &format!(
            "CREATE TABLE t (k VARCHAR, v INT);\n\
             INSERT INTO t VALUES ('a', 5), ('a', 4), ('b', 1);\n\
             CREATE MATERIALIZED VIEW totals AS SELECT k, SUM(v) AS s FROM t GROUP BY k;\n\
             CREATE SINK su FROM totals WITH (connector = 'file', path = '{}') FORMAT UPSERT ENCODE JSON;\n",
            upsert.display()
        ),
    )
    .await;
    let mut prev = expect_new_lines(&upsert, 0, &[("upsert", "a", 9), ("upsert", "b", 1)]).await;
    // 9 -> 4, then six times 4 -> 14 -> 4 (the order within one step varies between runs,
    // so the decreasing update is repeated).
    let mut steps = vec![("DELETE FROM t WHERE v = 5".to_string(), 9, 4)];
    for _ in 0..6 {
        steps.push(("INSERT INTO t VALUES ('a', 10)".to_string(), 4, 14));
        steps.push(("DELETE FROM t WHERE v = 10".to_string(), 14, 4));
    }
    for (stmt, old, new) in steps {
        exec_all(&client, &stmt).await;
        let before = prev;
        prev = expect_new_lines(&upsert, prev, &[("delete", "a", old), ("upsert", "a", new)]).await;
        // In file order: the old version's delete first.
        let lines = sink_lines(&upsert);
        assert_eq!(
            lines[before..].to_vec(),
            vec![
                ("delete".to_string(), "a".to_string(), old),
                ("upsert".to_string(), "a".to_string(), new)
            ],
            "after {stmt}; file: {lines:?}"
        );
    }
    // Keyed replay in file order.
    let mut by_key: BTreeMap<String, i64> = BTreeMap::new();
    for (op, k, s) in sink_lines(&upsert) {
        if op == "upsert" {
            by_key.insert(k, s);
        } else {
            by_key.remove(&k);
        }
    }
    let replayed: Vec<Row> = by_key.iter().map(|(k, s)| row![k, s]).collect();
    assert_eq!(
        replayed,
        vec![row!["a", 4], row!["b", 1]],
        "file: {:?}",
        sink_lines(&upsert)
    );
}

// ---------------------------------------------------------------------------------------
// 6. File sources: startup mode 'latest' and globs
// ---------------------------------------------------------------------------------------

fn id_lines(ids: std::ops::Range<i64>) -> Vec<String> {
    ids.map(|i| json!({"id": i}).to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_source_latest_skips_existing_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ev.jsonl");
    append_lines(&path, &id_lines(0..5));
    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(
        &client,
        &format!(
            "CREATE SOURCE s_latest (id INT) WITH (connector = 'file', path = '{p}', \
             scan.startup.mode = 'latest') FORMAT PLAIN ENCODE JSON;\n\
             CREATE SOURCE s_earliest (id INT) WITH (connector = 'file', path = '{p}', \
             scan.startup.mode = 'earliest') FORMAT PLAIN ENCODE JSON;\n\
             CREATE MATERIALIZED VIEW v_latest AS SELECT id FROM s_latest;\n\
             CREATE MATERIALIZED VIEW v_earliest AS SELECT id FROM s_earliest;\n",
            p = path.display()
        ),
    )
    .await;
    // Lines appended before the views existed would be in 'latest'; these come after.
    append_lines(&path, &id_lines(5..8));
    let want_latest: Vec<Row> = (5..8).map(|i| row![i]).collect();
    let want_earliest: Vec<Row> = (0..8).map(|i| row![i]).collect();
    wait_for(&client, "SELECT id FROM v_earliest", &want_earliest).await;
    wait_for(&client, "SELECT id FROM v_latest", &want_latest).await;
    // Later appends keep arriving.
    append_lines(&path, &id_lines(8..10));
    wait_for(
        &client,
        "SELECT COUNT(*), MIN(id), MAX(id) FROM v_latest",
        &[row![5, 5, 9]],
    )
    .await;

    // A bad startup mode is rejected.
    let (code, msg) = fails(
        &client,
        &format!(
            "CREATE SOURCE s_bad (id INT) WITH (connector = 'file', path = '{}', scan.startup.mode = 'middle') \
             FORMAT PLAIN ENCODE JSON",
            path.display()
        ),
    )
    .await;
    assert!(msg.contains("scan.startup.mode"), "{code}: {msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_source_glob_reads_all_matching_files() {
    let dir = tempfile::tempdir().unwrap();
    append_lines(&dir.path().join("a.jsonl"), &id_lines(0..3));
    append_lines(&dir.path().join("b.jsonl"), &id_lines(10..12));
    // Not matching the glob: ignored.
    append_lines(&dir.path().join("c.txt"), &id_lines(100..101));
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    append_lines(&dir.path().join("sub/d.jsonl"), &id_lines(200..201));

    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(
        &client,
        &format!(
            "CREATE SOURCE g (id INT) WITH (connector = 'file', path = '{}/*.jsonl') FORMAT PLAIN ENCODE JSON;\n\
             CREATE MATERIALIZED VIEW gv AS SELECT id FROM g;\n",
            dir.path().display()
        ),
    )
    .await;
    let mut want: Vec<i64> = (0..3).chain(10..12).collect();
    let as_rows = |v: &[i64]| v.iter().map(|i| row![i]).collect::<Vec<_>>();
    wait_for(&client, "SELECT id FROM gv", &as_rows(&want)).await;

    // A file created later, and an append to an existing one.
    append_lines(&dir.path().join("z.jsonl"), &id_lines(20..23));
    append_lines(&dir.path().join("a.jsonl"), &id_lines(3..4));
    want.extend((20..23).chain(3..4));
    wait_for(&client, "SELECT id FROM gv", &as_rows(&want)).await;
}

// ---------------------------------------------------------------------------------------
// 7. Rejected statements
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_statements_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.jsonl");
    append_lines(&path, &id_lines(0..2));
    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(
        &client,
        &format!(
            "CREATE SOURCE src (id INT, t TIMESTAMPTZ) WITH (connector = 'file', path = '{}') \
             FORMAT PLAIN ENCODE JSON;\n\
             CREATE TABLE tbl (k VARCHAR, t TIMESTAMPTZ);\n\
             CREATE MATERIALIZED VIEW mv AS SELECT id FROM src;\n",
            path.display()
        ),
    )
    .await;

    // NOW() outside a temporal filter.
    for bad in [
        "CREATE MATERIALIZED VIEW bad1 AS SELECT k, NOW() AS seen FROM tbl",
        "CREATE MATERIALIZED VIEW bad2 AS SELECT id FROM src WHERE t = NOW()",
        "CREATE MATERIALIZED VIEW bad3 AS SELECT k FROM tbl GROUP BY k HAVING MAX(t) < NOW()",
    ] {
        let (code, msg) = fails(&client, bad).await;
        assert_eq!(code, "0A000", "{bad}: {msg}");
        assert!(msg.contains("NOW()"), "{bad}: {msg}");
    }
    // ... while a temporal filter is accepted.
    exec_all(
        &client,
        "CREATE MATERIALIZED VIEW recent AS SELECT k FROM tbl WHERE t > NOW() - INTERVAL '1 hour'",
    )
    .await;
    assert_eq!(show(&client, "MATERIALIZED VIEWS").await, strs(&["mv", "recent"]));

    // A source is not queryable directly; the message says what to do.
    let (code, msg) = sqlstate(&client.query("SELECT * FROM src", &[]).await.unwrap_err());
    assert_eq!(code, "0A000", "{msg}");
    assert!(
        msg.contains("src") && msg.contains("not materialized") && msg.contains("CREATE MATERIALIZED VIEW"),
        "{msg}"
    );
    // ... also when it is hidden in a join.
    let (code, msg) = sqlstate(
        &client
            .query("SELECT m.id FROM mv m JOIN src s ON m.id = s.id", &[])
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "0A000", "{msg}");

    // Only tables accept INSERT / DELETE.
    for bad in [
        "INSERT INTO mv VALUES (1)",
        "DELETE FROM mv WHERE id = 0",
        "INSERT INTO src VALUES (1, NULL)",
    ] {
        let (code, msg) = fails(&client, bad).await;
        assert_eq!(code, "42809", "{bad}: {msg}");
        assert!(msg.contains("only tables"), "{bad}: {msg}");
    }
    // Nothing changed.
    wait_for(&client, "SELECT id FROM mv", &[row![0], row![1]]).await;
}

/// An error found below the SQL layer reaches the client with the SQLSTATE of the crate that
/// found it: a refused connector option (connectors, 22023, naming the option), a sink file
/// that cannot be created (connectors' I/O, 58030, naming the file), an expression the
/// engine cannot run (dataflow's validation, 0A000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_keep_the_sqlstate_of_the_crate_that_found_them() {
    let dir = tempfile::tempdir().unwrap();
    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(&client, "CREATE TABLE tbl (k VARCHAR, n BIGINT)").await;

    let (code, msg) = fails(
        &client,
        "CREATE SOURCE s (id INT) WITH (connector = 'file', path = '/tmp/x.jsonl', pth = '/tmp/y') \
         FORMAT PLAIN ENCODE JSON",
    )
    .await;
    assert_eq!(code, "22023", "{msg}");
    assert!(msg.contains("unknown option 'pth' for the file source"), "{msg}");

    // The sink's directory would be inside a regular file.
    let plain = dir.path().join("plain");
    std::fs::write(&plain, "").unwrap();
    let (code, msg) = fails(
        &client,
        &format!(
            "CREATE SINK out FROM tbl WITH (connector = 'file', path = '{}')",
            plain.join("out.jsonl").display()
        ),
    )
    .await;
    assert_eq!(code, "58030", "{msg}");
    assert!(msg.contains(&plain.display().to_string()), "names the file: {msg}");

    let (code, msg) = fails(
        &client,
        "CREATE MATERIALIZED VIEW bad AS SELECT k FROM tbl WHERE n > ALL (SELECT n FROM tbl)",
    )
    .await;
    assert_eq!(code, "0A000", "{msg}");
    assert!(msg.contains("ALL"), "{msg}");

    // Nothing was created.
    assert!(show(&client, "SINKS").await.is_empty());
    assert!(show(&client, "MATERIALIZED VIEWS").await.is_empty());
}

// ---------------------------------------------------------------------------------------
// 8. JSON type decoding
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_values_decode_to_declared_types() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typed.jsonl");
    let t = t0(); // 2024-03-01 10:00:00 UTC
    let epoch = t.timestamp(); // 1709287200
    let naive = |h, m, s, ms| {
        NaiveDate::from_ymd_opt(2024, 3, 1)
            .unwrap()
            .and_hms_milli_opt(h, m, s, ms)
            .unwrap()
            .and_utc()
    };
    let lines = [
        // RFC 3339 with a +02:00 offset (12:00+02 = 10:00 UTC) and a naive timestamp.
        json!({"id": 1, "tz": "2024-03-01T12:00:00+02:00", "ts": "2024-03-01 10:00:00", "i": 42,
               "b": 9_007_199_254_740_993_i64, "d": 3.25, "f": true, "s": "hello"})
        .to_string(),
        // Epoch seconds (with a fraction for TIMESTAMP), negative numbers, an integral
        // JSON number for DOUBLE, 'Z' RFC 3339.
        json!({"id": 2, "tz": epoch, "ts": epoch as f64 + 0.5, "i": -7, "b": -1, "d": 2,
               "f": false, "s": "x y"})
        .to_string(),
        // Epoch milliseconds; most fields missing (NULL).
        json!({"id": 3, "tz": epoch * 1000 + 123, "ts": (epoch + 60) * 1000}).to_string(),
        // Keys in another case; explicit nulls.
        json!({"ID": 4, "TZ": "2024-03-01T10:00:00.250Z", "Ts": "2024-03-01T10:00:01", "I": 2147483647,
               "B": null, "D": -0.5, "F": "true", "S": "Upper"})
        .to_string(),
    ];
    append_lines(&path, &lines);
    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(
        &client,
        &format!(
            "CREATE SOURCE typed (id INT, tz TIMESTAMPTZ, ts TIMESTAMP, i INT, b BIGINT, d DOUBLE PRECISION, \
             f BOOLEAN, s VARCHAR) WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;\n\
             CREATE MATERIALIZED VIEW typed_v AS SELECT * FROM typed;\n",
            path.display()
        ),
    )
    .await;
    // Expected values, written out by hand from the lines above.
    let want = vec![
        row![
            1,
            ts(naive(10, 0, 0, 0)),
            ts(naive(10, 0, 0, 0)),
            42,
            "9007199254740993",
            "3.25",
            true,
            "hello"
        ],
        row![
            2,
            ts(naive(10, 0, 0, 0)),
            ts(naive(10, 0, 0, 500)),
            -7,
            -1,
            "2",
            false,
            "x y"
        ],
        row![
            3,
            ts(naive(10, 0, 0, 123)),
            ts(naive(10, 1, 0, 0)),
            "NULL",
            "NULL",
            "NULL",
            "NULL",
            "NULL"
        ],
        row![
            4,
            ts(naive(10, 0, 0, 250)),
            ts(naive(10, 0, 1, 0)),
            2147483647,
            "NULL",
            "-0.5",
            true,
            "Upper"
        ],
    ];
    wait_for(&client, "SELECT id, tz, ts, i, b, d, f, s FROM typed_v", &want).await;
    // The view's columns keep the declared types.
    assert_eq!(
        ordered_rows(&client, "DESCRIBE typed_v").await,
        vec![
            row!["id", "integer"],
            row!["tz", "timestamp with time zone"],
            row!["ts", "timestamp without time zone"],
            row!["i", "integer"],
            row!["b", "bigint"],
            row!["d", "double precision"],
            row!["f", "boolean"],
            row!["s", "character varying"]
        ]
    );
    // Values compare correctly in a batch query too.
    wait_for(
        &client,
        "SELECT id FROM typed_v WHERE tz = '2024-03-01T10:00:00Z' AND b IS NOT NULL",
        &[row![1], row![2]],
    )
    .await;
    // No line was rejected.
    let errors = rows(&client, "SELECT line_or_offset, reason FROM rampart_source_errors")
        .await
        .unwrap();
    assert!(errors.is_empty(), "{errors:?}");
}

/// `WATERMARK FOR t AS t - INTERVAL '5 seconds'`: a row more than 5 s behind the latest
/// event time of its file is late: it reaches no view and is listed, once, in
/// `rampart_late_events`. Expected rows worked out by hand from the lines below.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watermark_sends_late_rows_to_late_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wm.jsonl");
    let base = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
    let line = |id: i64, secs: Option<i64>| match secs {
        Some(s) => json!({"id": id, "t": ts(base + chrono::Duration::seconds(s))}).to_string(),
        None => json!({"id": id, "t": null}).to_string(),
    };
    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(
        &client,
        &format!(
            "CREATE SOURCE wm (id INT, t TIMESTAMPTZ, WATERMARK FOR t AS t - INTERVAL '5 seconds') \
             WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;\n\
             CREATE MATERIALIZED VIEW wm_rows AS SELECT id FROM wm;\n\
             CREATE MATERIALIZED VIEW wm_count AS SELECT COUNT(*) AS n FROM wm;\n",
            path.display()
        ),
    )
    .await;
    // Line 1 sets the watermark to 95 s; line 2 (97) is within the delay; line 3 (90) is
    // late; line 4 (106) moves it to 101; line 5 (100) is late; line 6 (101) is exactly at
    // it, on time; line 7 has no event time and is let through.
    append_lines(
        &path,
        &[
            line(1, Some(100)),
            line(2, Some(97)),
            line(3, Some(90)),
            line(4, Some(106)),
            line(5, Some(100)),
            line(6, Some(101)),
            line(7, None),
        ],
    );
    let on_time: Vec<Row> = [1, 2, 4, 6, 7].iter().map(|i| row![i]).collect();
    wait_for(&client, "SELECT id FROM wm_rows", &on_time).await;
    wait_for(&client, "SELECT n FROM wm_count", &[row![5]]).await;
    let loc = path.display().to_string();
    wait_for(
        &client,
        "SELECT source, location, line_or_offset FROM rampart_late_events",
        &[row!["wm", loc, 3], row!["wm", loc, 5]],
    )
    .await;
    let reasons = rows(
        &client,
        "SELECT reason FROM rampart_late_events WHERE line_or_offset = 3",
    )
    .await
    .unwrap();
    assert!(
        reasons[0][0].contains("2026-11-22T10:01:30Z") && reasons[0][0].contains("2026-11-22T10:01:35Z"),
        "reason names the event time and the watermark: {}",
        reasons[0][0]
    );

    // Forms Rampart cannot enforce are refused with the reason.
    let (code, msg) = fails(
        &client,
        "CREATE SOURCE wm_bad (id INT, t TIMESTAMPTZ, WATERMARK FOR t AS t + INTERVAL '1 second') \
         WITH (connector = 'file', path = '/nonexistent') FORMAT PLAIN ENCODE JSON",
    )
    .await;
    assert_eq!(code, "0A000", "{msg}");
    assert!(msg.contains("WATERMARK"), "{msg}");
    let (code, msg) = fails(
        &client,
        "CREATE SOURCE wm_bad (id INT, WATERMARK FOR id AS id) \
         WITH (connector = 'file', path = '/nonexistent') FORMAT PLAIN ENCODE JSON",
    )
    .await;
    assert_eq!(code, "42804", "{msg}");
}

/// A quoted, mixed-case name is its own relation, distinct from the lower-case one, in
/// every statement that names a relation: CREATE, INSERT, SELECT, a materialized view, a
/// plain view, CREATE SINK ... FROM, DELETE and DROP. Each table holds other rows, so a
/// statement that reached the wrong one shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quoted_mixed_case_names_are_their_own_relations() {
    let dir = tempfile::tempdir().unwrap();
    let sink_path = dir.path().join("alerts.jsonl");
    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(
        &client,
        "CREATE TABLE alerts (k VARCHAR, s INT);\n\
         CREATE TABLE \"Alerts\" (k VARCHAR, s INT);\n\
         INSERT INTO alerts VALUES ('lower', 1);\n\
         INSERT INTO \"Alerts\" VALUES ('upper', 2), ('upper2', 3);\n\
         CREATE MATERIALIZED VIEW \"Totals\" AS SELECT k, s FROM \"Alerts\";\n\
         CREATE VIEW \"Plain\" AS SELECT k, s FROM \"Alerts\";\n",
    )
    .await;
    assert_eq!(
        rows(&client, "SELECT k, s FROM alerts").await.unwrap(),
        vec![row!["lower", 1]]
    );
    let upper = vec![row!["upper", 2], row!["upper2", 3]];
    assert_eq!(rows(&client, "SELECT k, s FROM \"Alerts\"").await.unwrap(), upper);
    wait_for(&client, "SELECT k, s FROM \"Totals\"", &upper).await;
    assert_eq!(rows(&client, "SELECT k, s FROM \"Plain\"").await.unwrap(), upper);

    client
        .simple_query(&format!(
            "CREATE SINK \"AlertSink\" FROM \"Alerts\" WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON",
            sink_path.display()
        ))
        .await
        .expect("create sink from a quoted name");
    let mut written = expect_new_lines(&sink_path, 0, &[("plain", "upper", 2), ("plain", "upper2", 3)]).await;

    exec_all(&client, "DELETE FROM \"Alerts\" WHERE k = 'upper'").await;
    assert_eq!(
        rows(&client, "SELECT k, s FROM alerts").await.unwrap(),
        vec![row!["lower", 1]]
    );
    wait_for(&client, "SELECT k, s FROM \"Totals\"", &[row!["upper2", 3]]).await;
    exec_all(&client, "INSERT INTO \"Alerts\" VALUES ('upper3', 4)").await;
    written = expect_new_lines(&sink_path, written, &[("plain", "upper3", 4)]).await;
    assert_eq!(written, 3);

    exec_all(
        &client,
        "DROP SINK \"AlertSink\";\nDROP VIEW \"Plain\";\nDROP MATERIALIZED VIEW \"Totals\";\nDROP TABLE \"Alerts\"",
    )
    .await;
    assert_eq!(show(&client, "TABLES").await, strs(&["alerts"]));
    assert_eq!(
        rows(&client, "SELECT k, s FROM alerts").await.unwrap(),
        vec![row!["lower", 1]]
    );
}

/// The README's example pipeline, taken from README.md as written (only its file path is
/// replaced), over generated auth events: the brute-force view holds exactly the windows
/// with more than 10 failures of one IP and user, counted here from the events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_example_runs_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README.md");
    let example = readme
        .split("```sql")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .find(|b| b.contains("CREATE SOURCE auth_events"))
        .expect("the README's example pipeline");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("idp")).unwrap();
    let glob = dir.path().join("idp/*.jsonl");
    assert!(example.contains("'/var/log/idp/*.jsonl'"), "{example}");
    let example = example.replace("'/var/log/idp/*.jsonl'", &format!("'{}'", glob.display()));
    let (statements, select) = example
        .rsplit_once("SELECT * FROM brute_force")
        .expect("ends with its SELECT");
    assert!(select.trim().starts_with("ORDER BY"), "{select}");

    // Failures from three (ip, user) pairs in 5-minute windows, one success, then an
    // event 20 minutes on whose watermark closes every window before it.
    let base = Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).unwrap();
    let mut events: Vec<(DateTime<Utc>, &str, &str, &str)> = Vec::new();
    for i in 0..12 {
        events.push((
            base + chrono::Duration::seconds(10 * i),
            "alice",
            "203.0.113.7",
            "failure",
        ));
    }
    for i in 0..10 {
        events.push((
            base + chrono::Duration::seconds(7 * i),
            "bob",
            "198.51.100.4",
            "failure",
        ));
    }
    for i in 0..15 {
        // 15 failures over two windows: 8 in the first, 7 in the second.
        events.push((
            base + chrono::Duration::seconds(240 + 10 * i),
            "carol",
            "192.0.2.9",
            "failure",
        ));
    }
    events.push((base + chrono::Duration::seconds(30), "alice", "203.0.113.7", "success"));
    events.sort();
    events.push((base + chrono::Duration::minutes(20), "dave", "192.0.2.1", "success"));
    let window = |t: DateTime<Utc>| t.timestamp() - t.timestamp().rem_euclid(300);
    let mut counts: BTreeMap<(i64, &str, &str), i64> = BTreeMap::new();
    for (t, user, ip, result) in &events {
        if *result == "failure" {
            *counts.entry((window(*t), *ip, *user)).or_default() += 1;
        }
    }
    let expected: Vec<Row> = counts
        .iter()
        .filter(|(_, n)| **n > 10)
        .map(|((w, ip, user), n)| {
            let start = Utc.timestamp_opt(*w, 0).unwrap();
            row![ts(start), ts(start + chrono::Duration::minutes(5)), ip, user, n]
        })
        .collect();
    assert_eq!(expected.len(), 1, "only alice's window passes the threshold");
    let lines: Vec<String> = events
        .iter()
        .map(|(t, user, ip, result)| {
            json!({"event_time": rfc3339(*t), "user_id": user, "source_ip": ip, "result": result}).to_string()
        })
        .collect();
    append_lines(&dir.path().join("idp/auth-1.jsonl"), &lines);

    let handle = server().await;
    let client = connect(&handle).await;
    client
        .batch_execute(statements)
        .await
        .expect("the example's statements run");
    wait_for(
        &client,
        "SELECT window_start, window_end, source_ip, user_id, failures FROM brute_force",
        &expected,
    )
    .await;
    let ordered = client
        .query(&format!("SELECT * FROM brute_force{select}"), &[])
        .await
        .expect("the example's SELECT runs");
    assert_eq!(ordered.len(), expected.len());
}

/// COPY reads regular files only: a FIFO with no writer (whose open would block the
/// statement, and every statement queued behind it, forever) and `/dev/zero` (endless) are
/// refused at once, and the server keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_refuses_fifos_and_devices_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo");
    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(&client, "CREATE TABLE t (a INT)").await;
    for (path, what) in [
        (fifo.display().to_string(), "a FIFO"),
        ("/dev/zero".to_string(), "a device"),
    ] {
        let started = Instant::now();
        let (code, msg) = fails(&client, &format!("COPY t FROM '{path}'")).await;
        assert_eq!(code, "22023", "{msg}");
        assert!(msg.contains("regular files only") && msg.contains(what), "{msg}");
        assert!(started.elapsed() < Duration::from_secs(5), "refused at once");
    }
    let other = connect(&handle).await;
    assert_eq!(rows(&other, "SELECT COUNT(*) FROM t").await.unwrap(), vec![row!["0"]]);
}

/// A materialized view of constants (its dataflow finishes at once) must not stop other
/// queries: a SELECT on a table answers, and the view can be read and dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_of_constants_does_not_stall_queries() {
    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(
        &client,
        "CREATE TABLE t (a INT);\nINSERT INTO t VALUES (1);\nCREATE MATERIALIZED VIEW mvb AS VALUES (233, 'risingwave'), (233, 'risingwave');",
    )
    .await;
    let answered = tokio::time::timeout(Duration::from_secs(10), rows(&client, "SELECT a FROM t")).await;
    assert_eq!(answered.expect("answers within 10 s").unwrap(), vec![row!["1"]]);
    let view = tokio::time::timeout(Duration::from_secs(10), rows(&client, "SELECT * FROM mvb")).await;
    assert_eq!(
        view.expect("answers within 10 s").unwrap(),
        vec![row!["233", "risingwave"], row!["233", "risingwave"]]
    );
    tokio::time::timeout(
        Duration::from_secs(10),
        client.simple_query("DROP MATERIALIZED VIEW mvb"),
    )
    .await
    .expect("drops within 10 s")
    .unwrap();
}

/// A CHECK constraint, which Rampart would not enforce, is refused (0A000) instead of being
/// accepted and ignored; nothing is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_constraints_are_refused_not_ignored() {
    let handle = server().await;
    let client = connect(&handle).await;
    for sql in [
        "CREATE TABLE c1 (a INT CHECK (a > 0))",
        "CREATE TABLE c2 (a INT, CONSTRAINT positive CHECK (a > 0))",
    ] {
        let (code, msg) = fails(&client, sql).await;
        assert_eq!(code, "0A000", "{sql}: {msg}");
        assert!(msg.contains("CHECK"), "{msg}");
    }
    assert!(show(&client, "TABLES").await.is_empty());
}

/// What client libraries ask when they connect: `version()` in PostgreSQL's form (SQLAlchemy
/// and pandas read the version number from it) naming Rampart, and `current_schema()`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_and_current_schema_answer_as_postgresql() {
    let handle = server().await;
    let client = connect(&handle).await;
    let row = client
        .query_one("SELECT version(), current_schema(), current_database()", &[])
        .await
        .unwrap();
    let version: String = row.get(0);
    assert!(version.starts_with("PostgreSQL 15.0 on "), "{version}");
    assert!(version.contains("Rampart"), "{version}");
    assert_eq!(row.get::<_, String>(1), "public");
    assert_eq!(row.get::<_, String>(2), "dev");
}
