//! The PostgreSQL wire front end against real clients (tokio-postgres and psql), serving a
//! small fake backend defined here: the thing under test is the wire protocol layer.

use std::error::Error;
use std::sync::{Arc, Mutex};

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, DurationSecondArray, Float32Array, Float64Array,
    Int16Array, Int32Array, Int64Array, Int8Array, IntervalMonthDayNanoArray, LargeStringArray, NullArray, RecordBatch,
    StringArray, StringViewArray, TimestampMicrosecondArray, TimestampNanosecondArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, IntervalMonthDayNano, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use futures::{stream, StreamExt};
use rampart_pgwire::serve;
use rampart_pgwire::{QueryOutput, Session, SqlBackend, SqlError, StatementOutcome};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{AsyncMessage, Client, NoTls, SimpleQueryMessage};

/// 2024-01-01 12:00:00 UTC in microseconds since the Unix epoch.
const NOON: i64 = 1_704_110_400_000_000;

fn every_type_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("ok", DataType::Boolean, true),
        Field::new("score", DataType::Float64, true),
        Field::new("ratio", DataType::Float32, true),
        Field::new("tiny", DataType::Int8, true),
        Field::new("small", DataType::Int16, true),
        Field::new("mid", DataType::Int32, true),
        Field::new("big", DataType::UInt64, true),
        Field::new("amount", DataType::Decimal128(10, 2), true),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("local", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
        Field::new("day", DataType::Date32, true),
        Field::new("wait", DataType::Duration(TimeUnit::Second), true),
        Field::new(
            "span",
            DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano),
            true,
        ),
        Field::new("nothing", DataType::Null, true),
        Field::new("view", DataType::Utf8View, true),
        Field::new("large", DataType::LargeUtf8, true),
        Field::new("raw", DataType::Binary, true),
    ]))
}

fn every_type_batch() -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![1, 2])),
        Arc::new(StringArray::from(vec![Some("alice"), None])),
        Arc::new(BooleanArray::from(vec![Some(true), None])),
        Arc::new(Float64Array::from(vec![Some(1.5), Some(3.0)])),
        Arc::new(Float32Array::from(vec![Some(0.25), None])),
        Arc::new(Int8Array::from(vec![Some(-8), None])),
        Arc::new(Int16Array::from(vec![Some(300), None])),
        Arc::new(Int32Array::from(vec![Some(70_000), None])),
        Arc::new(UInt64Array::from(vec![Some(9_000_000_000), None])),
        Arc::new(
            Decimal128Array::from(vec![Some(12_345), None])
                .with_precision_and_scale(10, 2)
                .expect("decimal"),
        ),
        Arc::new(TimestampMicrosecondArray::from(vec![Some(NOON + 123_000), None]).with_timezone("UTC")),
        Arc::new(TimestampNanosecondArray::from(vec![Some(NOON * 1000), None])),
        Arc::new(Date32Array::from(vec![Some(19_723), None])),
        Arc::new(DurationSecondArray::from(vec![Some(300), Some(93_600)])),
        Arc::new(IntervalMonthDayNanoArray::from(vec![
            Some(IntervalMonthDayNano::new(14, 3, 1_500_000_000)),
            None,
        ])),
        Arc::new(NullArray::new(2)),
        Arc::new(StringViewArray::from(vec![Some("a view"), None])),
        Arc::new(LargeStringArray::from(vec![Some("it's large"), None])),
        Arc::new(BinaryArray::from(vec![Some(&b"\x01\xff"[..]), None])),
    ];
    RecordBatch::try_new(every_type_schema(), columns).expect("batch")
}

fn echo_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("sql", DataType::Utf8, false)]))
}

/// 1-based character position of `needle` in `sql`.
fn char_position(sql: &str, needle: &str) -> Option<usize> {
    sql.find(needle).map(|i| sql[..i].chars().count() + 1)
}

/// A fake engine: `SELECT ...` returns the every-type batch, `ECHO ...` returns the SQL it
/// received, `INSERT ...` inserts 3 rows, `NOTICE ...` raises a notice, and anything
/// containing `oops` fails with a syntax error pointing at it.
#[derive(Default)]
struct FakeBackend {
    seen: Mutex<Vec<String>>,
}

impl FakeBackend {
    fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }

    fn statement(&self, sql: &str) -> StatementOutcome {
        self.seen.lock().expect("lock").push(sql.to_string());
        let upper = sql.trim_start().to_ascii_uppercase();
        let ok = |result| StatementOutcome {
            result: Ok(result),
            notices: vec![],
        };
        if let Some(pos) = char_position(sql, "oops") {
            return StatementOutcome {
                result: Err(SqlError::new("42601", "syntax error at or near \"oops\"")
                    .at(Some(pos))
                    .with_hint("remove the oops")),
                notices: vec![],
            };
        }
        if upper.starts_with("SELECT") {
            ok(QueryOutput::Rows {
                schema: every_type_schema(),
                batches: vec![every_type_batch()],
            })
        } else if upper.starts_with("ECHO") {
            let batch = RecordBatch::try_new(echo_schema(), vec![Arc::new(StringArray::from(vec![sql.to_string()]))])
                .expect("batch");
            ok(QueryOutput::Rows {
                schema: echo_schema(),
                batches: vec![batch],
            })
        } else if upper.starts_with("INSERT") {
            ok(QueryOutput::Command {
                tag: "INSERT".into(),
                rows: Some(3),
            })
        } else if upper.starts_with("NOTICE") {
            StatementOutcome {
                result: Ok(QueryOutput::Command {
                    tag: "CREATE_VIEW".into(),
                    rows: None,
                }),
                notices: vec!["view already exists, skipping".into()],
            }
        } else {
            ok(QueryOutput::Command {
                tag: "SET".into(),
                rows: None,
            })
        }
    }
}

#[async_trait::async_trait]
impl SqlBackend for FakeBackend {
    async fn execute(&self, _session: &mut Session, sql: &str) -> Vec<StatementOutcome> {
        let mut out = Vec::new();
        for stmt in sql
            .split(';')
            .filter(|s| !s.trim().is_empty() && !s.trim().starts_with("--"))
        {
            let outcome = self.statement(stmt);
            let failed = outcome.result.is_err();
            out.push(outcome);
            if failed {
                break;
            }
        }
        out
    }

    async fn describe(&self, _session: &Session, sql: &str) -> Result<Option<SchemaRef>, SqlError> {
        let upper = sql.trim_start().to_ascii_uppercase();
        if let Some(pos) = char_position(sql, "oops") {
            return Err(SqlError::new("42601", "syntax error at or near \"oops\"").at(Some(pos)));
        }
        Ok(if upper.starts_with("SELECT") {
            Some(every_type_schema())
        } else if upper.starts_with("ECHO") {
            Some(echo_schema())
        } else {
            None
        })
    }
}

struct Server {
    port: u16,
    backend: Arc<FakeBackend>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let backend = Arc::new(FakeBackend::default());
    let task = tokio::spawn(serve(listener, backend.clone()));
    Server { port, backend, task }
}

/// A tokio-postgres client; notices arrive on the returned channel.
async fn connect(port: u16) -> (Client, mpsc::UnboundedReceiver<tokio_postgres::error::DbError>) {
    let config = format!("host=127.0.0.1 port={port} user=root dbname=dev");
    let (client, mut connection) = tokio_postgres::connect(&config, NoTls).await.expect("connect");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notice(notice)) => {
                    let _ = tx.send(notice);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    (client, rx)
}

fn rows(messages: &[SimpleQueryMessage]) -> Vec<&tokio_postgres::SimpleQueryRow> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn completions(messages: &[SimpleQueryMessage]) -> Vec<u64> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn simple_query_text_formats() {
    let server = start().await;
    let (client, _notices) = connect(server.port).await;
    let messages = client.simple_query("SELECT * FROM every_type").await.expect("query");
    let rows = rows(&messages);
    assert_eq!(rows.len(), 2);
    let first: Vec<Option<&str>> = (0..rows[0].len()).map(|i| rows[0].get(i)).collect();
    assert_eq!(
        first,
        vec![
            Some("1"),
            Some("alice"),
            Some("t"),
            Some("1.5"),
            Some("0.25"),
            Some("-8"),
            Some("300"),
            Some("70000"),
            Some("9000000000"),
            Some("123.45"),
            Some("2024-01-01 12:00:00.123+00"),
            Some("2024-01-01 12:00:00"),
            Some("2024-01-01"),
            Some("00:05:00"),
            Some("1 year 2 mons 3 days 00:00:01.5"),
            None,
            Some("a view"),
            Some("it's large"),
            Some("01ff"),
        ]
    );
    assert_eq!(rows[1].get("score"), Some("3"));
    assert_eq!(rows[1].get("wait"), Some("1 day 02:00:00"));
    assert_eq!(rows[1].get("name"), None);
    assert_eq!(rows[1].get("at"), None);
    assert_eq!(completions(&messages), vec![2]);
}

#[tokio::test]
async fn simple_query_commands_notices_and_errors() {
    let server = start().await;
    let (client, mut notices) = connect(server.port).await;

    let messages = client
        .simple_query("INSERT INTO t VALUES (1); NOTICE x; SELECT 1")
        .await
        .expect("query");
    assert_eq!(completions(&messages), vec![3, 0, 2]);
    let notice = notices.recv().await.expect("notice");
    assert_eq!(notice.severity(), "NOTICE");
    assert_eq!(notice.message(), "view already exists, skipping");

    // Execution stops at the error; its SQLSTATE, position and hint reach the client.
    let err = client
        .simple_query("INSERT INTO t VALUES (1); SELECT oops")
        .await
        .expect_err("fails");
    let db = err.as_db_error().expect("database error");
    assert_eq!(db.code().code(), "42601");
    assert_eq!(db.severity(), "ERROR");
    assert_eq!(db.message(), "syntax error at or near \"oops\"");
    assert_eq!(db.hint(), Some("remove the oops"));
    assert_eq!(db.position(), Some(&tokio_postgres::error::ErrorPosition::Original(9)));

    // The connection is still usable, and an empty query is answered.
    // An empty query is answered by pgwire, text without statements by the front end.
    for empty in ["", " ; ", "-- only a comment"] {
        let messages = client.simple_query(empty).await.expect("empty query");
        assert_eq!(completions(&messages), vec![0], "{empty:?}");
        assert!(rows(&messages).is_empty());
    }
    assert_eq!(
        client.execute("INSERT INTO t VALUES (1)", &[]).await.expect("insert"),
        3
    );
}

/// Reads a binary value's raw bytes (types tokio-postgres has no Rust type for).
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC || *ty == Type::INTERVAL
    }
}

#[tokio::test]
async fn extended_query_binary_results_and_parameters() {
    let server = start().await;
    let (client, _notices) = connect(server.port).await;

    let rows = client
        .query("SELECT * FROM every_type WHERE name = $1", &[&"O'Brien"])
        .await
        .expect("query");
    assert!(server
        .backend
        .seen()
        .contains(&"SELECT * FROM every_type WHERE name = 'O''Brien'".to_string()));
    assert_eq!(rows.len(), 2);
    let r = &rows[0];
    assert_eq!(r.columns()[0].type_(), &Type::INT8);
    assert_eq!(r.get::<_, i64>("id"), 1);
    assert_eq!(r.get::<_, String>("name"), "alice");
    assert!(r.get::<_, bool>("ok"));
    assert_eq!(r.get::<_, f64>("score"), 1.5);
    assert_eq!(r.get::<_, f32>("ratio"), 0.25);
    assert_eq!(r.get::<_, i16>("tiny"), -8);
    assert_eq!(r.get::<_, i16>("small"), 300);
    assert_eq!(r.get::<_, i32>("mid"), 70_000);
    assert_eq!(r.get::<_, i64>("big"), 9_000_000_000);
    // 123.45: 2 digits, weight 0, positive, scale 2, [123, 4500]
    assert_eq!(
        r.get::<_, Raw>("amount").0,
        vec![0, 2, 0, 0, 0, 0, 0, 2, 0, 123, 0x11, 0x94]
    );
    let at: DateTime<Utc> = r.get("at");
    assert_eq!(at, DateTime::from_timestamp_micros(NOON + 123_000).expect("ts"));
    let local: NaiveDateTime = r.get("local");
    assert_eq!(local, DateTime::from_timestamp_micros(NOON).expect("ts").naive_utc());
    assert_eq!(
        r.get::<_, NaiveDate>("day"),
        NaiveDate::from_ymd_opt(2024, 1, 1).expect("date")
    );
    let mut interval = 1_500_000i64.to_be_bytes().to_vec();
    interval.extend_from_slice(&3i32.to_be_bytes());
    interval.extend_from_slice(&14i32.to_be_bytes());
    assert_eq!(r.get::<_, Raw>("span").0, interval);
    assert_eq!(r.get::<_, Option<String>>("nothing"), None);
    assert_eq!(r.get::<_, String>("view"), "a view");
    assert_eq!(r.get::<_, String>("large"), "it's large");

    let r = &rows[1];
    assert_eq!(r.get::<_, Option<String>>("name"), None);
    assert_eq!(r.get::<_, Option<bool>>("ok"), None);
    assert_eq!(r.get::<_, Option<DateTime<Utc>>>("at"), None);
    assert_eq!(r.get::<_, Option<NaiveDateTime>>("local"), None);
    assert_eq!(r.get::<_, Option<i64>>("big"), None);
    assert_eq!(r.get::<_, f64>("score"), 3.0);
}

#[tokio::test]
async fn extended_query_typed_parameters() {
    let server = start().await;
    let (client, _notices) = connect(server.port).await;
    let stmt = client
        .prepare_typed(
            "ECHO $1, $2, $3, $4, $5, $6, $7, '$1' -- $2",
            &[
                Type::INT8,
                Type::FLOAT8,
                Type::BOOL,
                Type::TIMESTAMPTZ,
                Type::TIMESTAMP,
                Type::INT4,
                Type::TEXT,
            ],
        )
        .await
        .expect("prepare");
    assert_eq!(stmt.params().len(), 7);
    let at = DateTime::from_timestamp_micros(NOON + 500_000).expect("ts");
    let none: Option<&str> = None;
    let rows = client
        .query(&stmt, &[&42i64, &-2.5f64, &true, &at, &at.naive_utc(), &-7i32, &none])
        .await
        .expect("query");
    assert_eq!(
        rows[0].get::<_, String>(0),
        "ECHO 42, (-2.5e0), TRUE, '2024-01-01 12:00:00.5+00:00', '2024-01-01 12:00:00.5', (-7), NULL, '$1' -- $2"
    );

    // Untyped parameters are TEXT.
    let stmt = client.prepare("ECHO $1").await.expect("prepare");
    assert_eq!(stmt.params(), &[Type::TEXT]);
    assert_eq!(stmt.columns()[0].type_(), &Type::VARCHAR);
    let row = client.query_one(&stmt, &[&"x"]).await.expect("query");
    assert_eq!(row.get::<_, String>(0), "ECHO 'x'");

    // Statements without result rows describe as NoData and execute as commands.
    assert_eq!(
        client
            .execute("INSERT INTO t VALUES ($1)", &[&"v"])
            .await
            .expect("insert"),
        3
    );
}

#[tokio::test]
async fn extended_query_errors_point_into_the_client_text() {
    let server = start().await;
    let (client, mut notices) = connect(server.port).await;

    // Describe fails: "SELECT 0, oops" (stand-in value) points back at "oops" in "SELECT $1, oops".
    let err = client
        .prepare_typed("SELECT $1, oops", &[Type::INT8])
        .await
        .expect_err("fails");
    let db = err.as_db_error().expect("database error");
    assert_eq!(db.code().code(), "42601");
    assert_eq!(db.position(), Some(&tokio_postgres::error::ErrorPosition::Original(12)));

    // Execution fails: "ECHO 'a long value' oops" points back at "oops" in "ECHO $1 oops".
    let stmt = client.prepare_typed("ECHO $1 o", &[Type::TEXT]).await.expect("prepare");
    let rows = client.query(&stmt, &[&"oops"]).await;
    let err = rows.expect_err("fails");
    let db = err.as_db_error().expect("database error");
    assert_eq!(db.position(), Some(&tokio_postgres::error::ErrorPosition::Original(6)));

    // Notices of an extended-protocol execution reach the client too.
    client.execute("NOTICE", &[]).await.expect("notice");
    assert_eq!(
        notices.recv().await.expect("notice").message(),
        "view already exists, skipping"
    );
    assert_eq!(client.query("SELECT 1", &[]).await.expect("still usable").len(), 2);
}

async fn psql(port: u16, sql: &str) -> std::process::Output {
    tokio::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "root",
            "-d",
            "dev",
            "-At",
            "-c",
            sql,
        ])
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGPASSWORD")
        .output()
        .await
        .expect("psql runs")
}

#[tokio::test]
async fn psql_reads_rows_notices_and_errors() {
    let server = start().await;
    let out = psql(server.port, "SELECT * FROM every_type").await;
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = "1|alice|t|1.5|0.25|-8|300|70000|9000000000|123.45|2024-01-01 12:00:00.123+00|\
                 2024-01-01 12:00:00|2024-01-01|00:05:00|1 year 2 mons 3 days 00:00:01.5||a view|it's large|01ff";
    let mut second = vec![""; 19];
    second[0] = "2";
    second[3] = "3";
    second[13] = "1 day 02:00:00";
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{first}\n{}\n", second.join("|"))
    );

    let out = psql(server.port, "NOTICE x").await;
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "CREATE VIEW\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOTICE:  view already exists, skipping"));

    let out = psql(server.port, "SELECT oops").await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ERROR:  syntax error at or near \"oops\""), "{stderr}");
    let caret = format!("LINE 1: SELECT oops\n{}^", " ".repeat(15));
    assert!(stderr.contains(&caret), "{stderr}");
    assert!(stderr.contains("HINT:  remove the oops"), "{stderr}");
}

/// A Parse naming a parameter beyond what the protocol can bind (`$99999999999`) is refused
/// at once with SQLSTATE 54023, without sizing anything by that number, and the connection
/// stays usable; `$65535`, the most there can be, is still accepted.
#[tokio::test]
async fn a_parameter_number_beyond_the_protocol_is_refused() {
    let server = start().await;
    let (client, _notices) = connect(server.port).await;
    for sql in [
        "SELECT $99999999999",
        "SELECT $65536",
        "SELECT $1 + $999999999999999999999999999",
    ] {
        let err = client.prepare(sql).await.expect_err("refused");
        let db = err.as_db_error().expect("database error");
        assert_eq!(db.code().code(), "54023", "{sql}: {}", db.message());
        assert!(db.message().contains("at most 65535 parameters"), "{}", db.message());
    }
    let stmt = client
        .prepare("SELECT $65535")
        .await
        .expect("the most parameters there can be");
    assert_eq!(stmt.params().len(), 65_535);
    assert_eq!(client.query("SELECT 1", &[]).await.expect("still usable").len(), 2);
}
