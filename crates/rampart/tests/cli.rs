//! The `rampart` binary as a user runs it: what reaches its standard output.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rampart_testkit::process::free_port;
use tokio_postgres::NoTls;

/// A `stdout` sink prints each change as a JSON line; a `blackhole` sink (RisingWave's name
/// for a sink that discards) prints nothing. Both sinks read the same three rows, so the
/// server's standard output holds exactly the stdout sink's three lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackhole_sink_discards_and_a_stdout_sink_prints() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["serve", "--workers", "2", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("rampart starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    let client = loop {
        let conn = format!("host=127.0.0.1 port={port} user=root dbname=dev");
        match tokio_postgres::connect(&conn, NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                break client;
            }
            Err(e) if Instant::now() > deadline => panic!("server did not come up: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    client
        .batch_execute(
            "CREATE TABLE t (k VARCHAR);
             INSERT INTO t VALUES ('a'), ('b'), ('c');
             CREATE SINK gone FROM t WITH (connector = 'blackhole', force_append_only = 'true') FORMAT PLAIN ENCODE JSON;
             CREATE SINK shown FROM t WITH (connector = 'stdout', force_append_only = 'true') FORMAT PLAIN ENCODE JSON;",
        )
        .await
        .unwrap();
    // Both sinks have written what the table held once every frontier passes now.
    rampart_testkit::wait_settled(&client, std::time::SystemTime::now()).await;
    drop(client);
    let pid = child.id() as i32;
    // SAFETY: `kill` with a valid pid and signal number has no memory effects.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    // Reading stdout ends when the server exits; should it not stop, it is killed after
    // 60 s, so the test fails instead of hanging.
    let exited = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watched = exited.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(60));
        if !watched.load(std::sync::atomic::Ordering::Acquire) {
            // SAFETY: as above (the process has not been reaped, so the pid is still its).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let status = child.wait().unwrap();
    exited.store(true, std::sync::atomic::Ordering::Release);
    assert_eq!(status.code(), Some(0), "a graceful stop");
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(lines, vec![r#"{"k":"a"}"#, r#"{"k":"b"}"#, r#"{"k":"c"}"#], "{out}");
}
