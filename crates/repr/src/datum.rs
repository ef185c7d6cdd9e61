//! [`Datum`]: one value of any SQL type Rampart supports, and [`Row`], a tuple of them.

use std::fmt;
use std::sync::Arc;

use ordered_float::OrderedFloat;
use serde::{Deserialize, Serialize};

/// One SQL value. Ordered and hashable so that rows can be keys of differential
/// dataflow arrangements; `Null` sorts first.
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
    /// VARCHAR / TEXT.
    Str(Arc<str>),
    /// TIMESTAMP or TIMESTAMPTZ: microseconds since the Unix epoch, UTC.
    Timestamp(i64),
    /// INTERVAL as (months, days, nanoseconds), as Arrow's month-day-nano interval.
    Interval(i32, i32, i64),
    /// DATE: days since the Unix epoch.
    Date(i32),
}

impl Datum {
    /// A string datum.
    pub fn str(s: &str) -> Datum {
        Datum::Str(Arc::from(s))
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
            Datum::Interval(m, d, ns) => write!(f, "{m} mons {d} days {ns} ns"),
            Datum::Date(d) => write!(f, "date+{d}"),
        }
    }
}

/// A tuple of datums: one row of a relation, in column order.
pub type Row = Vec<Datum>;
