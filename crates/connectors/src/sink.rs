//! Sink connectors: `file` (JSON lines appended to a file) and `stdout`, with the
//! RisingWave formats: `PLAIN` is append-only (inserts and the new version of updated
//! rows; deletions are not emitted), `UPSERT` and `DEBEZIUM` carry the operation.
//! Kafka targets are validated here and written by [`crate::kafka_sink`].

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::sync::Mutex;

use rampart_dataflow::{Diff, SinkWriter, Time};
use rampart_repr::{Datum, RelationDesc, Row};
use serde_json::{Map, Value};

/// How a sink encodes changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkFormat {
    /// Inserts only.
    Plain,
    /// `{"op": "upsert"|"delete", "row": {...}}`.
    Upsert,
    /// `{"before": ..., "after": ..., "op": "c"|"d"}` in Debezium's envelope.
    Debezium,
}

impl SinkFormat {
    /// The format for a `FORMAT` keyword (default PLAIN).
    pub fn parse(format: Option<&str>) -> Result<Self, String> {
        match format.map(|f| f.to_uppercase()).as_deref() {
            None | Some("PLAIN") => Ok(SinkFormat::Plain),
            Some("UPSERT") => Ok(SinkFormat::Upsert),
            Some("DEBEZIUM") => Ok(SinkFormat::Debezium),
            Some(other) => Err(format!("FORMAT {other} is not supported for sinks")),
        }
    }
}

/// Where a sink writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkTarget {
    /// Append JSON lines to this file.
    File(String),
    /// Print JSON lines to standard output.
    Stdout,
    /// A Kafka topic, written by [`crate::kafka_sink::KafkaSink`].
    Kafka {
        /// Topic.
        topic: String,
        /// librdkafka configuration: every `properties.*` option without its prefix
        /// (`properties.bootstrap.server` becomes `bootstrap.servers`).
        properties: BTreeMap<String, String>,
        /// Columns of the message key (option `primary_key = 'a,b'`); required for UPSERT.
        primary_key: Vec<String>,
    },
}

impl SinkTarget {
    /// Validates a sink's `WITH` options.
    pub fn from_options(options: &BTreeMap<String, String>) -> Result<Self, String> {
        let connector = options
            .get("connector")
            .ok_or("missing option 'connector' (one of 'file', 'stdout', 'kafka')")?;
        match connector.to_lowercase().as_str() {
            "file" => Ok(SinkTarget::File(
                options.get("path").ok_or("the file sink needs option 'path'")?.clone(),
            )),
            "stdout" | "blackhole" => Ok(SinkTarget::Stdout),
            "kafka" => {
                let topic = options.get("topic").ok_or("the kafka sink needs option 'topic'")?;
                options
                    .get("properties.bootstrap.server")
                    .or_else(|| options.get("properties.bootstrap.servers"))
                    .ok_or("the kafka sink needs option 'properties.bootstrap.server'")?;
                if topic.trim().is_empty() {
                    return Err("option 'topic' is empty".into());
                }
                let properties = crate::kafka_source::librdkafka_properties(options);
                crate::kafka_source::validate_properties(&properties)?;
                let primary_key = options
                    .get("primary_key")
                    .map(|k| {
                        k.split(',')
                            .map(|c| c.trim().to_string())
                            .filter(|c| !c.is_empty())
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(SinkTarget::Kafka {
                    topic: topic.clone(),
                    properties,
                    primary_key,
                })
            }
            other => Err(format!(
                "unknown sink connector '{other}' (supported: 'file', 'stdout', 'kafka')"
            )),
        }
    }
}

/// Writes encoded changes to a file or stdout.
pub struct JsonSink {
    desc: RelationDesc,
    format: SinkFormat,
    out: Mutex<Output>,
    /// The error of the last failed write, until taken.
    failed: Mutex<Option<String>>,
}

enum Output {
    /// A file and how many bytes it holds.
    File {
        file: File,
        len: u64,
    },
    Stdout,
}

impl JsonSink {
    /// Opens the target (creating the file and its directory if needed). With
    /// `resume_at`, a file longer than that is cut back to it: the lines after it were
    /// written after the sink's last checkpoint and will be written again.
    pub fn open(
        target: &SinkTarget,
        desc: RelationDesc,
        format: SinkFormat,
        resume_at: Option<u64>,
    ) -> Result<Self, String> {
        let out = match target {
            SinkTarget::File(path) => {
                if let Some(dir) = std::path::Path::new(path).parent() {
                    if !dir.as_os_str().is_empty() {
                        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                    }
                }
                let mut file: File = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("cannot open sink file {path}: {e}"))?;
                let mut len = file
                    .metadata()
                    .map_err(|e| format!("cannot read sink file {path}: {e}"))?
                    .len();
                if let Some(at) = resume_at {
                    if len > at {
                        file.set_len(at)
                            .map_err(|e| format!("cannot cut sink file {path} back to its checkpoint: {e}"))?;
                        file.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
                        tracing::info!(path, dropped_bytes = len - at, "sink file cut back to its checkpoint");
                        len = at;
                    } else if len < at {
                        tracing::warn!(
                            path,
                            missing_bytes = at - len,
                            "sink file is shorter than its checkpoint (was it truncated or rotated?)"
                        );
                    }
                }
                Output::File { file, len }
            }
            SinkTarget::Stdout => Output::Stdout,
            SinkTarget::Kafka { .. } => {
                return Err("a kafka sink is written by KafkaSink, not JsonSink".into());
            }
        };
        Ok(JsonSink {
            desc,
            format,
            out: Mutex::new(out),
            failed: Mutex::new(None),
        })
    }

    fn encode(&self, row: &Row) -> Value {
        row_to_json(&self.desc, row)
    }
}

/// Encodes a row as a JSON object keyed by column name. Timestamps are RFC 3339 UTC.
pub fn row_to_json(desc: &RelationDesc, row: &Row) -> Value {
    let mut m = Map::new();
    for (c, d) in desc.columns.iter().zip(row) {
        m.insert(c.name.clone(), datum_to_json(d));
    }
    Value::Object(m)
}

fn datum_to_json(d: &Datum) -> Value {
    match d {
        Datum::Null => Value::Null,
        Datum::Bool(b) => Value::Bool(*b),
        Datum::Int(i) => Value::from(*i),
        Datum::Float(f) => serde_json::Number::from_f64(f.0)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Datum::Str(s) => Value::String(s.to_string()),
        Datum::Timestamp(us) => match chrono::DateTime::from_timestamp_micros(*us) {
            Some(t) => Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            None => Value::from(*us),
        },
        other => Value::String(other.to_string()),
    }
}

impl SinkWriter for JsonSink {
    fn write(&self, updates: &[(Row, Time, Diff)]) {
        let mut lines = String::new();
        for (row, _t, diff) in updates {
            let value = self.encode(row);
            let (copies, line) = match self.format {
                SinkFormat::Plain if *diff > 0 => (*diff, value.to_string()),
                SinkFormat::Plain => continue,
                SinkFormat::Upsert => {
                    let op = if *diff > 0 { "upsert" } else { "delete" };
                    (diff.abs(), serde_json::json!({"op": op, "row": value}).to_string())
                }
                SinkFormat::Debezium => {
                    let v = if *diff > 0 {
                        serde_json::json!({"before": null, "after": value, "op": "c"})
                    } else {
                        serde_json::json!({"before": value, "after": null, "op": "d"})
                    };
                    (diff.abs(), v.to_string())
                }
            };
            for _ in 0..copies {
                lines.push_str(&line);
                lines.push('\n');
            }
        }
        if lines.is_empty() {
            return;
        }
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let result = match &mut *out {
            Output::File { file, len } => {
                // One write per batch: a crash never leaves half a batch behind a checkpoint.
                let r = file.write_all(lines.as_bytes());
                if r.is_ok() {
                    *len += lines.len() as u64;
                } else if let Ok(m) = file.metadata() {
                    *len = m.len();
                }
                r
            }
            Output::Stdout => {
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(lines.as_bytes()).and_then(|_| stdout.flush())
            }
        };
        if let Err(e) = result {
            tracing::error!("sink write failed: {e}");
            *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
        }
    }

    fn take_error(&self) -> Option<String> {
        self.failed.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn cut_back(&self, to: u64) -> Result<(), String> {
        match &mut *self.out.lock().unwrap_or_else(|p| p.into_inner()) {
            Output::File { file, len } => {
                file.set_len(to)
                    .map_err(|e| format!("cannot cut the sink file back: {e}"))?;
                *len = to;
                Ok(())
            }
            Output::Stdout => Ok(()),
        }
    }

    fn output_len(&self) -> Option<u64> {
        match &*self.out.lock().unwrap_or_else(|p| p.into_inner()) {
            Output::File { len, .. } => Some(*len),
            Output::Stdout => None,
        }
    }

    fn sync(&self) -> Result<(), String> {
        match &*self.out.lock().unwrap_or_else(|p| p.into_inner()) {
            Output::File { file, .. } => file.sync_data().map_err(|e| e.to_string()),
            Output::Stdout => Ok(()),
        }
    }
}
