//! Rewrites RisingWave's streaming table functions into plain SQL before planning:
//!
//! - `TUMBLE(rel, col, size)` becomes
//!   `(SELECT *, date_bin(size, col) AS window_start, date_bin(size, col) + size AS window_end FROM rel)`;
//! - `HOP(rel, col, slide, size)` becomes the `UNION ALL` of `size / slide` such subqueries,
//!   the i-th shifted back by `i * slide`, so each row lands in every window containing it.
//!
//! `rel` may be a relation name or a parenthesised query. Windows are aligned to the Unix
//! epoch, as RisingWave aligns them.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, Query, TableAlias, TableFactor, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::ast::object_name;
use crate::error::PlanError;

/// Rewrites every `TUMBLE`/`HOP` in the query, in place.
pub fn rewrite_windows(query: &mut Query) -> Result<(), PlanError> {
    let mut v = WindowRewriter {
        error: None,
        counter: 0,
    };
    let _ = query.visit(&mut v);
    match v.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

struct WindowRewriter {
    error: Option<PlanError>,
    counter: usize,
}

impl VisitorMut for WindowRewriter {
    type Break = ();

    fn post_visit_table_factor(&mut self, tf: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table {
            name,
            args: Some(args),
            alias,
            ..
        } = tf
        else {
            return ControlFlow::Continue(());
        };
        let fname = object_name(name);
        if fname != "tumble" && fname != "hop" {
            return ControlFlow::Continue(());
        }
        match rewrite_call(&fname, &args.args, self.counter) {
            Ok(subquery) => {
                self.counter += 1;
                let alias = alias.clone().or_else(|| {
                    Some(TableAlias {
                        name: format!("{fname}_{}", self.counter).as_str().into(),
                        columns: vec![],
                        explicit: true,
                        at: None,
                    })
                });
                *tf = TableFactor::Derived {
                    lateral: false,
                    subquery: Box::new(subquery),
                    alias,
                    sample: None,
                };
                ControlFlow::Continue(())
            }
            Err(e) => {
                self.error = Some(e);
                ControlFlow::Break(())
            }
        }
    }
}

fn arg_expr(a: &FunctionArg) -> Option<&Expr> {
    match a {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
        FunctionArg::Named {
            arg: FunctionArgExpr::Expr(e),
            ..
        } => Some(e),
        _ => None,
    }
}

fn relation_sql(e: &Expr) -> Result<String, PlanError> {
    match e {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => Ok(e.to_string()),
        Expr::Subquery(q) => Ok(format!("({q}) AS window_input")),
        other => Err(PlanError::syntax(format!(
            "the first argument of a window function must be a relation or a subquery, found {other}"
        ))),
    }
}

fn rewrite_call(fname: &str, args: &[FunctionArg], _n: usize) -> Result<Query, PlanError> {
    let exprs: Vec<&Expr> = args.iter().filter_map(arg_expr).collect();
    let upper = fname.to_uppercase();
    let sql = match (fname, exprs.as_slice()) {
        ("tumble", [rel, col, size]) => {
            let rel = relation_sql(rel)?;
            let start = format!("date_bin({size}, {col})");
            format!("SELECT *, {start} AS window_start, {start} + {size} AS window_end FROM {rel}")
        }
        ("hop", [rel, col, slide, size]) => {
            let rel = relation_sql(rel)?;
            let slide_us = interval_micros(slide).ok_or_else(|| {
                PlanError::unsupported(format!("HOP slide must be a constant interval, found {slide}"))
            })?;
            let size_us = interval_micros(size)
                .ok_or_else(|| PlanError::unsupported(format!("HOP size must be a constant interval, found {size}")))?;
            if slide_us <= 0 || size_us <= 0 || size_us % slide_us != 0 {
                return Err(PlanError::invalid(format!(
                    "HOP size ({size}) must be a positive multiple of its slide ({slide})"
                )));
            }
            let copies = size_us / slide_us;
            if copies > 1000 {
                return Err(PlanError::invalid(format!(
                    "HOP puts each row in {copies} windows; at most 1000 are supported"
                )));
            }
            (0..copies)
                .map(|i| {
                    let start = format!("(date_bin({slide}, {col}) - INTERVAL '{} microseconds')", i * slide_us);
                    format!("SELECT *, {start} AS window_start, {start} + {size} AS window_end FROM {rel}")
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ")
        }
        ("tumble", _) => {
            return Err(PlanError::syntax(format!(
                "{upper} takes (relation, time_column, size), got {} arguments",
                exprs.len()
            )))
        }
        _ => {
            return Err(PlanError::syntax(format!(
                "{upper} takes (relation, time_column, slide, size), got {} arguments",
                exprs.len()
            )))
        }
    };
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(&sql)
        .map_err(|e| PlanError::syntax(format!("in {upper}: {e}")))?;
    parser
        .parse_query()
        .map(|q| *q)
        .map_err(|e| PlanError::syntax(format!("in {upper}: {e}")))
}

/// The length of a constant interval literal in microseconds (`INTERVAL '5 minutes'`,
/// `INTERVAL '20' SECOND`, `INTERVAL '1' HOUR`); months and years are not constant lengths.
pub fn interval_micros(e: &Expr) -> Option<i64> {
    let Expr::Interval(iv) = e else { return None };
    let text = match iv.value.as_ref() {
        Expr::Value(v) => match &v.value {
            datafusion::sql::sqlparser::ast::Value::SingleQuotedString(s) => s.clone(),
            datafusion::sql::sqlparser::ast::Value::Number(n, _) => n.clone(),
            _ => return None,
        },
        _ => return None,
    };
    let unit = iv.leading_field.as_ref().map(|f| f.to_string());
    let text = match unit {
        Some(u) => format!("{text} {u}"),
        None => text,
    };
    parse_interval_text(&text)
}

/// Parses `'5 minutes'`, `'1 hour 30 minutes'`, `'20 SECOND'`, `'00:05:00'` into microseconds.
pub fn parse_interval_text(text: &str) -> Option<i64> {
    let t = text.trim().to_lowercase();
    if t.contains(':') && !t.contains(' ') {
        let parts: Vec<f64> = t.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
        let secs = parts.iter().fold(0.0, |acc, p| acc * 60.0 + p);
        return Some((secs * 1e6) as i64);
    }
    let tokens: Vec<&str> = t.split_whitespace().collect();
    if tokens.is_empty() || !tokens.len().is_multiple_of(2) {
        return None;
    }
    let mut total = 0i64;
    for pair in tokens.chunks(2) {
        let n: f64 = pair[0].parse().ok()?;
        let unit = pair[1].trim_end_matches('s');
        let us = match unit {
            "microsecond" | "us" => 1.0,
            "millisecond" | "m" => 1e3,
            "second" | "sec" => 1e6,
            "minute" | "min" => 60e6,
            "hour" | "h" => 3600e6,
            "day" => 86400e6,
            "week" => 7.0 * 86400e6,
            _ => return None,
        };
        total += (n * us) as i64;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;

    fn rewrite(sql: &str) -> String {
        let mut q = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(sql)
            .unwrap()
            .parse_query()
            .unwrap();
        rewrite_windows(&mut q).unwrap();
        q.to_string()
    }

    #[test]
    fn tumble_over_relation_becomes_date_bin_subquery() {
        let out =
            rewrite("SELECT window_start, COUNT(*) FROM TUMBLE(t, ts, INTERVAL '5 minutes') GROUP BY window_start");
        assert!(
            out.contains("date_bin(INTERVAL '5 minutes', ts) AS window_start"),
            "{out}"
        );
        assert!(out.contains("FROM t"), "{out}");
    }

    #[test]
    fn tumble_over_subquery_keeps_the_subquery() {
        let out =
            rewrite("SELECT * FROM TUMBLE((SELECT a AS ts FROM x UNION ALL SELECT b FROM y), ts, INTERVAL '1 minute')");
        assert!(out.contains("UNION ALL"), "{out}");
        assert!(out.contains("AS window_input"), "{out}");
    }

    #[test]
    fn hop_makes_one_copy_per_window() {
        let out = rewrite("SELECT * FROM HOP(t, ts, INTERVAL '1 minute', INTERVAL '5 minutes')");
        assert_eq!(out.matches("UNION ALL").count(), 4, "{out}");
    }

    #[test]
    fn interval_texts() {
        assert_eq!(parse_interval_text("5 minutes"), Some(300_000_000));
        assert_eq!(parse_interval_text("1 hour"), Some(3_600_000_000));
        assert_eq!(parse_interval_text("20 SECOND"), Some(20_000_000));
        assert_eq!(parse_interval_text("00:05:00"), Some(300_000_000));
    }
}
