//! Arrow → PostgreSQL: the type mapping, PostgreSQL's text output formats, the binary
//! formats clients such as tokio-postgres decode, and the [`DataRow`]s built from them.
//!
//! Every value is encoded here into bytes first; pgwire only frames them. Text output
//! follows PostgreSQL with `DateStyle=ISO`, `IntervalStyle=postgres`, `TimeZone=UTC` and
//! `extra_float_digits=1` (shortest round-trip floats).

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, DurationMicrosecondType, DurationMillisecondType, DurationNanosecondType,
    DurationSecondType, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, IntervalDayTimeType,
    IntervalMonthDayNanoType, IntervalUnit, IntervalYearMonthType, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type,
    UInt8Type,
};
use arrow::util::display::array_value_to_string;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo};
use pgwire::api::Type;
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;
use pgwire::types::format::FormatOptions;

/// Seconds from the Unix epoch (1970-01-01) to the PostgreSQL epoch (2000-01-01).
pub const PG_EPOCH_UNIX_SECS: i64 = 946_684_800;
/// Days from the Unix epoch to the PostgreSQL epoch.
pub const PG_EPOCH_UNIX_DAYS: i32 = 10_957;
/// Days from 0001-01-01 (chrono's "common era" day 1) to 1970-01-01, plus one.
const UNIX_EPOCH_DAYS_FROM_CE: i64 = 719_163;
const MICROS_PER_SEC: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SEC;
const MICROS_PER_HOUR: u64 = 3_600 * MICROS_PER_SEC as u64;

/// Why a value could not be encoded: a SQLSTATE and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError {
    /// Five-character SQLSTATE.
    pub sqlstate: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl EncodeError {
    fn new(sqlstate: &'static str, message: impl Into<String>) -> Self {
        EncodeError {
            sqlstate,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (SQLSTATE {})", self.message, self.sqlstate)
    }
}

impl std::error::Error for EncodeError {}

/// The PostgreSQL type a column of Arrow type `dt` is sent as.
pub fn pg_type(dt: &DataType) -> Type {
    match dt {
        DataType::Boolean => Type::BOOL,
        DataType::Int8 | DataType::Int16 => Type::INT2,
        DataType::Int32 => Type::INT4,
        DataType::Int64 | DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => Type::INT8,
        DataType::Float16 | DataType::Float32 => Type::FLOAT4,
        DataType::Float64 => Type::FLOAT8,
        DataType::Decimal32(_, _)
        | DataType::Decimal64(_, _)
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => Type::NUMERIC,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Type::VARCHAR,
        DataType::Timestamp(_, None) => Type::TIMESTAMP,
        DataType::Timestamp(_, Some(_)) => Type::TIMESTAMPTZ,
        DataType::Date32 | DataType::Date64 => Type::DATE,
        DataType::Interval(_) | DataType::Duration(_) => Type::INTERVAL,
        DataType::Dictionary(_, value) => pg_type(value),
        _ => Type::TEXT,
    }
}

/// `pg_type.typlen` of the types [`pg_type`] returns: the fixed width, or -1.
pub fn type_size(ty: &Type) -> i16 {
    match *ty {
        Type::BOOL => 1,
        Type::INT2 => 2,
        Type::INT4 | Type::FLOAT4 | Type::DATE => 4,
        Type::INT8 | Type::FLOAT8 | Type::TIMESTAMP | Type::TIMESTAMPTZ => 8,
        Type::INTERVAL => 16,
        _ => -1,
    }
}

/// The Arrow type a column is converted to before it is sent as PostgreSQL type `ty`
/// (used when a client was told a type at Describe time that differs from the result).
pub fn arrow_type_for(ty: &Type) -> DataType {
    match *ty {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::NUMERIC => DataType::Decimal128(38, 10),
        Type::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        Type::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Type::DATE => DataType::Date32,
        Type::INTERVAL => DataType::Interval(IntervalUnit::MonthDayNano),
        _ => DataType::Utf8,
    }
}

/// The column's RowDescription entry.
pub fn field_info(name: &str, dt: &DataType, format: FieldFormat) -> FieldInfo {
    let ty = pg_type(dt);
    let size = type_size(&ty);
    FieldInfo::new(name.to_string(), None, None, ty, format).with_type_size(size)
}

/// The Arrow type a column is cast to before encoding, when the encoders below do not
/// read its type directly.
fn normalized_type(dt: &DataType) -> Option<DataType> {
    match dt {
        DataType::Dictionary(_, value) => Some(normalized_type(value).unwrap_or_else(|| value.as_ref().clone())),
        DataType::Float16 => Some(DataType::Float32),
        _ => None,
    }
}

/// Encodes the rows of `batches` as DataRows: column `i` in `formats[i]` (text when
/// missing). When `target` is given (the types a Describe announced), a column whose
/// PostgreSQL type differs is cast to the announced type first. All conversions happen
/// here, before any row is produced, so the returned iterator fails only on values that
/// have no representation (e.g. an unsigned 64-bit value above `i64::MAX` in binary).
pub fn encode_rows(
    batches: Vec<RecordBatch>,
    formats: &[FieldFormat],
    target: Option<&[Type]>,
) -> Result<RowIter, EncodeError> {
    let mut prepared = Vec::with_capacity(batches.len());
    for batch in batches {
        if batch.num_rows() == 0 {
            continue;
        }
        let mut columns = Vec::with_capacity(batch.num_columns());
        for (idx, array) in batch.columns().iter().enumerate() {
            let wanted = target.and_then(|t| t.get(idx));
            let array = normalize_array(array, wanted)?;
            let format = formats.get(idx).copied().unwrap_or(FieldFormat::Text);
            columns.push(Column { array, format });
        }
        prepared.push((columns, batch.num_rows()));
    }
    let fields = Arc::new(Vec::new());
    Ok(RowIter {
        batches: prepared.into_iter(),
        current: None,
        encoder: DataRowEncoder::new(fields),
        options: FormatOptions::default(),
    })
}

/// Casts `array` to the type the encoders read, and to the announced type `wanted`.
fn normalize_array(array: &ArrayRef, wanted: Option<&Type>) -> Result<ArrayRef, EncodeError> {
    let mut array = array.clone();
    if let Some(to) = normalized_type(array.data_type()) {
        array = cast(&array, &to).map_err(|e| EncodeError::new("XX000", e.to_string()))?;
    }
    if let Some(wanted) = wanted {
        if pg_type(array.data_type()) != *wanted {
            let to = arrow_type_for(wanted);
            array = cast(&array, &to).map_err(|e| {
                EncodeError::new(
                    "0A000",
                    format!(
                        "result column type {} does not match the described type {}: {e}",
                        array.data_type(),
                        wanted.name()
                    ),
                )
            })?;
        }
    }
    Ok(array)
}

struct Column {
    array: ArrayRef,
    format: FieldFormat,
}

/// Iterator over encoded DataRows, produced by [`encode_rows`].
pub struct RowIter {
    batches: std::vec::IntoIter<(Vec<Column>, usize)>,
    current: Option<(Vec<Column>, usize, usize)>,
    encoder: DataRowEncoder,
    options: FormatOptions,
}

impl Iterator for RowIter {
    type Item = PgWireResult<DataRow>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((columns, rows, next)) = &mut self.current {
                if *next < *rows {
                    let row = *next;
                    *next += 1;
                    for column in columns.iter() {
                        let cell = match encode_value(column.array.as_ref(), row, column.format) {
                            Ok(cell) => cell,
                            Err(e) => {
                                self.current = None;
                                self.batches = Vec::new().into_iter();
                                return Some(Err(to_pgwire(e)));
                            }
                        };
                        // The bytes are final: write them verbatim as a "binary bytea".
                        if let Err(e) = self.encoder.encode_field_with_type_and_format(
                            &cell.as_deref(),
                            &Type::BYTEA,
                            FieldFormat::Binary,
                            &self.options,
                        ) {
                            return Some(Err(e));
                        }
                    }
                    return Some(Ok(self.encoder.take_row()));
                }
            }
            let (columns, rows) = self.batches.next()?;
            self.current = Some((columns, rows, 0));
        }
    }
}

/// An [`EncodeError`] as the pgwire error sent to the client.
pub fn to_pgwire(e: EncodeError) -> pgwire::error::PgWireError {
    pgwire::error::PgWireError::UserError(Box::new(pgwire::error::ErrorInfo::new(
        pgwire::error::SEVERITY_ERROR.to_string(),
        e.sqlstate.to_string(),
        e.message,
    )))
}

/// One value of `array` at `row` in `format`: `None` for SQL NULL.
pub fn encode_value(array: &dyn Array, row: usize, format: FieldFormat) -> Result<Option<Vec<u8>>, EncodeError> {
    if array.data_type() == &DataType::Null || array.is_null(row) {
        return Ok(None);
    }
    match format {
        FieldFormat::Text => text_value(array, row).map(|s| Some(s.into_bytes())),
        FieldFormat::Binary => binary_value(array, row).map(Some),
    }
}

fn wrong_array(dt: &DataType) -> EncodeError {
    EncodeError::new("XX000", format!("array does not match its data type {dt}"))
}

macro_rules! prim {
    ($array:expr, $t:ty, $row:expr) => {
        $array
            .as_primitive_opt::<$t>()
            .ok_or_else(|| wrong_array($array.data_type()))?
            .value($row)
    };
}

fn string_at(array: &dyn Array, row: usize) -> Option<&str> {
    match array.data_type() {
        DataType::Utf8 => array.as_string_opt::<i32>().map(|a| a.value(row)),
        DataType::LargeUtf8 => array.as_string_opt::<i64>().map(|a| a.value(row)),
        DataType::Utf8View => array.as_string_view_opt().map(|a| a.value(row)),
        _ => None,
    }
}

/// Microseconds since the Unix epoch of a timestamp value.
fn timestamp_micros(array: &dyn Array, unit: &TimeUnit, row: usize) -> Result<i64, EncodeError> {
    let overflow = || EncodeError::new("22008", "timestamp out of range");
    Ok(match unit {
        TimeUnit::Second => prim!(array, TimestampSecondType, row)
            .checked_mul(MICROS_PER_SEC)
            .ok_or_else(overflow)?,
        TimeUnit::Millisecond => prim!(array, TimestampMillisecondType, row)
            .checked_mul(1000)
            .ok_or_else(overflow)?,
        TimeUnit::Microsecond => prim!(array, TimestampMicrosecondType, row),
        TimeUnit::Nanosecond => nanos_to_micros(prim!(array, TimestampNanosecondType, row)),
    })
}

/// Nanoseconds to microseconds, rounding half up.
fn nanos_to_micros(nanos: i64) -> i64 {
    nanos.div_euclid(1000) + i64::from(nanos.rem_euclid(1000) >= 500)
}

/// A PostgreSQL interval: months, days and microseconds, kept apart as PostgreSQL does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgInterval {
    /// Months (years are 12 months).
    pub months: i32,
    /// Days.
    pub days: i32,
    /// Microseconds.
    pub micros: i64,
}

fn interval_at(array: &dyn Array, row: usize) -> Result<PgInterval, EncodeError> {
    let overflow = || EncodeError::new("22008", "interval out of range");
    Ok(match array.data_type() {
        DataType::Interval(IntervalUnit::YearMonth) => PgInterval {
            months: prim!(array, IntervalYearMonthType, row),
            days: 0,
            micros: 0,
        },
        DataType::Interval(IntervalUnit::DayTime) => {
            let v = prim!(array, IntervalDayTimeType, row);
            PgInterval {
                months: 0,
                days: v.days,
                micros: i64::from(v.milliseconds) * 1000,
            }
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let v = prim!(array, IntervalMonthDayNanoType, row);
            PgInterval {
                months: v.months,
                days: v.days,
                micros: nanos_to_micros(v.nanoseconds),
            }
        }
        DataType::Duration(unit) => {
            let micros = match unit {
                TimeUnit::Second => prim!(array, DurationSecondType, row)
                    .checked_mul(MICROS_PER_SEC)
                    .ok_or_else(overflow)?,
                TimeUnit::Millisecond => prim!(array, DurationMillisecondType, row)
                    .checked_mul(1000)
                    .ok_or_else(overflow)?,
                TimeUnit::Microsecond => prim!(array, DurationMicrosecondType, row),
                TimeUnit::Nanosecond => nanos_to_micros(prim!(array, DurationNanosecondType, row)),
            };
            // Like PostgreSQL's timestamp subtraction: whole days split off the time part.
            let days = i32::try_from(micros / MICROS_PER_DAY).map_err(|_| overflow())?;
            PgInterval {
                months: 0,
                days,
                micros: micros % MICROS_PER_DAY,
            }
        }
        other => return Err(wrong_array(other)),
    })
}

fn text_value(array: &dyn Array, row: usize) -> Result<String, EncodeError> {
    let dt = array.data_type();
    Ok(match dt {
        DataType::Boolean => {
            let v = array.as_boolean_opt().ok_or_else(|| wrong_array(dt))?.value(row);
            if v { "t" } else { "f" }.to_string()
        }
        DataType::Int8 => prim!(array, Int8Type, row).to_string(),
        DataType::Int16 => prim!(array, Int16Type, row).to_string(),
        DataType::Int32 => prim!(array, Int32Type, row).to_string(),
        DataType::Int64 => prim!(array, Int64Type, row).to_string(),
        DataType::UInt8 => prim!(array, UInt8Type, row).to_string(),
        DataType::UInt16 => prim!(array, UInt16Type, row).to_string(),
        DataType::UInt32 => prim!(array, UInt32Type, row).to_string(),
        DataType::UInt64 => prim!(array, UInt64Type, row).to_string(),
        DataType::Float32 => format_float4(prim!(array, Float32Type, row)),
        DataType::Float64 => format_float8(prim!(array, Float64Type, row)),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            string_at(array, row).ok_or_else(|| wrong_array(dt))?.to_string()
        }
        DataType::Timestamp(unit, tz) => {
            let micros = timestamp_micros(array, unit, row)?;
            if tz.is_some() {
                format_timestamptz(micros)
            } else {
                format_timestamp(micros)
            }
            .ok_or_else(|| EncodeError::new("22008", "timestamp out of range"))?
        }
        DataType::Date32 => format_date(i64::from(prim!(array, Date32Type, row)))
            .ok_or_else(|| EncodeError::new("22008", "date out of range"))?,
        DataType::Date64 => format_date(prim!(array, Date64Type, row).div_euclid(86_400_000))
            .ok_or_else(|| EncodeError::new("22008", "date out of range"))?,
        DataType::Interval(_) | DataType::Duration(_) => format_interval(interval_at(array, row)?),
        _ => array_value_to_string(array, row).map_err(|e| EncodeError::new("XX000", e.to_string()))?,
    })
}

fn binary_value(array: &dyn Array, row: usize) -> Result<Vec<u8>, EncodeError> {
    let dt = array.data_type();
    Ok(match dt {
        DataType::Boolean => {
            vec![u8::from(
                array.as_boolean_opt().ok_or_else(|| wrong_array(dt))?.value(row),
            )]
        }
        DataType::Int8 => i16::from(prim!(array, Int8Type, row)).to_be_bytes().to_vec(),
        DataType::Int16 => prim!(array, Int16Type, row).to_be_bytes().to_vec(),
        DataType::Int32 => prim!(array, Int32Type, row).to_be_bytes().to_vec(),
        DataType::Int64 => prim!(array, Int64Type, row).to_be_bytes().to_vec(),
        DataType::UInt8 => i64::from(prim!(array, UInt8Type, row)).to_be_bytes().to_vec(),
        DataType::UInt16 => i64::from(prim!(array, UInt16Type, row)).to_be_bytes().to_vec(),
        DataType::UInt32 => i64::from(prim!(array, UInt32Type, row)).to_be_bytes().to_vec(),
        DataType::UInt64 => i64::try_from(prim!(array, UInt64Type, row))
            .map_err(|_| EncodeError::new("22003", "bigint out of range"))?
            .to_be_bytes()
            .to_vec(),
        DataType::Float32 => prim!(array, Float32Type, row).to_be_bytes().to_vec(),
        DataType::Float64 => prim!(array, Float64Type, row).to_be_bytes().to_vec(),
        DataType::Decimal32(_, _)
        | DataType::Decimal64(_, _)
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => {
            let text = array_value_to_string(array, row).map_err(|e| EncodeError::new("XX000", e.to_string()))?;
            numeric_binary(&text)?
        }
        DataType::Timestamp(unit, _) => timestamp_micros(array, unit, row)?
            .checked_sub(PG_EPOCH_UNIX_SECS * MICROS_PER_SEC)
            .ok_or_else(|| EncodeError::new("22008", "timestamp out of range"))?
            .to_be_bytes()
            .to_vec(),
        DataType::Date32 => prim!(array, Date32Type, row)
            .checked_sub(PG_EPOCH_UNIX_DAYS)
            .ok_or_else(|| EncodeError::new("22008", "date out of range"))?
            .to_be_bytes()
            .to_vec(),
        DataType::Date64 => {
            let days = prim!(array, Date64Type, row).div_euclid(86_400_000) - i64::from(PG_EPOCH_UNIX_DAYS);
            i32::try_from(days)
                .map_err(|_| EncodeError::new("22008", "date out of range"))?
                .to_be_bytes()
                .to_vec()
        }
        DataType::Interval(_) | DataType::Duration(_) => {
            let iv = interval_at(array, row)?;
            let mut out = Vec::with_capacity(16);
            out.extend_from_slice(&iv.micros.to_be_bytes());
            out.extend_from_slice(&iv.days.to_be_bytes());
            out.extend_from_slice(&iv.months.to_be_bytes());
            out
        }
        // Text-typed columns: the binary format of text is its UTF-8 bytes.
        _ => text_value(array, row)?.into_bytes(),
    })
}

/// A float8 as PostgreSQL prints it: shortest round-trip digits, `%e` style when the
/// decimal exponent is below -4 or at least 15.
pub fn format_float8(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    pg_float(v.is_sign_negative(), &format!("{:e}", v.abs()), 15)
}

/// A float4 as PostgreSQL prints it: shortest round-trip digits, `%e` style when the
/// decimal exponent is below -4 or at least 6.
pub fn format_float4(v: f32) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    pg_float(v.is_sign_negative(), &format!("{:e}", v.abs()), 6)
}

/// Lays out the shortest digits of Rust's `{:e}` output (`d.ddde[-]x`) as PostgreSQL.
fn pg_float(negative: bool, sci: &str, max_exp: i32) -> String {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let mut out = String::with_capacity(digits.len() + 8);
    if negative {
        out.push('-');
    }
    if digits.chars().all(|c| c == '0') {
        out.push('0');
        return out;
    }
    let len = digits.len() as i32;
    if (-4..max_exp).contains(&exp) {
        if exp >= 0 {
            let int_len = (exp + 1) as usize;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if len > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs());
    }
    out
}

/// Splits microseconds since the Unix epoch into a date and the time of day, formatted
/// `YYYY-MM-DD HH:MM:SS[.ffffff]`, plus whether the year is BC.
fn datetime_parts(micros: i64) -> Option<(String, bool)> {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let tod = micros.rem_euclid(MICROS_PER_DAY);
    let (date, bc) = date_parts(days)?;
    let secs = tod / MICROS_PER_SEC;
    let frac = tod % MICROS_PER_SEC;
    let mut out = date;
    let _ = write!(out, " {:02}:{:02}:{:02}", secs / 3600, (secs / 60) % 60, secs % 60);
    push_fraction(&mut out, frac.unsigned_abs());
    Some((out, bc))
}

/// `.ffffff` with trailing zeros removed, nothing for zero.
fn push_fraction(out: &mut String, micros: u64) {
    if micros != 0 {
        let frac = format!("{micros:06}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
}

/// `YYYY-MM-DD` of a day number since the Unix epoch, and whether it is BC.
fn date_parts(days: i64) -> Option<(String, bool)> {
    use chrono::Datelike;
    let ce = i32::try_from(days.checked_add(UNIX_EPOCH_DAYS_FROM_CE)?).ok()?;
    let date = chrono::NaiveDate::from_num_days_from_ce_opt(ce)?;
    let year = date.year();
    let (shown, bc) = if year <= 0 { (1 - year, true) } else { (year, false) };
    Some((format!("{shown:04}-{:02}-{:02}", date.month(), date.day()), bc))
}

/// A `timestamp` (microseconds since the Unix epoch) as PostgreSQL prints it:
/// `2024-01-01 12:00:00` or `2024-01-01 12:00:00.123`.
pub fn format_timestamp(micros: i64) -> Option<String> {
    let (mut out, bc) = datetime_parts(micros)?;
    if bc {
        out.push_str(" BC");
    }
    Some(out)
}

/// A `timestamptz` (microseconds since the Unix epoch) as PostgreSQL prints it with
/// `TimeZone=UTC`: `2024-01-01 12:00:00.123+00`.
pub fn format_timestamptz(micros: i64) -> Option<String> {
    let (mut out, bc) = datetime_parts(micros)?;
    out.push_str("+00");
    if bc {
        out.push_str(" BC");
    }
    Some(out)
}

/// A `date` (days since the Unix epoch) as PostgreSQL prints it: `2024-01-31`.
pub fn format_date(days: i64) -> Option<String> {
    let (mut out, bc) = date_parts(days)?;
    if bc {
        out.push_str(" BC");
    }
    Some(out)
}

/// An interval in PostgreSQL's `postgres` IntervalStyle: `1 year 2 mons 3 days 04:05:06.5`,
/// `00:05:00`, `1 day 02:00:00`, `-1 days +02:00:00`.
pub fn format_interval(iv: PgInterval) -> String {
    let mut out = String::new();
    let mut is_zero = true;
    let mut is_before = false;
    let mut part = |out: &mut String, value: i64, unit: &str| {
        if value == 0 {
            return;
        }
        let _ = write!(
            out,
            "{}{}{} {}{}",
            if is_zero { "" } else { " " },
            if is_before && value > 0 { "+" } else { "" },
            value,
            unit,
            if value != 1 { "s" } else { "" }
        );
        is_before = value < 0;
        is_zero = false;
    };
    part(&mut out, i64::from(iv.months / 12), "year");
    part(&mut out, i64::from(iv.months % 12), "mon");
    part(&mut out, i64::from(iv.days), "day");
    if is_zero || iv.micros != 0 {
        let abs = iv.micros.unsigned_abs();
        let secs = abs / MICROS_PER_SEC as u64;
        let _ = write!(
            out,
            "{}{}{:02}:{:02}:{:02}",
            if is_zero { "" } else { " " },
            if iv.micros < 0 {
                "-"
            } else if is_before {
                "+"
            } else {
                ""
            },
            abs / MICROS_PER_HOUR,
            (secs / 60) % 60,
            secs % 60
        );
        push_fraction(&mut out, abs % MICROS_PER_SEC as u64);
    }
    out
}

/// PostgreSQL's binary `numeric` of a plain decimal string (`-123.4500`): digit count,
/// weight, sign, display scale, then base-10000 digits.
pub fn numeric_binary(text: &str) -> Result<Vec<u8>, EncodeError> {
    let bad = || EncodeError::new("22P02", format!("invalid numeric value \"{text}\""));
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int_part, frac_part) = body.split_once('.').unwrap_or((body, ""));
    if int_part.is_empty() && frac_part.is_empty()
        || !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let dscale = u16::try_from(frac_part.len()).map_err(|_| bad())?;
    let int_digits = int_part.trim_start_matches('0');
    let mut padded = "0".repeat((4 - int_digits.len() % 4) % 4);
    padded.push_str(int_digits);
    let int_groups = padded.len() / 4;
    padded.push_str(frac_part);
    padded.push_str(&"0".repeat((4 - frac_part.len() % 4) % 4));
    let mut groups: Vec<i16> = padded
        .as_bytes()
        .chunks(4)
        .map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0')))
        .collect();
    let mut weight = int_groups as i64 - 1;
    let leading = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..leading);
    weight -= leading as i64;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    let (weight, sign) = if groups.is_empty() {
        (0, 0u16)
    } else {
        (
            i16::try_from(weight).map_err(|_| bad())?,
            if negative { 0x4000 } else { 0 },
        )
    };
    let ndigits = i16::try_from(groups.len()).map_err(|_| bad())?;
    let mut out = Vec::with_capacity(8 + groups.len() * 2);
    out.extend_from_slice(&ndigits.to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        BooleanArray, Date32Array, Decimal128Array, DictionaryArray, DurationSecondArray, Float32Array, Float64Array,
        Int16Array, Int32Array, Int64Array, Int8Array, IntervalDayTimeArray, IntervalMonthDayNanoArray,
        IntervalYearMonthArray, NullArray, StringArray, StringViewArray, TimestampMicrosecondArray,
        TimestampNanosecondArray, TimestampSecondArray, UInt64Array,
    };
    use arrow::datatypes::{IntervalDayTime, IntervalMonthDayNano};

    fn text(array: &dyn Array, row: usize) -> Option<String> {
        encode_value(array, row, FieldFormat::Text)
            .expect("encodes")
            .map(|b| String::from_utf8(b).expect("utf8"))
    }

    fn binary(array: &dyn Array, row: usize) -> Option<Vec<u8>> {
        encode_value(array, row, FieldFormat::Binary).expect("encodes")
    }

    #[test]
    fn type_mapping() {
        assert_eq!(pg_type(&DataType::Boolean), Type::BOOL);
        assert_eq!(pg_type(&DataType::Int8), Type::INT2);
        assert_eq!(pg_type(&DataType::Int16), Type::INT2);
        assert_eq!(pg_type(&DataType::Int32), Type::INT4);
        assert_eq!(pg_type(&DataType::Int64), Type::INT8);
        assert_eq!(pg_type(&DataType::UInt32), Type::INT8);
        assert_eq!(pg_type(&DataType::UInt64), Type::INT8);
        assert_eq!(pg_type(&DataType::Float32), Type::FLOAT4);
        assert_eq!(pg_type(&DataType::Float64), Type::FLOAT8);
        assert_eq!(pg_type(&DataType::Decimal128(10, 2)), Type::NUMERIC);
        assert_eq!(pg_type(&DataType::Utf8), Type::VARCHAR);
        assert_eq!(pg_type(&DataType::LargeUtf8), Type::VARCHAR);
        assert_eq!(pg_type(&DataType::Utf8View), Type::VARCHAR);
        assert_eq!(
            pg_type(&DataType::Timestamp(TimeUnit::Nanosecond, None)),
            Type::TIMESTAMP
        );
        assert_eq!(
            pg_type(&DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))),
            Type::TIMESTAMPTZ
        );
        assert_eq!(pg_type(&DataType::Date32), Type::DATE);
        assert_eq!(pg_type(&DataType::Interval(IntervalUnit::MonthDayNano)), Type::INTERVAL);
        assert_eq!(pg_type(&DataType::Duration(TimeUnit::Second)), Type::INTERVAL);
        assert_eq!(pg_type(&DataType::Null), Type::TEXT);
        assert_eq!(pg_type(&DataType::Binary), Type::TEXT);
        assert_eq!(
            pg_type(&DataType::Dictionary(
                Box::new(DataType::Int32),
                Box::new(DataType::Utf8)
            )),
            Type::VARCHAR
        );
    }

    #[test]
    fn booleans_and_integers() {
        let b = BooleanArray::from(vec![Some(true), Some(false), None]);
        assert_eq!(text(&b, 0).as_deref(), Some("t"));
        assert_eq!(text(&b, 1).as_deref(), Some("f"));
        assert_eq!(text(&b, 2), None);
        assert_eq!(binary(&b, 0), Some(vec![1]));
        assert_eq!(text(&Int8Array::from(vec![-5]), 0).as_deref(), Some("-5"));
        assert_eq!(binary(&Int8Array::from(vec![-1]), 0), Some(vec![0xff, 0xff]));
        assert_eq!(text(&Int16Array::from(vec![300]), 0).as_deref(), Some("300"));
        assert_eq!(binary(&Int32Array::from(vec![1]), 0), Some(vec![0, 0, 0, 1]));
        assert_eq!(
            text(&Int64Array::from(vec![i64::MIN]), 0).as_deref(),
            Some("-9223372036854775808")
        );
        let u = UInt64Array::from(vec![u64::MAX, 7]);
        assert_eq!(text(&u, 0).as_deref(), Some("18446744073709551615"));
        assert!(encode_value(&u, 0, FieldFormat::Binary).is_err());
        assert_eq!(binary(&u, 1), Some(7i64.to_be_bytes().to_vec()));
    }

    #[test]
    fn floats_like_postgres() {
        let cases: &[(f64, &str)] = &[
            (1.5, "1.5"),
            (3.0, "3"),
            (0.0, "0"),
            (-0.0, "-0"),
            (0.1, "0.1"),
            (-2.25, "-2.25"),
            (100.0, "100"),
            (123456789012345.0, "123456789012345"),
            (1e15, "1e+15"),
            (1e20, "1e+20"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (1.0 / 3.0, "0.3333333333333333"),
            (1e300, "1e+300"),
            (-1.2345e-100, "-1.2345e-100"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (v, want) in cases {
            assert_eq!(format_float8(*v), *want, "float8 {v}");
        }
        assert_eq!(format_float4(1.5), "1.5");
        assert_eq!(format_float4(0.1), "0.1");
        assert_eq!(format_float4(123456.0), "123456");
        assert_eq!(format_float4(1234567.0), "1.234567e+06");
        assert_eq!(format_float4(1e-5), "1e-05");
        let f = Float64Array::from(vec![2.5]);
        assert_eq!(text(&f, 0).as_deref(), Some("2.5"));
        assert_eq!(binary(&f, 0), Some(2.5f64.to_be_bytes().to_vec()));
        let f = Float32Array::from(vec![2.5]);
        assert_eq!(binary(&f, 0), Some(2.5f32.to_be_bytes().to_vec()));
    }

    #[test]
    fn strings() {
        let s = StringArray::from(vec![Some("héllo"), None]);
        assert_eq!(text(&s, 0).as_deref(), Some("héllo"));
        assert_eq!(binary(&s, 0), Some("héllo".as_bytes().to_vec()));
        assert_eq!(text(&s, 1), None);
        let v = StringViewArray::from(vec!["a much longer string than twelve bytes"]);
        assert_eq!(text(&v, 0).as_deref(), Some("a much longer string than twelve bytes"));
    }

    #[test]
    fn timestamps_like_postgres() {
        // 2024-01-01 12:00:00 UTC
        let base = 1_704_110_400_000_000i64;
        let ts = TimestampMicrosecondArray::from(vec![base, base + 123_000, base + 1]);
        assert_eq!(text(&ts, 0).as_deref(), Some("2024-01-01 12:00:00"));
        assert_eq!(text(&ts, 1).as_deref(), Some("2024-01-01 12:00:00.123"));
        assert_eq!(text(&ts, 2).as_deref(), Some("2024-01-01 12:00:00.000001"));
        let tz = TimestampMicrosecondArray::from(vec![base + 123_000]).with_timezone("UTC");
        assert_eq!(text(&tz, 0).as_deref(), Some("2024-01-01 12:00:00.123+00"));
        let tz = TimestampMicrosecondArray::from(vec![base]).with_timezone("+02:00");
        assert_eq!(text(&tz, 0).as_deref(), Some("2024-01-01 12:00:00+00"));
        let secs = TimestampSecondArray::from(vec![0]);
        assert_eq!(text(&secs, 0).as_deref(), Some("1970-01-01 00:00:00"));
        assert_eq!(
            binary(&secs, 0),
            Some((-PG_EPOCH_UNIX_SECS * 1_000_000).to_be_bytes().to_vec())
        );
        let nanos = TimestampNanosecondArray::from(vec![base * 1000 + 1_499, -1]);
        assert_eq!(text(&nanos, 0).as_deref(), Some("2024-01-01 12:00:00.000001"));
        assert_eq!(text(&nanos, 1).as_deref(), Some("1970-01-01 00:00:00"));
        assert_eq!(format_timestamp(-1).as_deref(), Some("1969-12-31 23:59:59.999999"));
        // 0001-01-01 minus one day is 1 BC.
        let bc = -UNIX_EPOCH_DAYS_FROM_CE * MICROS_PER_DAY;
        assert_eq!(format_timestamptz(bc).as_deref(), Some("0001-12-31 00:00:00+00 BC"));
        let pg_epoch = TimestampMicrosecondArray::from(vec![PG_EPOCH_UNIX_SECS * 1_000_000]);
        assert_eq!(binary(&pg_epoch, 0), Some(0i64.to_be_bytes().to_vec()));
    }

    #[test]
    fn dates() {
        let d = Date32Array::from(vec![19_723, 0, PG_EPOCH_UNIX_DAYS]);
        assert_eq!(text(&d, 0).as_deref(), Some("2024-01-01"));
        assert_eq!(text(&d, 1).as_deref(), Some("1970-01-01"));
        assert_eq!(binary(&d, 2), Some(0i32.to_be_bytes().to_vec()));
        assert_eq!(binary(&d, 1), Some((-PG_EPOCH_UNIX_DAYS).to_be_bytes().to_vec()));
    }

    #[test]
    fn intervals_like_postgres() {
        let iv = |months, days, micros| format_interval(PgInterval { months, days, micros });
        assert_eq!(iv(0, 0, 0), "00:00:00");
        assert_eq!(iv(0, 0, 300_000_000), "00:05:00");
        assert_eq!(iv(0, 1, 7_200_000_000), "1 day 02:00:00");
        assert_eq!(iv(0, 2, 0), "2 days");
        assert_eq!(iv(14, 3, 14_706_500_000), "1 year 2 mons 3 days 04:05:06.5");
        assert_eq!(iv(0, -1, 7_200_000_000), "-1 days +02:00:00");
        assert_eq!(iv(0, 0, -1_500_000), "-00:00:01.5");
        assert_eq!(iv(-1, 0, 0), "-1 mons");
        assert_eq!(iv(0, 0, 100 * 3_600_000_000), "100:00:00");

        let mdn = IntervalMonthDayNanoArray::from(vec![IntervalMonthDayNano::new(1, 2, 3_000_000_000)]);
        assert_eq!(text(&mdn, 0).as_deref(), Some("1 mon 2 days 00:00:03"));
        let mut want = 3_000_000i64.to_be_bytes().to_vec();
        want.extend_from_slice(&2i32.to_be_bytes());
        want.extend_from_slice(&1i32.to_be_bytes());
        assert_eq!(binary(&mdn, 0), Some(want));
        let dt = IntervalDayTimeArray::from(vec![IntervalDayTime::new(1, 1_000)]);
        assert_eq!(text(&dt, 0).as_deref(), Some("1 day 00:00:01"));
        let ym = IntervalYearMonthArray::from(vec![25]);
        assert_eq!(text(&ym, 0).as_deref(), Some("2 years 1 mon"));
        let dur = DurationSecondArray::from(vec![300, 93_600, -93_600]);
        assert_eq!(text(&dur, 0).as_deref(), Some("00:05:00"));
        assert_eq!(text(&dur, 1).as_deref(), Some("1 day 02:00:00"));
        assert_eq!(text(&dur, 2).as_deref(), Some("-1 days -02:00:00"));
    }

    #[test]
    fn numerics() {
        let d = Decimal128Array::from(vec![Some(12345), Some(-5), None])
            .with_precision_and_scale(10, 2)
            .expect("valid decimal");
        assert_eq!(text(&d, 0).as_deref(), Some("123.45"));
        assert_eq!(text(&d, 1).as_deref(), Some("-0.05"));
        assert_eq!(text(&d, 2), None);
        // 123.45: 2 digits, weight 0, positive, scale 2, [123, 4500]
        assert_eq!(
            numeric_binary("123.45").expect("valid"),
            vec![0, 2, 0, 0, 0, 0, 0, 2, 0, 123, 0x11, 0x94]
        );
        // -0.00001: 1 digit, weight -2, negative, scale 5, [1000]
        assert_eq!(
            numeric_binary("-0.00001").expect("valid"),
            vec![0, 1, 0xff, 0xfe, 0x40, 0, 0, 5, 0x03, 0xe8]
        );
        assert_eq!(numeric_binary("0.00").expect("valid"), vec![0, 0, 0, 0, 0, 0, 0, 2]);
        // 10000: 1 digit, weight 1, [1]
        assert_eq!(
            numeric_binary("10000").expect("valid"),
            vec![0, 1, 0, 1, 0, 0, 0, 0, 0, 1]
        );
        assert!(numeric_binary("1e5").is_err());
        assert!(numeric_binary("").is_err());
    }

    #[test]
    fn null_and_fallback_types() {
        let n = NullArray::new(2);
        assert_eq!(text(&n, 0), None);
        assert_eq!(binary(&n, 1), None);
        let bin = arrow::array::BinaryArray::from(vec![&b"\x01\xff"[..]]);
        assert_eq!(text(&bin, 0).as_deref(), Some("01ff"));
    }

    #[test]
    fn rows_and_dictionaries() {
        let dict: DictionaryArray<Int32Type> = vec!["x", "y", "x"].into_iter().collect();
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("d", dict.data_type().clone(), false),
            arrow::datatypes::Field::new("n", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(dict), Arc::new(Int64Array::from(vec![Some(1), None, Some(3)]))],
        )
        .expect("batch");
        let rows: Vec<DataRow> = encode_rows(vec![batch.clone()], &[FieldFormat::Text], None)
            .expect("encodes")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].field_count, 2);
        // "y" then NULL (-1 length)
        assert_eq!(&rows[1].data[..], &[0, 0, 0, 1, b'y', 0xff, 0xff, 0xff, 0xff]);
        // Announced INT4 for column n: cast before encoding.
        let rows: Vec<DataRow> = encode_rows(
            vec![batch],
            &[FieldFormat::Text, FieldFormat::Binary],
            Some(&[Type::VARCHAR, Type::INT4]),
        )
        .expect("encodes")
        .collect::<Result<_, _>>()
        .expect("rows");
        assert_eq!(&rows[2].data[..], &[0, 0, 0, 1, b'x', 0, 0, 0, 4, 0, 0, 0, 3]);
    }
}
