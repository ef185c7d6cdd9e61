//! [`RowExpr`]: the projection shapes the seed pipelines are made of, evaluated directly on
//! rows instead of through Arrow: constants (`'network' AS event_category`, `NULL AS
//! raw_command`), `CASE WHEN ... THEN ... ELSE ... END` over columns and constants (which
//! is what `COALESCE(at.asset_tier, 'unknown')` becomes once simplified), and
//! `CAST(int_column AS VARCHAR)` and casts between string types. Anything else is not compiled, and the
//! [`crate::eval::Evaluator`] evaluates it with DataFusion as before.
//!
//! Constants are evaluated once, by DataFusion, when the expression is compiled, so their
//! value is exactly the one DataFusion would give on every row.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatchOptions;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::DFSchema;
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::expr::Case;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Cast, Expr, ExprSchemable};
use datafusion::physical_expr::create_physical_expr;
use rampart_repr::arrow_convert::array_to_datums;
use rampart_repr::{Datum, RowRef, Str};

use crate::row_predicate::RowPredicate;

/// A scalar expression compiled for evaluation on rows.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum RowExpr {
    /// An input column, copied.
    Column(usize),
    /// A value that does not depend on the row.
    Constant(Datum),
    /// `CASE WHEN p1 THEN e1 ... ELSE e END`: the first branch whose predicate is true
    /// (NULL is not true), else the `ELSE` value.
    Case(Vec<(RowPredicate, RowExpr)>, Box<RowExpr>),
    /// An integer column cast to a string: its decimal digits.
    IntToString(usize),
}

fn is_string(dt: &DataType) -> bool {
    matches!(dt, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_integer(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
    )
}

impl RowExpr {
    /// Compiles `expr` (already simplified, over `schema`) if it has a supported shape.
    pub(crate) fn compile(expr: &Expr, schema: &DFSchema) -> Option<RowExpr> {
        let ty = expr.get_type(schema).ok()?;
        Self::compile_typed(expr, &ty, schema)
    }

    /// Compiles `expr`, which must have type `ty` (a branch of a `CASE` whose type differs
    /// from the result's would need a cast, so it is not compiled).
    fn compile_typed(expr: &Expr, ty: &DataType, schema: &DFSchema) -> Option<RowExpr> {
        if expr.get_type(schema).ok()? != *ty {
            return None;
        }
        match expr {
            Expr::Alias(a) => Self::compile_typed(&a.expr, ty, schema),
            Expr::Column(c) => Some(RowExpr::Column(schema.index_of_column(c).ok()?)),
            // A column of untyped NULLs (`NULL AS x` in a UNION ALL branch) is NULL as any type.
            Expr::Cast(Cast { expr: inner, .. })
                if matches!(inner.as_ref(), Expr::Column(c)
                    if schema.index_of_column(c).is_ok_and(|i| schema.field(i).data_type() == &DataType::Null)) =>
            {
                Some(RowExpr::Constant(Datum::Null))
            }
            Expr::Cast(Cast { expr: inner, field }) if is_string(field.data_type()) => match inner.as_ref() {
                Expr::Column(c) => {
                    let i = schema.index_of_column(c).ok()?;
                    let from = schema.field(i).data_type();
                    if is_string(from) {
                        // Utf8 to Utf8View and back: one datum holds every string type.
                        Some(RowExpr::Column(i))
                    } else {
                        is_integer(from).then_some(RowExpr::IntToString(i))
                    }
                }
                _ => None,
            },
            Expr::Case(Case {
                expr: None,
                when_then_expr,
                else_expr,
            }) => {
                let mut branches = Vec::with_capacity(when_then_expr.len());
                for (when, then) in when_then_expr {
                    branches.push((
                        RowPredicate::compile(when, schema)?,
                        Self::compile_typed(then, ty, schema)?,
                    ));
                }
                let otherwise = match else_expr {
                    Some(e) => Self::compile_typed(e, ty, schema)?,
                    None => RowExpr::Constant(Datum::Null),
                };
                Some(RowExpr::Case(branches, Box::new(otherwise)))
            }
            e if e.column_refs().is_empty() && !e.is_volatile() => Self::constant(e, schema),
            _ => None,
        }
    }

    /// The value of a constant expression, computed by DataFusion on a one-row batch.
    fn constant(expr: &Expr, schema: &DFSchema) -> Option<RowExpr> {
        let physical = create_physical_expr(
            expr,
            schema,
            &ExecutionProps::new(),
            &PhysicalPlanningContext::default(),
        )
        .ok()?;
        let batch = RecordBatch::try_new_with_options(
            Arc::new(Schema::empty()),
            vec![],
            &RecordBatchOptions::new().with_row_count(Some(1)),
        )
        .ok()?;
        let array = physical.evaluate(&batch).and_then(|v| v.into_array(1)).ok()?;
        let mut datums = array_to_datums(&array).ok()?;
        (datums.len() == 1).then(|| {
            // Every row the expression builds carries this value: a string constant that
            // counts no references costs those rows nothing to copy or drop.
            RowExpr::Constant(match datums.swap_remove(0) {
                Datum::Str(s) => Datum::Str(Str::shared_forever(&s)),
                d => d,
            })
        })
    }

    /// The expression's value on `row`.
    pub(crate) fn eval<R: RowRef + ?Sized>(&self, row: &R) -> Datum {
        match self {
            RowExpr::Column(i) => row.datum(*i).clone(),
            RowExpr::Constant(d) => d.clone(),
            RowExpr::Case(branches, otherwise) => branches
                .iter()
                .find(|(when, _)| when.eval(row) == Some(true))
                .map_or_else(|| otherwise.eval(row), |(_, then)| then.eval(row)),
            RowExpr::IntToString(i) => match row.datum(*i) {
                Datum::Int(v) => Datum::str(&v.to_string()),
                _ => Datum::Null,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::common::{DFSchemaRef, ScalarValue};
    use datafusion::functions::expr_fn::coalesce;
    use datafusion::logical_expr::{cast, when};
    use datafusion::prelude::{col, lit};

    use super::*;
    use crate::eval::Evaluator;
    use crate::test_rows::{every_combination, nullable_schema};

    fn schema() -> DFSchemaRef {
        nullable_schema(&[
            ("s", DataType::Utf8),
            ("t", DataType::Utf8),
            ("i", DataType::Int64),
            ("n", DataType::Int32),
            ("f", DataType::Float64),
            ("z", DataType::Null),
        ])
    }

    /// Every combination of a few values, NULL included.
    fn rows() -> Vec<rampart_repr::Row> {
        let strs = [Datum::Null, Datum::str("a"), Datum::str("")];
        let ints = [Datum::Null, Datum::Int(-12), Datum::Int(0), Datum::Int(443)];
        every_combination(&[&strs, &strs, &ints, &ints, &[Datum::Null], &[Datum::Null]])
    }

    /// The expected values come from DataFusion itself: the same expressions evaluated
    /// through Arrow by a reference evaluator without row-level shortcuts.
    #[test]
    fn row_expressions_agree_with_datafusion_on_every_row() {
        let s = schema();
        let exprs = [
            lit("network"),
            Expr::Literal(ScalarValue::Utf8(None), None),
            Expr::Literal(ScalarValue::Null, None),
            lit(7i64) + lit(1i64),
            cast(col("i"), DataType::Utf8),
            cast(col("n"), DataType::Utf8),
            cast(col("s"), DataType::Utf8View),
            cast(col("z"), DataType::Utf8),
            cast(col("z"), DataType::Int64),
            coalesce(vec![col("s"), lit("unknown")]),
            coalesce(vec![col("s"), col("t"), lit("none")]),
            when(col("i").gt(lit(0i64)), col("s")).otherwise(lit("neg")).unwrap(),
            when(col("s").eq(lit("a")), lit(1i64))
                .when(col("t").is_null(), col("i"))
                .end()
                .unwrap(),
        ];
        let rows = rows();
        let e = Evaluator::new(&exprs, &s).unwrap();
        assert_eq!(e.row_level_count(), exprs.len(), "every expression should run on rows");
        let reference = Evaluator::reference(&exprs, &s);
        assert_eq!(
            e.eval_rows(rows.iter()).unwrap(),
            reference.eval_rows(rows.iter()).unwrap()
        );
    }

    #[test]
    fn other_shapes_are_left_to_datafusion() {
        let s = schema();
        for e in [
            col("i") + lit(1i64),
            cast(col("f"), DataType::Utf8),
            cast(col("s"), DataType::Int64),
            datafusion::functions::expr_fn::upper(col("s")),
            datafusion::functions::math::expr_fn::random(),
        ] {
            assert!(RowExpr::compile(&e, &s).is_none(), "{e}");
        }
    }
}
