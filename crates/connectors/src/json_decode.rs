//! Decodes one JSON object (one line of a file, one Kafka message) into a [`Row`] of the
//! source's declared columns. A missing field is NULL; keys match column names exactly,
//! else case-insensitively. A value of the wrong type is an error naming the column.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use ordered_float::OrderedFloat;
use rampart_repr::{ColumnType, Datum, RelationDesc, Row};
use serde_json::Value;

/// Decoder for one source's columns.
#[derive(Debug, Clone)]
pub struct JsonDecoder {
    columns: Vec<(String, String, ColumnType)>,
}

impl JsonDecoder {
    /// A decoder producing rows of `desc`.
    pub fn new(desc: &RelationDesc) -> Self {
        JsonDecoder {
            columns: desc
                .columns
                .iter()
                .map(|c| (c.name.clone(), c.name.to_lowercase(), c.ty))
                .collect(),
        }
    }

    /// Decodes one JSON object.
    pub fn decode(&self, text: &str) -> Result<Row, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
        let Value::Object(map) = value else {
            return Err("expected a JSON object".to_string());
        };
        let mut row = Vec::with_capacity(self.columns.len());
        for (name, lower, ty) in &self.columns {
            let v = map
                .get(name)
                .or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(lower)).map(|(_, v)| v));
            let d = match v {
                None | Some(Value::Null) => Datum::Null,
                Some(v) => convert(v, *ty).map_err(|e| format!("column {name}: {e}"))?,
            };
            row.push(d);
        }
        Ok(row)
    }
}

fn convert(v: &Value, ty: ColumnType) -> Result<Datum, String> {
    let wrong = || format!("expected {}, found {}", ty.sql_name(), short(v));
    Ok(match ty {
        ColumnType::Bool => match v {
            Value::Bool(b) => Datum::Bool(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Datum::Bool(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Datum::Bool(false),
            _ => return Err(wrong()),
        },
        ColumnType::Int32 | ColumnType::Int64 => {
            let i = match v {
                Value::Number(n) => n
                    .as_i64()
                    .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            }
            .ok_or_else(wrong)?;
            if ty == ColumnType::Int32 && i32::try_from(i).is_err() {
                return Err(format!("{i} is out of range for integer"));
            }
            Datum::Int(i)
        }
        ColumnType::Float64 => match v {
            Value::Number(n) => Datum::Float(OrderedFloat(n.as_f64().ok_or_else(wrong)?)),
            Value::String(s) => Datum::Float(OrderedFloat(s.trim().parse::<f64>().map_err(|_| wrong())?)),
            _ => return Err(wrong()),
        },
        ColumnType::Text => match v {
            Value::String(s) => Datum::str(s),
            Value::Number(n) => Datum::str(&n.to_string()),
            Value::Bool(b) => Datum::str(&b.to_string()),
            other => Datum::str(&other.to_string()),
        },
        ColumnType::Timestamp | ColumnType::TimestampTz => match v {
            Value::String(s) => Datum::Timestamp(parse_timestamp(s).ok_or_else(wrong)?),
            Value::Number(n) => Datum::Timestamp(epoch_to_micros(n.as_f64().ok_or_else(wrong)?)),
            _ => return Err(wrong()),
        },
        ColumnType::Date => match v {
            Value::String(s) => {
                let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| wrong())?;
                Datum::Date((d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32)
            }
            _ => return Err(wrong()),
        },
        ColumnType::Interval | ColumnType::Null => {
            return Err(format!("{} columns cannot be decoded from JSON", ty.sql_name()))
        }
    })
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!(
            "{}...",
            &s[..s.char_indices().nth(40).map(|(i, _)| i).unwrap_or(s.len())]
        )
    } else {
        s
    }
}

/// Parses RFC 3339 (`2024-01-01T12:00:00Z`, with offset) and the PostgreSQL-style
/// `2024-01-01 12:00:00[.ffffff][+00[:00]]` (no zone means UTC) into microseconds.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f%#z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%#z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.timestamp_micros());
        }
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    None
}

/// Interprets an epoch number by magnitude: seconds, milliseconds or microseconds.
fn epoch_to_micros(x: f64) -> i64 {
    let a = x.abs();
    if a >= 1e14 {
        x as i64
    } else if a >= 1e11 {
        (x * 1e3) as i64
    } else {
        (x * 1e6) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc() -> RelationDesc {
        RelationDesc::new([
            ("event_time".to_string(), ColumnType::TimestampTz),
            ("user_id".to_string(), ColumnType::Text),
            ("port".to_string(), ColumnType::Int32),
            ("bytes".to_string(), ColumnType::Int64),
        ])
    }

    #[test]
    fn decodes_declared_columns_and_nulls_missing_ones() {
        let d = JsonDecoder::new(&desc());
        let row = d
            .decode(r#"{"event_time":"2024-01-01T00:00:01Z","USER_ID":"alice","port":22,"extra":1}"#)
            .unwrap();
        assert_eq!(
            row,
            vec![
                Datum::Timestamp(1_704_067_201_000_000),
                Datum::str("alice"),
                Datum::Int(22),
                Datum::Null
            ]
        );
    }

    #[test]
    fn epoch_numbers_are_timestamps() {
        let d = JsonDecoder::new(&desc());
        let secs = d.decode(r#"{"event_time":1704067201}"#).unwrap();
        let millis = d.decode(r#"{"event_time":1704067201000}"#).unwrap();
        assert_eq!(secs[0], millis[0]);
    }

    #[test]
    fn wrong_types_and_bad_json_are_errors() {
        let d = JsonDecoder::new(&desc());
        assert!(d.decode(r#"{"port":"twenty"}"#).unwrap_err().contains("column port"));
        assert!(d
            .decode(r#"{"port":99999999999}"#)
            .unwrap_err()
            .contains("out of range"));
        assert!(d.decode("{not json").unwrap_err().contains("malformed JSON"));
        assert!(d.decode("[1,2]").unwrap_err().contains("object"));
    }
}
