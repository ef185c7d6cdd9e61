//! [`Evaluator`]: DataFusion physical expressions compiled once per operator and evaluated
//! on batches of rows (rows → Arrow record batch → evaluate → rows), so streaming views and
//! ad-hoc queries share one function library.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::DFSchemaRef;
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::Expr;
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_expr::{create_physical_expr, PhysicalExpr};
use rampart_repr::arrow_convert::array_to_datums;
use rampart_repr::{rows_to_batch_projected, Datum, Row, RowRef};

/// Expressions compiled against one input schema.
pub struct Evaluator {
    schema: SchemaRef,
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    /// Input columns the expressions read; the others are not converted.
    used: Vec<bool>,
}

impl Evaluator {
    /// Compiles `exprs` against `input_schema`.
    pub fn new(exprs: &[Expr], input_schema: &DFSchemaRef) -> Result<Self, String> {
        let props = ExecutionProps::new();
        let ctx = PhysicalPlanningContext::default();
        // Some functions (COALESCE, NVL) are only executable after simplification. NOW()
        // never reaches here: planning turned it into a temporal filter or the emit time.
        let simplifier = ExprSimplifier::new(SimplifyContext::builder().with_schema(input_schema.clone()).build());
        let mut used = vec![false; input_schema.fields().len()];
        let exprs = exprs
            .iter()
            .map(|e| {
                let simplified = simplifier.simplify(e.clone()).map_err(|err| format!("{e}: {err}"))?;
                for c in simplified.column_refs() {
                    match input_schema.index_of_column(c) {
                        Ok(i) => used[i] = true,
                        // Unresolvable here: convert every column, as before.
                        Err(_) => used.iter_mut().for_each(|u| *u = true),
                    }
                }
                create_physical_expr(&simplified, input_schema, &props, &ctx).map_err(|err| format!("{e}: {err}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Evaluator {
            schema: Arc::new(input_schema.as_arrow().clone()),
            exprs,
            used,
        })
    }

    /// Number of expressions.
    pub fn len(&self) -> usize {
        self.exprs.len()
    }

    /// Whether there are no expressions.
    pub fn is_empty(&self) -> bool {
        self.exprs.is_empty()
    }

    /// Evaluates every expression on every row: one output column per expression.
    pub fn eval_columns<'a, R: RowRef + 'a>(
        &self,
        rows: impl ExactSizeIterator<Item = &'a R> + Clone,
    ) -> Result<Vec<ArrayRef>, String> {
        let n = rows.len();
        let batch = rows_to_batch_projected(rows, &self.schema, Some(&self.used)).map_err(|e| e.to_string())?;
        self.exprs
            .iter()
            .map(|e| {
                e.evaluate(&batch)
                    .and_then(|v| v.into_array(n))
                    .map_err(|err| format!("evaluating {e}: {err}"))
            })
            .collect()
    }

    /// Evaluates every expression on every row and returns one output row per input row.
    pub fn eval_rows<'a>(&self, rows: impl ExactSizeIterator<Item = &'a Row> + Clone) -> Result<Vec<Row>, String> {
        let n = rows.len();
        let cols = self.eval_columns(rows)?;
        let mut out: Vec<Row> = (0..n).map(|_| Vec::with_capacity(cols.len())).collect();
        for col in &cols {
            let datums = array_to_datums(col).map_err(|e| e.to_string())?;
            for (row, d) in out.iter_mut().zip(datums) {
                row.push(d);
            }
        }
        Ok(out)
    }

    /// Evaluates the first expression as a predicate: true where it is true (NULL is false).
    pub fn eval_predicate<'a, R: RowRef + 'a>(
        &self,
        rows: impl ExactSizeIterator<Item = &'a R> + Clone,
    ) -> Result<Vec<bool>, String> {
        let n = rows.len();
        let cols = self.eval_columns(rows)?;
        let Some(col) = cols.first() else {
            return Ok(vec![true; n]);
        };
        let b = col
            .as_boolean_opt()
            .ok_or_else(|| format!("predicate is not boolean but {}", col.data_type()))?;
        Ok((0..n).map(|i| b.is_valid(i) && b.value(i)).collect())
    }
}

/// Evaluates a timestamp expression to microseconds since the epoch per row (NULL → None).
pub fn timestamps_micros(col: &ArrayRef) -> Result<Vec<Option<i64>>, String> {
    let datums = array_to_datums(col).map_err(|e| e.to_string())?;
    datums
        .into_iter()
        .map(|d| match d {
            Datum::Null => Ok(None),
            Datum::Timestamp(us) => Ok(Some(us)),
            other => Err(format!("expected a timestamp, got {other:?}")),
        })
        .collect()
}
