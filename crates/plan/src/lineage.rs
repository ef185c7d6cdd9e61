//! Column lineage: which column of which catalog object an output column is a copy of.

use datafusion::logical_expr::Expr;

use crate::Plan;

/// The catalog object and column that output column `column` of `plan` copies unchanged
/// (through projections of bare columns, filters, retentions, `DISTINCT` and either side of
/// a join), or `None` when it is computed, comes from a union or an aggregate, or the plan
/// has no such column.
pub fn column_origin(plan: &Plan, column: usize) -> Option<(String, usize)> {
    match plan {
        Plan::Get { name, desc } => (column < desc.columns.len()).then(|| (name.clone(), column)),
        Plan::Map {
            input,
            exprs,
            input_schema,
        } => {
            let mut expr = exprs.get(column)?;
            while let Expr::Alias(a) = expr {
                expr = &a.expr;
            }
            match expr {
                Expr::Column(c) => column_origin(input, input_schema.index_of_column(c).ok()?),
                _ => None,
            }
        }
        Plan::Filter { input, .. }
        | Plan::TemporalFilter { input, .. }
        | Plan::Retain { input, .. }
        | Plan::Distinct { input } => column_origin(input, column),
        Plan::Join {
            left,
            right,
            left_schema,
            ..
        } => {
            let width = left_schema.fields().len();
            if column < width {
                column_origin(left, column)
            } else {
                column_origin(right, column - width)
            }
        }
        _ => None,
    }
}

/// Whether every output row of `plan` is a row of `name` (possibly projected, filtered or
/// joined with others): the plan reaches a read of `name` through projections, filters,
/// retentions, `DISTINCT` and joins only, not through an aggregate, a union or a window.
/// A retraction of a row of `name` then retracts the rows made from it.
pub fn rows_come_from(plan: &Plan, name: &str) -> bool {
    match plan {
        Plan::Get { name: n, .. } => n == name,
        Plan::Map { input, .. }
        | Plan::Filter { input, .. }
        | Plan::TemporalFilter { input, .. }
        | Plan::Retain { input, .. }
        | Plan::Distinct { input } => rows_come_from(input, name),
        Plan::Join { left, right, .. } => rows_come_from(left, name) || rows_come_from(right, name),
        _ => false,
    }
}
