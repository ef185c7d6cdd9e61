//! Transaction blocks tell the truth: each statement applies when it runs, so a ROLLBACK
//! after a change fails and says what it could not undo, a ROLLBACK with nothing to undo
//! succeeds, and a failed block refuses statements until it ends. Checked with
//! tokio-postgres (simple and extended protocols), psql, and the ReadyForQuery status byte
//! read off the wire.

use rampart_testkit as common;

use std::io::{Read, Write};
use std::net::TcpStream;

use tokio_postgres::SimpleQueryMessage;

fn sqlstate(e: &tokio_postgres::Error) -> (String, String) {
    let db = e.as_db_error().unwrap_or_else(|| panic!("not a server error: {e:?}"));
    (db.code().code().to_string(), db.message().to_string())
}

async fn count(client: &tokio_postgres::Client, table: &str) -> i64 {
    let rows = client
        .query(&format!("SELECT COUNT(*) FROM {table}"), &[])
        .await
        .unwrap();
    rows[0].get::<_, i64>(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_a_change_fails_and_the_change_stays() {
    let handle = common::server().await;
    let client = common::connect(&handle).await;
    client.simple_query("CREATE TABLE t (a INT)").await.unwrap();

    client.simple_query("BEGIN").await.unwrap();
    client.simple_query("INSERT INTO t VALUES (1), (2)").await.unwrap();
    let err = client
        .simple_query("ROLLBACK")
        .await
        .expect_err("cannot undo the insert");
    let (code, message) = sqlstate(&err);
    assert_eq!(code, "0A000");
    assert!(
        message.contains("INSERT 0 2"),
        "names what it could not undo: {message}"
    );
    // The insert was applied when it ran, as the error said, and the block has ended.
    assert_eq!(count(&client, "t").await, 2);
    client.simple_query("INSERT INTO t VALUES (3)").await.unwrap();
    assert_eq!(count(&client, "t").await, 3);

    // tokio-postgres' transaction API over the extended protocol: a read-only block rolls
    // back without error (there is nothing to undo).
    let mut client = client;
    let tx = client.transaction().await.unwrap();
    let n: i64 = tx.query_one("SELECT COUNT(*) FROM t", &[]).await.unwrap().get(0);
    assert_eq!(n, 3);
    tx.rollback().await.expect("nothing to undo");
    // And a block with a change fails its rollback the same way.
    let tx = client.transaction().await.unwrap();
    tx.execute("DELETE FROM t WHERE a = 1", &[]).await.unwrap();
    let err = tx.rollback().await.expect_err("cannot undo the delete");
    assert!(sqlstate(&err).1.contains("DELETE 1"), "{err:?}");
    assert_eq!(count(&client, "t").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_block_refuses_statements_until_it_ends() {
    let handle = common::server().await;
    let client = common::connect(&handle).await;
    client.simple_query("BEGIN").await.unwrap();
    client
        .simple_query("SELECT * FROM missing")
        .await
        .expect_err("no such table");
    let err = client.simple_query("SELECT 1").await.expect_err("aborted block");
    assert_eq!(sqlstate(&err).0, "25P02");
    client.simple_query("ROLLBACK").await.expect("ends the block");
    let rows = client.simple_query("SELECT 1").await.unwrap();
    assert!(rows.iter().any(|m| matches!(m, SimpleQueryMessage::Row(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_prints_the_notice_and_the_failed_rollback() {
    let handle = common::server().await;
    let client = common::connect(&handle).await;
    client.simple_query("CREATE TABLE t (a INT)").await.unwrap();
    let port = handle.addr.port();
    let out = tokio::task::spawn_blocking(move || {
        common::psql_script(port, "BEGIN;\nINSERT INTO t VALUES (7);\nROLLBACK;\nSELECT a FROM t;\n")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("NOTICE:  INSERT 0 1 is applied now"), "{stderr}");
    assert!(stderr.contains("ERROR:  ROLLBACK cannot undo the 1 change"), "{stderr}");
    assert_eq!(stdout.lines().last(), Some("7"), "the insert stayed: {stdout}");
}

/// The transaction status byte of each ReadyForQuery after each simple query, read off a
/// raw connection (no client library hides it).
fn statuses_after(port: u16, queries: &[&str]) -> Vec<char> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let mut startup = Vec::new();
    startup.extend_from_slice(&196608u32.to_be_bytes());
    for kv in ["user", "root", "database", "dev"] {
        startup.extend_from_slice(kv.as_bytes());
        startup.push(0);
    }
    startup.push(0);
    let mut msg = ((startup.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend(startup);
    s.write_all(&msg).unwrap();
    let ready = |s: &mut TcpStream| -> char {
        loop {
            let mut head = [0u8; 5];
            s.read_exact(&mut head).unwrap();
            let len = u32::from_be_bytes(head[1..5].try_into().unwrap()) as usize - 4;
            let mut body = vec![0u8; len];
            s.read_exact(&mut body).unwrap();
            if head[0] == b'Z' {
                return body[0] as char;
            }
        }
    };
    assert_eq!(ready(&mut s), 'I');
    queries
        .iter()
        .map(|q| {
            let mut m = vec![b'Q'];
            m.extend_from_slice(&((q.len() + 5) as u32).to_be_bytes());
            m.extend_from_slice(q.as_bytes());
            m.push(0);
            s.write_all(&m).unwrap();
            ready(&mut s)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_for_query_reports_the_block() {
    let handle = common::server().await;
    let port = handle.addr.port();
    let statuses = tokio::task::spawn_blocking(move || {
        statuses_after(
            port,
            &[
                "CREATE TABLE t (a INT)",
                "BEGIN",
                "SELECT 1",
                "SELECT * FROM missing",
                "SELECT 1",
                "ROLLBACK",
                "BEGIN",
                "INSERT INTO t VALUES (1)",
                "ROLLBACK",
                "BEGIN; SELECT 1",
                "COMMIT",
            ],
        )
    })
    .await
    .unwrap();
    assert_eq!(
        statuses,
        vec!['I', 'T', 'T', 'E', 'E', 'I', 'T', 'T', 'I', 'T', 'I'],
        "a failed ROLLBACK still ends the block"
    );
}
