//! Windowed aggregates over a source with a `WATERMARK`: windows close when the watermark
//! passes them, `EMIT ON WINDOW CLOSE` gives each window's final result once, a change that
//! reaches a closed window goes to `rampart_late_events`, and `EXPLAIN` says what state
//! each aggregate keeps.
//!
//! Expected results are counted by hand from the events the test writes (the comments
//! give the arithmetic).

use rampart_testkit as common;

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use common::{append_lines, connect, connect_with_notices, exec_all, next_notice, rows, server, ts, wait_for, Row};
use serde_json::json;

/// The event-time origin of these tests: 2026-11-22 10:00:00 UTC.
fn base() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

/// `s` seconds after [`base`], as the server prints timestamps.
fn at(s: i64) -> String {
    ts(base() + chrono::Duration::seconds(s))
}

/// An event of the `ev (u, t)` sources: user `u` at [`at`]`(s)`.
fn line(u: &str, s: i64) -> String {
    json!({"u": u, "t": at(s)}).to_string()
}

/// The `ev (u, t)` source over the JSON-lines file `path`, watermarked 5 s behind, and the
/// `teams` table (a red, b blue).
fn ev_and_teams(path: &std::path::Path) -> String {
    format!(
        "CREATE SOURCE ev (u VARCHAR, t TIMESTAMPTZ, WATERMARK FOR t AS t - INTERVAL '5 seconds') \
         WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;\n\
         CREATE TABLE teams (u VARCHAR, team VARCHAR);\n\
         INSERT INTO teams VALUES ('a', 'red'), ('b', 'blue');\n",
        path.display()
    )
}

async fn sqlstate_of(client: &tokio_postgres::Client, sql: &str) -> (String, String) {
    match client.simple_query(sql).await {
        Ok(_) => panic!("statement unexpectedly succeeded: {sql}"),
        Err(e) => {
            let db = e.as_db_error().expect("server error");
            (db.code().code().to_string(), db.message().to_string())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_close_with_the_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ev.jsonl");
    let sink_path = dir.path().join("final.jsonl");
    std::fs::write(&path, "").unwrap();
    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(
        &client,
        &format!(
            "{}\
             CREATE MATERIALIZED VIEW per_user AS SELECT window_start, u, COUNT(*) AS n \
               FROM TUMBLE(ev, t, INTERVAL '10 seconds') GROUP BY window_start, u;\n\
             CREATE MATERIALIZED VIEW per_user_final AS SELECT window_start, u, COUNT(*) AS n \
               FROM TUMBLE(ev, t, INTERVAL '10 seconds') GROUP BY window_start, u EMIT ON WINDOW CLOSE;\n\
             CREATE MATERIALIZED VIEW per_team AS SELECT window_start, team, COUNT(*) AS n \
               FROM TUMBLE((SELECT e.t, m.team FROM ev e JOIN teams m ON e.u = m.u), t, INTERVAL '10 seconds') \
               GROUP BY window_start, team;\n\
             CREATE SINK final_sink FROM per_user_final WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;\n",
            ev_and_teams(&path),
            sink_path.display()
        ),
    )
    .await;

    // Window [0, 10): a at 1, 2 and 3, b at 4. Window [10, 20): a at 12. The latest event
    // time is 12, so the watermark is 7: nothing is closed yet.
    append_lines(
        &path,
        &[line("a", 1), line("a", 2), line("a", 3), line("b", 4), line("a", 12)],
    );
    wait_for(
        &client,
        "SELECT window_start, u, n FROM per_user",
        &[
            vec![at(0), "a".into(), "3".into()],
            vec![at(0), "b".into(), "1".into()],
            vec![at(10), "a".into(), "1".into()],
        ],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        rows(&client, "SELECT * FROM per_user_final").await.unwrap().is_empty(),
        "no window has closed at watermark 7"
    );

    // b at 16 moves the watermark to 11, past the end of [0, 10): that window closes and
    // its final counts (a 3, b 1) are emitted once. [10, 20) stays open.
    append_lines(&path, &[line("b", 16)]);
    let closed_first = [vec![at(0), "a".into(), "3".into()], vec![at(0), "b".into(), "1".into()]];
    wait_for(&client, "SELECT window_start, u, n FROM per_user_final", &closed_first).await;

    // Alice moves to team blue. Her events in the closed window [0, 10) cannot change any
    // more (their retractions are late); her event at 12 in the open window now counts for
    // blue. Before: red [0,10) 3, blue [0,10) 1, red [10,20) 1, blue [10,20) 1 (b at 16).
    exec_all(
        &client,
        "DELETE FROM teams WHERE u = 'a';\nINSERT INTO teams VALUES ('a', 'blue');\n",
    )
    .await;
    wait_for(
        &client,
        "SELECT window_start, team, n FROM per_team",
        &[
            vec![at(0), "blue".into(), "1".into()],
            vec![at(0), "red".into(), "3".into()],
            vec![at(10), "blue".into(), "2".into()],
        ],
    )
    .await;
    let late = rows(
        &client,
        "SELECT source, location FROM rampart_late_events WHERE source = 'per_team'",
    )
    .await
    .unwrap();
    // The retractions (red) and insertions (blue) of a's three events in [0, 10) reach
    // the closed window and are recorded instead of applied.
    assert!(!late.is_empty(), "late changes to the closed window are recorded");
    assert!(late.iter().all(|r| r[1] == "window"), "{late:?}");

    // a at 31 moves the watermark to 26: [10, 20) closes (a 1, b 1).
    append_lines(&path, &[line("a", 31)]);
    let mut closed_both: Vec<Row> = closed_first.to_vec();
    closed_both.push(vec![at(10), "a".into(), "1".into()]);
    closed_both.push(vec![at(10), "b".into(), "1".into()]);
    wait_for(&client, "SELECT window_start, u, n FROM per_user_final", &closed_both).await;

    // The sink emitted each closed window exactly once.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut emitted: Vec<(String, String, i64)>;
    loop {
        let text = std::fs::read_to_string(&sink_path).unwrap_or_default();
        emitted = text
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["window_start"].as_str().unwrap().to_string(),
                    v["u"].as_str().unwrap().to_string(),
                    v["n"].as_i64().unwrap(),
                )
            })
            .collect();
        if emitted.len() >= 4 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    emitted.sort();
    let counts: Vec<(String, i64)> = emitted.iter().map(|(_, u, n)| (u.clone(), *n)).collect();
    assert_eq!(
        counts,
        vec![("a".into(), 3), ("b".into(), 1), ("a".into(), 1), ("b".into(), 1)],
        "{emitted:?}"
    );

    // EXPLAIN says what each aggregate keeps.
    let plan = rows(
        &client,
        "EXPLAIN SELECT window_start, COUNT(*) FROM TUMBLE(ev, t, INTERVAL '10 seconds') GROUP BY window_start",
    )
    .await
    .unwrap();
    let text: String = plan.iter().map(|r| r[0].clone() + "\n").collect();
    assert!(text.contains("freed when the watermark closes the window"), "{text}");

    // EMIT ON WINDOW CLOSE without a watermarked window is refused, saying why.
    let (code, msg) = sqlstate_of(
        &client,
        "CREATE MATERIALIZED VIEW bad AS SELECT u, COUNT(*) FROM ev GROUP BY u EMIT ON WINDOW CLOSE",
    )
    .await;
    assert_eq!(code, "42P20", "{msg}");
    assert!(msg.contains("WATERMARK"), "{msg}");
    let (code, msg) = sqlstate_of(
        &client,
        "SELECT window_start, COUNT(*) FROM TUMBLE(ev, t, INTERVAL '10 seconds') GROUP BY window_start EMIT ON WINDOW CLOSE",
    )
    .await;
    assert_eq!(code, "0A000", "{msg}");
    assert!(msg.contains("EMIT ON WINDOW CLOSE"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_join_matches_every_pair_within_its_interval() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logins.jsonl");
    std::fs::write(&path, "").unwrap();
    let base = base();
    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(
        &client,
        &format!(
            "CREATE SOURCE logins (u VARCHAR, country VARCHAR, t TIMESTAMPTZ, WATERMARK FOR t AS t - INTERVAL '5 seconds') \
             WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;\n\
             CREATE MATERIALIZED VIEW travel AS SELECT a.u, a.country AS c1, b.country AS c2, a.t AS t1, b.t AS t2 \
               FROM logins a JOIN logins b ON a.u = b.u AND a.country <> b.country \
               AND b.t > a.t AND b.t < a.t + INTERVAL '30 seconds';\n",
            path.display()
        ),
    )
    .await;
    let plan = rows(
        &client,
        "EXPLAIN SELECT a.u FROM logins a JOIN logins b ON a.u = b.u AND b.t > a.t AND b.t < a.t + INTERVAL '30 seconds'",
    )
    .await
    .unwrap();
    let text: String = plan.iter().map(|r| r[0].clone() + "\n").collect();
    assert!(text.contains("Interval join (inner)"), "{text}");

    // 300 logins of 4 users from 3 countries over ~10 minutes, slightly out of order
    // (never more than 3 s behind the latest, inside the 5 s delay, so none is late).
    let mut seed: u64 = 42;
    let mut next = move |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut events: Vec<(String, String, i64)> = Vec::new();
    let mut clock_ms: i64 = 0;
    for _ in 0..300 {
        clock_ms += 2_000 + next(2_000) as i64;
        let t = clock_ms - next(3_000) as i64;
        events.push((
            format!("user{}", next(4)),
            ["DE", "FR", "US"][next(3) as usize].to_string(),
            t,
        ));
    }
    // The interval's edges: logins at the same instant pair with nothing (b.t > a.t), nor
    // does one exactly 30 s later (b.t < a.t + 30 s); one 1 ms inside does. A login
    // without a country ("" here, NULL in the source) pairs with nothing.
    let edge = clock_ms + 1_000;
    for (c, t) in [
        ("DE", edge),
        ("FR", edge),
        ("", edge + 10_000),
        ("FR", edge + 29_999),
        ("US", edge + 30_000),
    ] {
        events.push(("edge".to_string(), c.to_string(), t));
    }
    let lines: Vec<String> = events
        .iter()
        .map(|(u, c, t)| {
            let country = Some(c).filter(|c| !c.is_empty());
            json!({"u": u, "country": country, "t": ts(base + chrono::Duration::milliseconds(*t))}).to_string()
        })
        .collect();
    append_lines(&path, &lines);
    // Expected by brute force over every pair.
    let mut expected: Vec<Row> = Vec::new();
    for a in &events {
        for b in &events {
            let countries_differ = !a.1.is_empty() && !b.1.is_empty() && a.1 != b.1;
            if a.0 == b.0 && countries_differ && b.2 > a.2 && b.2 < a.2 + 30_000 {
                expected.push(vec![
                    a.0.clone(),
                    a.1.clone(),
                    b.1.clone(),
                    ts(base + chrono::Duration::milliseconds(a.2)),
                    ts(base + chrono::Duration::milliseconds(b.2)),
                ]);
            }
        }
    }
    assert!(expected.len() > 50, "the data has pairs to find: {}", expected.len());
    wait_for(&client, "SELECT u, c1, c2, t1, t2 FROM travel", &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_bounded_join_without_watermark_probes_by_time() {
    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(
        &client,
        "CREATE SOURCE plain_logins (u VARCHAR, t TIMESTAMPTZ) \
         WITH (connector = 'file', path = '/nonexistent/logins.jsonl') FORMAT PLAIN ENCODE JSON;\n\
         CREATE MATERIALIZED VIEW plain_all AS SELECT * FROM plain_logins;\n",
    )
    .await;
    for from in ["plain_logins", "plain_all"] {
        let plan = rows(
            &client,
            &format!(
                "EXPLAIN SELECT a.u FROM {from} a JOIN {from} b ON a.u = b.u \
                 AND b.t > a.t AND b.t < a.t + INTERVAL '30 minutes'"
            ),
        )
        .await
        .unwrap();
        let text: String = plan.iter().map(|r| r[0].clone() + "\n").collect();
        assert!(
            text.contains("Interval join (inner)") && text.contains("kept forever (no WATERMARK"),
            "{from}: {text}"
        );
    }
}

/// A watermarked stream joined with a stream that has no watermark: a new row on the
/// unwatermarked side can pair with old rows, so the join's output has no event-time bound
/// and a window over it must not close (the pairs are counted, not recorded as late).
/// Expected counts by hand: tag `vip` for user a pairs with a's events at 1 and 2 (window
/// [0, 10)) and at 30 (window [30, 40)).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_with_an_unwatermarked_stream_keeps_old_windows_open() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("ev.jsonl");
    let tags = dir.path().join("tags.jsonl");
    std::fs::write(&events, "").unwrap();
    std::fs::write(&tags, "").unwrap();
    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(
        &client,
        &format!(
            "CREATE SOURCE ev (u VARCHAR, t TIMESTAMPTZ, WATERMARK FOR t AS t - INTERVAL '5 seconds') \
             WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;\n\
             CREATE SOURCE tags (u VARCHAR, tag VARCHAR) \
             WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;\n\
             CREATE MATERIALIZED VIEW per_tag AS SELECT window_start, tag, COUNT(*) AS n \
               FROM TUMBLE((SELECT e.t, g.tag FROM ev e JOIN tags g ON e.u = g.u), t, INTERVAL '10 seconds') \
               GROUP BY window_start, tag;\n",
            events.display(),
            tags.display()
        ),
    )
    .await;
    // The watermark reaches 25: window [0, 10) would be closed if the join kept ev's lags.
    append_lines(
        &events,
        &[
            json!({"u": "a", "t": at(1)}).to_string(),
            json!({"u": "a", "t": at(2)}).to_string(),
            json!({"u": "a", "t": at(30)}).to_string(),
        ],
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    append_lines(&tags, &[json!({"u": "a", "tag": "vip"}).to_string()]);
    wait_for(
        &client,
        "SELECT window_start, tag, n FROM per_tag",
        &[
            vec![at(0), "vip".into(), "2".into()],
            vec![at(30), "vip".into(), "1".into()],
        ],
    )
    .await;
    let late = rows(&client, "SELECT source FROM rampart_late_events").await.unwrap();
    assert!(late.is_empty(), "no pair is late: {late:?}");
}

/// A materialized view with a retention keeps the rows whose event time is within the
/// retention of the watermark: older rows leave it (and the state of its enrichment join
/// with them), views without a retention that read it keep what they derived from them,
/// and a retained windowed view over it skips the expiry of closed windows instead of
/// recording it as late. Expected rows are counted by hand (see the comments).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_expires_rows_with_the_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ev.jsonl");
    std::fs::write(&path, "").unwrap();
    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(
        &client,
        &format!(
            "{}\
             CREATE MATERIALIZED VIEW recent WITH (retention = '20 seconds') AS \
               SELECT e.u, e.t, m.team FROM ev e LEFT JOIN teams m ON e.u = m.u;\n\
             CREATE MATERIALIZED VIEW all_seen AS SELECT u, t, team FROM recent;\n\
             CREATE MATERIALIZED VIEW per_user AS SELECT u, COUNT(*) AS n FROM recent GROUP BY u;\n\
             CREATE MATERIALIZED VIEW recent_counts WITH (retention_seconds = 40, retention_column = 'window_start') AS \
               SELECT window_start, COUNT(*) AS n FROM TUMBLE(recent, t, INTERVAL '10 seconds') GROUP BY window_start;\n",
            ev_and_teams(&path)
        ),
    )
    .await;
    let r = |u: &str, s: i64, team: &str| vec![u.to_string(), at(s), team.to_string()];

    // Latest event time 12: the watermark is 7, rows leave once t + 20 <= 7: none yet.
    append_lines(
        &path,
        &[line("a", 1), line("a", 2), line("a", 3), line("b", 4), line("a", 12)],
    );
    let first = [
        r("a", 1, "red"),
        r("a", 2, "red"),
        r("a", 3, "red"),
        r("b", 4, "blue"),
        r("a", 12, "red"),
    ];
    wait_for(&client, "SELECT u, t, team FROM recent", &first).await;

    // b at 30: watermark 25, so the rows at 1-4 (t + 20 <= 25) leave `recent`. The views
    // without retention keep them; window [0, 10) closed (its start + 10 s < 25) with 4.
    append_lines(&path, &[line("b", 30)]);
    wait_for(
        &client,
        "SELECT u, t, team FROM recent",
        &[r("a", 12, "red"), r("b", 30, "blue")],
    )
    .await;
    let mut seen: Vec<Row> = first.to_vec();
    seen.push(r("b", 30, "blue"));
    wait_for(&client, "SELECT u, t, team FROM all_seen", &seen).await;
    wait_for(
        &client,
        "SELECT u, n FROM per_user",
        &[vec!["a".into(), "4".into()], vec!["b".into(), "2".into()]],
    )
    .await;
    wait_for(
        &client,
        "SELECT window_start, n FROM recent_counts",
        &[
            vec![at(0), "4".into()],
            vec![at(10), "1".into()],
            vec![at(30), "1".into()],
        ],
    )
    .await;

    let late_sql = "SELECT source, reason FROM rampart_late_events";
    let late = rows(&client, late_sql).await.unwrap();
    assert!(late.is_empty(), "expiry is not a late change: {late:?}");

    // Alice moves to team blue: her row still in `recent` (12) is re-enriched, and the
    // views reading it see that change; her expired rows are not touched.
    exec_all(
        &client,
        "DELETE FROM teams WHERE u = 'a';\nINSERT INTO teams VALUES ('a', 'blue');\n",
    )
    .await;
    wait_for(
        &client,
        "SELECT u, t, team FROM recent",
        &[r("a", 12, "blue"), r("b", 30, "blue")],
    )
    .await;
    let mut seen: Vec<Row> = first[..4].to_vec();
    seen.push(r("a", 12, "blue"));
    seen.push(r("b", 30, "blue"));
    wait_for(&client, "SELECT u, t, team FROM all_seen", &seen).await;
    // That re-enrichment is a real late change for `recent_counts`: its window [10, 20)
    // had closed. It is recorded (the insertions; retractions there may be expiry).
    let late = rows(&client, late_sql).await.unwrap();
    let window_10 = (base() + chrono::Duration::seconds(10)).timestamp_micros().to_string();
    assert!(!late.is_empty());
    assert!(
        late.iter()
            .all(|r| r[0] == "recent_counts" && r[1].contains(&window_10)),
        "{late:?}"
    );

    // a at 50: watermark 45. `recent` drops a at 12 (12 + 20 <= 45); `recent_counts`
    // drops window 0 (0 + 40 <= 45) and keeps 10 (closed, 1), 30 and 50.
    append_lines(&path, &[line("a", 50)]);
    wait_for(
        &client,
        "SELECT u, t, team FROM recent",
        &[r("b", 30, "blue"), r("a", 50, "blue")],
    )
    .await;
    wait_for(
        &client,
        "SELECT window_start, n FROM recent_counts",
        &[
            vec![at(10), "1".into()],
            vec![at(30), "1".into()],
            vec![at(50), "1".into()],
        ],
    )
    .await;
    seen.push(r("a", 50, "blue"));
    wait_for(&client, "SELECT u, t, team FROM all_seen", &seen).await;
    wait_for(
        &client,
        "SELECT u, n FROM per_user",
        &[vec!["a".into(), "5".into()], vec!["b".into(), "2".into()]],
    )
    .await;

    // 40 events of c at 60-99 in one write, probably one batch: by its end the watermark
    // is 94, past the first ones' expiry (60 + 20). They still all count downstream: a
    // row is judged by the watermark it arrived under (45), not one its own batch moved.
    let burst: Vec<String> = (60..100).map(|s| line("c", s)).collect();
    append_lines(&path, &burst);
    wait_for(
        &client,
        "SELECT u, n FROM per_user",
        &[
            vec!["a".into(), "5".into()],
            vec!["b".into(), "2".into()],
            vec!["c".into(), "40".into()],
        ],
    )
    .await;
    // `recent` keeps t + 20 > 94: c at 75-99.
    wait_for(
        &client,
        "SELECT u, COUNT(*) FROM recent GROUP BY u",
        &[vec!["c".into(), "25".into()]],
    )
    .await;
    let after = rows(&client, late_sql).await.unwrap();
    assert_eq!(after.len(), late.len(), "expiry is not a late change: {after:?}");

    // A retained view over `recent` that would keep rows longer than `recent` does is
    // told that its rows leave with `recent`'s.
    let (notice_client, mut notices) = connect_with_notices(&handle).await;
    notice_client
        .batch_execute("CREATE MATERIALIZED VIEW longer WITH (retention = '1 minute') AS SELECT u, t FROM recent")
        .await
        .unwrap();
    let notice = next_notice(&mut notices).await;
    assert!(
        notice.contains("longer keeps rows for 60 s but reads recent, which keeps them for 20 s"),
        "{notice}"
    );
    // One that expires rows by another column than `recent` does is told that its rows
    // also leave with `recent`'s (`longer` above, by a copy of `recent.t`, is not).
    notice_client
        .batch_execute(
            "CREATE MATERIALIZED VIEW shifted WITH (retention = '10 seconds', retention_column = 't2') AS \
             SELECT u, t, t + INTERVAL '1 second' AS t2 FROM recent",
        )
        .await
        .unwrap();
    let notice = next_notice(&mut notices).await;
    assert!(
        notice.contains("shifted expires rows by t2 but reads recent, which expires them by t:"),
        "{notice}"
    );
    // A view without a retention created now over `recent` is told it starts from
    // `recent`'s current rows (a restart brings it back the same: the crash tests of crates/rampart).
    notice_client
        .batch_execute("CREATE MATERIALIZED VIEW later_count AS SELECT u, COUNT(*) AS n FROM recent GROUP BY u")
        .await
        .unwrap();
    let notice = next_notice(&mut notices).await;
    assert!(
        notice.contains(
            "later_count reads recent, which has a retention: later_count starts from the rows recent holds now"
        ),
        "{notice}"
    );
    wait_for(
        &client,
        "SELECT u, n FROM later_count",
        &[vec!["c".into(), "25".into()]],
    )
    .await;

    // EXPLAIN shows the retention and its state.
    let plan = rows(
        &client,
        "EXPLAIN CREATE MATERIALIZED VIEW r2 WITH (retention = '1 hour') AS SELECT u, t FROM ev",
    )
    .await
    .unwrap();
    let text: String = plan.iter().map(|r| r[0].clone() + "\n").collect();
    assert!(
        text.contains("Retain rows until the watermark passes column 1 + 3600 s"),
        "{text}"
    );
    // ... and how each kind of view keeps its rows: a retained one in an arrangement, one
    // that retracts each row where it inserted it (reads, maps, filters) where they were
    // produced, any other by row.
    let storage = |sql: &'static str| {
        let client = &client;
        async move {
            let plan = rows(client, sql).await.unwrap();
            let line = plan.iter().find(|r| r[0].starts_with("Materialized view:"));
            line.map(|r| r[0].clone()).unwrap_or_default()
        }
    };
    assert!(text.contains("Materialized view: rows in an arrangement"), "{text}");
    let plain = storage("EXPLAIN CREATE MATERIALIZED VIEW r3 AS SELECT u, t FROM ev WHERE u <> 'x'").await;
    assert!(plain.contains("each kept on the worker that produced it"), "{plain}");
    let over_view = storage("EXPLAIN CREATE MATERIALIZED VIEW r5 AS SELECT u FROM recent").await;
    assert!(
        over_view.contains("each kept on the worker that produced it"),
        "{over_view}"
    );
    let joined =
        storage("EXPLAIN CREATE MATERIALIZED VIEW r4 AS SELECT ev.u, teams.team FROM ev JOIN teams ON ev.u = teams.u")
            .await;
    assert!(joined.contains("on the worker each row hashes to"), "{joined}");
    let counted = storage("EXPLAIN CREATE MATERIALIZED VIEW r6 AS SELECT u, COUNT(*) AS n FROM ev GROUP BY u").await;
    assert!(counted.contains("on the worker each row hashes to"), "{counted}");

    // Retentions that cannot work are refused, saying why.
    for (sql, code, says) in [
        (
            "CREATE MATERIALIZED VIEW bad AS SELECT u FROM teams WITH (retention = '1 hour')",
            "42601",
            "go before AS",
        ),
        (
            "CREATE MATERIALIZED VIEW bad WITH (retention = '1 hour') AS SELECT u, team FROM teams",
            "22023",
            "WATERMARK",
        ),
        (
            "CREATE MATERIALIZED VIEW bad WITH (retention = 'a while') AS SELECT u, t FROM ev",
            "22023",
            "'1 hour'",
        ),
        (
            "CREATE MATERIALIZED VIEW bad WITH (retention = '1 hour', retention_column = 'u') AS SELECT u, t FROM ev",
            "22023",
            "the event-time columns are t",
        ),
        (
            "CREATE MATERIALIZED VIEW bad WITH (keep = '1 hour') AS SELECT u, t FROM ev",
            "0A000",
            "retention_seconds",
        ),
    ] {
        let (got, msg) = sqlstate_of(&client, sql).await;
        assert_eq!(got, code, "{sql}: {msg}");
        assert!(msg.contains(says), "{sql}: {msg}");
    }
}
