//! How every sink encodes a view's changes as JSON: the formats of `FORMAT PLAIN | UPSERT |
//! DEBEZIUM ENCODE JSON`, for targets without message keys (file and stdout lines,
//! `write_lines`) and for keyed messages (Kafka, `keyed_messages`).
//!
//! A row is a JSON object keyed by column name ([`row_to_json`]; timestamps RFC 3339 UTC,
//! keys in column-name order). A change is a row and a diff: `n > 0` inserts `n` copies,
//! `n < 0` deletes `-n`.
//!
//! | format | line (file, stdout) | keyed message (Kafka) |
//! |---|---|---|
//! | PLAIN | the row, per inserted copy; deletions are not emitted | the same; key: the key columns, or none |
//! | UPSERT | `{"op": "upsert" \| "delete", "row": ...}` per copy | per key and time: key = the key columns, value = the last inserted row, or none (a tombstone) |
//! | DEBEZIUM | `{"after", "before", "op": "c" \| "d"}` per copy | the same envelope, keyed like PLAIN |

use std::collections::BTreeMap;

use rampart_dataflow::{Diff, Time};
use rampart_repr::{Datum, Error, RelationDesc, Row};
use serde_json::{Map, Value};

/// How a sink encodes changes (`FORMAT ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkFormat {
    /// Inserts only.
    Plain,
    /// The operation with the row (lines), or the key's last state (keyed messages).
    Upsert,
    /// `{"before": ..., "after": ..., "op": "c"|"d"}` in Debezium's envelope.
    Debezium,
}

impl SinkFormat {
    /// The format for a `FORMAT` keyword (default PLAIN).
    pub fn parse(format: Option<&str>) -> Result<Self, Error> {
        match format.map(|f| f.to_uppercase()).as_deref() {
            None | Some("PLAIN") => Ok(SinkFormat::Plain),
            Some("UPSERT") => Ok(SinkFormat::Upsert),
            Some("DEBEZIUM") => Ok(SinkFormat::Debezium),
            Some(other) => Err(Error::unsupported(format!("FORMAT {other} is not supported for sinks"))),
        }
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

/// Debezium's envelope of one copy of a change: created (`diff > 0`) or deleted.
fn debezium(row: Value, diff: Diff) -> Value {
    if diff > 0 {
        serde_json::json!({"before": null, "after": row, "op": "c"})
    } else {
        serde_json::json!({"before": row, "after": null, "op": "d"})
    }
}

/// Appends the JSON lines of a batch of changes to `out`, one line per copy (see the
/// module docs).
pub(crate) fn write_lines(format: SinkFormat, desc: &RelationDesc, updates: &[(Row, Time, Diff)], out: &mut String) {
    for (row, _t, diff) in updates {
        let value = row_to_json(desc, row);
        let (copies, line) = match format {
            SinkFormat::Plain if *diff > 0 => (*diff, value.to_string()),
            SinkFormat::Plain => continue,
            SinkFormat::Upsert => {
                let op = if *diff > 0 { "upsert" } else { "delete" };
                (diff.abs(), serde_json::json!({"op": op, "row": value}).to_string())
            }
            SinkFormat::Debezium => (diff.abs(), debezium(value, *diff).to_string()),
        };
        for _ in 0..copies {
            out.push_str(&line);
            out.push('\n');
        }
    }
}

/// One keyed message: key, payload (none: a tombstone) and the changes it stands for.
#[derive(Debug, PartialEq)]
pub(crate) struct KeyedMessage {
    pub(crate) key: Option<String>,
    pub(crate) payload: Option<String>,
    pub(crate) changes: Vec<(Row, Diff)>,
}

/// The key of `row`: the JSON object of the `key_columns` (indexes into `desc`); none
/// without key columns.
fn key(desc: &RelationDesc, key_columns: &[usize], row: &Row) -> Option<String> {
    if key_columns.is_empty() {
        return None;
    }
    let full = row_to_json(desc, row);
    let mut m = Map::new();
    for &i in key_columns {
        let name = &desc.columns[i].name;
        m.insert(name.clone(), full.get(name).cloned().unwrap_or(Value::Null));
    }
    Some(Value::Object(m).to_string())
}

/// The keyed messages of a batch of changes sorted by time (see the module docs). UPSERT
/// needs key columns: within one time, a key that is both deleted and inserted (an update)
/// gets one message, the new value, carrying both changes.
pub(crate) fn keyed_messages(
    format: SinkFormat,
    desc: &RelationDesc,
    key_columns: &[usize],
    updates: &[(Row, Time, Diff)],
) -> Vec<KeyedMessage> {
    let mut out = Vec::new();
    match format {
        SinkFormat::Plain => {
            for (row, _t, diff) in updates {
                if *diff > 0 {
                    let value = row_to_json(desc, row).to_string();
                    let key = key(desc, key_columns, row);
                    for _ in 0..*diff {
                        out.push(KeyedMessage {
                            key: key.clone(),
                            payload: Some(value.clone()),
                            changes: vec![(row.clone(), 1)],
                        });
                    }
                }
            }
        }
        SinkFormat::Debezium => {
            for (row, _t, diff) in updates {
                let v = debezium(row_to_json(desc, row), *diff).to_string();
                let key = key(desc, key_columns, row);
                for _ in 0..diff.abs() {
                    out.push(KeyedMessage {
                        key: key.clone(),
                        payload: Some(v.clone()),
                        changes: vec![(row.clone(), diff.signum())],
                    });
                }
            }
        }
        SinkFormat::Upsert => {
            // Per time: the last state of each key (an insert wins over a delete of the
            // same key at the same time: that is an update).
            let mut start = 0;
            while start < updates.len() {
                let t = updates[start].1;
                let end = start + updates[start..].iter().take_while(|u| u.1 == t).count();
                let mut keys: BTreeMap<String, KeyedMessage> = BTreeMap::new();
                for (row, _t, diff) in &updates[start..end] {
                    let key = key(desc, key_columns, row).unwrap_or_default();
                    let message = keys.entry(key.clone()).or_insert_with(|| KeyedMessage {
                        key: Some(key),
                        payload: None,
                        changes: Vec::new(),
                    });
                    if *diff > 0 {
                        message.payload = Some(row_to_json(desc, row).to_string());
                    }
                    message.changes.push((row.clone(), *diff));
                }
                out.extend(keys.into_values());
                start = end;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_repr::{Column, ColumnType};

    fn desc() -> RelationDesc {
        let column = |name: &str, ty| Column { name: name.into(), ty };
        RelationDesc {
            columns: vec![column("k", ColumnType::Text), column("n", ColumnType::Int64)],
        }
    }

    fn row(k: &str, n: i64) -> Row {
        rampart_repr::row![Datum::Str(k.into()), Datum::Int(n)]
    }

    /// Two copies of `a` inserted, `b` deleted (time 1), `c` inserted (time 2), `c` updated
    /// (time 3).
    fn changes() -> Vec<(Row, Time, Diff)> {
        vec![
            (row("a", 1), 1, 2),
            (row("b", 2), 1, -1),
            (row("c", 3), 2, 1),
            (row("c", 3), 3, -1),
            (row("c", 4), 3, 1),
        ]
    }

    fn lines(format: SinkFormat) -> Vec<String> {
        let mut out = String::new();
        write_lines(format, &desc(), &changes(), &mut out);
        out.lines().map(str::to_string).collect()
    }

    #[test]
    fn rows_are_objects_keyed_by_column_name_with_rfc3339_timestamps() {
        let desc = RelationDesc {
            columns: vec![
                Column {
                    name: "t".into(),
                    ty: ColumnType::TimestampTz,
                },
                Column {
                    name: "f".into(),
                    ty: ColumnType::Float64,
                },
            ],
        };
        let row = rampart_repr::row![
            Datum::Timestamp(1_795_341_600_123_000),
            Datum::Float(ordered_float::OrderedFloat(1.5))
        ];
        assert_eq!(
            row_to_json(&desc, &row).to_string(),
            r#"{"f":1.5,"t":"2026-11-22T10:00:00.123Z"}"#
        );
    }

    #[test]
    fn lines_per_format() {
        assert_eq!(
            lines(SinkFormat::Plain),
            [
                r#"{"k":"a","n":1}"#,
                r#"{"k":"a","n":1}"#,
                r#"{"k":"c","n":3}"#,
                r#"{"k":"c","n":4}"#
            ]
        );
        assert_eq!(
            lines(SinkFormat::Upsert),
            [
                r#"{"op":"upsert","row":{"k":"a","n":1}}"#,
                r#"{"op":"upsert","row":{"k":"a","n":1}}"#,
                r#"{"op":"delete","row":{"k":"b","n":2}}"#,
                r#"{"op":"upsert","row":{"k":"c","n":3}}"#,
                r#"{"op":"delete","row":{"k":"c","n":3}}"#,
                r#"{"op":"upsert","row":{"k":"c","n":4}}"#,
            ]
        );
        assert_eq!(
            lines(SinkFormat::Debezium),
            [
                r#"{"after":{"k":"a","n":1},"before":null,"op":"c"}"#,
                r#"{"after":{"k":"a","n":1},"before":null,"op":"c"}"#,
                r#"{"after":null,"before":{"k":"b","n":2},"op":"d"}"#,
                r#"{"after":{"k":"c","n":3},"before":null,"op":"c"}"#,
                r#"{"after":null,"before":{"k":"c","n":3},"op":"d"}"#,
                r#"{"after":{"k":"c","n":4},"before":null,"op":"c"}"#,
            ]
        );
    }

    fn messages(format: SinkFormat, key_columns: &[usize]) -> Vec<(Option<String>, Option<String>, Vec<Diff>)> {
        keyed_messages(format, &desc(), key_columns, &changes())
            .into_iter()
            .map(|m| (m.key, m.payload, m.changes.iter().map(|c| c.1).collect()))
            .collect()
    }

    fn s(text: &str) -> Option<String> {
        Some(text.to_string())
    }

    #[test]
    fn plain_messages_are_the_inserted_rows_keyed_by_the_key_columns() {
        let unkeyed = messages(SinkFormat::Plain, &[]);
        assert_eq!(unkeyed.len(), 4);
        assert!(unkeyed.iter().all(|m| m.0.is_none() && m.2 == [1]));
        assert_eq!(unkeyed[3].1, s(r#"{"k":"c","n":4}"#));
        // The key object lists its columns in name order, whatever order they are given in.
        let keyed = messages(SinkFormat::Plain, &[1, 0]);
        assert_eq!(keyed[0].0, s(r#"{"k":"a","n":1}"#));
    }

    #[test]
    fn debezium_messages_carry_one_copy_each() {
        assert_eq!(
            messages(SinkFormat::Debezium, &[0])[1..3],
            [
                (
                    s(r#"{"k":"a"}"#),
                    s(r#"{"after":{"k":"a","n":1},"before":null,"op":"c"}"#),
                    vec![1]
                ),
                (
                    s(r#"{"k":"b"}"#),
                    s(r#"{"after":null,"before":{"k":"b","n":2},"op":"d"}"#),
                    vec![-1]
                ),
            ]
        );
        assert!(messages(SinkFormat::Debezium, &[]).iter().all(|m| m.0.is_none()));
    }

    #[test]
    fn upsert_update_at_one_time_is_one_value() {
        assert_eq!(
            messages(SinkFormat::Upsert, &[0]),
            vec![
                (s(r#"{"k":"a"}"#), s(r#"{"k":"a","n":1}"#), vec![2]),
                (s(r#"{"k":"b"}"#), None, vec![-1]),
                (s(r#"{"k":"c"}"#), s(r#"{"k":"c","n":3}"#), vec![1]),
                (s(r#"{"k":"c"}"#), s(r#"{"k":"c","n":4}"#), vec![-1, 1]),
            ]
        );
        let row = |k: &str, n: i64| rampart_repr::row![Datum::Str(k.into()), Datum::Int(n)];
        let got: Vec<_> = keyed_messages(
            SinkFormat::Upsert,
            &desc(),
            &[0],
            &[
                (row("a", 2), 1, 1),
                (row("a", 1), 1, -1),
                (row("b", 5), 1, -1),
                (row("a", 2), 2, -1),
            ],
        )
        .into_iter()
        .map(|m| (m.key, m.payload))
        .collect();
        assert_eq!(
            got,
            vec![
                (s(r#"{"k":"a"}"#), s(r#"{"k":"a","n":2}"#)),
                (s(r#"{"k":"b"}"#), None),
                (s(r#"{"k":"a"}"#), None),
            ]
        );
    }
}
