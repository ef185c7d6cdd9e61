//! [`Datum`]: one value of any SQL type Rampart supports.

use std::fmt;

use ordered_float::OrderedFloat;
use serde::{Deserialize, Serialize};

use crate::text::Str;

/// One SQL value. Ordered and hashable so that rows can be keys of differential
/// dataflow arrangements; `Null` sorts first. 16 bytes: every payload fits in 8 (strings
/// are inline or thin reference-counted pointers, the rare interval is boxed), so a row of n columns
/// is 16n bytes, which rows held in several arrangements pay for in each. Strings of up to
/// 14 bytes are held inline ([`Str`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub enum Datum {
    /// SQL NULL.
    #[default]
    Null,
    /// BOOLEAN.
    Bool(bool),
    /// Any integer type (SMALLINT, INT, BIGINT), widened to 64 bits.
    Int(i64),
    /// DOUBLE PRECISION / REAL / NUMERIC (approximated).
    Float(OrderedFloat<f64>),
    /// VARCHAR / TEXT (short ones inline, clones of long ones share the string).
    Str(Str),
    /// TIMESTAMP or TIMESTAMPTZ: microseconds since the Unix epoch, UTC.
    Timestamp(i64),
    /// INTERVAL as (months, days, nanoseconds), as Arrow's month-day-nano interval.
    Interval(Box<(i32, i32, i64)>),
    /// DATE: days since the Unix epoch.
    Date(i32),
}

impl Datum {
    /// A string datum.
    pub fn str(s: &str) -> Datum {
        Datum::Str(Str::new(s))
    }

    /// An interval datum of `months`, `days` and `nanos`.
    pub fn interval(months: i32, days: i32, nanos: i64) -> Datum {
        Datum::Interval(Box::new((months, days, nanos)))
    }

    /// Whether this is SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Datum::Null)
    }

    /// The string inside, if this is a string datum.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Datum::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer inside, if this is an integer datum.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Datum::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The value as f64, for integer and float datums.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Datum::Int(i) => Some(*i as f64),
            Datum::Float(f) => Some(f.0),
            _ => None,
        }
    }
}

impl fmt::Display for Datum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Datum::Null => write!(f, "NULL"),
            Datum::Bool(b) => write!(f, "{b}"),
            Datum::Int(i) => write!(f, "{i}"),
            Datum::Float(x) => write!(f, "{}", x.0),
            Datum::Str(s) => write!(f, "{s}"),
            Datum::Timestamp(us) => match chrono::DateTime::from_timestamp_micros(*us) {
                Some(t) => write!(f, "{}", t.format("%Y-%m-%d %H:%M:%S%.f%:z")),
                None => write!(f, "{us}us"),
            },
            Datum::Interval(iv) => write!(f, "{} mons {} days {} ns", iv.0, iv.1, iv.2),
            Datum::Date(d) => write!(f, "date+{d}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datum_is_sixteen_bytes() {
        assert_eq!(std::mem::size_of::<Datum>(), 16);
    }

    #[test]
    fn serialized_form_is_unchanged() {
        // Table and sink logs hold datums as JSON: strings as JSON strings, intervals as
        // their three numbers, as before strings became thin pointers and intervals boxed.
        assert_eq!(serde_json::to_string(&Datum::str("a")).unwrap(), r#"{"Str":"a"}"#);
        assert_eq!(
            serde_json::to_string(&Datum::interval(1, 2, 3)).unwrap(),
            r#"{"Interval":[1,2,3]}"#
        );
        let back: Datum = serde_json::from_str(r#"{"Interval":[1,2,3]}"#).unwrap();
        assert_eq!(back, Datum::interval(1, 2, 3));
    }
}
