//! Retained views and the views over them come back the same after a SIGKILL.

use std::io::Write;
use std::time::{Duration, Instant};

use super::*;

/// A view with a retention over a source is snapshotted too: after a kill it comes back
/// with the rows it held (not replayed: the lines read before the kill are overwritten
/// while the server is down), expires them as the watermark moves on, and a retained view
/// over it rebuilds from them. Once a view without a retention reads it (it keeps what it
/// derived from expired rows, which no checkpoint holds), the retained view stops being
/// snapshotted and a restart replays its source. Expected rows by hand: one event per
/// second, 5 s of delay, 20 s of retention: at watermark W a view holds the seconds > W - 20.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retained_view_is_snapshotted_until_a_view_without_retention_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let log = dir.join("server.log");
    let file = dir.join("ev.jsonl");
    std::fs::write(&file, ev_lines("a", 0..60)).unwrap();
    let server = start(&data, &log);
    let client = connect(&server).await;
    client
        .batch_execute(&format!(
            "CREATE SOURCE ev (u VARCHAR, t TIMESTAMPTZ, WATERMARK FOR t AS t - INTERVAL '5 seconds')
               WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;
             CREATE MATERIALIZED VIEW recent WITH (retention = '20 seconds') AS SELECT u, t FROM ev;
             CREATE MATERIALIZED VIEW recent_named WITH (retention = '20 seconds') AS
               SELECT u, t FROM recent WHERE u <> 'nobody';",
            file.display()
        ))
        .await
        .unwrap();
    // (user, rows, first second held) of each view.
    let held = |u: &str, n: u32, first: u32| {
        vec![vec![
            u.to_string(),
            n.to_string(),
            format!("2026-11-22 10:{:02}:{:02}+00", first / 60, first % 60),
        ]]
    };
    let query = |view: &str| format!("SELECT u, COUNT(*), MIN(t) FROM {view} GROUP BY u");
    // Watermark 54: seconds 35..=59.
    wait_rows(&client, &query("recent"), &held("a", 25, 35)).await;
    wait_rows(&client, &query("recent_named"), &held("a", 25, 35)).await;
    wait_checkpoint_settled(&client, "recent").await;
    drop(client);
    sigkill(server);

    std::fs::write(&file, ev_lines("z", 0..60)).unwrap();
    let server = start(&data, &log);
    let client = connect(&server).await;
    wait_rows(&client, &query("recent"), &held("a", 25, 35)).await;
    wait_rows(&client, &query("recent_named"), &held("a", 25, 35)).await;
    let restores = |text: &str| text.matches("restoring from its last checkpoint").count();
    assert_eq!(restores(&std::fs::read_to_string(&log).unwrap()), 1);
    // Ten more seconds: watermark 64, seconds 45..=69, the restored rows expiring too.
    let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
    f.write_all(ev_lines("a", 60..70).as_bytes()).unwrap();
    drop(f);
    wait_rows(&client, &query("recent"), &held("a", 25, 45)).await;
    wait_rows(&client, &query("recent_named"), &held("a", 25, 45)).await;

    // A view without a retention over it: no longer snapshotted.
    client
        .batch_execute("CREATE MATERIALIZED VIEW every_user AS SELECT DISTINCT u FROM recent")
        .await
        .unwrap();
    assert!(!data.join("views").join("recent.log").exists(), "its log is deleted");
    let listed = rows(&client, "SELECT view FROM rampart_checkpoints").await;
    assert!(!listed.contains(&vec!["recent".to_string()]), "{listed:?}");
    drop(client);
    sigkill(server);
    let server = start(&data, &log);
    let client = connect(&server).await;
    // Replayed from the file's start: seconds 45..=59 now say z.
    wait_rows(
        &client,
        "SELECT u, COUNT(*) FROM recent GROUP BY u ORDER BY u",
        &[
            vec!["a".to_string(), "10".to_string()],
            vec!["z".to_string(), "15".to_string()],
        ],
    )
    .await;
    assert_eq!(
        restores(&std::fs::read_to_string(&log).unwrap()),
        1,
        "not restored again"
    );
    drop(client);
    drop(server);
}

/// Views without a retention over a retained snapshotted view (the alert views over
/// `enriched_events` with a retention) are saved with their rows at every checkpoint, and
/// after a kill rebuild their windows' state from the retained view's restored rows with
/// what that produces muted, next to their own restored rows: every window closed before
/// the kill comes back once (including those whose events have expired), and the window
/// open at the kill counts its events from both sides of it. The lines read before the
/// kill are overwritten while the server is down, so a replay would show user `z`.
/// Expected by hand: one event per second, 5 s of delay, 5-second windows, 20 s of
/// retention (the window's state needs 10 s: twice the key's lag).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_over_a_retained_view_come_back_from_their_own_rows_and_its_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let log = dir.join("server.log");
    let file = dir.join("ev.jsonl");
    // The views exist before the first line (a view created over a retained view later
    // starts from the rows it still holds).
    std::fs::write(&file, "").unwrap();
    let server = start(&data, &log);
    let client = connect(&server).await;
    client
        .batch_execute(&format!(
            "CREATE SOURCE ev (u VARCHAR, t TIMESTAMPTZ, WATERMARK FOR t AS t - INTERVAL '5 seconds')
               WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;
             CREATE MATERIALIZED VIEW recent WITH (retention = '20 seconds') AS SELECT u, t FROM ev;
             CREATE MATERIALIZED VIEW per_window AS
               SELECT window_start, u, COUNT(*) AS n FROM TUMBLE(recent, t, INTERVAL '5 seconds')
               GROUP BY window_start, window_end, u EMIT ON WINDOW CLOSE;
             CREATE MATERIALIZED VIEW everything AS SELECT u, t FROM recent WHERE u <> 'nobody';",
            file.display()
        ))
        .await
        .unwrap();
    const WINDOWS: &str =
        "SELECT COUNT(*), COUNT(DISTINCT window_start), SUM(n), MIN(n), MAX(n), MIN(u), MAX(u) FROM per_window";
    const EVERYTHING: &str = "SELECT COUNT(*), COUNT(DISTINCT t), MIN(u), MAX(u) FROM everything";
    let summary = |windows: u32, events: u32| {
        vec![vec![
            windows.to_string(),
            windows.to_string(),
            events.to_string(),
            "5".to_string(),
            "5".to_string(),
            "a".to_string(),
            "a".to_string(),
        ]]
    };
    let all = |n: u32| vec![vec![n.to_string(), n.to_string(), "a".to_string(), "a".to_string()]];
    // Seconds 0..=62: watermark 57, windows up to [50, 55) closed; [60, 65) holds 3.
    std::fs::write(&file, ev_lines("a", 0..63)).unwrap();
    wait_rows(&client, WINDOWS, &summary(11, 55)).await;
    wait_rows(&client, EVERYTHING, &all(63)).await;
    for view in ["recent", "per_window", "everything"] {
        wait_checkpoint_settled(&client, view).await;
    }
    drop(client);
    sigkill(server);

    // While it is down, seconds 63..=69 arrive: read as soon as the restore is complete
    // (not before: what the rebuilt views make before then is muted), they close
    // [55, 60) with watermark 64.
    std::fs::write(&file, ev_lines("z", 0..63) + &ev_lines("a", 63..70)).unwrap();
    let server = start(&data, &log);
    let client = connect(&server).await;
    wait_rows(&client, WINDOWS, &summary(12, 60)).await;
    wait_rows(&client, EVERYTHING, &all(70)).await;
    let restored = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        restored.matches("restoring from its last checkpoint").count(),
        3,
        "{restored}"
    );
    // Seconds 70..=80: watermark 75 closes up to [70, 75), [60, 65) with 3 events from
    // before the kill and 2 after it.
    let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
    f.write_all(ev_lines("a", 70..81).as_bytes()).unwrap();
    drop(f);
    wait_rows(&client, WINDOWS, &summary(15, 75)).await;
    wait_rows(&client, EVERYTHING, &all(81)).await;
    let late = rows(&client, "SELECT COUNT(*) FROM rampart_late_events").await;
    assert_eq!(late, vec![vec!["0".to_string()]]);

    // A view that needs every row (a count over all time) cannot be rebuilt: the retained
    // view and the views rebuilt over it stop being snapshotted.
    client
        .batch_execute("CREATE MATERIALIZED VIEW total AS SELECT COUNT(*) AS n FROM recent")
        .await
        .unwrap();
    for view in ["recent", "per_window", "everything"] {
        assert!(
            !data.join("views").join(format!("{view}.log")).exists(),
            "{view}'s log is deleted"
        );
    }
    drop(client);
    sigkill(server);
    let server = start(&data, &log);
    let client = connect(&server).await;
    // Replayed from the file's start: the first 63 seconds now say z.
    wait_rows(
        &client,
        "SELECT u, COUNT(*) FROM everything GROUP BY u ORDER BY u",
        &[
            vec!["a".to_string(), "18".to_string()],
            vec!["z".to_string(), "63".to_string()],
        ],
    )
    .await;
    // `total` started from the 25 rows `recent` held when it was created (seconds
    // 56..=80), and comes back so.
    wait_rows(&client, "SELECT n FROM total", &[vec!["25".to_string()]]).await;
    drop(client);
    drop(server);
}

/// A view without a retention created over a retained view starts from the rows that view
/// holds then. A restart replays every source from the start, so the rebuilt view sees
/// rows that had expired before it was created; the expiry floor recorded in the catalog
/// at creation makes them leave again, and the view comes back as it was; a sink created
/// then over the retained view does not emit them after the restart either. (Expected
/// rows by hand: `recent` keeps t + 20 s above the watermark, max t - 5 s.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_created_over_a_retained_view_comes_back_the_same_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let log = dir.join("server.log");
    let file = dir.join("ev.jsonl");
    std::fs::write(&file, "").unwrap();
    let append = |events: &[(&str, u32)]| {
        let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
        for (u, s) in events {
            writeln!(f, "{{\"u\": \"{u}\", \"t\": \"2026-11-22T10:00:{s:02}Z\"}}").unwrap();
        }
    };
    let counts = |pairs: &[(&str, i64)]| {
        pairs
            .iter()
            .map(|(u, n)| vec![u.to_string(), n.to_string()])
            .collect::<Vec<_>>()
    };

    let server = start(&data, &log);
    let client = connect(&server).await;
    client
        .batch_execute(&format!(
            "CREATE SOURCE ev (u VARCHAR, t TIMESTAMPTZ, WATERMARK FOR t AS t - INTERVAL '5 seconds')
               WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;
             CREATE MATERIALIZED VIEW recent WITH (retention = '20 seconds') AS SELECT u, t FROM ev;",
            file.display()
        ))
        .await
        .unwrap();
    append(&[("a", 1), ("a", 2), ("a", 3)]);
    wait_rows(
        &client,
        "SELECT u, COUNT(*) FROM recent GROUP BY u",
        &counts(&[("a", 3)]),
    )
    .await;
    // b at 40: watermark 35, past a's expiry (t + 20 <= 23).
    append(&[("b", 40)]);
    wait_rows(
        &client,
        "SELECT u, COUNT(*) FROM recent GROUP BY u",
        &counts(&[("b", 1)]),
    )
    .await;
    let out = dir.join("recent_out.jsonl");
    client
        .batch_execute(&format!(
            "CREATE MATERIALIZED VIEW later_count AS SELECT u, COUNT(*) AS n FROM recent GROUP BY u;
             CREATE SINK recent_out FROM recent WITH (connector = 'file', path = '{}') FORMAT PLAIN ENCODE JSON;",
            out.display()
        ))
        .await
        .unwrap();
    append(&[("c", 50)]);
    let want = counts(&[("b", 1), ("c", 1)]);
    wait_rows(&client, "SELECT u, n FROM later_count", &want).await;
    let users = || -> Vec<String> {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let mut us: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["u"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        us.sort();
        us
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while users() != ["b", "c"] {
        assert!(Instant::now() < deadline, "sink wrote {:?}", users());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(client);

    sigkill(server);
    let server = start(&data, &log);
    let client = connect(&server).await;
    wait_rows(
        &client,
        "SELECT u, COUNT(*) FROM recent GROUP BY u",
        &counts(&[("b", 1), ("c", 1)]),
    )
    .await;
    wait_rows(&client, "SELECT u, n FROM later_count", &want).await;
    // Not a passing state of the replay: it stays so.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rows(&client, "SELECT u, n FROM later_count").await, want);
    // The sink carries on after its restart with d, and never emits a's rows.
    append(&[("d", 55)]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !users().contains(&"d".to_string()) {
        assert!(Instant::now() < deadline, "sink wrote {:?}", users());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(users(), ["b", "c", "d"]);
    drop(server);
}
