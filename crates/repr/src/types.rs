//! SQL column types and relation descriptions, and their Arrow equivalents.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, IntervalUnit, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

/// The SQL type of a column, as Rampart stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ColumnType {
    /// BOOLEAN.
    Bool,
    /// SMALLINT / INT / INTEGER (32-bit in Arrow).
    Int32,
    /// BIGINT.
    Int64,
    /// REAL / DOUBLE PRECISION / NUMERIC / DECIMAL (stored as f64).
    Float64,
    /// VARCHAR / TEXT / STRING.
    Text,
    /// TIMESTAMP (without time zone).
    Timestamp,
    /// TIMESTAMPTZ (stored as UTC).
    TimestampTz,
    /// INTERVAL.
    Interval,
    /// DATE.
    Date,
    /// The type of an untyped NULL literal.
    Null,
}

/// The time zone Arrow timestamps of TIMESTAMPTZ columns carry.
pub const UTC: &str = "+00:00";

impl ColumnType {
    /// The Arrow data type a column of this type is evaluated as.
    pub fn to_arrow(self) -> DataType {
        match self {
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Int32 => DataType::Int32,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Text => DataType::Utf8,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            ColumnType::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            ColumnType::Interval => DataType::Interval(IntervalUnit::MonthDayNano),
            ColumnType::Date => DataType::Date32,
            ColumnType::Null => DataType::Null,
        }
    }

    /// The column type for an Arrow type, or `None` when Rampart cannot store it.
    pub fn from_arrow(dt: &DataType) -> Option<ColumnType> {
        Some(match dt {
            DataType::Boolean => ColumnType::Bool,
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => {
                ColumnType::Int32
            }
            DataType::Int64 | DataType::UInt32 | DataType::UInt64 => ColumnType::Int64,
            DataType::Float16 | DataType::Float32 | DataType::Float64 => ColumnType::Float64,
            DataType::Decimal128(..) | DataType::Decimal256(..) => ColumnType::Float64,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ColumnType::Text,
            DataType::Timestamp(_, None) => ColumnType::Timestamp,
            DataType::Timestamp(_, Some(_)) => ColumnType::TimestampTz,
            DataType::Interval(_) | DataType::Duration(_) => ColumnType::Interval,
            DataType::Date32 | DataType::Date64 => ColumnType::Date,
            DataType::Null => ColumnType::Null,
            _ => return None,
        })
    }

    /// The PostgreSQL name of this type, as `DESCRIBE` prints it.
    pub fn sql_name(self) -> &'static str {
        match self {
            ColumnType::Bool => "boolean",
            ColumnType::Int32 => "integer",
            ColumnType::Int64 => "bigint",
            ColumnType::Float64 => "double precision",
            ColumnType::Text => "character varying",
            ColumnType::Timestamp => "timestamp without time zone",
            ColumnType::TimestampTz => "timestamp with time zone",
            ColumnType::Interval => "interval",
            ColumnType::Date => "date",
            ColumnType::Null => "unknown",
        }
    }
}

/// One named, typed column.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Column {
    /// Column name (lower case unless it was quoted).
    pub name: String,
    /// Column type.
    pub ty: ColumnType,
}

/// The columns of a relation (source, table or view), in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RelationDesc {
    /// The columns.
    pub columns: Vec<Column>,
}

impl RelationDesc {
    /// A relation description from `(name, type)` pairs.
    pub fn new(columns: impl IntoIterator<Item = (String, ColumnType)>) -> Self {
        RelationDesc {
            columns: columns.into_iter().map(|(name, ty)| Column { name, ty }).collect(),
        }
    }

    /// The Arrow schema rows of this relation convert to. All columns are nullable.
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.ty.to_arrow(), true))
                .collect::<Vec<_>>(),
        ))
    }

    /// The relation description of an Arrow schema; columns of unsupported types are an error
    /// (`0A000`).
    pub fn from_arrow(schema: &Schema) -> Result<Self, crate::Error> {
        let mut columns = Vec::new();
        for f in schema.fields() {
            let ty = ColumnType::from_arrow(f.data_type()).ok_or_else(|| {
                crate::Error::unsupported(format!("column {} has unsupported type {}", f.name(), f.data_type()))
            })?;
            columns.push(Column {
                name: f.name().clone(),
                ty,
            });
        }
        Ok(RelationDesc { columns })
    }

    /// The index of the column with this name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}
