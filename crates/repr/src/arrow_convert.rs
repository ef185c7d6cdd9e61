//! Conversion between [`Row`]s and Arrow [`RecordBatch`]es.
//!
//! The dataflow moves rows; DataFusion evaluates expressions on record batches. Every
//! operator that evaluates an expression converts a batch of rows to columns, evaluates,
//! and converts the result back.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder,
    IntervalMonthDayNanoBuilder, NullArray, RecordBatch, RecordBatchOptions, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Date64Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    IntervalDayTimeType, IntervalMonthDayNanoType, IntervalUnit, IntervalYearMonthType, SchemaRef, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt16Type,
    UInt32Type, UInt64Type, UInt8Type,
};
use datafusion::arrow::datatypes::{
    DurationMicrosecondType, DurationMillisecondType, DurationNanosecondType, DurationSecondType, IntervalMonthDayNano,
};
use datafusion::arrow::error::ArrowError;
use ordered_float::OrderedFloat;

use crate::datum::Datum;
use crate::{Error, Row};

/// Something read like a row: its `i`-th datum (NULL past its end).
pub trait RowRef {
    /// The `i`-th datum.
    fn datum(&self, i: usize) -> &Datum;
}

static NULL: Datum = Datum::Null;

impl RowRef for Row {
    fn datum(&self, i: usize) -> &Datum {
        self.get(i).unwrap_or(&NULL)
    }
}

/// Datums not yet made a row (a source reader's decoded values, before its projection).
impl RowRef for [Datum] {
    fn datum(&self, i: usize) -> &Datum {
        self.get(i).unwrap_or(&NULL)
    }
}

/// Two rows read as one, the left's columns then the right's: a join's candidate pair,
/// tested without building the joined row.
#[derive(Debug)]
pub struct JoinedRow<'a> {
    /// Left row.
    pub left: &'a Row,
    /// Right row.
    pub right: &'a Row,
}

impl RowRef for JoinedRow<'_> {
    fn datum(&self, i: usize) -> &Datum {
        match self.left.get(i) {
            Some(d) => d,
            None => self.right.datum(i - self.left.len()),
        }
    }
}

/// Builds a record batch of `schema` from rows. A datum that does not fit its column's
/// type is an error naming the column.
pub fn rows_to_batch<'a, R: RowRef + 'a>(
    rows: impl ExactSizeIterator<Item = &'a R> + Clone,
    schema: &SchemaRef,
) -> Result<RecordBatch, ArrowError> {
    let all: Vec<usize> = (0..schema.fields().len()).collect();
    rows_to_batch_projected(rows, schema, &all)
}

/// Builds a record batch of `schema` from some columns of the rows: column `j` of the
/// batch is column `columns[j]` of each row (for evaluating expressions that read a few
/// columns of wide rows).
pub fn rows_to_batch_projected<'a, R: RowRef + 'a>(
    rows: impl ExactSizeIterator<Item = &'a R> + Clone,
    schema: &SchemaRef,
    columns: &[usize],
) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for (field, &i) in schema.fields().iter().zip(columns) {
        let col = column_of(rows.clone().map(|r| r.datum(i)), n, field.data_type())
            .map_err(|e| ArrowError::InvalidArgumentError(format!("column {}: {e}", field.name())))?;
        arrays.push(col);
    }
    RecordBatch::try_new_with_options(
        schema.clone(),
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(n)),
    )
}

fn mismatch(d: &Datum, dt: &DataType) -> Error {
    Error::data(format!("value {d:?} does not fit type {dt}"))
}

fn column_of<'a>(vals: impl Iterator<Item = &'a Datum>, n: usize, dt: &DataType) -> Result<ArrayRef, Error> {
    macro_rules! build {
        ($builder:expr, $pat:pat => $val:expr) => {{
            let mut b = $builder;
            for d in vals {
                match d {
                    Datum::Null => b.append_null(),
                    $pat => b.append_value($val),
                    other => return Err(mismatch(other, dt)),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    Ok(match dt {
        DataType::Null => Arc::new(NullArray::new(n)),
        DataType::Boolean => build!(BooleanBuilder::with_capacity(n), Datum::Bool(b) => *b),
        DataType::Int32 => build!(Int32Builder::with_capacity(n), Datum::Int(i) => *i as i32),
        DataType::Int64 => build!(Int64Builder::with_capacity(n), Datum::Int(i) => *i),
        DataType::Float64 => {
            let mut b = Float64Builder::with_capacity(n);
            for d in vals {
                match d {
                    Datum::Null => b.append_null(),
                    Datum::Float(f) => b.append_value(f.0),
                    Datum::Int(i) => b.append_value(*i as f64),
                    other => return Err(mismatch(other, dt)),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Utf8 => build!(StringBuilder::with_capacity(n, n * 16), Datum::Str(s) => &**s),
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            let mut b = TimestampMicrosecondBuilder::with_capacity(n);
            for d in vals {
                match d {
                    Datum::Null => b.append_null(),
                    Datum::Timestamp(t) => b.append_value(*t),
                    other => return Err(mismatch(other, dt)),
                }
            }
            Arc::new(b.finish().with_timezone_opt(tz.clone()))
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            build!(IntervalMonthDayNanoBuilder::with_capacity(n), Datum::Interval(iv) => IntervalMonthDayNano::new(iv.0, iv.1, iv.2))
        }
        DataType::Date32 => build!(Date32Builder::with_capacity(n), Datum::Date(d) => *d),
        other => {
            // Build the column in the type its values naturally have, then let Arrow cast it.
            let vals: Vec<&Datum> = vals.collect();
            let natural = vals
                .iter()
                .find(|d| !d.is_null())
                .map(|d| natural_type(d))
                .unwrap_or(DataType::Null);
            if &natural == other {
                return Err(Error::unsupported(format!("unsupported column type {other}")));
            }
            let col = column_of(vals.into_iter(), n, &natural)?;
            datafusion::arrow::compute::cast(&col, other).map_err(|e| Error::data(e.to_string()).with_source(e))?
        }
    })
}

fn natural_type(d: &Datum) -> DataType {
    match d {
        Datum::Null => DataType::Null,
        Datum::Bool(_) => DataType::Boolean,
        Datum::Int(_) => DataType::Int64,
        Datum::Float(_) => DataType::Float64,
        Datum::Str(_) => DataType::Utf8,
        Datum::Timestamp(_) => DataType::Timestamp(TimeUnit::Microsecond, None),
        Datum::Interval(..) => DataType::Interval(IntervalUnit::MonthDayNano),
        Datum::Date(_) => DataType::Date32,
    }
}

/// Converts every row of a record batch to a [`Row`].
pub fn batch_to_rows(batch: &RecordBatch) -> Result<Vec<Row>, ArrowError> {
    let n = batch.num_rows();
    let mut rows: Vec<Vec<Datum>> = (0..n).map(|_| Vec::with_capacity(batch.num_columns())).collect();
    for col in batch.columns() {
        append_column(col, &mut rows)?;
    }
    Ok(rows.into_iter().map(Row::new).collect())
}

/// Converts one Arrow array to datums, one per row.
pub fn array_to_datums(col: &ArrayRef) -> Result<Vec<Datum>, ArrowError> {
    let mut rows: Vec<Vec<Datum>> = (0..col.len()).map(|_| Vec::with_capacity(1)).collect();
    append_column(col, &mut rows)?;
    Ok(rows.into_iter().map(|mut r| r.pop().unwrap_or(Datum::Null)).collect())
}

fn append_column(col: &ArrayRef, rows: &mut [Vec<Datum>]) -> Result<(), ArrowError> {
    macro_rules! prim {
        ($t:ty, $f:expr) => {{
            let a = col.as_primitive::<$t>();
            for (i, row) in rows.iter_mut().enumerate() {
                row.push(if a.is_null(i) { Datum::Null } else { $f(a.value(i)) });
            }
        }};
    }
    match col.data_type() {
        DataType::Null => rows.iter_mut().for_each(|r| r.push(Datum::Null)),
        DataType::Boolean => {
            let a = col.as_boolean();
            for (i, row) in rows.iter_mut().enumerate() {
                row.push(if a.is_null(i) {
                    Datum::Null
                } else {
                    Datum::Bool(a.value(i))
                });
            }
        }
        DataType::Int8 => prim!(Int8Type, |v| Datum::Int(v as i64)),
        DataType::Int16 => prim!(Int16Type, |v| Datum::Int(v as i64)),
        DataType::Int32 => prim!(Int32Type, |v| Datum::Int(v as i64)),
        DataType::Int64 => prim!(Int64Type, Datum::Int),
        DataType::UInt8 => prim!(UInt8Type, |v| Datum::Int(v as i64)),
        DataType::UInt16 => prim!(UInt16Type, |v| Datum::Int(v as i64)),
        DataType::UInt32 => prim!(UInt32Type, |v| Datum::Int(v as i64)),
        DataType::UInt64 => prim!(UInt64Type, |v| Datum::Int(v as i64)),
        DataType::Float32 => prim!(Float32Type, |v| Datum::Float(OrderedFloat(v as f64))),
        DataType::Float64 => prim!(Float64Type, |v| Datum::Float(OrderedFloat(v))),
        DataType::Decimal128(_, scale) => {
            let a = col.as_primitive::<datafusion::arrow::datatypes::Decimal128Type>();
            let div = 10f64.powi(*scale as i32);
            for (i, row) in rows.iter_mut().enumerate() {
                row.push(if a.is_null(i) {
                    Datum::Null
                } else {
                    Datum::Float(OrderedFloat(a.value(i) as f64 / div))
                });
            }
        }
        DataType::Utf8 => {
            let a = col.as_string::<i32>();
            for (i, row) in rows.iter_mut().enumerate() {
                row.push(if a.is_null(i) {
                    Datum::Null
                } else {
                    Datum::str(a.value(i))
                });
            }
        }
        DataType::LargeUtf8 => {
            let a = col.as_string::<i64>();
            for (i, row) in rows.iter_mut().enumerate() {
                row.push(if a.is_null(i) {
                    Datum::Null
                } else {
                    Datum::str(a.value(i))
                });
            }
        }
        DataType::Utf8View => {
            let a = col.as_string_view();
            for (i, row) in rows.iter_mut().enumerate() {
                row.push(if a.is_null(i) {
                    Datum::Null
                } else {
                    Datum::str(a.value(i))
                });
            }
        }
        DataType::Timestamp(TimeUnit::Second, _) => {
            prim!(TimestampSecondType, |v: i64| Datum::Timestamp(v * 1_000_000))
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            prim!(TimestampMillisecondType, |v: i64| Datum::Timestamp(v * 1_000))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => prim!(TimestampMicrosecondType, Datum::Timestamp),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            prim!(TimestampNanosecondType, |v: i64| Datum::Timestamp(v.div_euclid(1_000)))
        }
        DataType::Date32 => prim!(Date32Type, Datum::Date),
        DataType::Date64 => prim!(Date64Type, |v: i64| Datum::Date((v / 86_400_000) as i32)),
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            prim!(IntervalMonthDayNanoType, |v: IntervalMonthDayNano| Datum::interval(
                v.months,
                v.days,
                v.nanoseconds
            ))
        }
        DataType::Interval(IntervalUnit::YearMonth) => prim!(IntervalYearMonthType, |v: i32| Datum::interval(v, 0, 0)),
        DataType::Interval(IntervalUnit::DayTime) => prim!(
            IntervalDayTimeType,
            |v: datafusion::arrow::datatypes::IntervalDayTime| {
                Datum::interval(0, v.days, v.milliseconds as i64 * 1_000_000)
            }
        ),
        DataType::Duration(TimeUnit::Second) => {
            prim!(DurationSecondType, |v: i64| Datum::interval(0, 0, v * 1_000_000_000))
        }
        DataType::Duration(TimeUnit::Millisecond) => {
            prim!(DurationMillisecondType, |v: i64| Datum::interval(0, 0, v * 1_000_000))
        }
        DataType::Duration(TimeUnit::Microsecond) => {
            prim!(DurationMicrosecondType, |v: i64| Datum::interval(0, 0, v * 1_000))
        }
        DataType::Duration(TimeUnit::Nanosecond) => prim!(DurationNanosecondType, |v: i64| Datum::interval(0, 0, v)),
        other => {
            return Err(ArrowError::NotYetImplemented(format!(
                "Rampart cannot yet store values of type {other}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ColumnType, RelationDesc};

    #[test]
    fn rows_round_trip_through_arrow() {
        let desc = RelationDesc::new([
            ("a".to_string(), ColumnType::Int64),
            ("b".to_string(), ColumnType::Text),
            ("c".to_string(), ColumnType::TimestampTz),
            ("d".to_string(), ColumnType::Float64),
            ("e".to_string(), ColumnType::Bool),
        ]);
        let rows = vec![
            crate::row![
                Datum::Int(1),
                Datum::str("x"),
                Datum::Timestamp(1_700_000_000_000_000),
                Datum::Float(OrderedFloat(1.5)),
                Datum::Bool(true),
            ],
            crate::row![Datum::Null, Datum::Null, Datum::Null, Datum::Null, Datum::Null],
        ];
        let batch = rows_to_batch(rows.iter(), &desc.arrow_schema()).unwrap();
        assert_eq!(batch_to_rows(&batch).unwrap(), rows);
    }

    #[test]
    fn wrong_type_is_an_error_naming_the_column() {
        let desc = RelationDesc::new([("a".to_string(), ColumnType::Int64)]);
        let rows = [crate::row![Datum::str("nope")]];
        let err = rows_to_batch(rows.iter(), &desc.arrow_schema()).unwrap_err();
        assert!(err.to_string().contains("column a"), "{err}");
    }
}
