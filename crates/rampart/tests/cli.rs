//! The `rampart` binary as a user runs it: what reaches its standard output.

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use rampart_testkit::process::RampartProcess;

/// A `stdout` sink prints each change as a JSON line; a `blackhole` sink (RisingWave's name
/// for a sink that discards) prints nothing. Both sinks read the same three rows, so the
/// server's standard output holds exactly the stdout sink's three lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackhole_sink_discards_and_a_stdout_sink_prints() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = RampartProcess::start_with_stdout(
        Path::new(env!("CARGO_BIN_EXE_rampart")),
        &dir.path().join("data"),
        &dir.path().join("server.log"),
        Stdio::piped(),
    );
    let client = server.connect().await;
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
    server.sigterm();
    let status = server.wait_exit(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(0), "a graceful stop");
    let mut out = String::new();
    let stdout = server.child.stdout.as_mut().expect("stdout is piped");
    stdout.read_to_string(&mut out).unwrap();
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(lines, vec![r#"{"k":"a"}"#, r#"{"k":"b"}"#, r#"{"k":"c"}"#], "{out}");
}
