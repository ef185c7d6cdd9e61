//! Security functions Rampart adds to DataFusion's function library, defined once and used
//! by streaming views and ad-hoc queries alike.

use std::net::Ipv4Addr;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Builder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::cast::as_string_array;
use datafusion::error::Result;
use datafusion::logical_expr::{create_udf, ColumnarValue, ScalarUDF, Volatility};

/// Every UDF Rampart registers: its security functions and PostgreSQL's session
/// information functions ([`crate::session_functions`]).
pub fn all_udfs() -> Vec<ScalarUDF> {
    let mut udfs = vec![inet_aton_udf()];
    udfs.extend(crate::session_functions::session_functions());
    udfs
}

/// `inet_aton(text) -> bigint`: the IPv4 address `a.b.c.d` as the integer
/// `a*2^24 + b*2^16 + c*2^8 + d` (as MySQL's `INET_ATON`); NULL for NULL or for text that
/// is not an IPv4 address.
pub fn inet_aton_udf() -> ScalarUDF {
    create_udf(
        "inet_aton",
        vec![DataType::Utf8],
        DataType::Int64,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let out = inet_aton_array(&arrays[0])?;
            Ok(ColumnarValue::Array(out))
        }),
    )
}

/// Parses an IPv4 address into its 32-bit integer value.
pub fn inet_aton(s: &str) -> Option<i64> {
    s.trim().parse::<Ipv4Addr>().ok().map(|ip| u32::from(ip) as i64)
}

fn inet_aton_array(a: &ArrayRef) -> Result<ArrayRef> {
    let mut b = Int64Builder::with_capacity(a.len());
    match a.data_type() {
        DataType::Utf8View => {
            let s = a.as_string_view();
            for i in 0..s.len() {
                b.append_option(if s.is_null(i) { None } else { inet_aton(s.value(i)) });
            }
        }
        _ => {
            let s = as_string_array(a)?;
            for i in 0..s.len() {
                b.append_option(if s.is_null(i) { None } else { inet_aton(s.value(i)) });
            }
        }
    }
    Ok(Arc::new(b.finish()))
}

/// `rampart_emit_time()`: the wall-clock time at which a row is evaluated. `NOW()` in a
/// sink's query is rewritten to this, so an alert carries the time it was emitted.
pub fn emit_time_udf() -> ScalarUDF {
    use datafusion::arrow::array::TimestampNanosecondArray;
    use datafusion::arrow::datatypes::TimeUnit;
    create_udf(
        rampart_plan::emit_time::EMIT_TIME_FUNCTION,
        vec![],
        DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into())),
        Volatility::Volatile,
        Arc::new(|_args: &[ColumnarValue]| {
            let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
            let a = TimestampNanosecondArray::from(vec![now]).with_timezone("+00:00");
            Ok(ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(
                &a, 0,
            )?))
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_aton_matches_mysql() {
        assert_eq!(inet_aton("10.0.0.1"), Some(167_772_161));
        assert_eq!(inet_aton("255.255.255.255"), Some(4_294_967_295));
        assert_eq!(inet_aton("not an ip"), None);
    }
}
