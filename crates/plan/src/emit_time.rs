//! Which output columns of a sink's plan hold, or are computed from, the emission time
//! (`NOW()` in a sink query, lowered to the `rampart_emit_time()` function).
//!
//! Such a column differs each time a row is evaluated: a restarted sink that rebuilds its
//! output and compares it with what it emitted before the crash must compare rows without
//! them, or it would send every alert again with a new time.

use datafusion::common::tree_node::TreeNode;
use datafusion::common::DFSchemaRef;
use datafusion::logical_expr::Expr;

use crate::Plan;

/// The name of the function `NOW()` becomes in a sink query.
pub const EMIT_TIME_FUNCTION: &str = "rampart_emit_time";

/// Per output column of `plan`, whether it depends on the emission time.
pub fn emit_time_columns(plan: &Plan) -> Vec<bool> {
    match plan {
        Plan::Get { desc, .. } => vec![false; desc.columns.len()],
        Plan::Constant { rows } => vec![false; rows.first().map(|r| r.len()).unwrap_or(0)],
        Plan::Map {
            input,
            exprs,
            input_schema,
        } => {
            let inner = emit_time_columns(input);
            exprs.iter().map(|e| depends(e, input_schema, &inner)).collect()
        }
        Plan::Filter { input, .. }
        | Plan::TemporalFilter { input, .. }
        | Plan::Retain { input, .. }
        | Plan::Distinct { input } => emit_time_columns(input),
        Plan::Union { inputs } => {
            let all: Vec<Vec<bool>> = inputs.iter().map(emit_time_columns).collect();
            let width = all.first().map(Vec::len).unwrap_or(0);
            (0..width)
                .map(|i| all.iter().any(|b| b.get(i).copied().unwrap_or(false)))
                .collect()
        }
        Plan::Join { left, right, .. } => {
            let mut out = emit_time_columns(left);
            out.extend(emit_time_columns(right));
            out
        }
        Plan::Reduce {
            input,
            group_exprs,
            aggregates,
            input_schema,
            ..
        } => {
            let inner = emit_time_columns(input);
            let keys = group_exprs.iter().map(|e| depends(e, input_schema, &inner));
            let aggs = aggregates.iter().map(|a| {
                a.arg.as_ref().is_some_and(|e| depends(e, input_schema, &inner))
                    || a.filter.as_ref().is_some_and(|e| depends(e, input_schema, &inner))
            });
            keys.chain(aggs).collect()
        }
        Plan::Window { input, funcs, .. } => {
            let mut out = emit_time_columns(input);
            out.extend(std::iter::repeat_n(false, funcs.len()));
            out
        }
    }
}

/// Whether `e` calls the emission-time function or reads a column that depends on it.
fn depends(e: &Expr, schema: &DFSchemaRef, inputs: &[bool]) -> bool {
    let mut found = false;
    let _ = e.apply(|x| {
        found |= match x {
            Expr::ScalarFunction(f) => f.func.name() == EMIT_TIME_FUNCTION,
            Expr::Column(c) => schema
                .index_of_column(c)
                .ok()
                .and_then(|i| inputs.get(i).copied())
                .unwrap_or(false),
            _ => false,
        };
        Ok(if found {
            datafusion::common::tree_node::TreeNodeRecursion::Stop
        } else {
            datafusion::common::tree_node::TreeNodeRecursion::Continue
        })
    });
    found
}
