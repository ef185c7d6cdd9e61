//! Helpers shared by the end-to-end tests: a real server, a tokio-postgres client, typed
//! result rows rendered to canonical strings, and polling until a view converges.

use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, Utc};
use rampart_server::{start_server, ServerConfig, ServerHandle};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls};

/// A canonical row: every value rendered as text, `NULL` for null.
pub type Row = Vec<String>;

/// Starts a server on a free port with two workers and no data dir.
pub async fn server() -> ServerHandle {
    start_server(ServerConfig::ephemeral("127.0.0.1:0".parse().unwrap(), 2))
        .await
        .expect("server starts")
}

/// Connects a client to the server (the connection runs on a spawned task).
pub async fn connect(handle: &ServerHandle) -> Client {
    let conn_str = format!("host=127.0.0.1 port={} user=root dbname=dev", handle.addr.port());
    let (client, conn) = tokio_postgres::connect(&conn_str, NoTls).await.expect("connect");
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            eprintln!("connection error: {e}");
        }
    });
    client
}

/// Runs statements one by one, panicking with the statement on failure.
pub async fn exec_all(client: &Client, sql: &str) {
    for stmt in sql
        .split(";\n")
        .map(str::trim)
        .filter(|s| !s.is_empty() && !only_comments(s))
    {
        if let Err(e) = client.simple_query(stmt).await {
            panic!("statement failed: {e:?}\n{stmt}");
        }
    }
}

fn only_comments(s: &str) -> bool {
    s.lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with("--"))
}

/// Timestamps are rendered like this, in UTC.
pub fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.f").to_string()
}

/// Renders one row canonically: text for strings, `to_string` for numbers and booleans,
/// `ts` for timestamps, `NULL` for NULL.
pub fn render_row(r: &tokio_postgres::Row, sql: &str) -> Row {
    (0..r.len())
        .map(|i| {
            let ty = r.columns()[i].type_().clone();
            match ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => r.get::<_, Option<String>>(i),
                Type::INT2 => r.get::<_, Option<i16>>(i).map(|v| v.to_string()),
                Type::INT4 => r.get::<_, Option<i32>>(i).map(|v| v.to_string()),
                Type::INT8 => r.get::<_, Option<i64>>(i).map(|v| v.to_string()),
                Type::BOOL => r.get::<_, Option<bool>>(i).map(|v| v.to_string()),
                Type::FLOAT8 => r.get::<_, Option<f64>>(i).map(|v| v.to_string()),
                Type::TIMESTAMPTZ => r.get::<_, Option<DateTime<Utc>>>(i).map(ts),
                Type::TIMESTAMP => r.get::<_, Option<NaiveDateTime>>(i).map(|t| ts(t.and_utc())),
                other => panic!("unexpected column type {other} in {sql}"),
            }
            .unwrap_or_else(|| "NULL".to_string())
        })
        .collect()
}

/// Runs a query and renders each row canonically; rows come back sorted.
pub async fn rows(client: &Client, sql: &str) -> Result<Vec<Row>, tokio_postgres::Error> {
    let result = client.query(sql, &[]).await?;
    let mut out: Vec<Row> = result.iter().map(|r| render_row(r, sql)).collect();
    out.sort();
    Ok(out)
}

/// Polls `sql` every 100 ms for up to 20 s until it returns `expected` (sorted), then
/// asserts equality (so a timeout shows the last difference).
/// Asserts that some error recorded for `source` in `rampart_source_errors` has a reason
/// naming `column` (a value of the wrong type must say which column).
pub async fn assert_error_names_column(client: &Client, source: &str, column: &str) {
    let reasons = rows(client, "SELECT source, reason FROM rampart_source_errors")
        .await
        .unwrap();
    assert!(
        reasons.iter().any(|r| r[0] == source && r[1].contains(column)),
        "the bad value of {source}.{column} names its column: {reasons:?}"
    );
}

pub async fn wait_for(client: &Client, sql: &str, expected: &[Row]) {
    let mut expected = expected.to_vec();
    expected.sort();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = rows(client, sql).await;
        if let Ok(got) = &got {
            if *got == expected {
                return;
            }
        }
        if Instant::now() > deadline {
            let got = got.unwrap_or_else(|e| panic!("{sql} failed: {e:?}"));
            assert_eq!(
                got.len(),
                expected.len(),
                "row count of `{sql}`\n got: {got:#?}\nwant: {expected:#?}"
            );
            for (g, w) in got.iter().zip(&expected) {
                assert_eq!(g, w, "first differing row of `{sql}`");
            }
            unreachable!();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Builds a canonical row from displayable values.
#[macro_export]
macro_rules! row {
    ($($v:expr),* $(,)?) => { vec![$($v.to_string()),*] };
}

/// A small deterministic shuffle (LCG Fisher-Yates) so events arrive out of time order.
pub fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let j = ((seed >> 33) as usize) % (i + 1);
        items.swap(i, j);
    }
}

/// Start of the 5-minute window containing `t` (computed here, not by the engine).
pub fn floor_to(t: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
    let s = t.timestamp();
    DateTime::from_timestamp(s - s.rem_euclid(secs), 0).unwrap()
}

/// Appends lines to a file (creating it).
pub fn append_lines(path: &std::path::Path, lines: &[String]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    for l in lines {
        writeln!(f, "{l}").expect("append");
    }
    f.sync_all().ok();
}

/// Runs the real psql client (`-At -c SQL`) against the server on `port`.
pub fn psql(port: u16, sql: &str) -> std::process::Output {
    psql_command(port).args(["-c", sql]).output().expect("run psql")
}

/// Runs the real psql client against the server on `port` with `script` on its standard
/// input, as a user pipes a file into it (statement by statement, errors on stderr).
pub fn psql_script(port: u16, script: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = psql_command(port)
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run psql");
    child
        .stdin
        .take()
        .expect("psql's stdin")
        .write_all(script.as_bytes())
        .expect("write the script");
    child.wait_with_output().expect("psql ends")
}

/// `psql -h 127.0.0.1 -p PORT -U root -d dev -w -At`.
fn psql_command(port: u16) -> std::process::Command {
    let mut command = std::process::Command::new("psql");
    command.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        "root",
        "-d",
        "dev",
        "-w",
        "-At",
    ]);
    command
}

/// The next NOTICE from a [`connect_with_notices`] channel (waits up to 10 s).
pub async fn next_notice(notices: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(10), notices.recv())
        .await
        .expect("a notice within 10 s")
        .expect("the connection is open")
}

/// Connects a client whose NOTICE messages are forwarded to the returned channel.
pub async fn connect_with_notices(handle: &ServerHandle) -> (Client, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let conn_str = format!("host=127.0.0.1 port={} user=root dbname=dev", handle.addr.port());
    let (client, mut conn) = tokio_postgres::connect(&conn_str, NoTls).await.expect("connect");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(m) = futures::StreamExt::next(&mut messages).await {
            match m {
                Ok(tokio_postgres::AsyncMessage::Notice(n)) => {
                    let _ = tx.send(n.message().to_string());
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("connection error: {e}");
                    break;
                }
            }
        }
    });
    (client, rx)
}

/// Waits until every table, materialized view and sink has passed `since` in
/// `rampart_frontiers`: whatever the views held at `since` has then reached every view
/// above them and every sink. Panics after 60 s, naming the objects still behind.
pub async fn wait_settled(client: &Client, since: std::time::SystemTime) {
    let us = since
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a time after the epoch")
        .as_micros();
    let sql =
        format!("SELECT name, kind FROM rampart_frontiers WHERE frontier IS NULL OR CAST(frontier AS BIGINT) <= {us}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let behind: Vec<String> = client
            .simple_query(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some(format!("{} {}", r.get(1).unwrap_or("?"), r.get(0).unwrap_or("?")))
                }
                _ => None,
            })
            .collect();
        if behind.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "not settled after 60 s: {behind:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
