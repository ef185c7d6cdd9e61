//! The second seed pipeline, `fixtures/seeds/risingwave-streaming-siem.txt`: its SQL copied
//! verbatim from the document, the events fed to it, its views computed independently in
//! plain Rust (HashMaps and loops, never by asking the engine), and the checks of its views.
//! Shared by `seed_pipelines.rs` (file sources in place of the seed's Kafka ones, no sink)
//! and `kafka.rs` (the seed's own Kafka sources and sink, against a real broker).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::client::{floor_to, ts, wait_for, Row};
use crate::row;
use crate::seed::{at, json_time, replace_once, with_bootstrap, Connectors, SEED_BOOTSTRAP};

const FIVE_MIN: i64 = 300;

// ---------------------------------------------------------------------------------------
// The SQL
// ---------------------------------------------------------------------------------------

/// The seed document, copied into the test fixtures (see `fixtures/seeds/README.md`).
pub const SEED2_DOC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/seeds/risingwave-streaming-siem.txt"
);

/// The six SQL code blocks of the seed document (steps 1 to 6), character for character
/// and in order (`seed2_sql_is_the_seed_document_verbatim` checks each against the document
/// with [`crate::seed::check_blocks_against_document`]).
pub const SEED2_BLOCKS: [&str; 6] = [
    r#"CREATE SOURCE auth_events (
    event_id     VARCHAR,
    user_id      VARCHAR,
    source_ip    VARCHAR,
    event_type   VARCHAR,  -- login_success, login_failure, mfa_bypass
    event_time   TIMESTAMPTZ
) WITH (
    connector = 'kafka',
    topic = 'auth_events',
    properties.bootstrap.server = 'kafka:9092',
    scan.startup.mode = 'latest'
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
    connector = 'kafka',
    topic = 'firewall_logs',
    properties.bootstrap.server = 'kafka:9092',
    scan.startup.mode = 'latest'
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
    connector = 'kafka',
    topic = 'process_events',
    properties.bootstrap.server = 'kafka:9092',
    scan.startup.mode = 'latest'
) FORMAT PLAIN ENCODE JSON;"#,
    r#"CREATE MATERIALIZED VIEW brute_force_detections AS
SELECT
    source_ip,
    window_start,
    window_end,
    COUNT(*) FILTER (WHERE event_type = 'login_failure') AS failures,
    COUNT(DISTINCT user_id)                               AS targeted_accounts
FROM TUMBLE(auth_events, event_time, INTERVAL '5 minutes')
GROUP BY source_ip, window_start, window_end
HAVING COUNT(*) FILTER (WHERE event_type = 'login_failure') > 20;"#,
    r#"CREATE MATERIALIZED VIEW suspicious_process_chains AS
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
    );"#,
    r#"CREATE MATERIALIZED VIEW recently_blocked_ips AS
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
WHERE a.event_type = 'login_success';"#,
    r#"CREATE MATERIALIZED VIEW siem_alerts AS
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
FROM auth_from_blocked_ip;"#,
    r#"CREATE SINK siem_alerts_sink
FROM siem_alerts
WITH (
    connector = 'kafka',
    topic = 'siem_alerts',
    properties.bootstrap.server = 'kafka:9092'
) FORMAT PLAIN ENCODE JSON;"#,
];

/// The seed's sources and their Kafka topics.
pub const SOURCE_TOPICS: [(&str, &str); 3] = [
    ("auth_events", "auth_events"),
    ("firewall_logs", "firewall_logs"),
    ("process_events", "process_events"),
];

/// The seed's sink `siem_alerts_sink` writes `siem_alerts` to this topic.
pub const SINK_TOPIC: &str = "siem_alerts";

/// The options of a seed source reading `topic`, as the seed writes them.
fn kafka_source_options(topic: &str) -> String {
    format!(
        "    connector = 'kafka',\n    topic = '{topic}',\n    properties.bootstrap.server = '{SEED_BOOTSTRAP}',\n    \
         scan.startup.mode = 'latest'\n"
    )
}

/// Pipeline 2 as statements for `exec_all`: the seed's SQL, unchanged but for the
/// connectors. With Kafka, its three sources, five views and sink; with files, the sources
/// read their files and there is no sink.
pub fn pipeline2_sql(conn: &Connectors) -> String {
    let sql = match conn {
        Connectors::Kafka { bootstrap } => with_bootstrap(&format!("{}\n", SEED2_BLOCKS.join("\n\n")), 4, bootstrap),
        Connectors::File { auth, fw, ep } => {
            let mut sources = SEED2_BLOCKS[0].to_string();
            for ((_, topic), path) in SOURCE_TOPICS.iter().zip([auth, fw, ep]) {
                sources = replace_once(
                    &sources,
                    &kafka_source_options(topic),
                    &format!("    connector = 'file',\n    path = '{}'\n", path.display()),
                );
            }
            format!("{sources}\n\n{}\n", SEED2_BLOCKS[1..5].join("\n\n"))
        }
    };
    assert!(!sql.contains(&format!("'{SEED_BOOTSTRAP}'")));
    sql
}

// ---------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
pub struct Auth {
    pub user: String,
    pub ip: String,
    pub ty: &'static str,
    pub t: DateTime<Utc>,
}

#[derive(Clone)]
pub struct Fw {
    pub src: String,
    pub dst: String,
    pub port: i64,
    pub action: &'static str,
    pub bytes: i64,
    pub t: DateTime<Utc>,
}

#[derive(Clone)]
pub struct Proc {
    pub host: String,
    pub ppid: i64,
    pub cpid: i64,
    pub name: &'static str,
    pub cmd: &'static str,
    pub t: DateTime<Utc>,
}

/// An event of one of the seed's sources, as a JSON message.
pub trait Event {
    /// The message with `id` in the source's id column; `n` picks the timestamp style (see
    /// [`json_time`]).
    fn json(&self, id: &str, n: usize) -> String;
}

impl Event for Auth {
    fn json(&self, id: &str, n: usize) -> String {
        json!({"event_id": id, "user_id": self.user, "source_ip": self.ip, "event_type": self.ty,
               "event_time": json_time(self.t, n)})
        .to_string()
    }
}

impl Event for Fw {
    fn json(&self, id: &str, n: usize) -> String {
        json!({"log_id": id, "src_ip": self.src, "dst_ip": self.dst, "dst_port": self.port,
               "action": self.action, "bytes": self.bytes, "log_time": json_time(self.t, n)})
        .to_string()
    }
}

impl Event for Proc {
    fn json(&self, id: &str, n: usize) -> String {
        json!({"event_id": id, "host_id": self.host, "parent_pid": self.ppid, "child_pid": self.cpid,
               "process_name": self.name, "command_line": self.cmd, "event_time": json_time(self.t, n)})
        .to_string()
    }
}

/// The events' JSON messages: the n-th has the id `{prefix}-{n}` and timestamp style `n`.
pub fn json_lines<T: Event>(events: &[T], prefix: &str) -> Vec<String> {
    events
        .iter()
        .enumerate()
        .map(|(n, e)| e.json(&format!("{prefix}-{n}"), n))
        .collect()
}

/// An authentication event.
pub fn auth(user: &str, ip: &str, ty: &'static str, t: DateTime<Utc>) -> Auth {
    Auth {
        user: user.into(),
        ip: ip.into(),
        ty,
        t,
    }
}

/// A firewall log line from `src` to 10.9.9.9:443.
pub fn fw(src: &str, action: &'static str, t: DateTime<Utc>) -> Fw {
    Fw {
        src: src.into(),
        dst: "10.9.9.9".into(),
        port: 443,
        action,
        bytes: 1500,
        t,
    }
}

/// A process execution.
pub fn proc_ev(host: &str, ppid: i64, cpid: i64, name: &'static str, cmd: &'static str, t: DateTime<Utc>) -> Proc {
    Proc {
        host: host.into(),
        ppid,
        cpid,
        name,
        cmd,
        t,
    }
}

/// The events of pipeline 2: every kind of detection, near misses and noise. `base` is [`crate::seed::base_time`], `now` the time the expected
/// results are computed for (the 1-hour window of `recently_blocked_ips`).
pub fn pipeline2_events(base: DateTime<Utc>, now: DateTime<Utc>) -> (Vec<Auth>, Vec<Fw>, Vec<Proc>) {
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
    // Allowed IP logging in: no alert (until `seed_pipelines.rs` blocks it
    // in its incremental step).
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

    // Shells running recon commands fire; another process name, a harmless command, a
    // different case (LIKE is case-sensitive) do not.
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

// ---------------------------------------------------------------------------------------
// Expected results
// ---------------------------------------------------------------------------------------

/// The rows of pipeline 2's views, in the column order of [`check_pipeline2`]'s queries.
pub struct Expected2 {
    pub brute: Vec<Row>,
    pub procs: Vec<Row>,
    pub blocked_auth: Vec<Row>,
    /// `siem_alerts` (alert_type, entity, detected_at, description), sorted.
    pub alerts: Vec<Row>,
}

/// Pipeline 2's views computed in plain Rust from the events, as they stand at `now`.
pub fn expected2(a: &[Auth], f: &[Fw], p: &[Proc], now: DateTime<Utc>) -> Expected2 {
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
    alerts.sort();
    Expected2 {
        brute,
        procs,
        blocked_auth,
        alerts,
    }
}

/// Reads the alerts of `siem_alerts`, in the column order of [`Expected2::alerts`].
pub const ALERTS_QUERY: &str = "SELECT alert_type, entity, detected_at, description FROM siem_alerts";

/// Waits until each of pipeline 2's views but `recently_blocked_ips` holds `exp`'s rows.
pub async fn check_pipeline2(client: &tokio_postgres::Client, exp: &Expected2) {
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
    wait_for(client, ALERTS_QUERY, &exp.alerts).await;
}

/// A `siem_alerts_sink` message canonicalized like a row of [`ALERTS_QUERY`].
pub fn alert_from_json(payload: &str) -> Row {
    let v: serde_json::Value = serde_json::from_str(payload).unwrap_or_else(|e| panic!("sink message {payload}: {e}"));
    let s = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("{k} in {payload}")).to_string();
    let t = DateTime::parse_from_rfc3339(&s("detected_at"))
        .unwrap_or_else(|e| panic!("detected_at in {payload}: {e}"))
        .to_utc();
    vec![s("alert_type"), s("entity"), ts(t), s("description")]
}
