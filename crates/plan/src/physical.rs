//! The physical plan: how each operator of a [`Plan`] runs, chosen once from the plan and
//! the event-time lags of the objects it reads. `rampart-dataflow` renders this value and
//! `EXPLAIN` prints it, so what EXPLAIN says is what runs.
//!
//! Each node names its operator and strategy, its keys, the state it keeps and what frees
//! that state ([`PhysicalPlan::explain`]: one line per operator, indented by depth).

use std::fmt::Write as _;

use datafusion::common::DFSchemaRef;
use datafusion::logical_expr::Expr;

use crate::event_time::{JoinInterval, Lags};
use crate::{AggregateFunc, JoinKind, Plan, RankFunc, Retention};

/// How a join runs.
#[derive(Debug, Clone, PartialEq)]
pub enum JoinStrategy {
    /// A range join over a left equi-join of its left input without residual
    /// ([`Plan::enrich_join`]): one operator keeps the input's rows and both tables. Its
    /// inputs are the enriched input, the keyed table and the range table.
    Enrichment,
    /// `probe BETWEEN low AND high` without keys ([`Plan::range_join`]): ranges looked up
    /// by their low end.
    Range,
    /// An inner equi-join that bounds one side's time by the other's from both sides: rows
    /// by key and time, probed by time range.
    Interval(JoinInterval),
    /// A left equi-join without residual: one operator keeps both sides by key and emits
    /// exactly the changes each update causes.
    Lookup,
    /// Any other join: both inputs arranged by key (differential's `join`), outer joins
    /// adding their unmatched rows.
    Arranged,
}

/// How a `GROUP BY` runs.
#[derive(Debug, Clone, PartialEq)]
pub enum ReduceStrategy {
    /// A key holds an event-time column (a window): groups close as the watermark passes
    /// them, and their state is freed. `keys`: (group key index, its lag behind the
    /// watermark in µs).
    Windowed {
        /// The event-time group keys and their lags.
        keys: Vec<(usize, i64)>,
    },
    /// No key is bounded by a watermark: every group's state is kept.
    Unbounded,
}

/// How one operator runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Operator {
    /// Reads a source, table or view.
    Read,
    /// Literal rows.
    Constant,
    /// A projection.
    Map {
        /// Built by the join right below it from each (row, match) pair, with no joined row
        /// in between (an enrichment or range join whose projection runs on rows).
        built_by_join: bool,
    },
    /// A filter.
    Filter,
    /// A filter on processing time.
    TemporalFilter,
    /// A materialized view's retention.
    Retain(Retention),
    /// `UNION ALL`.
    Union,
    /// A join.
    Join(JoinStrategy),
    /// A `GROUP BY`.
    Reduce(ReduceStrategy),
    /// `DISTINCT`.
    Distinct,
    /// Ranking window functions.
    Window,
}

/// One operator of the physical plan: the logical node it runs, how, and its inputs.
#[derive(Debug, Clone)]
pub struct PhysicalPlan<'p> {
    /// The logical node (its expressions and schemas).
    pub plan: &'p Plan,
    /// How it runs.
    pub operator: Operator,
    /// Its inputs, in the order the operator takes them (for an enrichment join: the
    /// enriched input, the keyed table, the range table).
    pub inputs: Vec<PhysicalPlan<'p>>,
}

/// What choosing a physical plan needs besides the logical plan.
pub struct PlanContext<'a> {
    /// The event-time lags of a catalog object the plan reads (`None`: no event time).
    pub lags: &'a dyn Fn(&str) -> Option<Lags>,
    /// Whether a projection can be evaluated on rows (then a join below it builds it).
    pub projection_runs_on_rows: &'a dyn Fn(&[Expr], &DFSchemaRef) -> bool,
}

impl Plan {
    /// How this join runs (`None`: not a join).
    pub fn join_strategy(&self, lags: &dyn Fn(&str) -> Option<Lags>) -> Option<JoinStrategy> {
        let Plan::Join {
            kind,
            left_keys,
            residual,
            ..
        } = self
        else {
            return None;
        };
        Some(if self.enrich_join().is_some() {
            JoinStrategy::Enrichment
        } else if self.range_join().is_some() {
            JoinStrategy::Range
        } else if let Some(interval) = self.join_interval(lags) {
            JoinStrategy::Interval(interval)
        } else if *kind == JoinKind::Left && residual.is_none() && !left_keys.is_empty() {
            JoinStrategy::Lookup
        } else {
            JoinStrategy::Arranged
        })
    }

    /// How this `GROUP BY` runs (`None`: not a `GROUP BY`).
    pub fn reduce_strategy(&self, lags: &dyn Fn(&str) -> Option<Lags>) -> Option<ReduceStrategy> {
        let Plan::Reduce { .. } = self else {
            return None;
        };
        Some(match self.window_keys(lags) {
            Some(keys) => ReduceStrategy::Windowed {
                keys: keys
                    .iter()
                    .enumerate()
                    .filter_map(|(k, lag)| lag.map(|lag| (k, lag)))
                    .collect(),
            },
            None => ReduceStrategy::Unbounded,
        })
    }
}

impl<'p> PhysicalPlan<'p> {
    /// Chooses how every operator of `plan` runs.
    pub fn of(plan: &'p Plan, ctx: &PlanContext<'_>) -> Self {
        let children = |ps: Vec<&'p Plan>| ps.into_iter().map(|p| PhysicalPlan::of(p, ctx)).collect();
        let (operator, inputs) = match plan {
            Plan::Get { .. } => (Operator::Read, vec![]),
            Plan::Constant { .. } => (Operator::Constant, vec![]),
            Plan::Map {
                input,
                exprs,
                input_schema,
            } => {
                let fused = matches!(
                    input.join_strategy(ctx.lags),
                    Some(JoinStrategy::Enrichment | JoinStrategy::Range)
                ) && (ctx.projection_runs_on_rows)(exprs, input_schema);
                (Operator::Map { built_by_join: fused }, children(vec![input]))
            }
            Plan::Filter { input, .. } => (Operator::Filter, children(vec![input])),
            Plan::TemporalFilter { input, .. } => (Operator::TemporalFilter, children(vec![input])),
            Plan::Retain { input, retention } => (Operator::Retain(*retention), children(vec![input])),
            Plan::Union { inputs } => (Operator::Union, children(inputs.iter().collect())),
            Plan::Join { left, right, .. } => {
                let strategy = plan.join_strategy(ctx.lags).expect("a join has a strategy");
                let inputs = match (&strategy, plan.enrich_join()) {
                    (JoinStrategy::Enrichment, Some(spec)) => children(vec![spec.input, spec.table, spec.ranges]),
                    _ => children(vec![left, right]),
                };
                (Operator::Join(strategy), inputs)
            }
            Plan::Reduce { input, .. } => (
                Operator::Reduce(plan.reduce_strategy(ctx.lags).expect("a GROUP BY has a strategy")),
                children(vec![input]),
            ),
            Plan::Distinct { input } => (Operator::Distinct, children(vec![input])),
            Plan::Window { input, .. } => (Operator::Window, children(vec![input])),
        };
        PhysicalPlan { plan, operator, inputs }
    }

    /// The plan as EXPLAIN prints it: one line per operator, inputs indented below it.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        self.explain_into(&mut out, 0);
        out
    }

    fn explain_into(&self, out: &mut String, depth: usize) {
        let (head, state) = self.describe();
        let _ = match state {
            Some(state) => writeln!(out, "{}{head} (state: {state})", "  ".repeat(depth)),
            None => writeln!(out, "{}{head}", "  ".repeat(depth)),
        };
        for input in &self.inputs {
            input.explain_into(out, depth + 1);
        }
    }

    /// The operator's line: what it does with which keys, and the state it keeps with
    /// what frees it (`None`: it keeps nothing between rows).
    fn describe(&self) -> (String, Option<String>) {
        match (&self.operator, self.plan) {
            (Operator::Read, Plan::Get { name, .. }) => (format!("Read {name}"), None),
            (Operator::Constant, Plan::Constant { rows }) => (format!("Constant ({} rows)", rows.len()), None),
            (Operator::Map { built_by_join }, Plan::Map { exprs, .. }) => {
                let how = if *built_by_join {
                    " (built by the join below from each row and its match)"
                } else {
                    ""
                };
                (format!("Map [{}]{how}", exprs_text(exprs)), None)
            }
            (Operator::Filter, Plan::Filter { predicate, .. }) => (format!("Filter {}", short(predicate)), None),
            (Operator::TemporalFilter, Plan::TemporalFilter { bound, .. }) => (
                format!("TemporalFilter rows retract when now() >= {}", short(&bound.expires_at)),
                Some("one pending retraction per row, freed when it fires".into()),
            ),
            (Operator::Retain(retention), _) => (
                format!(
                    "Retain rows until the watermark passes column {} + {} s",
                    retention.column,
                    retention.keep_us as f64 / 1e6
                ),
                Some(
                    "each row until it expires; views without retention that read this one do not see the expiry"
                        .into(),
                ),
            ),
            (Operator::Union, _) => (format!("Union ({} inputs)", self.inputs.len()), None),
            (Operator::Join(strategy), Plan::Join { .. }) => join_line(strategy, self.plan),
            (
                Operator::Reduce(strategy),
                Plan::Reduce {
                    group_exprs,
                    aggregates,
                    emit_on_window_close,
                    ..
                },
            ) => {
                let aggs = aggregates
                    .iter()
                    .map(|a| {
                        format!(
                            "{}({}{}){}",
                            aggregate_name(a.func),
                            if a.distinct { "DISTINCT " } else { "" },
                            a.arg.as_ref().map(short).unwrap_or_else(|| "*".into()),
                            a.filter
                                .as_ref()
                                .map(|f| format!(" FILTER {}", short(f)))
                                .unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let head = format!("Reduce group by [{}] aggregates [{aggs}]", exprs_text(group_exprs));
                let state = match (strategy, emit_on_window_close) {
                    (ReduceStrategy::Windowed { .. }, true) => {
                        "accumulated values per open window and group, freed when the watermark closes the window; emits each window's final result once, when it closes"
                    }
                    (ReduceStrategy::Windowed { .. }, false) => {
                        "accumulated values per open window and group, freed when the watermark closes the window; emits updates while the window is open"
                    }
                    (ReduceStrategy::Unbounded, _) => {
                        "input rows and results per group, kept forever (no watermarked window key)"
                    }
                };
                (head, Some(state.into()))
            }
            (Operator::Distinct, _) => ("Distinct".into(), Some("every distinct row, kept forever".into())),
            (
                Operator::Window,
                Plan::Window {
                    partition_by, funcs, ..
                },
            ) => (
                format!(
                    "Window {} partition by [{}]",
                    funcs.iter().map(|f| rank_name(*f)).collect::<Vec<_>>().join(", "),
                    exprs_text(partition_by)
                ),
                Some("rows per partition, kept forever".into()),
            ),
            (operator, _) => (format!("{operator:?}"), None),
        }
    }
}

fn join_line(strategy: &JoinStrategy, plan: &Plan) -> (String, Option<String>) {
    let Plan::Join {
        kind,
        left_keys,
        right_keys,
        residual,
        ..
    } = plan
    else {
        return ("Join".into(), None);
    };
    let on = format!(
        "on [{}] = [{}]{}",
        exprs_text(left_keys),
        exprs_text(right_keys),
        residual
            .as_ref()
            .map(|r| format!(" and {}", short(r)))
            .unwrap_or_default()
    );
    let kind = match kind {
        JoinKind::Inner => "inner",
        JoinKind::Left => "left",
        JoinKind::Right => "right",
        JoinKind::Full => "full",
    };
    match strategy {
        JoinStrategy::Enrichment => {
            let spec = plan.enrich_join();
            let keys = spec
                .as_ref()
                .map(|s| format!("[{}] = [{}]", exprs_text(s.input_keys), exprs_text(s.table_keys)))
                .unwrap_or_default();
            let probe = spec
                .as_ref()
                .map(|s| format!("{} between {} and {}", short(&s.range.probe), short(&s.range.low), short(&s.range.high)))
                .unwrap_or_default();
            (
                format!("Enrichment join: lookup on {keys}, then range {probe}, run as one enrichment operator"),
                Some("both tables on every worker, and every input row by key and by probe value unless the input is a materialized view read whole (a table change then scans that view's rows); kept while the input keeps them".into()),
            )
        }
        JoinStrategy::Range => (
            format!("Range join ({kind}) {}", plan.range_join().map(|r| format!("{} between {} and {}", short(&r.probe), short(&r.low), short(&r.high))).unwrap_or_default()),
            Some("every left row by its probe value and every range by its low end (ranges on every worker), kept while the inputs keep them".into()),
        ),
        JoinStrategy::Interval(i) if i.frees_state() => (
            format!("Interval join ({kind}) {on}, right - left time in [{} us, {} us]", i.lo, i.hi),
            Some("each side's rows by key and event time, freed when the watermark passes them".into()),
        ),
        JoinStrategy::Interval(i) => (
            format!("Interval join ({kind}) {on}, right - left time in [{} us, {} us]", i.lo, i.hi),
            Some("each side's rows by key and time, kept forever (no WATERMARK on both sides)".into()),
        ),
        JoinStrategy::Lookup => (
            format!("Lookup join ({kind}) {on}"),
            Some("both sides by key, kept while the inputs keep them".into()),
        ),
        JoinStrategy::Arranged => (
            format!("Join ({kind}) {on}"),
            Some("both inputs arranged by key, kept forever".into()),
        ),
    }
}

/// Longest expression text a line shows before it is cut.
const EXPR_TEXT_MAX: usize = 120;

/// An expression as SQL (DataFusion's unparser: literals such as intervals read as SQL, not
/// as the debug text of their values); its own rendering where it cannot be unparsed.
fn sql_text(e: &Expr) -> String {
    datafusion::sql::unparser::expr_to_sql(e)
        .map(|sql| sql.to_string())
        .unwrap_or_else(|_| e.to_string())
}

fn short(e: &Expr) -> String {
    cut(sql_text(e))
}

fn exprs_text(es: &[Expr]) -> String {
    cut(es.iter().map(sql_text).collect::<Vec<_>>().join(", "))
}

fn cut(text: String) -> String {
    match text.char_indices().nth(EXPR_TEXT_MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

fn aggregate_name(f: AggregateFunc) -> &'static str {
    match f {
        AggregateFunc::Count => "count",
        AggregateFunc::Sum => "sum",
        AggregateFunc::Min => "min",
        AggregateFunc::Max => "max",
        AggregateFunc::Avg => "avg",
    }
}

fn rank_name(f: RankFunc) -> &'static str {
    match f {
        RankFunc::RowNumber => "row_number()",
        RankFunc::Rank => "rank()",
        RankFunc::DenseRank => "dense_rank()",
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::common::DFSchema;
    use datafusion::prelude::col;

    use super::*;
    use crate::tests::get;

    fn join(kind: JoinKind, residual: Option<Expr>) -> Plan {
        Plan::Join {
            left: Box::new(get("l")),
            right: Box::new(get("r")),
            kind,
            left_keys: vec![col("a")],
            right_keys: vec![col("a")],
            residual,
            left_schema: Arc::new(DFSchema::empty()),
            right_schema: Arc::new(DFSchema::empty()),
            joined_schema: Arc::new(DFSchema::empty()),
        }
    }

    fn physical(plan: &Plan) -> PhysicalPlan<'_> {
        PhysicalPlan::of(
            plan,
            &PlanContext {
                lags: &|_| None,
                projection_runs_on_rows: &|_, _| true,
            },
        )
    }

    #[test]
    fn a_left_equi_join_without_residual_is_a_lookup_join_and_explain_says_so() {
        let plan = join(JoinKind::Left, None);
        let p = physical(&plan);
        assert_eq!(p.operator, Operator::Join(JoinStrategy::Lookup));
        assert!(
            p.explain().starts_with("Lookup join (left) on [a] = [a]"),
            "{}",
            p.explain()
        );
        let with_residual = join(JoinKind::Left, Some(col("a").is_not_null()));
        assert_eq!(
            physical(&with_residual).operator,
            Operator::Join(JoinStrategy::Arranged)
        );
        assert_eq!(
            physical(&join(JoinKind::Inner, None)).operator,
            Operator::Join(JoinStrategy::Arranged)
        );
    }

    #[test]
    fn explain_prints_one_line_per_operator_indented_by_depth() {
        let plan = Plan::Distinct {
            input: Box::new(join(JoinKind::Inner, None)),
        };
        let text = physical(&plan).explain();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            vec![
                "Distinct (state: every distinct row, kept forever)",
                "  Join (inner) on [a] = [a] (state: both inputs arranged by key, kept forever)",
                "    Read l",
                "    Read r",
            ]
        );
    }

    #[test]
    fn long_expressions_are_cut() {
        let long = (0..100).map(|i| format!("c{i}")).collect::<Vec<_>>().join(" + ");
        let text = cut(long);
        assert_eq!(text.chars().count(), EXPR_TEXT_MAX + 1);
        assert!(text.ends_with('…'));
    }
}
