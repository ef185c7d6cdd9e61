//! Decodes one JSON object (one line of a file, one Kafka message) into a [`Row`] of the
//! source's declared columns. A missing field is NULL; keys match column names exactly,
//! else case-insensitively. A value of the wrong type is an error naming the column.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use ordered_float::OrderedFloat;
use rampart_repr::{ColumnType, Datum, Error, RelationDesc, Row};
use std::borrow::Cow;
use std::collections::HashMap;

use serde::de::{DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

/// How many key positions a decoder remembers (see `JsonDecoder::order`).
const MAX_REMEMBERED_KEYS: usize = 64;

/// Decoder for one source's columns.
#[derive(Debug, Clone)]
pub struct JsonDecoder {
    columns: Vec<(String, ColumnType)>,
    exact: HashMap<String, usize>,
    lower: HashMap<String, usize>,
    /// Per key position, the key the last object had there and its column: a producer
    /// writes its fields in one order, so the `k`-th key is usually the same as before and
    /// is matched by one string comparison instead of a hash lookup.
    order: Vec<(String, Option<usize>)>,
}

impl JsonDecoder {
    /// A decoder producing rows of `desc`.
    pub fn new(desc: &RelationDesc) -> Self {
        let columns: Vec<(String, ColumnType)> = desc.columns.iter().map(|c| (c.name.clone(), c.ty)).collect();
        let exact = columns.iter().enumerate().map(|(i, (n, _))| (n.clone(), i)).collect();
        let lower = columns
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.to_lowercase(), i))
            .collect();
        JsonDecoder {
            columns,
            exact,
            lower,
            order: Vec::new(),
        }
    }

    fn column_of(&self, key: &str) -> Option<usize> {
        self.exact
            .get(key)
            .copied()
            .or_else(|| self.lower.get(&key.to_lowercase()).copied())
    }

    /// The column of `key`, the `k`-th key of its object (`None`: not a column).
    fn column_at(&mut self, k: usize, key: &str) -> Option<usize> {
        if let Some((last, column)) = self.order.get(k) {
            if last == key {
                return *column;
            }
        }
        let column = self.column_of(key);
        // Only the first keys are remembered: objects with many keys do not grow the list
        // without bound.
        let remembered = self.order.len();
        match self.order.get_mut(k) {
            Some(slot) => *slot = (key.to_string(), column),
            None if k == remembered && k < MAX_REMEMBERED_KEYS => self.order.push((key.to_string(), column)),
            None => {}
        }
        column
    }

    /// Decodes one JSON object. Values are decoded straight into datums as the parser
    /// meets them (no intermediate JSON tree); fields that are not columns are skipped.
    pub fn decode(&mut self, text: &str) -> Result<Row, Error> {
        let mut values = Vec::with_capacity(self.columns.len());
        self.decode_into(text, &mut values)?;
        Ok(Row::new(values))
    }

    /// [`JsonDecoder::decode`] into `values` (cleared first), one datum per column: a
    /// reader reuses one vector for every line instead of allocating one per row.
    pub fn decode_into(&mut self, text: &str, values: &mut Vec<Datum>) -> Result<(), Error> {
        values.clear();
        values.resize(self.columns.len(), Datum::Null);
        let mut de = serde_json::Deserializer::from_str(text);
        RowSeed(self, values).deserialize(&mut de).map_err(describe)?;
        de.end()
            .map_err(|e| Error::data(format!("malformed JSON: {e}")).with_source(e))
    }
}

/// A decoding failure as a data exception (`22000`): the column and what was wrong with its
/// value, or the JSON syntax error.
fn describe(e: serde_json::Error) -> Error {
    let msg = e.to_string();
    let message = if msg.starts_with("column ") || msg.starts_with("expected a JSON object") {
        msg.split(" at line ").next().unwrap_or(&msg).to_string()
    } else {
        format!("malformed JSON: {msg}")
    };
    Error::data(message).with_source(e)
}

/// Decodes an object's fields into the datums of their columns (NULL-filled beforehand).
struct RowSeed<'a>(&'a mut JsonDecoder, &'a mut Vec<Datum>);

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut k = 0;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let column = self.0.column_at(k, &key);
            k += 1;
            match column {
                Some(i) => {
                    let (name, ty) = &self.0.columns[i];
                    let v = map.next_value_seed(DatumSeed(*ty))?;
                    let v = v.map_err(|e| A::Error::custom(format!("column {name}: {e}")))?;
                    if let Some(slot) = self.1.get_mut(i) {
                        *slot = v;
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _seq: A) -> Result<(), A::Error> {
        Err(A::Error::custom("expected a JSON object, found an array"))
    }

    fn visit_str<E: serde::de::Error>(self, _v: &str) -> Result<(), E> {
        Err(E::custom("expected a JSON object, found a string"))
    }

    fn visit_i64<E: serde::de::Error>(self, _v: i64) -> Result<(), E> {
        Err(E::custom("expected a JSON object, found a number"))
    }

    fn visit_u64<E: serde::de::Error>(self, _v: u64) -> Result<(), E> {
        Err(E::custom("expected a JSON object, found a number"))
    }

    fn visit_f64<E: serde::de::Error>(self, _v: f64) -> Result<(), E> {
        Err(E::custom("expected a JSON object, found a number"))
    }

    fn visit_bool<E: serde::de::Error>(self, _v: bool) -> Result<(), E> {
        Err(E::custom("expected a JSON object, found a boolean"))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Err(E::custom("expected a JSON object, found null"))
    }
}

/// Decodes one JSON value into a datum of a column type. The outer `Result` is the JSON
/// syntax; the inner one a value of the wrong type (reported with the column's name).
struct DatumSeed(ColumnType);

impl<'de> DeserializeSeed<'de> for DatumSeed {
    type Value = Result<Datum, Error>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(DatumVisitor(self.0))
    }
}

struct DatumVisitor(ColumnType);

impl<'de> Visitor<'de> for DatumVisitor {
    type Value = Result<Datum, Error>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Ok(Datum::Null))
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Ok(Datum::Null))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(convert(&Value::Bool(v), self.0))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(convert(&Value::from(v), self.0))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(convert(&Value::from(v), self.0))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(match serde_json::Number::from_f64(v) {
            Some(n) => convert(&Value::Number(n), self.0),
            None => Err(Error::data(format!("{v} is not a finite number"))),
        })
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(convert_str(v, self.0))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let v = Value::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
        Ok(convert(&v, self.0))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let v = Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        Ok(convert(&v, self.0))
    }
}

/// Converts a JSON string to a datum without building a JSON value.
fn convert_str(s: &str, ty: ColumnType) -> Result<Datum, Error> {
    match ty {
        ColumnType::Text => Ok(Datum::str(s)),
        ColumnType::Timestamp | ColumnType::TimestampTz => parse_timestamp(s).map(Datum::Timestamp).ok_or_else(|| {
            Error::data(format!(
                "expected {}, found \"{}\"",
                ty.sql_name(),
                s.chars().take(40).collect::<String>()
            ))
        }),
        _ => convert(&Value::String(s.to_string()), ty),
    }
}

fn convert(v: &Value, ty: ColumnType) -> Result<Datum, Error> {
    let wrong = || Error::data(format!("expected {}, found {}", ty.sql_name(), short(v)));
    Ok(match ty {
        ColumnType::Bool => match v {
            Value::Bool(b) => Datum::Bool(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Datum::Bool(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Datum::Bool(false),
            _ => return Err(wrong()),
        },
        ColumnType::Int32 | ColumnType::Int64 => {
            let out_of_range = || Error::data(format!("{} is out of range for bigint", short(v)));
            let i = match v {
                Value::Number(n) if n.is_u64() && n.as_i64().is_none() => return Err(out_of_range()),
                Value::Number(n) => match n.as_i64() {
                    Some(i) => Some(i),
                    None => match n.as_f64().filter(|f| f.fract() == 0.0) {
                        // Whole numbers written with an exponent or a fraction part, only
                        // where an i64 holds them exactly (never saturated to its limits).
                        Some(f) if (i64::MIN as f64..i64::MAX as f64).contains(&f) => Some(f as i64),
                        Some(_) => return Err(out_of_range()),
                        None => None,
                    },
                },
                Value::String(s) => match s.trim().parse::<i64>() {
                    Ok(i) => Some(i),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow
                        ) =>
                    {
                        return Err(out_of_range())
                    }
                    Err(_) => None,
                },
                _ => None,
            }
            .ok_or_else(wrong)?;
            if ty == ColumnType::Int32 && i32::try_from(i).is_err() {
                return Err(Error::data(format!("{i} is out of range for integer")));
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
            Value::Number(n) => Datum::Timestamp(
                epoch_to_micros(n.as_f64().ok_or_else(wrong)?)
                    .ok_or_else(|| Error::data(format!("{} is out of range for {}", short(v), ty.sql_name())))?,
            ),
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
            return Err(Error::unsupported(format!(
                "{} columns cannot be decoded from JSON",
                ty.sql_name()
            )))
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
/// An epoch number in seconds, milliseconds or microseconds (told apart by magnitude) as
/// microseconds; `None` when it is not a time a timestamp can hold (years 4713 BC to
/// 294276 AD, as in PostgreSQL), rather than a value saturated to the limits.
fn epoch_to_micros(x: f64) -> Option<i64> {
    /// 4713-11-24 BC and 294277-01-01 AD in microseconds since the epoch.
    const RANGE_US: std::ops::Range<f64> = -210_866_803_200_000_000.0..9_224_318_016_000_000_000.0;
    let a = x.abs();
    let us = if a >= 1e14 {
        x
    } else if a >= 1e11 {
        x * 1e3
    } else {
        x * 1e6
    };
    RANGE_US.contains(&us).then_some(us as i64)
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
        let mut d = JsonDecoder::new(&desc());
        let row = d
            .decode(r#"{"event_time":"2024-01-01T00:00:01Z","USER_ID":"alice","port":22,"extra":1}"#)
            .unwrap();
        assert_eq!(
            row.to_vec(),
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
        let mut d = JsonDecoder::new(&desc());
        let secs = d.decode(r#"{"event_time":1704067201}"#).unwrap();
        let millis = d.decode(r#"{"event_time":1704067201000}"#).unwrap();
        assert_eq!(secs[0], millis[0]);
    }

    /// Numbers a column cannot hold are decode errors (the line goes to
    /// `rampart_source_errors`), never a value saturated to the type's limits.
    #[test]
    fn numbers_out_of_range_are_errors_not_saturated() {
        let mut d = JsonDecoder::new(&desc());
        for bytes in ["9223372036854775808", "1e30", "-1e19", "\"99999999999999999999\""] {
            let err = d.decode(&format!(r#"{{"bytes":{bytes}}}"#)).unwrap_err();
            assert!(err.message().contains("out of range for bigint"), "{bytes}: {err}");
        }
        let max = d.decode(r#"{"bytes":9223372036854775807}"#).unwrap();
        assert_eq!(max[3], Datum::Int(i64::MAX), "the largest bigint itself is kept");
        let whole = d.decode(r#"{"bytes":1.5e3}"#).unwrap();
        assert_eq!(whole[3], Datum::Int(1500));
        for t in ["1e300", "-1e300", "1e19"] {
            let err = d.decode(&format!(r#"{{"event_time":{t}}}"#)).unwrap_err();
            assert!(err.message().contains("out of range for timestamp"), "{t}: {err}");
        }
    }

    #[test]
    fn wrong_types_and_bad_json_are_errors() {
        let mut d = JsonDecoder::new(&desc());
        assert!(d
            .decode(r#"{"port":"twenty"}"#)
            .unwrap_err()
            .message()
            .contains("column port"));
        assert!(d
            .decode(r#"{"port":99999999999}"#)
            .unwrap_err()
            .message()
            .contains("out of range"));
        assert!(d.decode("{not json").unwrap_err().message().contains("malformed JSON"));
        assert!(d.decode("[1,2]").unwrap_err().message().contains("object"));
    }

    /// Expected rows written by hand: the remembered key order must never put a value in
    /// the wrong column when the order, the case or the set of keys changes.
    #[test]
    fn keys_in_any_order_land_in_their_columns() {
        let mut d = JsonDecoder::new(&desc());
        let row = |d: &mut JsonDecoder, text: &str| d.decode(text).unwrap().to_vec();
        let (alice, bob) = (Datum::str("alice"), Datum::str("bob"));
        for _ in 0..2 {
            assert_eq!(
                row(&mut d, r#"{"user_id":"alice","port":22,"bytes":5}"#),
                vec![Datum::Null, alice.clone(), Datum::Int(22), Datum::Int(5)]
            );
            assert_eq!(
                row(&mut d, r#"{"port":23,"user_id":"bob"}"#),
                vec![Datum::Null, bob.clone(), Datum::Int(23), Datum::Null]
            );
            assert_eq!(
                row(&mut d, r#"{"extra":1,"PORT":24,"user_id":"bob","bytes":6}"#),
                vec![Datum::Null, bob.clone(), Datum::Int(24), Datum::Int(6)]
            );
            assert_eq!(
                row(&mut d, r#"{"extra":"x","user_id":"alice"}"#),
                vec![Datum::Null, alice.clone(), Datum::Null, Datum::Null]
            );
        }
    }
}
