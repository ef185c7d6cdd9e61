//! End-to-end tests of the two seed SIEM pipelines (fixtures/seeds/risingwave-streaming-siem.txt
//! and risingwave-siem-pipeline.txt) against a real server over pgwire, with file sources.
//!
//! Every expected result is computed independently in plain Rust from the same generated
//! events (HashMaps and loops), never by asking the engine.

use rampart_testkit as common;
use rampart_testkit::row;
use rampart_testkit::seed1;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use common::{
    append_lines, assert_error_names_column, connect, exec_all, floor_to, psql, server, shuffle, ts, wait_for, Row,
};
use seed1::{
    at, base_time, check_blocks_against_document, check_fired_at, check_pipeline1, exec_json, expected1,
    firewall_noise, geo_rows, initial_tiers, json_row, json_time, login, login_json, pipeline1_events, pipeline1_sql,
    region, seed_view_sql, soar_sink_file_sql, write_geo_csv, Connectors, Login, GEO_QUERY, SOAR_COLUMNS,
};
use serde_json::json;

const FIVE_MIN: i64 = 300;

// ---------------------------------------------------------------------------------------
// Pipeline 2: risingwave-streaming-siem.txt
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
struct Auth {
    id: String,
    user: String,
    ip: String,
    ty: &'static str,
    t: DateTime<Utc>,
}

#[derive(Clone)]
struct Fw {
    id: String,
    src: String,
    dst: String,
    port: i64,
    action: &'static str,
    bytes: i64,
    t: DateTime<Utc>,
}

#[derive(Clone)]
struct Proc {
    id: String,
    host: String,
    ppid: i64,
    cpid: i64,
    name: &'static str,
    cmd: &'static str,
    t: DateTime<Utc>,
}

impl Auth {
    fn json(&self, n: usize) -> String {
        json!({"event_id": self.id, "user_id": self.user, "source_ip": self.ip, "event_type": self.ty,
               "event_time": json_time(self.t, n)})
        .to_string()
    }
}

impl Fw {
    fn json(&self, n: usize) -> String {
        json!({"log_id": self.id, "src_ip": self.src, "dst_ip": self.dst, "dst_port": self.port,
               "action": self.action, "bytes": self.bytes, "log_time": json_time(self.t, n)})
        .to_string()
    }
}

impl Proc {
    fn json(&self, n: usize) -> String {
        json!({"event_id": self.id, "host_id": self.host, "parent_pid": self.ppid, "child_pid": self.cpid,
               "process_name": self.name, "command_line": self.cmd, "event_time": json_time(self.t, n)})
        .to_string()
    }
}

fn auth(user: &str, ip: &str, ty: &'static str, t: DateTime<Utc>) -> Auth {
    Auth {
        id: String::new(),
        user: user.into(),
        ip: ip.into(),
        ty,
        t,
    }
}

fn fw(src: &str, action: &'static str, t: DateTime<Utc>) -> Fw {
    Fw {
        id: String::new(),
        src: src.into(),
        dst: "10.9.9.9".into(),
        port: 443,
        action,
        bytes: 1500,
        t,
    }
}

fn proc_ev(host: &str, ppid: i64, cpid: i64, name: &'static str, cmd: &'static str, t: DateTime<Utc>) -> Proc {
    Proc {
        id: String::new(),
        host: host.into(),
        ppid,
        cpid,
        name,
        cmd,
        t,
    }
}

const PIPELINE2_SQL: &str = r#"
CREATE SOURCE auth_events (
    event_id     VARCHAR,
    user_id      VARCHAR,
    source_ip    VARCHAR,
    event_type   VARCHAR,  -- login_success, login_failure, mfa_bypass
    event_time   TIMESTAMPTZ
) WITH (
    connector = 'file',
    path = '{AUTH}'
) FORMAT PLAIN ENCODE JSON;

CREATE SOURCE firewall_logs (
    log_id       VARCHAR,
    src_ip       VARCHAR,
    dst_ip       VARCHAR,
    dst_port     INT,
    action       VARCHAR,  -- allow, deny, drop
    bytes        BIGINT,
    log_time     TIMESTAMPTZ
) WITH (
    connector = 'file',
    path = '{FW}'
) FORMAT PLAIN ENCODE JSON;

CREATE SOURCE process_events (
    event_id     VARCHAR,
    host_id      VARCHAR,
    parent_pid   INT,
    child_pid    INT,
    process_name VARCHAR,
    command_line VARCHAR,
    event_time   TIMESTAMPTZ
) WITH (
    connector = 'file',
    path = '{PROC}'
) FORMAT PLAIN ENCODE JSON;

CREATE MATERIALIZED VIEW brute_force_detections AS
SELECT
    source_ip,
    window_start,
    window_end,
    COUNT(*) FILTER (WHERE event_type = 'login_failure') AS failures,
    COUNT(DISTINCT user_id)                               AS targeted_accounts
FROM TUMBLE(auth_events, event_time, INTERVAL '5 minutes')
GROUP BY source_ip, window_start, window_end
HAVING COUNT(*) FILTER (WHERE event_type = 'login_failure') > 20;

CREATE MATERIALIZED VIEW suspicious_process_chains AS
SELECT
    e.host_id,
    e.parent_pid,
    e.child_pid,
    e.process_name,
    e.command_line,
    e.event_time
FROM process_events e
WHERE
    e.process_name IN ('cmd.exe', 'powershell.exe', 'bash', 'sh')
    AND (
        e.command_line LIKE '%net user%'
        OR e.command_line LIKE '%whoami%'
        OR e.command_line LIKE '%net localgroup%'
        OR e.command_line LIKE '%mimikatz%'
        OR e.command_line LIKE '%procdump%'
    );

CREATE MATERIALIZED VIEW recently_blocked_ips AS
SELECT DISTINCT src_ip, MAX(log_time) AS last_blocked
FROM firewall_logs
WHERE action IN ('deny', 'drop')
GROUP BY src_ip
HAVING MAX(log_time) > NOW() - INTERVAL '1 hour';

CREATE MATERIALIZED VIEW auth_from_blocked_ip AS
SELECT
    a.user_id,
    a.source_ip,
    a.event_time   AS auth_time,
    b.last_blocked AS block_time,
    a.event_type
FROM auth_events a
JOIN recently_blocked_ips b ON a.source_ip = b.src_ip
WHERE a.event_type = 'login_success';

CREATE MATERIALIZED VIEW siem_alerts AS
SELECT
    'brute_force'                AS alert_type,
    source_ip                   AS entity,
    window_end                  AS detected_at,
    failures || ' failures in 5 min from ' || source_ip AS description
FROM brute_force_detections

UNION ALL

SELECT
    'suspicious_process'        AS alert_type,
    host_id                     AS entity,
    event_time                  AS detected_at,
    'Suspicious command: ' || command_line AS description
FROM suspicious_process_chains

UNION ALL

SELECT
    'auth_from_blocked_ip'      AS alert_type,
    user_id                     AS entity,
    auth_time                   AS detected_at,
    'Login from previously blocked IP ' || source_ip AS description
FROM auth_from_blocked_ip;
"#;

/// The events of pipeline 2 (before the incremental append).
fn pipeline2_events(base: DateTime<Utc>, now: DateTime<Utc>) -> (Vec<Auth>, Vec<Fw>, Vec<Proc>) {
    let mut a = Vec::new();
    // Spray IP: 25 failures in W0 over 8 accounts plus one success (9 distinct accounts);
    // 15 failures in W1 (below the threshold there).
    for i in 0..25 {
        a.push(auth(
            &format!("user{}", i % 8),
            "10.0.0.66",
            "login_failure",
            at(base, i * 10),
        ));
    }
    a.push(auth("svc_backup", "10.0.0.66", "login_success", at(base, 250)));
    for i in 0..15 {
        a.push(auth(
            &format!("user{}", i % 4),
            "10.0.0.66",
            "login_failure",
            at(base, 300 + i * 15),
        ));
    }
    // Exactly 20 failures in W0: must NOT fire, although COUNT(*) is 24 with the successes
    // and the mfa_bypass (the FILTER matters).
    for i in 0..20 {
        a.push(auth(
            &format!("acct{}", i % 3),
            "10.0.0.20",
            "login_failure",
            at(base, i * 12),
        ));
    }
    for i in 0..3 {
        a.push(auth("acct0", "10.0.0.20", "login_success", at(base, 250 + i * 10)));
    }
    a.push(auth("acct1", "10.0.0.20", "mfa_bypass", at(base, 290)));
    // 24 failures split 12/12 across the W0/W1 boundary (one exactly at base+5m): no alert.
    for i in 0..12 {
        a.push(auth("ops", "10.0.0.12", "login_failure", at(base, 240 + i * 5)));
        a.push(auth("ops", "10.0.0.12", "login_failure", at(base, 300 + i * 5)));
    }
    // Firewall-blocked IP that later (and also earlier) logs in successfully: both fire,
    // since the join is on the current last block time; the failure does not.
    a.push(auth("alice", "203.0.113.5", "login_failure", at(base, 470)));
    a.push(auth("alice", "203.0.113.5", "login_success", at(base, 480)));
    a.push(auth("carol", "203.0.113.5", "login_success", at(base, 60)));
    // Allowed IP logging in: no alert (until it gets blocked in the incremental step).
    a.push(auth("bob", "198.51.100.7", "login_success", at(base, 200)));
    // Blocked two hours ago: outside the 1-hour HAVING, no alert.
    a.push(auth("mallory", "192.0.2.9", "login_success", at(base, 30)));
    // Noise.
    for i in 0..10 {
        a.push(auth(
            &format!("emp{i}"),
            &format!("10.1.0.{i}"),
            "login_success",
            at(base, i * 50),
        ));
    }

    let mut f = vec![
        fw("203.0.113.5", "deny", at(base, 120)),
        fw("203.0.113.5", "drop", at(base, 420)),
        fw("203.0.113.5", "allow", at(base, 500)),
        fw("198.51.100.7", "allow", at(base, 100)),
        fw("192.0.2.9", "deny", now - Duration::hours(2)),
        fw("192.0.2.9", "drop", now - Duration::minutes(150)),
    ];
    for i in 0..8 {
        f.push(fw(&format!("10.2.0.{i}"), "allow", at(base, i * 40)));
    }

    let p = vec![
        proc_ev("ws-01", 100, 101, "cmd.exe", "net user admin P@ss /add", at(base, 10)),
        proc_ev("ws-01", 100, 102, "powershell.exe", "whoami /all", at(base, 20)),
        proc_ev("ws-02", 200, 201, "bash", "cat /etc/passwd", at(base, 30)),
        proc_ev("ws-02", 200, 202, "notepad.exe", "whoami", at(base, 40)),
        proc_ev("srv-01", 300, 301, "sh", "procdump -ma lsass.exe out.dmp", at(base, 50)),
        proc_ev("srv-01", 300, 302, "cmd.exe", "NET USER", at(base, 60)),
        proc_ev("srv-02", 400, 401, "powershell.exe", "Invoke-Mimikatz", at(base, 70)),
        proc_ev(
            "srv-02",
            400,
            402,
            "powershell.exe",
            "mimikatz.exe privilege::debug",
            at(base, 80),
        ),
        proc_ev(
            "srv-03",
            500,
            501,
            "bash",
            "net localgroup administrators",
            at(base, 90),
        ),
        proc_ev("srv-03", 500, 502, "bash", "ls -la", at(base, 5)),
        proc_ev("srv-03", 500, 503, "python", "net user", at(base, 6)),
    ];
    (a, f, p)
}

/// Numbers the events and writes them, shuffled (out of time order), with malformed lines
/// at fixed positions; returns the 1-based line numbers of the malformed lines.
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

fn number<T: Clone>(events: &mut [T], prefix: &str, set: impl Fn(&mut T, String)) {
    for (i, e) in events.iter_mut().enumerate() {
        set(e, format!("{prefix}-{i}"));
    }
}

struct Expected2 {
    brute: Vec<Row>,
    procs: Vec<Row>,
    blocked_auth: Vec<Row>,
    alerts: Vec<Row>,
}

/// Pipeline 2's views, computed in plain Rust.
fn expected2(a: &[Auth], f: &[Fw], p: &[Proc], now: DateTime<Utc>) -> Expected2 {
    // brute_force_detections: per (ip, 5-minute window) failures and distinct users.
    let mut groups: HashMap<(String, i64), (i64, HashSet<String>)> = HashMap::new();
    for e in a {
        let w = floor_to(e.t, FIVE_MIN).timestamp();
        let g = groups.entry((e.ip.clone(), w)).or_default();
        if e.ty == "login_failure" {
            g.0 += 1;
        }
        g.1.insert(e.user.clone());
    }
    let mut brute = Vec::new();
    let mut alerts = Vec::new();
    for ((ip, w), (failures, users)) in &groups {
        if *failures > 20 {
            let ws = DateTime::from_timestamp(*w, 0).unwrap();
            let we = ws + Duration::seconds(FIVE_MIN);
            brute.push(row![ip, ts(ws), ts(we), failures, users.len()]);
            alerts.push(row![
                "brute_force",
                ip,
                ts(we),
                format!("{failures} failures in 5 min from {ip}")
            ]);
        }
    }
    // suspicious_process_chains: a name filter and case-sensitive substrings.
    let mut procs = Vec::new();
    for e in p {
        let shell = ["cmd.exe", "powershell.exe", "bash", "sh"].contains(&e.name);
        let recon = ["net user", "whoami", "net localgroup", "mimikatz", "procdump"]
            .iter()
            .any(|s| e.cmd.contains(s));
        if shell && recon {
            procs.push(row![e.host, e.ppid, e.cpid, e.name, e.cmd, ts(e.t)]);
            alerts.push(row![
                "suspicious_process",
                e.host,
                ts(e.t),
                format!("Suspicious command: {}", e.cmd)
            ]);
        }
    }
    // recently_blocked_ips then the join with successful logins.
    let mut last_blocked: HashMap<&str, DateTime<Utc>> = HashMap::new();
    for e in f.iter().filter(|e| e.action == "deny" || e.action == "drop") {
        let m = last_blocked.entry(&e.src).or_insert(e.t);
        *m = (*m).max(e.t);
    }
    last_blocked.retain(|_, t| *t > now - Duration::hours(1));
    let mut blocked_auth = Vec::new();
    for e in a.iter().filter(|e| e.ty == "login_success") {
        if let Some(b) = last_blocked.get(e.ip.as_str()) {
            blocked_auth.push(row![e.user, e.ip, ts(e.t), ts(*b), e.ty]);
            alerts.push(row![
                "auth_from_blocked_ip",
                e.user,
                ts(e.t),
                format!("Login from previously blocked IP {}", e.ip)
            ]);
        }
    }
    Expected2 {
        brute,
        procs,
        blocked_auth,
        alerts,
    }
}

async fn check_pipeline2(client: &tokio_postgres::Client, exp: &Expected2) {
    wait_for(
        client,
        "SELECT source_ip, window_start, window_end, failures, targeted_accounts FROM brute_force_detections",
        &exp.brute,
    )
    .await;
    wait_for(
        client,
        "SELECT host_id, parent_pid, child_pid, process_name, command_line, event_time FROM suspicious_process_chains",
        &exp.procs,
    )
    .await;
    wait_for(
        client,
        "SELECT user_id, source_ip, auth_time, block_time, event_type FROM auth_from_blocked_ip",
        &exp.blocked_auth,
    )
    .await;
    wait_for(
        client,
        "SELECT alert_type, entity, detected_at, description FROM siem_alerts",
        &exp.alerts,
    )
    .await;
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
    number(&mut a, "a", |e, id| e.id = id);
    number(&mut f, "f", |e, id| e.id = id);
    number(&mut p, "p", |e, id| e.id = id);

    let auth_bad = write_jsonl(
        &auth_path,
        a.iter().enumerate().map(|(i, e)| e.json(i)).collect(),
        &[(7, r#"{"event_id": "a-bad", "user_id": "x", "#)],
        1,
    );
    let fw_bad = write_jsonl(
        &fw_path,
        f.iter().enumerate().map(|(i, e)| e.json(i)).collect(),
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
        p.iter().enumerate().map(|(i, e)| e.json(i)).collect(),
        &[
            (0, "not json at all"),
            (4, r#"{"event_id": "p-bad", "host_id": "h", "parent_pid": "twelve"}"#),
        ],
        3,
    );

    let handle = server().await;
    let client = connect(&handle).await;
    let sql = PIPELINE2_SQL
        .replace("{AUTH}", auth_path.to_str().unwrap())
        .replace("{FW}", fw_path.to_str().unwrap())
        .replace("{PROC}", proc_path.to_str().unwrap());
    exec_all(&client, &sql).await;

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
    let mut more_a: Vec<Auth> = (0..5)
        .map(|i| {
            auth(
                &format!("acct{}", 3 + i),
                "10.0.0.20",
                "login_failure",
                at(base, 100 + i),
            )
        })
        .collect();
    number(&mut more_a, "a2", |e, id| e.id = id);
    let mut more_f = vec![fw("198.51.100.7", "deny", at(base, 510))];
    number(&mut more_f, "f2", |e, id| e.id = id);
    let mut more_p = vec![proc_ev("ws-09", 900, 901, "cmd.exe", "cmd /c whoami", at(base, 520))];
    number(&mut more_p, "p2", |e, id| e.id = id);
    append_lines(
        &auth_path,
        &more_a.iter().enumerate().map(|(i, e)| e.json(i)).collect::<Vec<_>>(),
    );
    append_lines(
        &fw_path,
        &more_f.iter().enumerate().map(|(i, e)| e.json(i)).collect::<Vec<_>>(),
    );
    append_lines(
        &proc_path,
        &more_p.iter().enumerate().map(|(i, e)| e.json(i)).collect::<Vec<_>>(),
    );
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

// ---------------------------------------------------------------------------------------
// Pipeline 1: risingwave-siem-pipeline.txt (SQL, events and expectations in seed1/mod.rs)
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
    check_blocks_against_document();
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
