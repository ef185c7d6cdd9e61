//! Row-wise operators evaluated in batches: projection (`Map`), `Filter`, and the generic
//! [`map_rows`] that the other operator families build on.
//!
//! A batch that fails to evaluate is retried row by row, so one bad row is recorded in the
//! error log and the rest of the batch goes through.

use std::rc::Rc;

use datafusion::common::DFSchemaRef;
use datafusion::logical_expr::Expr;
use differential_dataflow::{AsCollection, VecCollection};
use rampart_plan::Plan;
use rampart_repr::{Error, ErrorLog, Row};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;

use super::{RenderContext, Rows, ViewSource};
use crate::eval::Evaluator;
use crate::{Diff, Time};

/// Applies `logic` to each incoming batch of updates; it appends outputs (with times at or
/// after their input's time) to the output vector.
pub fn map_rows<'s, D, F>(input: Rows<'s>, name: &str, mut logic: F) -> VecCollection<'s, Time, D, Diff>
where
    D: Clone + 'static,
    F: FnMut(&mut Vec<(Row, Time, Diff)>, &mut Vec<(D, Time, Diff)>) + 'static,
{
    input
        .inner
        .unary::<CapacityContainerBuilder<Vec<(D, Time, Diff)>>, _, _, _>(Pipeline, name, move |_cap, _info| {
            move |input, output| {
                input.for_each(|cap, data| {
                    let mut out = Vec::with_capacity(data.len());
                    logic(data, &mut out);
                    if !out.is_empty() {
                        output.session(&cap).give_container(&mut out);
                    }
                });
            }
        })
        .as_collection()
}

/// Evaluates `eval` on a batch; if the batch fails, evaluates row by row and records each
/// failing row in `errors`. Returns one result per input row (`None` where it failed).
pub fn eval_isolating<T, R: std::fmt::Debug>(
    rows: &[&R],
    eval: impl Fn(&[&R]) -> Result<Vec<T>, Error>,
    errors: &ErrorLog,
    view: &str,
) -> Vec<Option<T>> {
    match eval(rows) {
        Ok(v) => v.into_iter().map(Some).collect(),
        Err(_) => rows
            .iter()
            .map(|r| match eval(std::slice::from_ref(r)) {
                Ok(mut v) => v.pop(),
                Err(e) => {
                    errors.record(view, "dataflow", None, &format!("{r:?}"), e.into_message());
                    None
                }
            })
            .collect(),
    }
}

/// `eval`'s expressions on each of `rows` through [`eval_isolating`]: one row of values per
/// input row (`None` where it failed; the failure is recorded in `errors`).
pub(super) fn eval_rows_isolating<'a>(
    eval: &Evaluator,
    rows: impl Iterator<Item = &'a Row>,
    errors: &ErrorLog,
    view: &str,
) -> Vec<Option<Row>> {
    let rows: Vec<&Row> = rows.collect();
    eval_isolating(&rows, |rs| eval.eval_rows(rs.iter().copied()), errors, view)
}

pub(super) fn render_map<'s>(
    input: Rows<'s>,
    exprs: &[Expr],
    schema: &DFSchemaRef,
    ctx: &RenderContext<'s>,
) -> Result<Rows<'s>, Error> {
    let eval = Evaluator::new(exprs, schema)?;
    let (errors, view) = (ctx.errors.clone(), ctx.view.clone());
    Ok(map_rows(input, "Map", move |data, out| {
        let results = eval_rows_isolating(&eval, data.iter().map(|(r, _, _)| r), &errors, &view);
        for ((_, t, d), r) in data.drain(..).zip(results) {
            if let Some(r) = r {
                out.push((r, t, d));
            }
        }
    }))
}

pub(super) fn render_filter<'s>(
    input: Rows<'s>,
    predicate: &Expr,
    schema: &DFSchemaRef,
    ctx: &RenderContext<'s>,
) -> Result<Rows<'s>, Error> {
    let eval = Evaluator::new(std::slice::from_ref(predicate), schema)?;
    let (errors, view) = (ctx.errors.clone(), ctx.view.clone());
    Ok(map_rows(input, "Filter", move |data, out| {
        let rows: Vec<&Row> = data.iter().map(|(r, _, _)| r).collect();
        let keep = eval_isolating(&rows, |rs| eval.eval_predicate(rs.iter().copied()), &errors, &view);
        for (upd, k) in data.drain(..).zip(keep) {
            if k == Some(true) {
                out.push(upd);
            }
        }
    }))
}

/// A filter right above the read of an imported view: the conjuncts that evaluate on rows
/// run on the arrangement's rows in place, so only the rows they keep are copied out; the
/// whole predicate then runs on those as usual if some conjunct needs Arrow. `None` when no
/// conjunct evaluates on rows.
pub(super) fn render_filter_imported<'s>(
    source: &ViewSource<'s>,
    predicate: &Expr,
    schema: &DFSchemaRef,
    ctx: &RenderContext<'s>,
) -> Result<Option<Rows<'s>>, Error> {
    let eval = Evaluator::new(std::slice::from_ref(predicate), schema)?;
    let Some((on_rows, complete)) = eval.row_conjuncts() else {
        return Ok(None);
    };
    let on_rows = on_rows.clone();
    let kept = source.rows(
        ctx.scope,
        Some(Rc::new(move |row: &Row| on_rows.eval(row) == Some(true))),
    );
    Ok(Some(if complete {
        kept
    } else {
        render_filter(kept, predicate, schema, ctx)?
    }))
}

/// Compiles every expression of the plan, so a plan that cannot render is rejected when
/// the statement runs instead of inside a worker.
pub fn validate(plan: &Plan) -> Result<(), Error> {
    let mut result = Ok(());
    plan.visit(&mut |p| {
        if result.is_err() {
            return;
        }
        result = match p {
            Plan::Map {
                exprs, input_schema, ..
            } => Evaluator::new(exprs, input_schema).map(|_| ()),
            Plan::Filter {
                predicate,
                input_schema,
                ..
            } => Evaluator::new(std::slice::from_ref(predicate), input_schema).map(|_| ()),
            Plan::TemporalFilter {
                bound, input_schema, ..
            } => Evaluator::new(std::slice::from_ref(&bound.expires_at), input_schema).map(|_| ()),
            Plan::Join {
                left_keys,
                right_keys,
                residual,
                left_schema,
                right_schema,
                joined_schema,
                ..
            } => Evaluator::new(left_keys, left_schema)
                .and_then(|_| Evaluator::new(right_keys, right_schema))
                .and_then(|_| match residual {
                    Some(r) => Evaluator::new(std::slice::from_ref(r), joined_schema).map(|_| ()),
                    None => Ok(()),
                })
                .map(|_| ()),
            Plan::Reduce {
                group_exprs,
                aggregates,
                input_schema,
                ..
            } => {
                let mut all = group_exprs.clone();
                for a in aggregates {
                    all.extend(a.arg.clone());
                    all.extend(a.filter.clone());
                }
                Evaluator::new(&all, input_schema).map(|_| ())
            }
            Plan::Window {
                partition_by,
                order_by,
                input_schema,
                ..
            } => {
                let mut all = partition_by.clone();
                all.extend(order_by.iter().map(|s| s.expr.clone()));
                Evaluator::new(&all, input_schema).map(|_| ())
            }
            _ => Ok(()),
        };
    });
    result
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::common::DFSchema;
    use datafusion::logical_expr::expr::Unnest;
    use datafusion::prelude::{col, lit};
    use rampart_repr::{Column, ColumnType, RelationDesc, SqlState};

    use super::*;

    fn filter(predicate: Expr) -> Plan {
        let schema = Arc::new(DFSchema::try_from(Schema::new(vec![Field::new("a", DataType::Int64, true)])).unwrap());
        Plan::Filter {
            input: Box::new(Plan::Get {
                name: "t".into(),
                desc: RelationDesc {
                    columns: vec![Column {
                        name: "a".into(),
                        ty: ColumnType::Int64,
                    }],
                },
            }),
            predicate,
            input_schema: schema,
        }
    }

    #[test]
    fn validate_refuses_an_expression_datafusion_cannot_run_as_unsupported() {
        validate(&filter(col("a").gt(lit(1i64)))).unwrap();
        let e = validate(&filter(Expr::Unnest(Unnest::new(col("a"))))).unwrap_err();
        assert_eq!(e.state(), SqlState::FeatureNotSupported, "{e}");
        assert_eq!(e.sqlstate(), "0A000");
        assert!(e.message().contains("UNNEST"), "names the expression: {e}");
    }
}
