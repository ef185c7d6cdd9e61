//! The options of `CREATE MATERIALIZED VIEW v WITH (...) AS ...`: a retention in event
//! time, so views that would keep every event keep the last stretch of it.
//!
//! `retention = '1 hour'` (or `INTERVAL '1 hour'`), or `retention_seconds = 3600` as
//! RisingWave spells a table's time to live; `retention_column = 'event_time'` names the
//! event-time column when the view has more than one.

use datafusion::sql::sqlparser::ast::{CreateTableOptions, Expr, SqlOption, Value};

use crate::window_rewrite::{interval_micros, parse_interval_text};
use crate::PlanError;

/// A materialized view's retention as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionOption {
    /// How long rows stay after their event time, in microseconds.
    pub keep_us: i64,
    /// The event-time column, when named.
    pub column: Option<String>,
}

/// The retention asked for by a materialized view's `WITH` options (`None`: no options or
/// no retention). Unknown options are refused, naming the ones that exist.
pub fn view_retention(options: &CreateTableOptions) -> Result<Option<RetentionOption>, PlanError> {
    let list: &[SqlOption] = match options {
        CreateTableOptions::None => return Ok(None),
        CreateTableOptions::With(l) => l,
        other => {
            return Err(PlanError::unsupported(format!(
                "{other} on CREATE MATERIALIZED VIEW is not supported; use WITH (retention = '1 hour')"
            )))
        }
    };
    let mut keep_us = None;
    let mut column = None;
    for option in list {
        let SqlOption::KeyValue { key, value } = option else {
            return Err(PlanError::unsupported(format!(
                "option {option} on CREATE MATERIALIZED VIEW is not supported; the options are retention, retention_seconds and retention_column"
            )));
        };
        match key.value.to_lowercase().as_str() {
            "retention" => keep_us = Some(interval_option(value)?),
            "retention_seconds" => keep_us = Some(seconds_option(value)?),
            "retention_column" => column = Some(text_option(value, "retention_column")?),
            other => {
                return Err(PlanError::unsupported(format!(
                    "option {other} on CREATE MATERIALIZED VIEW is not supported; the options are retention, retention_seconds and retention_column"
                )))
            }
        }
    }
    match (keep_us, column) {
        (Some(keep_us), column) => Ok(Some(RetentionOption { keep_us, column })),
        (None, Some(_)) => Err(PlanError::invalid(
            "retention_column needs a retention: add retention = '1 hour' (or retention_seconds = 3600)",
        )),
        (None, None) => Ok(None),
    }
}

fn interval_option(value: &Expr) -> Result<i64, PlanError> {
    let us = match value {
        Expr::Interval(_) => interval_micros(value),
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => parse_interval_text(s),
            _ => None,
        },
        _ => None,
    };
    positive(us, || {
        format!("retention = {value} is not a length of time: write it like retention = '1 hour' or '30 minutes'")
    })
}

fn seconds_option(value: &Expr) -> Result<i64, PlanError> {
    let secs = match value {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) | Value::SingleQuotedString(n) => n.parse::<f64>().ok(),
            _ => None,
        },
        _ => None,
    };
    positive(secs.map(|s| (s * 1e6) as i64), || {
        format!("retention_seconds = {value} is not a positive number of seconds")
    })
}

fn positive(us: Option<i64>, message: impl Fn() -> String) -> Result<i64, PlanError> {
    match us {
        Some(us) if us > 0 => Ok(us),
        _ => Err(PlanError::invalid(message())),
    }
}

fn text_option(value: &Expr, key: &str) -> Result<String, PlanError> {
    match value {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Ok(s.clone()),
            _ => Err(PlanError::invalid(format!(
                "{key} = {value}: write the column name in quotes"
            ))),
        },
        Expr::Identifier(i) => Ok(i.value.clone()),
        _ => Err(PlanError::invalid(format!(
            "{key} = {value}: write the column name in quotes"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::ast::Statement;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    fn retention_of(sql: &str) -> Result<Option<RetentionOption>, PlanError> {
        let stmt = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap().remove(0);
        let Statement::CreateView(cv) = stmt else {
            panic!("not a view: {sql}")
        };
        view_retention(&cv.options)
    }

    #[test]
    fn spellings_of_a_retention() {
        let hour = Some(RetentionOption {
            keep_us: 3_600_000_000,
            column: None,
        });
        for sql in [
            "CREATE MATERIALIZED VIEW v WITH (retention = '1 hour') AS SELECT 1",
            "CREATE MATERIALIZED VIEW v WITH (retention = INTERVAL '60 minutes') AS SELECT 1",
            "CREATE MATERIALIZED VIEW v WITH (retention_seconds = 3600) AS SELECT 1",
        ] {
            assert_eq!(retention_of(sql).unwrap(), hour, "{sql}");
        }
        let named = retention_of(
            "CREATE MATERIALIZED VIEW v WITH (retention = '2 days', retention_column = 'seen') AS SELECT 1",
        )
        .unwrap()
        .unwrap();
        assert_eq!(named.keep_us, 2 * 86_400_000_000);
        assert_eq!(named.column.as_deref(), Some("seen"));
        assert_eq!(retention_of("CREATE MATERIALIZED VIEW v AS SELECT 1").unwrap(), None);
    }

    #[test]
    fn bad_retentions_say_what_to_write() {
        for (sql, says) in [
            (
                "CREATE MATERIALIZED VIEW v WITH (retention = 'forever') AS SELECT 1",
                "1 hour",
            ),
            (
                "CREATE MATERIALIZED VIEW v WITH (retention_seconds = -5) AS SELECT 1",
                "positive",
            ),
            (
                "CREATE MATERIALIZED VIEW v WITH (ttl = 5) AS SELECT 1",
                "retention_seconds",
            ),
            (
                "CREATE MATERIALIZED VIEW v WITH (retention_column = 't') AS SELECT 1",
                "needs a retention",
            ),
        ] {
            let err = retention_of(sql).unwrap_err();
            assert!(err.message.contains(says), "{sql}: {}", err.message);
        }
    }
}
