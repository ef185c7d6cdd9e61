//! PostgreSQL's session information functions that client libraries call when they
//! connect (SQLAlchemy, pandas, Grafana parse `version()`; many ask `current_schema()`),
//! answered as a PostgreSQL server would, with Rampart named in the version.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{create_udf, ColumnarValue, ScalarUDF, Volatility};

/// The PostgreSQL version Rampart's wire protocol and catalog answer as.
pub const POSTGRES_VERSION: &str = "15.0";

/// What `version()` returns: PostgreSQL's form (drivers read the version number from
/// it), then Rampart's own name and version.
pub fn version_text() -> String {
    format!(
        "PostgreSQL {POSTGRES_VERSION} on {}-pc-linux-gnu, compatible server: Rampart {}",
        std::env::consts::ARCH,
        env!("CARGO_PKG_VERSION")
    )
}

/// `version()`, `current_schema()` and `current_database()`.
pub fn session_functions() -> Vec<ScalarUDF> {
    vec![
        constant_text("version", version_text()),
        constant_text("current_schema", "public".to_string()),
        constant_text("current_database", "dev".to_string()),
    ]
}

fn constant_text(name: &str, value: String) -> ScalarUDF {
    create_udf(
        name,
        vec![],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |_args: &[ColumnarValue]| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(value.clone()))))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_reads_as_postgresql_then_names_rampart() {
        let v = version_text();
        assert!(v.starts_with("PostgreSQL 15.0 on "), "{v}");
        assert!(v.contains("Rampart"), "{v}");
    }
}
