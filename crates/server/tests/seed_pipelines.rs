//! End-to-end tests of the two seed SIEM pipelines (../shared/seeds/risingwave-streaming-siem.txt
//! and risingwave-siem-pipeline.txt) against a real server over pgwire, with file sources.
//!
//! Every expected result is computed independently in plain Rust from the same generated
//! events (HashMaps and loops), never by asking the engine.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use common::{append_lines, connect, exec_all, floor_to, psql, rows, server, shuffle, ts, wait_for, Row};
use serde_json::json;

const FIVE_MIN: i64 = 300;

/// Event times: `base` is the 5-minute boundary 10 minutes before the current window, so
/// windows W0 = [base, base+5m) and W1 = [base+5m, base+10m) lie entirely in the past hour.
fn base_time() -> DateTime<Utc> {
    floor_to(Utc::now(), FIVE_MIN) - Duration::minutes(10)
}

fn at(base: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
    base + Duration::seconds(secs)
}

/// Alternates RFC 3339 and PostgreSQL-style timestamps so both decodings are exercised.
fn json_time(t: DateTime<Utc>, n: usize) -> String {
    if n.is_multiple_of(2) {
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    } else {
        t.format("%Y-%m-%d %H:%M:%S+00:00").to_string()
    }
}

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
    let reasons = rows(&client, "SELECT source, reason FROM rampart_source_errors")
        .await
        .unwrap();
    assert!(
        reasons
            .iter()
            .any(|r| r[0] == "firewall_logs" && r[1].contains("dst_port")),
        "the bad INT names its column: {reasons:?}"
    );

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
// Pipeline 1: risingwave-siem-pipeline.txt
// ---------------------------------------------------------------------------------------

/// The seed's SQL with the Kafka sources as file sources, `window_end AS event_time` in the
/// brute-force branch of alert_summary and `NULL AS target_resource` in the sink (the seed
/// selects columns alert_brute_force does not have; RisingWave rejects them too).
const PIPELINE1_SQL: &str = r#"
CREATE SOURCE firewall_logs (
    event_time        TIMESTAMPTZ,
    src_ip            VARCHAR,
    dst_ip            VARCHAR,
    src_port          INT,
    dst_port          INT,
    protocol          VARCHAR,
    bytes_transferred BIGINT,
    action            VARCHAR,
    rule_id           VARCHAR
)
WITH (connector = 'file', path = '{FW}')
FORMAT PLAIN ENCODE JSON;

CREATE SOURCE auth_events (
    event_time   TIMESTAMPTZ,
    user_id      VARCHAR,
    source_ip    VARCHAR,
    country_code VARCHAR,
    result       VARCHAR,   -- 'success' | 'failure' | 'mfa_challenge'
    app_name     VARCHAR,
    session_id   VARCHAR
)
WITH (connector = 'file', path = '{AUTH}')
FORMAT PLAIN ENCODE JSON;

CREATE SOURCE endpoint_events (
    event_time   TIMESTAMPTZ,
    host_id      VARCHAR,
    process_name VARCHAR,
    parent_pid   INT,
    child_pid    INT,
    command_line VARCHAR,
    user_name    VARCHAR,
    sha256_hash  VARCHAR
)
WITH (connector = 'file', path = '{EP}')
FORMAT PLAIN ENCODE JSON;

CREATE TABLE asset_taxonomy (host_id VARCHAR, asset_tier VARCHAR, owner VARCHAR);
INSERT INTO asset_taxonomy VALUES ('dc-01', 'tier_1', 'it'), ('db-01', 'tier_1', 'dba'), ('web-01', 'tier_2', 'web');
CREATE TABLE geo_ip_reference (ip_range_start BIGINT, ip_range_end BIGINT, region VARCHAR, country_code VARCHAR);
COPY geo_ip_reference FROM '{GEO_CSV}' WITH (FORMAT csv, HEADER true);
INSERT INTO geo_ip_reference VALUES (3221225984, 3221226239, 'north_america', 'US');

CREATE MATERIALIZED VIEW normalized_events AS
    -- Network events
    SELECT
        event_time,
        'network'             AS event_category,
        'firewall'            AS event_source,
        rule_id               AS event_id,
        src_ip                AS actor_ip,
        NULL                  AS actor_user,
        dst_ip                AS target_resource,
        CAST(dst_port AS VARCHAR) AS target_detail,
        action                AS outcome,
        bytes_transferred     AS magnitude,
        NULL                  AS raw_command
    FROM firewall_logs

    UNION ALL

    -- Authentication events
    SELECT
        event_time,
        'authentication'      AS event_category,
        'identity_provider'   AS event_source,
        session_id            AS event_id,
        source_ip             AS actor_ip,
        user_id               AS actor_user,
        app_name              AS target_resource,
        country_code          AS target_detail,
        result                AS outcome,
        NULL                  AS magnitude,
        NULL                  AS raw_command
    FROM auth_events

    UNION ALL

    -- Endpoint process events
    SELECT
        event_time,
        'process_execution'   AS event_category,
        'edr_agent'           AS event_source,
        sha256_hash           AS event_id,
        NULL                  AS actor_ip,
        user_name             AS actor_user,
        host_id               AS target_resource,
        process_name          AS target_detail,
        'executed'            AS outcome,
        NULL                  AS magnitude,
        command_line          AS raw_command
    FROM endpoint_events;

CREATE MATERIALIZED VIEW enriched_events AS
SELECT
    ne.*,
    COALESCE(at.asset_tier, 'unknown')   AS asset_tier,
    COALESCE(gi.region, 'unknown')       AS geo_region
FROM normalized_events ne
LEFT JOIN asset_taxonomy  at ON ne.target_resource = at.host_id
LEFT JOIN geo_ip_reference gi ON inet_aton(ne.actor_ip)
                                  BETWEEN gi.ip_range_start AND gi.ip_range_end;

CREATE MATERIALIZED VIEW alert_brute_force AS
SELECT
    window_start,
    window_end,
    actor_ip,
    actor_user,
    COUNT(*)            AS failure_count,
    'brute_force'       AS rule_name,
    'high'              AS severity
FROM TUMBLE(
    enriched_events,
    event_time,
    INTERVAL '5 minutes'
)
WHERE event_category = 'authentication'
  AND outcome        = 'failure'
GROUP BY window_start, window_end, actor_ip, actor_user
HAVING COUNT(*) > 10;

CREATE MATERIALIZED VIEW alert_impossible_travel AS
SELECT
    a.actor_user,
    a.actor_ip          AS ip_first,
    b.actor_ip          AS ip_second,
    a.geo_region        AS region_first,
    b.geo_region        AS region_second,
    a.event_time        AS time_first,
    b.event_time        AS time_second,
    'impossible_travel' AS rule_name,
    'critical'          AS severity
FROM enriched_events a
JOIN enriched_events b
  ON  a.actor_user   = b.actor_user
  AND a.event_category = 'authentication'
  AND b.event_category = 'authentication'
  AND a.outcome      = 'success'
  AND b.outcome      = 'success'
  AND a.geo_region  <> b.geo_region
  AND b.event_time   > a.event_time
  AND b.event_time   < a.event_time + INTERVAL '30 minutes';

CREATE MATERIALIZED VIEW alert_suspicious_process AS
SELECT
    event_time,
    target_resource     AS host_id,
    actor_user,
    raw_command,
    asset_tier,
    'encoded_powershell' AS rule_name,
    'high'              AS severity
FROM enriched_events
WHERE event_category = 'process_execution'
  AND asset_tier     = 'tier_1'
  AND target_detail  ILIKE '%powershell%'
  AND raw_command    ILIKE '%-EncodedCommand%';

CREATE MATERIALIZED VIEW alert_summary AS
SELECT window_start, window_end, rule_name, severity, COUNT(*) AS alert_count
FROM TUMBLE(
    (
      SELECT window_end AS event_time, rule_name, severity FROM alert_brute_force
      UNION ALL
      SELECT time_second AS event_time, rule_name, severity FROM alert_impossible_travel
      UNION ALL
      SELECT event_time, rule_name, severity FROM alert_suspicious_process
    ),
    event_time,
    INTERVAL '1 minute'
)
GROUP BY window_start, window_end, rule_name, severity;
"#;

const SINK_SQL: &str = r#"
CREATE SINK soar_alerts_sink
FROM (
    SELECT
        NOW()                                  AS alert_fired_at,
        rule_name,
        severity,
        actor_ip,
        actor_user,
        NULL                                   AS target_resource,
        failure_count                          AS signal_value,
        window_start,
        window_end
    FROM alert_brute_force
    WHERE severity IN ('high', 'critical')

    UNION ALL

    SELECT
        NOW()                                  AS alert_fired_at,
        rule_name,
        severity,
        ip_first                               AS actor_ip,
        actor_user,
        NULL                                   AS target_resource,
        NULL                                   AS signal_value,
        time_first                             AS window_start,
        time_second                            AS window_end
    FROM alert_impossible_travel
    WHERE severity = 'critical'
)
WITH (
    connector = 'file',
    path = '{ALERTS}'
)
FORMAT PLAIN ENCODE JSON;
"#;

/// Geo ranges (the first three loaded by COPY, the last by INSERT), as inet_aton integers.
const GEO: [(&str, &str, &str, &str); 4] = [
    ("10.0.0.0", "10.255.255.255", "internal", "ZZ"),
    ("203.0.113.0", "203.0.113.255", "apac", "AU"),
    ("198.51.100.0", "198.51.100.255", "europe", "DE"),
    ("192.0.2.0", "192.0.2.255", "north_america", "US"),
];

fn ip_num(ip: &str) -> i64 {
    ip.split('.').fold(0i64, |acc, o| acc * 256 + o.parse::<i64>().unwrap())
}

fn region(ip: &str) -> &'static str {
    let n = ip_num(ip);
    GEO.iter()
        .find(|(s, e, _, _)| ip_num(s) <= n && n <= ip_num(e))
        .map(|g| g.2)
        .unwrap_or("unknown")
}

#[derive(Clone)]
struct Login {
    user: String,
    ip: String,
    result: &'static str,
    t: DateTime<Utc>,
}

#[derive(Clone)]
struct Exec {
    host: &'static str,
    name: &'static str,
    cmd: &'static str,
    user: &'static str,
    t: DateTime<Utc>,
}

fn login(user: &str, ip: &str, result: &'static str, t: DateTime<Utc>) -> Login {
    Login {
        user: user.into(),
        ip: ip.into(),
        result,
        t,
    }
}

fn login_json(l: &Login, n: usize) -> String {
    json!({"event_time": json_time(l.t, n), "user_id": l.user, "source_ip": l.ip, "country_code": "XX",
           "result": l.result, "app_name": "vpn", "session_id": format!("s-{n}")})
    .to_string()
}

fn exec_json(e: &Exec, n: usize) -> String {
    json!({"event_time": json_time(e.t, n), "host_id": e.host, "process_name": e.name, "parent_pid": 1,
           "child_pid": 1000 + n, "command_line": e.cmd, "user_name": e.user, "sha256_hash": format!("h{n}")})
    .to_string()
}

fn pipeline1_events(base: DateTime<Utc>) -> (Vec<Login>, Vec<Exec>) {
    let mut l = Vec::new();
    // 11 failures (admin) in W0: fires. 10 failures (root) in W0: does not.
    for i in 0..11 {
        l.push(login("admin", "198.51.100.20", "failure", at(base, i * 20)));
    }
    for i in 0..10 {
        l.push(login("root", "198.51.100.21", "failure", at(base, i * 20)));
    }
    // 12 failures from one IP split over two users: grouped per user, no alert.
    for i in 0..12 {
        l.push(login(
            if i % 2 == 0 { "a" } else { "b" },
            "203.0.113.9",
            "failure",
            at(base, i * 10),
        ));
    }
    // 15 failures in W1 from an internal IP: fires; plus an mfa_challenge that is no failure.
    for i in 0..15 {
        l.push(login("svc", "10.1.2.3", "failure", at(base, 300 + i * 15)));
    }
    l.push(login("svc", "10.1.2.3", "mfa_challenge", at(base, 310)));
    // Impossible travel: alice internal -> apac -> internal (two alerts, the internal pair
    // is the same region); bob 35 minutes apart; carol exactly 30 minutes apart (strict <);
    // dave from an unmapped IP then internal; erin's first login failed; frank at the same
    // instant from two regions (strict >).
    l.push(login("alice", "10.1.1.1", "success", at(base, 60)));
    l.push(login("alice", "203.0.113.50", "success", at(base, 360)));
    l.push(login("alice", "10.1.1.2", "success", at(base, 420)));
    l.push(login("bob", "198.51.100.3", "success", at(base, -2400)));
    l.push(login("bob", "192.0.2.4", "success", at(base, -300)));
    l.push(login("carol", "198.51.100.4", "success", at(base, -1800)));
    l.push(login("carol", "203.0.113.4", "success", at(base, 0)));
    l.push(login("dave", "172.16.0.1", "success", at(base, 100)));
    l.push(login("dave", "10.3.3.3", "success", at(base, 700)));
    l.push(login("erin", "203.0.113.7", "failure", at(base, 100)));
    l.push(login("erin", "198.51.100.8", "success", at(base, 200)));
    l.push(login("frank", "203.0.113.8", "success", at(base, 150)));
    l.push(login("frank", "192.0.2.8", "success", at(base, 150)));

    let e = vec![
        Exec {
            host: "dc-01",
            name: "PowerShell.exe",
            cmd: "powershell -EncodedCommand SQBFAFgA",
            user: "adm",
            t: at(base, 30),
        },
        Exec {
            host: "dc-01",
            name: "powershell.exe",
            cmd: "powershell -encodedcommand abc",
            user: "x",
            t: at(base, 95),
        },
        Exec {
            host: "web-01",
            name: "powershell.exe",
            cmd: "-EncodedCommand zz",
            user: "w",
            t: at(base, 40),
        },
        Exec {
            host: "db-01",
            name: "pwsh.exe",
            cmd: "pwsh -EncodedCommand zz",
            user: "d",
            t: at(base, 50),
        },
        Exec {
            host: "db-01",
            name: "powershell.exe",
            cmd: "Get-Process",
            user: "d",
            t: at(base, 55),
        },
        Exec {
            host: "db-01",
            name: "powershell.exe",
            cmd: "powershell.exe -EncodedCommand QQ==",
            user: "d",
            t: at(base, 65),
        },
        Exec {
            host: "ws-99",
            name: "powershell.exe",
            cmd: "-EncodedCommand zz",
            user: "u",
            t: at(base, 70),
        },
    ];
    (l, e)
}

struct Expected1 {
    brute: Vec<Row>,
    travel: Vec<Row>,
    susp: Vec<Row>,
    summary: Vec<Row>,
    sink: Vec<Row>,
}

/// Pipeline 1's alerts computed in plain Rust; `tiers` is the asset table's content.
fn expected1(l: &[Login], e: &[Exec], tiers: &HashMap<&str, &str>) -> Expected1 {
    let mut fails: BTreeMap<(i64, String, String), i64> = BTreeMap::new();
    for x in l.iter().filter(|x| x.result == "failure") {
        *fails
            .entry((floor_to(x.t, FIVE_MIN).timestamp(), x.ip.clone(), x.user.clone()))
            .or_default() += 1;
    }
    let mut summary_in: Vec<(DateTime<Utc>, &str, &str)> = Vec::new();
    let (mut brute, mut travel, mut susp, mut sink) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((w, ip, user), n) in fails.into_iter().filter(|(_, n)| *n > 10) {
        let ws = DateTime::from_timestamp(w, 0).unwrap();
        let we = ws + Duration::seconds(FIVE_MIN);
        brute.push(row![ts(ws), ts(we), ip, user, n, "brute_force", "high"]);
        sink.push(row!["brute_force", "high", ip, user, "NULL", n, ts(ws), ts(we)]);
        summary_in.push((we, "brute_force", "high"));
    }
    let ok: Vec<&Login> = l.iter().filter(|x| x.result == "success").collect();
    for a in &ok {
        for b in &ok {
            let (ra, rb) = (region(&a.ip), region(&b.ip));
            if a.user == b.user && ra != rb && b.t > a.t && b.t < a.t + Duration::minutes(30) {
                travel.push(row![
                    a.user,
                    a.ip,
                    b.ip,
                    ra,
                    rb,
                    ts(a.t),
                    ts(b.t),
                    "impossible_travel",
                    "critical"
                ]);
                sink.push(row![
                    "impossible_travel",
                    "critical",
                    a.ip,
                    a.user,
                    "NULL",
                    "NULL",
                    ts(a.t),
                    ts(b.t)
                ]);
                summary_in.push((b.t, "impossible_travel", "critical"));
            }
        }
    }
    for x in e {
        let tier = tiers.get(x.host).copied().unwrap_or("unknown");
        if tier == "tier_1"
            && x.name.to_lowercase().contains("powershell")
            && x.cmd.to_lowercase().contains("-encodedcommand")
        {
            susp.push(row![ts(x.t), x.host, x.user, x.cmd, tier, "encoded_powershell", "high"]);
            summary_in.push((x.t, "encoded_powershell", "high"));
        }
    }
    let mut counts: BTreeMap<(i64, &str, &str), i64> = BTreeMap::new();
    for (t, rule, sev) in summary_in {
        *counts.entry((floor_to(t, 60).timestamp(), rule, sev)).or_default() += 1;
    }
    let summary = counts
        .into_iter()
        .map(|((w, rule, sev), n)| {
            let ws = DateTime::from_timestamp(w, 0).unwrap();
            row![ts(ws), ts(ws + Duration::seconds(60)), rule, sev, n]
        })
        .collect();
    Expected1 {
        brute,
        travel,
        susp,
        summary,
        sink,
    }
}

async fn check_pipeline1(client: &tokio_postgres::Client, exp: &Expected1) {
    wait_for(
        client,
        "SELECT window_start, window_end, actor_ip, actor_user, failure_count, rule_name, severity FROM alert_brute_force",
        &exp.brute,
    )
    .await;
    wait_for(
        client,
        "SELECT actor_user, ip_first, ip_second, region_first, region_second, time_first, time_second, rule_name, \
         severity FROM alert_impossible_travel",
        &exp.travel,
    )
    .await;
    wait_for(
        client,
        "SELECT event_time, host_id, actor_user, raw_command, asset_tier, rule_name, severity FROM alert_suspicious_process",
        &exp.susp,
    )
    .await;
    wait_for(
        client,
        "SELECT window_start, window_end, rule_name, severity, alert_count FROM alert_summary",
        &exp.summary,
    )
    .await;
}

/// The sink file's JSON lines, canonicalized like query rows (timestamps parsed), with the
/// `alert_fired_at` of each line.
fn sink_rows(path: &Path) -> (Vec<Row>, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut rows = Vec::new();
    let mut fired = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("sink line {line}: {e}"));
        let cols = [
            "rule_name",
            "severity",
            "actor_ip",
            "actor_user",
            "target_resource",
            "signal_value",
            "window_start",
            "window_end",
        ];
        rows.push(
            cols.iter()
                .map(|c| match &v[*c] {
                    serde_json::Value::Null => "NULL".to_string(),
                    serde_json::Value::String(s) => match DateTime::parse_from_rfc3339(s) {
                        Ok(t) => ts(t.with_timezone(&Utc)),
                        Err(_) => s.clone(),
                    },
                    other => other.to_string(),
                })
                .collect(),
        );
        fired.push(v["alert_fired_at"].as_str().unwrap_or("").to_string());
    }
    rows.sort();
    (rows, fired)
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
    // Network noise: its target_resource (dst_ip) matches no asset, its actor no alert.
    let fw_lines: Vec<String> = (0..5)
        .map(|i| {
            json!({"event_time": json_time(at(base, i * 30), 0), "src_ip": "10.0.0.5", "dst_ip": "dc-01",
                   "src_port": 40000 + i, "dst_port": 445, "protocol": "tcp", "bytes_transferred": 100 * i,
                   "action": "deny", "rule_id": format!("r{i}")})
            .to_string()
        })
        .collect();
    append_lines(&auth_path, &auth_lines);
    append_lines(&ep_path, &ep_lines);
    append_lines(&fw_path, &fw_lines);
    let mut csv = String::from("ip_range_start,ip_range_end,region,country_code\n");
    for (s, e, r, c) in &GEO[..3] {
        csv.push_str(&format!("{},{},{r},{c}\n", ip_num(s), ip_num(e)));
    }
    std::fs::write(&geo_path, csv).unwrap();
    assert_eq!(
        ip_num(GEO[3].0),
        3221225984,
        "the INSERTed range in the SQL is 192.0.2.0/24"
    );

    let handle = server().await;
    let client = connect(&handle).await;
    let sql = PIPELINE1_SQL
        .replace("{AUTH}", auth_path.to_str().unwrap())
        .replace("{FW}", fw_path.to_str().unwrap())
        .replace("{EP}", ep_path.to_str().unwrap())
        .replace("{GEO_CSV}", geo_path.to_str().unwrap());
    exec_all(&client, &sql).await;
    wait_for(
        &client,
        "SELECT ip_range_start, ip_range_end, region, country_code FROM geo_ip_reference",
        &GEO.iter()
            .map(|(s, e, r, c)| row![ip_num(s), ip_num(e), r, c])
            .collect::<Vec<_>>(),
    )
    .await;

    let mut tiers: HashMap<&str, &str> = [("dc-01", "tier_1"), ("db-01", "tier_1"), ("web-01", "tier_2")].into();
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
    exec_all(&client, &SINK_SQL.replace("{ALERTS}", alerts_path.to_str().unwrap())).await;
    let fired = wait_for_sink(&alerts_path, &exp.sink).await;
    for f in fired {
        let t = DateTime::parse_from_rfc3339(&f).unwrap_or_else(|e| panic!("alert_fired_at {f:?}: {e}"));
        let t = t.with_timezone(&Utc);
        assert!(
            t >= started - Duration::seconds(5) && t <= Utc::now() + Duration::seconds(5),
            "alert_fired_at {t}"
        );
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
