//! Rampart's dataflow IR: the operators a view's query lowers to, each carrying the
//! DataFusion expressions it evaluates and the schema they are evaluated against.
//! [`physical::PhysicalPlan`] chooses once how each operator runs; `rampart-dataflow`
//! renders that onto timely/differential dataflow and `EXPLAIN` prints it.

pub mod emit_time;
mod enrich;
pub mod event_time;
mod fuse;
pub mod lineage;
pub mod physical;
mod range;

pub use enrich::EnrichJoin;
pub use physical::{JoinStrategy, Operator, PhysicalPlan, PlanContext, ReduceStrategy};
pub use range::RangeJoin;

use std::sync::Arc;

use datafusion::common::DFSchemaRef;
use datafusion::logical_expr::Expr;
use rampart_repr::{Error, RelationDesc, Row, SqlState};

/// An aggregate function a [`Plan::Reduce`] computes per group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateFunc {
    /// `COUNT(*)` or `COUNT(x)` (counts non-null arguments).
    Count,
    /// `SUM(x)`.
    Sum,
    /// `MIN(x)`.
    Min,
    /// `MAX(x)`.
    Max,
    /// `AVG(x)`.
    Avg,
}

/// One aggregate of a [`Plan::Reduce`].
#[derive(Debug, Clone)]
pub struct Aggregate {
    /// The function.
    pub func: AggregateFunc,
    /// The argument, evaluated on the input; `None` for `COUNT(*)`.
    pub arg: Option<Expr>,
    /// `DISTINCT`: each distinct non-null argument value counts once.
    pub distinct: bool,
    /// `FILTER (WHERE ...)`, evaluated on the input.
    pub filter: Option<Expr>,
    /// Whether the result is floating point (SUM over floats, AVG).
    pub float_result: bool,
}

/// A ranking window function of a [`Plan::Window`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankFunc {
    /// `ROW_NUMBER()`.
    RowNumber,
    /// `RANK()`.
    Rank,
    /// `DENSE_RANK()`.
    DenseRank,
}

/// A sort key of a window's `ORDER BY`.
#[derive(Debug, Clone)]
pub struct SortKey {
    /// Expression on the input.
    pub expr: Expr,
    /// Ascending.
    pub asc: bool,
    /// Nulls sort first.
    pub nulls_first: bool,
}

/// How a join combines rows that match and rows that do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// Only matching pairs.
    Inner,
    /// Matching pairs, plus left rows without a match padded with NULLs.
    Left,
    /// Matching pairs, plus right rows without a match padded with NULLs.
    Right,
    /// Both of the above.
    Full,
}

/// The upper bound of a temporal filter: a row is kept while `now < expr(row) + 0`, in
/// processing time (milliseconds). Built from `expr > NOW() - INTERVAL '...'`.
#[derive(Debug, Clone)]
pub struct TemporalBound {
    /// Expression giving the instant at which the row leaves the view (already including
    /// the interval), as a timestamp evaluated on the input.
    pub expires_at: Expr,
}

/// A dataflow operator tree. Every node knows the DataFusion schema of its input(s) so
/// expressions can be compiled to physical expressions at render time.
#[derive(Debug, Clone)]
pub enum Plan {
    /// Reads a source, table or view of the catalog.
    Get {
        /// Catalog name.
        name: String,
        /// Its columns.
        desc: RelationDesc,
    },
    /// Literal rows (`VALUES`, or a FROM-less SELECT).
    Constant {
        /// The rows.
        rows: Vec<Row>,
    },
    /// Evaluates `exprs` on each input row; the output row is their results.
    Map {
        /// Input.
        input: Box<Plan>,
        /// Output expressions.
        exprs: Vec<Expr>,
        /// Schema the expressions are evaluated against.
        input_schema: DFSchemaRef,
    },
    /// Keeps rows for which `predicate` is true.
    Filter {
        /// Input.
        input: Box<Plan>,
        /// Predicate.
        predicate: Expr,
        /// Schema of the input.
        input_schema: DFSchemaRef,
    },
    /// Keeps each row until processing time reaches its bound, then retracts it.
    TemporalFilter {
        /// Input.
        input: Box<Plan>,
        /// When rows expire.
        bound: TemporalBound,
        /// Schema of the input.
        input_schema: DFSchemaRef,
    },
    /// A materialized view's retention (`WITH (retention = '1 hour')`): keeps each row
    /// until the watermark passes its event time plus `keep_us`, then retracts it. Views
    /// without retention that read this one keep what they derived from expired rows.
    Retain {
        /// Input.
        input: Box<Plan>,
        /// Which column, and for how long.
        retention: Retention,
    },
    /// Concatenates inputs with the same columns (`UNION ALL`).
    Union {
        /// Inputs.
        inputs: Vec<Plan>,
    },
    /// Joins two inputs on equal keys (none: every pair is a candidate) and a residual
    /// predicate over the concatenated row.
    Join {
        /// Left input.
        left: Box<Plan>,
        /// Right input.
        right: Box<Plan>,
        /// Join kind.
        kind: JoinKind,
        /// Key expressions on the left input.
        left_keys: Vec<Expr>,
        /// Key expressions on the right input, pairwise equal to `left_keys`.
        right_keys: Vec<Expr>,
        /// Residual predicate on `left ++ right` rows.
        residual: Option<Expr>,
        /// Schema of the left input.
        left_schema: DFSchemaRef,
        /// Schema of the right input.
        right_schema: DFSchemaRef,
        /// Schema of `left ++ right` (for the residual).
        joined_schema: DFSchemaRef,
    },
    /// Groups by `group_exprs` and computes `aggregates`; output is keys then aggregates.
    Reduce {
        /// Input.
        input: Box<Plan>,
        /// Grouping expressions.
        group_exprs: Vec<Expr>,
        /// Aggregates.
        aggregates: Vec<Aggregate>,
        /// Schema of the input.
        input_schema: DFSchemaRef,
        /// `EMIT ON WINDOW CLOSE`: emit each group once, final, when the watermark closes
        /// its window (the group key must hold an event-time column).
        emit_on_window_close: bool,
    },
    /// Removes duplicate rows.
    Distinct {
        /// Input.
        input: Box<Plan>,
    },
    /// Appends a rank per partition (`ROW_NUMBER() OVER (PARTITION BY .. ORDER BY ..)`).
    Window {
        /// Input.
        input: Box<Plan>,
        /// Partition expressions.
        partition_by: Vec<Expr>,
        /// Order within a partition.
        order_by: Vec<SortKey>,
        /// The ranking functions, one appended column each.
        funcs: Vec<RankFunc>,
        /// Schema of the input.
        input_schema: DFSchemaRef,
    },
}

/// A view's retention: which column holds its event time, and for how long (microseconds
/// of event time) rows stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// The event-time column (it follows a source watermark).
    pub column: usize,
    /// How long a row stays after its event time, in microseconds.
    pub keep_us: i64,
}

impl Retention {
    /// When `row` leaves the view (`None`: a NULL or non-timestamp event time, never).
    pub fn expires(&self, row: &Row) -> Option<i64> {
        match row.get(self.column) {
            Some(rampart_repr::Datum::Timestamp(v)) => Some(v.saturating_add(self.keep_us)),
            _ => None,
        }
    }
}

/// A plan ready to render, with its output columns.
#[derive(Debug, Clone)]
pub struct ViewPlan {
    /// The operator tree.
    pub plan: Arc<Plan>,
    /// Output columns.
    pub desc: RelationDesc,
}

impl Plan {
    /// Names of every catalog object this plan reads.
    pub fn dependencies(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.visit(&mut |p| {
            if let Plan::Get { name, .. } = p {
                if !out.contains(name) {
                    out.push(name.clone());
                }
            }
        });
        out
    }

    /// Whether this plan's dataflow produces every retraction on the worker that produced
    /// the insertion it cancels (or produces none), so that a view over it can keep each
    /// update on the worker where it was produced and still have a row's insertions and
    /// retractions meet. True for a read of any relation (a source never retracts; a
    /// table's or view's row is stored, and so retracted, on one worker, and each worker
    /// reads its own share), maps, filters and unions over such plans, and an enrichment
    /// join over such an input (each output comes from one input row, on that row's worker,
    /// and both tables are on every worker). Anything else is false: other joins (an outer
    /// join's padded rows are cancelled by negations built on the key's worker), aggregates,
    /// `DISTINCT`, temporal filters, retention.
    pub fn retracts_where_it_inserted(&self) -> bool {
        if let Some(enrich) = self.enrich_join() {
            return enrich.input.retracts_where_it_inserted();
        }
        match self {
            Plan::Get { .. } => true,
            Plan::Map { input, .. } | Plan::Filter { input, .. } => input.retracts_where_it_inserted(),
            Plan::Union { inputs } => inputs.iter().all(Plan::retracts_where_it_inserted),
            _ => false,
        }
    }

    /// Whether the plan is made only of reads, maps, filters and unions: each output row
    /// comes from one input row, and no operator keeps anything between rows. Over sources,
    /// such a view's rows are all a restart needs to resume it (`rampart_dataflow::snapshot`).
    pub fn keeps_no_state(&self) -> bool {
        match self {
            Plan::Get { .. } => true,
            Plan::Map { input, .. } | Plan::Filter { input, .. } => input.keeps_no_state(),
            Plan::Union { inputs } => inputs.iter().all(Plan::keeps_no_state),
            _ => false,
        }
    }

    /// Whether the plan keeps no state but its rows and their retention: a plan that
    /// [`Plan::keeps_no_state`], or a `Retain` at the root over one. Its rows entered so
    /// far and the watermark decide what it holds, so those are all a restart needs.
    pub fn keeps_only_retained_rows(&self) -> bool {
        match self {
            Plan::Retain { input, .. } => input.keeps_no_state(),
            other => other.keeps_no_state(),
        }
    }

    /// Whether the plan's rows are a function of its inputs' current rows (and processing
    /// time) alone: reads, constants, maps, filters, temporal filters, unions, retentions
    /// and enrichment joins against tables. Windows and interval joins free state as the
    /// watermark passes, so what they hold depends on rows their inputs may no longer hold;
    /// every other operator is left out too, to be safe.
    pub fn is_function_of_inputs(&self) -> bool {
        if let Some(e) = self.enrich_join() {
            return [e.input, e.table, e.ranges].iter().all(|p| p.is_function_of_inputs());
        }
        let here = matches!(
            self,
            Plan::Get { .. }
                | Plan::Constant { .. }
                | Plan::Map { .. }
                | Plan::Filter { .. }
                | Plan::TemporalFilter { .. }
                | Plan::Retain { .. }
                | Plan::Union { .. }
        );
        here && self.children().iter().all(|c| c.is_function_of_inputs())
    }

    /// The projection every read of `name` in this plan is the direct input of, as its
    /// expressions and their input schema: `None` when some read is not under a `Map`, or
    /// the reads are under different ones. A source's reader can then build the
    /// projection's rows itself (`rampart_dataflow::SourceProjection`).
    pub fn projection_over(&self, name: &str) -> Option<(&[Expr], &DFSchemaRef)> {
        let mut reads = Vec::new();
        self.reads_of(name, &mut reads);
        let (first, rest) = reads.split_first()?;
        let first = (*first)?;
        rest.iter()
            .all(|r| r.is_some_and(|(e, _)| e == first.0))
            .then_some(first)
    }

    /// Each read of `name` below this node: the `Map` right above it, or `None`.
    fn reads_of<'a>(&'a self, name: &str, out: &mut Vec<Option<(&'a [Expr], &'a DFSchemaRef)>>) {
        match self {
            Plan::Map {
                input,
                exprs,
                input_schema,
            } if matches!(input.as_ref(), Plan::Get { name: n, .. } if n == name) => {
                out.push(Some((exprs.as_slice(), input_schema)))
            }
            Plan::Get { name: n, .. } if n == name => out.push(None),
            _ => {
                for c in self.children() {
                    c.reads_of(name, out);
                }
            }
        }
    }

    /// Calls `f` on this node and every node below it, parents first.
    pub fn visit(&self, f: &mut impl FnMut(&Plan)) {
        f(self);
        for c in self.children() {
            c.visit(f);
        }
    }

    /// The inputs of this node.
    pub fn children(&self) -> Vec<&Plan> {
        match self {
            Plan::Get { .. } | Plan::Constant { .. } => vec![],
            Plan::Map { input, .. }
            | Plan::Filter { input, .. }
            | Plan::TemporalFilter { input, .. }
            | Plan::Retain { input, .. }
            | Plan::Reduce { input, .. }
            | Plan::Distinct { input }
            | Plan::Window { input, .. } => vec![input],
            Plan::Union { inputs } => inputs.iter().collect(),
            Plan::Join { left, right, .. } => vec![left, right],
        }
    }

    /// The inputs of this node, to change in place.
    pub(crate) fn children_mut(&mut self) -> Vec<&mut Plan> {
        match self {
            Plan::Get { .. } | Plan::Constant { .. } => vec![],
            Plan::Map { input, .. }
            | Plan::Filter { input, .. }
            | Plan::TemporalFilter { input, .. }
            | Plan::Retain { input, .. }
            | Plan::Reduce { input, .. }
            | Plan::Distinct { input }
            | Plan::Window { input, .. } => vec![input.as_mut()],
            Plan::Union { inputs } => inputs.iter_mut().collect(),
            Plan::Join { left, right, .. } => vec![left.as_mut(), right.as_mut()],
        }
    }

    /// Makes every `GROUP BY` of the plan emit on window close (`EMIT ON WINDOW CLOSE`).
    /// Fails, saying why, when the plan has no `GROUP BY` or one whose key holds no
    /// event-time column (a windowing error, `42P20`).
    pub fn set_emit_on_window_close(&mut self, inputs: &dyn Fn(&str) -> Option<event_time::Lags>) -> Result<(), Error> {
        let mut found = false;
        self.set_eowc(inputs, &mut found)?;
        if found {
            Ok(())
        } else {
            Err(Error::new(
                SqlState::WindowingError,
                "EMIT ON WINDOW CLOSE needs a GROUP BY over a window (TUMBLE or HOP) of a source with a WATERMARK",
            ))
        }
    }

    fn set_eowc(&mut self, inputs: &dyn Fn(&str) -> Option<event_time::Lags>, found: &mut bool) -> Result<(), Error> {
        if let Plan::Reduce { group_exprs, .. } = &*self {
            if self.window_keys(inputs).is_none() {
                return Err(Error::new(
                    SqlState::WindowingError,
                    format!(
                        "EMIT ON WINDOW CLOSE: GROUP BY [{}] has no window column derived from a source with a WATERMARK, so its groups never close",
                        group_exprs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        if let Plan::Reduce {
            emit_on_window_close, ..
        } = self
        {
            *emit_on_window_close = true;
            *found = true;
        }
        for c in self.children_mut() {
            c.set_eowc(inputs, found)?;
        }
        Ok(())
    }

    /// For an inner equi-join whose condition bounds a time column of each side by the
    /// other's from both sides: that interval. Rows are then probed by time range; when
    /// watermarks bound both columns ([`event_time::JoinInterval::frees_state`]) old rows
    /// are also dropped.
    pub fn join_interval(&self, inputs: &dyn Fn(&str) -> Option<event_time::Lags>) -> Option<event_time::JoinInterval> {
        let Plan::Join {
            left,
            right,
            kind: JoinKind::Inner,
            left_keys,
            residual,
            joined_schema,
            ..
        } = self
        else {
            return None;
        };
        if left_keys.is_empty() {
            return None;
        }
        let (ll, rl) = (
            event_time::plan_lags(left, inputs),
            event_time::plan_lags(right, inputs),
        );
        // Any timestamp column may bound the interval; only watermarked ones free state.
        let timed: event_time::Lags = ll
            .iter()
            .chain(rl.iter())
            .zip(joined_schema.fields())
            .map(|(lag, f)| lag.or(f.data_type().is_temporal().then_some(0)))
            .collect();
        let bounds = event_time::time_bounds(residual.as_ref(), joined_schema, &timed);
        event_time::join_interval(&bounds, ll.len(), &ll, &rl)
    }

    /// How far behind the watermark (µs of event time) the rows this plan's state needs
    /// can reach, for a view restored by rebuilding its state from inputs that keep only a
    /// stretch of event time (retained views): `Some(h)` when every operator either keeps
    /// nothing between rows (maps, filters, unions) or frees its state as the watermark
    /// passes: a windowed `GROUP BY` (twice its largest key lag, as a margin: a group
    /// stays open until its key is that lag behind the watermark, and its rows are no
    /// older than its key) or an interval join (a row waits for the other side's rows up
    /// to the interval's far end, plus that side's lag). `None` for any other operator:
    /// what it holds may depend on rows of any age.
    pub fn restore_horizon(&self, inputs: &dyn Fn(&str) -> Option<event_time::Lags>) -> Option<i64> {
        let here = match self {
            Plan::Get { .. } | Plan::Constant { .. } | Plan::Map { .. } | Plan::Filter { .. } | Plan::Union { .. } => 0,
            Plan::Reduce { .. } => {
                let keys = self.window_keys(inputs)?;
                2 * keys.iter().flatten().copied().max()?.max(0)
            }
            Plan::Join { .. } => {
                let i = self.join_interval(inputs).filter(|i| i.frees_state())?;
                let (left_lag, right_lag) = (i.left_lag?, i.right_lag?);
                right_lag.saturating_add(i.hi).max(left_lag.saturating_sub(i.lo)).max(0)
            }
            _ => return None,
        };
        self.children()
            .iter()
            .try_fold(here, |h, c| Some(h.max(c.restore_horizon(inputs)?)))
    }

    /// For a `Reduce`, which group keys are event-time columns (their lags), if any.
    pub fn window_keys(&self, inputs: &dyn Fn(&str) -> Option<event_time::Lags>) -> Option<event_time::Lags> {
        let Plan::Reduce {
            input,
            group_exprs,
            input_schema,
            ..
        } = self
        else {
            return None;
        };
        let lags = event_time::plan_lags(input, inputs);
        let keys: event_time::Lags = group_exprs
            .iter()
            .map(|e| event_time::expr_lag(e, input_schema, &lags))
            .collect();
        event_time::has_event_time(&keys).then_some(keys)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::common::DFSchema;
    use datafusion::prelude::{col, lit};
    use rampart_repr::ColumnType;

    use super::*;

    /// A read of `name`, one text column `a` (shared with the other modules' tests).
    pub(crate) fn get(name: &str) -> Plan {
        Plan::Get {
            name: name.into(),
            desc: RelationDesc::new([("a".to_string(), ColumnType::Text)]),
        }
    }

    fn map(input: Plan, exprs: Vec<Expr>) -> Plan {
        Plan::Map {
            input: Box::new(input),
            exprs,
            input_schema: Arc::new(DFSchema::empty()),
        }
    }

    fn union(inputs: Vec<Plan>) -> Plan {
        Plan::Union { inputs }
    }

    fn projection(plan: &Plan, name: &str) -> Option<Vec<Expr>> {
        plan.projection_over(name).map(|(exprs, _)| exprs.to_vec())
    }

    #[test]
    fn emit_on_window_close_without_a_group_by_is_a_windowing_error() {
        let mut plan = map(get("s"), vec![col("a")]);
        let e = plan.set_emit_on_window_close(&|_| None).unwrap_err();
        assert_eq!(e.state(), SqlState::WindowingError);
        assert_eq!(e.sqlstate(), "42P20");
        assert!(e.message().starts_with("EMIT ON WINDOW CLOSE needs a GROUP BY"), "{e}");
    }

    #[test]
    fn the_projection_over_a_source_is_the_one_map_above_every_read_of_it() {
        let two_sources = union(vec![map(get("s"), vec![col("a")]), map(get("t"), vec![lit(1)])]);
        assert_eq!(projection(&two_sources, "s"), Some(vec![col("a")]));
        assert_eq!(projection(&two_sources, "t"), Some(vec![lit(1)]));
        assert_eq!(projection(&two_sources, "absent"), None);
        let twice = union(vec![map(get("s"), vec![col("a")]), map(get("s"), vec![col("a")])]);
        assert_eq!(
            projection(&twice, "s"),
            Some(vec![col("a")]),
            "the same map above both reads"
        );
        let different = union(vec![map(get("s"), vec![col("a")]), map(get("s"), vec![lit("x")])]);
        assert_eq!(projection(&different, "s"), None);
        let bare = union(vec![map(get("s"), vec![col("a")]), get("s")]);
        assert_eq!(projection(&bare, "s"), None, "one read has no map above it");
        assert_eq!(projection(&get("s"), "s"), None);
        let nested = map(map(get("s"), vec![col("a")]), vec![lit(2)]);
        assert_eq!(
            projection(&nested, "s"),
            Some(vec![col("a")]),
            "the map right above the read"
        );
        let filtered = map(
            Plan::Filter {
                input: Box::new(get("s")),
                predicate: col("a").is_not_null(),
                input_schema: Arc::new(DFSchema::empty()),
            },
            vec![col("a")],
        );
        assert_eq!(projection(&filtered, "s"), None, "a filter sits between");
    }

    #[test]
    fn reads_maps_filters_and_unions_retract_where_they_inserted() {
        let filtered = |input: Plan| Plan::Filter {
            input: Box::new(input),
            predicate: col("a").is_not_null(),
            input_schema: Arc::new(DFSchema::empty()),
        };
        let normalized = union(vec![
            map(get("s"), vec![col("a")]),
            filtered(map(get("view"), vec![lit(1)])),
        ]);
        assert!(normalized.retracts_where_it_inserted());
        let distinct = Plan::Distinct {
            input: Box::new(get("s")),
        };
        assert!(
            !distinct.retracts_where_it_inserted(),
            "an operator that exchanges by its own key"
        );
        assert!(!map(distinct, vec![col("a")]).retracts_where_it_inserted());
        assert!(!union(vec![
            get("s"),
            Plan::Distinct {
                input: Box::new(get("t"))
            }
        ])
        .retracts_where_it_inserted());
    }

    #[test]
    fn only_reads_maps_filters_and_unions_keep_no_state() {
        let normalized = union(vec![
            map(get("auth"), vec![col("a")]),
            Plan::Filter {
                input: Box::new(map(get("fw"), vec![lit(1)])),
                predicate: col("a").is_not_null(),
                input_schema: Arc::new(DFSchema::empty()),
            },
        ]);
        assert!(normalized.keeps_no_state());
        let distinct = Plan::Distinct {
            input: Box::new(normalized.clone()),
        };
        assert!(!distinct.keeps_no_state(), "DISTINCT keeps every row it saw");
        assert!(!union(vec![normalized, distinct]).keeps_no_state());
    }
}
