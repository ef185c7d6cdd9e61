//! Lowers an analyzed DataFusion [`LogicalPlan`] to Rampart's dataflow IR ([`Plan`]).
//!
//! Each logical operator maps to one IR operator that maintains it incrementally.
//! `NOW()` in a filter becomes a temporal filter (rows retract as they age out); in a
//! sink's projection it becomes the emission time. Anything without an incremental
//! implementation is rejected with an error naming the construct.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::array::RecordBatchOptions;
use datafusion::arrow::datatypes::Schema;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, DFSchemaRef};
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::expr::{AggregateFunction, WindowFunction};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    binary_expr, cast, BinaryExpr, Distinct, Expr, JoinType, LogicalPlan, Operator, WindowFunctionDefinition,
};
use datafusion::physical_expr::create_physical_expr;
use rampart_plan::{Aggregate, AggregateFunc, JoinKind, Plan, RankFunc, SortKey, TemporalBound, ViewPlan};
use rampart_repr::{arrow_convert::array_to_datums, Datum, RelationDesc};

use crate::error::PlanError;
use crate::udf::emit_time_udf;

/// Where `NOW()` may appear in the query being lowered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NowMode {
    /// Materialized views: only in temporal filters.
    TemporalFiltersOnly,
    /// Sinks: elsewhere it is the time the row is emitted.
    EmitTime,
}

/// Lowers a logical plan to a view plan.
pub fn lower_plan(plan: &LogicalPlan, now_mode: NowMode) -> Result<ViewPlan, PlanError> {
    let desc = RelationDesc::from_arrow(plan.schema().as_arrow())?;
    let mut lowered = Lowerer { now_mode }.lower(plan)?;
    lowered.fuse_projections();
    Ok(ViewPlan {
        plan: Arc::new(lowered),
        desc,
    })
}

struct Lowerer {
    now_mode: NowMode,
}

fn is_now(e: &Expr) -> bool {
    matches!(e, Expr::ScalarFunction(f) if f.func.name() == "now")
}

fn contains_now(e: &Expr) -> bool {
    let mut found = false;
    let _ = e.apply(|e| {
        if is_now(e) {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

impl Lowerer {
    fn lower(&self, plan: &LogicalPlan) -> Result<Plan, PlanError> {
        Ok(match plan {
            LogicalPlan::TableScan(scan) => {
                let name = scan.table_name.table().to_string();
                let full = scan.source.schema();
                let desc = RelationDesc::from_arrow(&full)?;
                if !scan.filters.is_empty() {
                    return Err(PlanError::unsupported("filters pushed into a table scan"));
                }
                let get = Plan::Get {
                    name: name.clone(),
                    desc,
                };
                match &scan.projection {
                    None => get,
                    Some(cols) => {
                        let qualified = DFSchema::try_from_qualified_schema(scan.table_name.clone(), &full)
                            .map_err(PlanError::from_datafusion)?;
                        let exprs = cols
                            .iter()
                            .map(|i| Expr::Column(datafusion::common::Column::from(qualified.qualified_field(*i))))
                            .collect();
                        Plan::Map {
                            input: Box::new(get),
                            exprs,
                            input_schema: Arc::new(qualified),
                        }
                    }
                }
            }
            LogicalPlan::Projection(p) => Plan::Map {
                input: Box::new(self.lower(&p.input)?),
                exprs: p.expr.iter().map(|e| self.scalar(e)).collect::<Result<_, _>>()?,
                input_schema: p.input.schema().clone(),
            },
            LogicalPlan::Filter(f) => self.lower_filter(&f.predicate, &f.input)?,
            LogicalPlan::SubqueryAlias(a) => self.lower(&a.input)?,
            LogicalPlan::Union(u) => {
                let mut inputs = Vec::new();
                for input in &u.inputs {
                    let lowered = self.lower(input)?;
                    inputs.push(self.coerce_to(lowered, input.schema(), &u.schema)?);
                }
                Plan::Union { inputs }
            }
            LogicalPlan::Join(j) => {
                let kind = match j.join_type {
                    JoinType::Inner => JoinKind::Inner,
                    JoinType::Left => JoinKind::Left,
                    JoinType::Right => JoinKind::Right,
                    JoinType::Full => JoinKind::Full,
                    other => return Err(PlanError::unsupported(format!("{other} joins are not supported yet"))),
                };
                let joined_schema = Arc::new(
                    j.left
                        .schema()
                        .join(j.right.schema())
                        .map_err(PlanError::from_datafusion)?,
                );
                Plan::Join {
                    left: Box::new(self.lower(&j.left)?),
                    right: Box::new(self.lower(&j.right)?),
                    kind,
                    left_keys: j.on.iter().map(|(l, _)| self.scalar(l)).collect::<Result<_, _>>()?,
                    right_keys: j.on.iter().map(|(_, r)| self.scalar(r)).collect::<Result<_, _>>()?,
                    residual: j.filter.as_ref().map(|f| self.scalar(f)).transpose()?,
                    left_schema: j.left.schema().clone(),
                    right_schema: j.right.schema().clone(),
                    joined_schema,
                }
            }
            LogicalPlan::Aggregate(a) => {
                let mut aggregates = Vec::new();
                for (i, e) in a.aggr_expr.iter().enumerate() {
                    let field = a.schema.field(a.group_expr.len() + i);
                    aggregates.push(self.aggregate(e, field.data_type().is_floating())?);
                }
                for g in &a.group_expr {
                    if matches!(g, Expr::GroupingSet(_)) {
                        return Err(PlanError::unsupported(
                            "GROUPING SETS, CUBE and ROLLUP are not supported yet",
                        ));
                    }
                }
                Plan::Reduce {
                    input: Box::new(self.lower(&a.input)?),
                    group_exprs: a.group_expr.iter().map(|e| self.scalar(e)).collect::<Result<_, _>>()?,
                    aggregates,
                    input_schema: a.input.schema().clone(),
                    emit_on_window_close: false,
                }
            }
            LogicalPlan::Distinct(Distinct::All(input)) => Plan::Distinct {
                input: Box::new(self.lower(input)?),
            },
            LogicalPlan::Distinct(Distinct::On(_)) => {
                return Err(PlanError::unsupported("SELECT DISTINCT ON is not supported yet"))
            }
            LogicalPlan::Window(w) => self.lower_window(w)?,
            LogicalPlan::Sort(s) => {
                if s.fetch.is_some() {
                    return Err(PlanError::unsupported(
                        "ORDER BY ... LIMIT in a streaming query is not supported; rank with ROW_NUMBER() OVER (PARTITION BY ... ORDER BY ...) and filter on the rank",
                    ));
                }
                // A view's rows have no order; ORDER BY applies when the view is queried.
                self.lower(&s.input)?
            }
            LogicalPlan::Limit(_) => return Err(PlanError::unsupported(
                "LIMIT in a streaming query is not supported; rank with ROW_NUMBER() OVER (...) and filter on the rank",
            )),
            LogicalPlan::Values(v) => {
                let mut rows = Vec::new();
                for r in &v.values {
                    rows.push(r.iter().map(eval_constant).collect::<Result<rampart_repr::Row, _>>()?);
                }
                Plan::Constant { rows }
            }
            LogicalPlan::EmptyRelation(e) => Plan::Constant {
                rows: if e.produce_one_row {
                    vec![rampart_repr::Row::default()]
                } else {
                    vec![]
                },
            },
            other => {
                return Err(PlanError::unsupported(format!(
                    "{} is not supported in a streaming query",
                    other.display().to_string().split(':').next().unwrap_or("this operator")
                )))
            }
        })
    }

    /// Checks a scalar expression and applies the `NOW()` policy.
    fn scalar(&self, e: &Expr) -> Result<Expr, PlanError> {
        let mut bad: Option<PlanError> = None;
        let _ = e.apply(|x| {
            match x {
                Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_) => {
                    bad = Some(PlanError::unsupported(
                        "subqueries in expressions are not supported in streaming queries yet",
                    ));
                    return Ok(TreeNodeRecursion::Stop);
                }
                Expr::Placeholder(_) => {
                    bad = Some(PlanError::unsupported(
                        "parameters ($1) are not allowed in view definitions",
                    ));
                    return Ok(TreeNodeRecursion::Stop);
                }
                _ => {}
            }
            Ok(TreeNodeRecursion::Continue)
        });
        if let Some(b) = bad {
            return Err(b);
        }
        if !contains_now(e) {
            return Ok(e.clone());
        }
        match self.now_mode {
            NowMode::TemporalFiltersOnly => Err(PlanError::unsupported(
                "NOW() in a materialized view is only supported in a filter of the form `col > NOW() - INTERVAL '...'` (a temporal filter)",
            )),
            NowMode::EmitTime => e
                .clone()
                .transform(|x| {
                    if is_now(&x) {
                        Ok(Transformed::yes(Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
                            Arc::new(emit_time_udf()),
                            vec![],
                        ))))
                    } else {
                        Ok(Transformed::no(x))
                    }
                })
                .map(|t| t.data)
                .map_err(PlanError::from_datafusion),
        }
    }

    fn lower_filter(&self, predicate: &Expr, input: &Arc<LogicalPlan>) -> Result<Plan, PlanError> {
        let input_schema = input.schema().clone();
        let mut plan = self.lower(input)?;
        let mut ordinary = Vec::new();
        for conjunct in split_conjunction(predicate) {
            if contains_now(conjunct) {
                let expires_at = temporal_bound(conjunct).ok_or_else(|| {
                    PlanError::unsupported(format!(
                        "NOW() is only supported in filters of the form `expr > NOW() - INTERVAL '...'`; found {conjunct}"
                    ))
                })?;
                plan = Plan::TemporalFilter {
                    input: Box::new(plan),
                    bound: TemporalBound { expires_at },
                    input_schema: input_schema.clone(),
                };
            } else {
                ordinary.push(self.scalar(conjunct)?);
            }
        }
        if let Some(p) = ordinary.into_iter().reduce(|a, b| binary_expr(a, Operator::And, b)) {
            plan = Plan::Filter {
                input: Box::new(plan),
                predicate: p,
                input_schema,
            };
        }
        Ok(plan)
    }

    fn coerce_to(&self, plan: Plan, from: &DFSchemaRef, to: &DFSchemaRef) -> Result<Plan, PlanError> {
        let same = from
            .fields()
            .iter()
            .zip(to.fields())
            .all(|(a, b)| a.data_type() == b.data_type());
        if same {
            return Ok(plan);
        }
        let exprs = from
            .iter()
            .zip(to.fields())
            .map(|((q, f), target)| {
                let col = Expr::Column(datafusion::common::Column::new(q.cloned(), f.name()));
                if f.data_type() == target.data_type() {
                    col
                } else {
                    cast(col, target.data_type().clone())
                }
            })
            .collect();
        Ok(Plan::Map {
            input: Box::new(plan),
            exprs,
            input_schema: from.clone(),
        })
    }

    fn aggregate(&self, e: &Expr, float_result: bool) -> Result<Aggregate, PlanError> {
        let e = match e {
            Expr::Alias(a) => a.expr.as_ref(),
            other => other,
        };
        let Expr::AggregateFunction(AggregateFunction { func, params }) = e else {
            return Err(PlanError::unsupported(format!("aggregate expression {e}")));
        };
        let name = func.name().to_lowercase();
        let f = match name.as_str() {
            "count" => AggregateFunc::Count,
            "sum" => AggregateFunc::Sum,
            "min" => AggregateFunc::Min,
            "max" => AggregateFunc::Max,
            "avg" | "mean" => AggregateFunc::Avg,
            other => {
                return Err(PlanError::unsupported(format!(
                    "aggregate function {other}() is not supported in streaming queries yet (supported: count, sum, min, max, avg)"
                )))
            }
        };
        if !params.order_by.is_empty() {
            return Err(PlanError::unsupported(format!(
                "ORDER BY inside {name}() is not supported"
            )));
        }
        if params.args.len() > 1 {
            return Err(PlanError::unsupported(format!("{name}() with several arguments")));
        }
        let arg = params.args.first().map(|a| self.scalar(a)).transpose()?;
        let arg = match (&f, arg) {
            // COUNT(*) is planned as COUNT(1): no argument to evaluate.
            (AggregateFunc::Count, Some(Expr::Literal(v, _))) if !v.is_null() && !params.distinct => None,
            (_, a) => a,
        };
        Ok(Aggregate {
            func: f,
            arg,
            distinct: params.distinct,
            filter: params.filter.as_ref().map(|f| self.scalar(f)).transpose()?,
            float_result,
        })
    }

    fn lower_window(&self, w: &datafusion::logical_expr::Window) -> Result<Plan, PlanError> {
        let mut funcs = Vec::new();
        let mut spec: Option<(Vec<Expr>, Vec<datafusion::logical_expr::SortExpr>)> = None;
        for e in &w.window_expr {
            let e = match e {
                Expr::Alias(a) => a.expr.as_ref(),
                other => other,
            };
            let Expr::WindowFunction(wf) = e else {
                return Err(PlanError::unsupported(format!("window expression {e}")));
            };
            let WindowFunction { fun, params } = wf.as_ref();
            let name = match fun {
                WindowFunctionDefinition::WindowUDF(u) => u.name().to_lowercase(),
                WindowFunctionDefinition::AggregateUDF(u) => u.name().to_lowercase(),
            };
            funcs.push(match name.as_str() {
                "row_number" => RankFunc::RowNumber,
                "rank" => RankFunc::Rank,
                "dense_rank" => RankFunc::DenseRank,
                other => {
                    return Err(PlanError::unsupported(format!(
                        "window function {other}() is not supported in streaming queries yet (supported: row_number, rank, dense_rank)"
                    )))
                }
            });
            let this = (params.partition_by.clone(), params.order_by.clone());
            match &spec {
                None => spec = Some(this),
                Some(s) if *s == this => {}
                Some(_) => {
                    return Err(PlanError::unsupported(
                        "window functions with different PARTITION BY / ORDER BY in one query",
                    ))
                }
            }
        }
        let (partition_by, order_by) = spec.unwrap_or_default();
        Ok(Plan::Window {
            input: Box::new(self.lower(&w.input)?),
            partition_by: partition_by.iter().map(|e| self.scalar(e)).collect::<Result<_, _>>()?,
            order_by: order_by
                .iter()
                .map(|s| {
                    Ok(SortKey {
                        expr: self.scalar(&s.expr)?,
                        asc: s.asc,
                        nulls_first: s.nulls_first,
                    })
                })
                .collect::<Result<_, PlanError>>()?,
            funcs,
            input_schema: w.input.schema().clone(),
        })
    }
}

fn strip_cast(e: &Expr) -> &Expr {
    match e {
        Expr::Cast(c) => strip_cast(&c.expr),
        Expr::TryCast(c) => strip_cast(&c.expr),
        other => other,
    }
}

/// For `lhs > NOW() [- iv]` (or `>=`, or the mirrored `NOW() [- iv] < lhs`) returns the
/// instant at which a row stops satisfying it: `lhs + iv`.
fn temporal_bound(e: &Expr) -> Option<Expr> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else {
        return None;
    };
    let (row_side, now_side) = match op {
        Operator::Gt | Operator::GtEq => (left.as_ref(), right.as_ref()),
        Operator::Lt | Operator::LtEq => (right.as_ref(), left.as_ref()),
        _ => return None,
    };
    if contains_now(row_side) {
        return None;
    }
    let now_side = strip_cast(now_side);
    if is_now(now_side) {
        return Some(row_side.clone());
    }
    if let Expr::BinaryExpr(BinaryExpr {
        left: n,
        op: Operator::Minus,
        right: iv,
    }) = now_side
    {
        if is_now(strip_cast(n)) && !contains_now(iv) {
            return Some(binary_expr(row_side.clone(), Operator::Plus, iv.as_ref().clone()));
        }
    }
    None
}

/// Evaluates a constant expression (a `VALUES` entry) to a datum.
pub fn eval_constant(e: &Expr) -> Result<Datum, PlanError> {
    if let Expr::Literal(v, _) = e {
        if let Ok(a) = v.to_array() {
            return array_to_datums(&a)
                .map_err(|e| PlanError::invalid(e.to_string()))?
                .pop()
                .ok_or_else(|| PlanError::invalid("empty value"));
        }
    }
    let schema = DFSchema::empty();
    let phys = create_physical_expr(e, &schema, &ExecutionProps::new(), &PhysicalPlanningContext::default())
        .map_err(PlanError::from_datafusion)?;
    let batch = RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        vec![],
        &RecordBatchOptions::new().with_row_count(Some(1)),
    )
    .map_err(|e| PlanError::invalid(e.to_string()))?;
    let v = phys.evaluate(&batch).map_err(PlanError::from_datafusion)?;
    let a = v.into_array(1).map_err(PlanError::from_datafusion)?;
    array_to_datums(&a)
        .map_err(|e| PlanError::invalid(e.to_string()))?
        .pop()
        .ok_or_else(|| PlanError::invalid("empty value"))
}
