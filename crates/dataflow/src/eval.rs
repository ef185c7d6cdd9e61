//! [`Evaluator`]: DataFusion physical expressions compiled once per operator and evaluated
//! on batches of rows (rows → Arrow record batch → evaluate → rows), so streaming views and
//! ad-hoc queries share one function library.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::DFSchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::Expr;
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{create_physical_expr, PhysicalExpr};
use rampart_repr::arrow_convert::array_to_datums;
use rampart_repr::{rows_to_batch_projected, Datum, Error, Row, RowRef, SqlState};

use crate::row_expr::RowExpr;
use crate::row_predicate::RowPredicate;

/// Expressions compiled against one input schema.
pub struct Evaluator {
    /// The schema of the columns the expressions read, in input order.
    schema: SchemaRef,
    /// The expressions, their column references renumbered into `schema`.
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    /// For each column of `schema`, its index in the input rows; the other input columns
    /// are never converted to Arrow.
    columns: Vec<usize>,
    /// Per expression, its row-level form when it has one (a column reference, a
    /// constant, a simple `CASE`/`COALESCE`, an integer cast to a string):
    /// [`Evaluator::eval_rows`] computes those without going through Arrow.
    direct: Vec<Option<RowExpr>>,
    /// The expressions without a row-level form, for [`Evaluator::eval_rows`] (`None`
    /// when every expression has one, or in this evaluator itself when it already is that
    /// subset).
    computed: Option<Box<Evaluator>>,
    /// The first expression as a predicate whose conjuncts (all or some) run on rows:
    /// [`Evaluator::eval_predicate`] then converts to Arrow only the rows those pass.
    predicate: Option<SplitPredicate>,
}

/// A predicate split at its top-level `AND`s: the conjuncts that evaluate on rows, and an
/// evaluator of the others (through Arrow) for the rows that pass the first.
struct SplitPredicate {
    on_rows: RowPredicate,
    rest: Option<Box<Evaluator>>,
}

impl Evaluator {
    /// Compiles `exprs` against `input_schema`. An expression DataFusion cannot run is an
    /// error with the SQLSTATE of its kind ([`datafusion_error`]), naming the expression.
    pub fn new(exprs: &[Expr], input_schema: &DFSchemaRef) -> Result<Self, Error> {
        Self::build(exprs, input_schema, true)
    }

    /// Compiles `exprs` for evaluation through Arrow only (no row-level shortcuts), as a
    /// reference in tests.
    #[cfg(test)]
    pub(crate) fn reference(exprs: &[Expr], input_schema: &DFSchemaRef) -> Self {
        Self::build(exprs, input_schema, false).expect("compiles")
    }

    /// Whether [`Evaluator::eval_predicate`] evaluates on rows only, without Arrow.
    #[cfg(test)]
    pub(crate) fn uses_row_predicate(&self) -> bool {
        self.predicate.as_ref().is_some_and(|p| p.rest.is_none())
    }

    /// How many of the expressions [`Evaluator::eval_rows`] computes on rows.
    #[cfg(test)]
    pub(crate) fn row_level_count(&self) -> usize {
        self.direct.iter().filter(|d| d.is_some()).count()
    }

    fn build(exprs: &[Expr], input_schema: &DFSchemaRef, split: bool) -> Result<Self, Error> {
        let props = ExecutionProps::new();
        let ctx = PhysicalPlanningContext::default();
        // Some functions (COALESCE, NVL) are only executable after simplification. NOW()
        // never reaches here: planning turned it into a temporal filter or the emit time.
        let simplifier = ExprSimplifier::new(SimplifyContext::builder().with_schema(input_schema.clone()).build());
        let mut used = vec![false; input_schema.fields().len()];
        let mut direct = Vec::with_capacity(exprs.len());
        let mut predicate = None;
        let mut others = Vec::new();
        let physical = exprs
            .iter()
            .map(|e| {
                let simplified = simplifier
                    .simplify(e.clone())
                    .map_err(|err| datafusion_error(format!("{e}: {err}"), err))?;
                if split && direct.is_empty() {
                    predicate = SplitPredicate::compile(&simplified, input_schema)?;
                }
                match RowExpr::compile(&simplified, input_schema).filter(|_| split) {
                    Some(r) => direct.push(Some(r)),
                    None => {
                        direct.push(None);
                        others.push(e.clone());
                    }
                }
                for c in simplified.column_refs() {
                    match input_schema.index_of_column(c) {
                        Ok(i) => used[i] = true,
                        // Unresolvable here: convert every column, as before.
                        Err(_) => used.iter_mut().for_each(|u| *u = true),
                    }
                }
                create_physical_expr(&simplified, input_schema, &props, &ctx)
                    .map_err(|err| datafusion_error(format!("{e}: {err}"), err))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let columns: Vec<usize> = (0..used.len()).filter(|&i| used[i]).collect();
        let mut renumbered = vec![usize::MAX; used.len()];
        for (j, &i) in columns.iter().enumerate() {
            renumbered[i] = j;
        }
        let full = input_schema.as_arrow();
        let schema = Arc::new(Schema::new(
            columns.iter().map(|&i| full.field(i).clone()).collect::<Vec<_>>(),
        ));
        let exprs = physical
            .into_iter()
            .map(|e| renumber_columns(e, &renumbered))
            .collect::<Result<Vec<_>, _>>()?;
        let computed = if split && !others.is_empty() {
            Some(Box::new(Self::build(&others, input_schema, false)?))
        } else {
            None
        };
        Ok(Evaluator {
            schema,
            exprs,
            columns,
            direct,
            computed,
            predicate,
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

    /// The row-level form of every expression, when each has one (then a row of their
    /// values can be built from any [`RowRef`] without Arrow).
    pub(crate) fn row_exprs(&self) -> Option<Vec<RowExpr>> {
        self.direct.iter().cloned().collect()
    }

    /// Evaluates every expression on every row: one output column per expression.
    pub fn eval_columns<'a, R: RowRef + 'a>(
        &self,
        rows: impl ExactSizeIterator<Item = &'a R> + Clone,
    ) -> Result<Vec<ArrayRef>, Error> {
        let n = rows.len();
        let batch = rows_to_batch_projected(rows, &self.schema, &self.columns)
            .map_err(|e| Error::data(e.to_string()).with_source(e))?;
        self.exprs
            .iter()
            .map(|e| {
                e.evaluate(&batch)
                    .and_then(|v| v.into_array(n))
                    .map_err(|err| datafusion_error(format!("evaluating {e}: {err}"), err))
            })
            .collect()
    }

    /// Evaluates every expression on every row and returns one output row per input row.
    /// Expressions with a row-level form (column references, constants, ...) are computed
    /// from the input row; only the others go through Arrow.
    pub fn eval_rows<'a>(&self, rows: impl ExactSizeIterator<Item = &'a Row> + Clone) -> Result<Vec<Row>, Error> {
        let n = rows.len();
        let through_arrow = match &self.computed {
            Some(c) => Some(c.as_ref()),
            None if self.direct.iter().all(Option::is_some) => None,
            // This evaluator is itself the computed subset.
            None => Some(self),
        };
        let mut computed: Vec<std::vec::IntoIter<Datum>> = match through_arrow {
            Some(e) => e
                .eval_columns(rows.clone())?
                .iter()
                .map(|col| {
                    array_to_datums(col)
                        .map(Vec::into_iter)
                        .map_err(|e| Error::data(e.to_string()).with_source(e))
                })
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        let mut out: Vec<Row> = Vec::with_capacity(n);
        for row in rows {
            let mut next = computed.iter_mut();
            // Built from an iterator of known length: one allocation per row.
            out.push(
                self.direct
                    .iter()
                    .map(|d| match d {
                        Some(r) => r.eval(row),
                        None => next.next().and_then(Iterator::next).unwrap_or(Datum::Null),
                    })
                    .collect(),
            );
        }
        Ok(out)
    }

    /// The conjuncts of the first expression (as a predicate) that evaluate on rows, and
    /// whether they are all of it.
    pub(crate) fn row_conjuncts(&self) -> Option<(&RowPredicate, bool)> {
        self.predicate.as_ref().map(|p| (&p.on_rows, p.rest.is_none()))
    }

    /// Evaluates the first expression as a predicate: true where it is true (NULL is false).
    pub fn eval_predicate<'a, R: RowRef + 'a>(
        &self,
        rows: impl ExactSizeIterator<Item = &'a R> + Clone,
    ) -> Result<Vec<bool>, Error> {
        if let Some(p) = &self.predicate {
            let mut keep: Vec<bool> = rows.clone().map(|r| p.on_rows.eval(r) == Some(true)).collect();
            if let Some(rest) = &p.rest {
                let passing: Vec<&R> = rows.zip(&keep).filter(|(_, k)| **k).map(|(r, _)| r).collect();
                if !passing.is_empty() {
                    let mut also = rest.eval_predicate(passing.iter().copied())?.into_iter();
                    for k in keep.iter_mut().filter(|k| **k) {
                        *k = also.next().unwrap_or(false);
                    }
                }
            }
            return Ok(keep);
        }
        let n = rows.len();
        let cols = self.eval_columns(rows)?;
        let Some(col) = cols.first() else {
            return Ok(vec![true; n]);
        };
        let b = col
            .as_boolean_opt()
            .ok_or_else(|| Error::internal(format!("predicate is not boolean but {}", col.data_type())))?;
        Ok((0..n).map(|i| b.is_valid(i) && b.value(i)).collect())
    }
}

impl SplitPredicate {
    /// Splits `predicate` (simplified, over `schema`); `None` when no conjunct has a
    /// row-level form.
    fn compile(predicate: &Expr, schema: &DFSchemaRef) -> Result<Option<SplitPredicate>, Error> {
        let mut on_rows: Option<RowPredicate> = None;
        let mut rest = Vec::new();
        for conjunct in split_conjunction(predicate) {
            match RowPredicate::compile(conjunct, schema) {
                Some(p) => {
                    on_rows = Some(match on_rows {
                        Some(q) => RowPredicate::And(Box::new(q), Box::new(p)),
                        None => p,
                    })
                }
                None => rest.push(conjunct.clone()),
            }
        }
        let Some(on_rows) = on_rows else {
            return Ok(None);
        };
        let rest = match conjunction(rest) {
            Some(e) => Some(Box::new(Evaluator::build(&[e], schema, false)?)),
            None => None,
        };
        Ok(Some(SplitPredicate { on_rows, rest }))
    }
}

/// `expr` reading column `renumbered[i]` wherever it read input column `i`.
fn renumber_columns(expr: Arc<dyn PhysicalExpr>, renumbered: &[usize]) -> Result<Arc<dyn PhysicalExpr>, Error> {
    let shown = expr.to_string();
    expr.transform_up(|e| {
        let Some(c) = e.downcast_ref::<Column>() else {
            return Ok(Transformed::no(e));
        };
        match renumbered.get(c.index()) {
            Some(&j) if j != usize::MAX => Ok(Transformed::yes(
                Arc::new(Column::new(c.name(), j)) as Arc<dyn PhysicalExpr>
            )),
            _ => Err(DataFusionError::Internal(format!(
                "column {} (#{}) is not among the columns read",
                c.name(),
                c.index()
            ))),
        }
    })
    .map(|t| t.data)
    .map_err(|err| datafusion_error(format!("{shown}: {err}"), err))
}

/// Evaluates a timestamp expression to microseconds since the epoch per row (NULL → None).
pub fn timestamps_micros(col: &ArrayRef) -> Result<Vec<Option<i64>>, Error> {
    let datums = array_to_datums(col).map_err(|e| Error::data(e.to_string()).with_source(e))?;
    datums
        .into_iter()
        .map(|d| match d {
            Datum::Null => Ok(None),
            Datum::Timestamp(us) => Ok(Some(us)),
            other => Err(Error::data(format!("expected a timestamp, got {other:?}"))),
        })
        .collect()
}

/// A DataFusion error as an [`Error`] whose SQLSTATE follows its kind: a construct
/// DataFusion does not implement `0A000`; a plan or schema error (an expression of the
/// wrong type) `42804`; DataFusion's internal error `XX000`; anything else (evaluating a
/// value: Arrow, execution) `22000`. `message` names the expression; `e` is the source.
pub fn datafusion_error(message: String, e: DataFusionError) -> Error {
    let state = match e.find_root() {
        DataFusionError::NotImplemented(_) => SqlState::FeatureNotSupported,
        DataFusionError::Plan(_) | DataFusionError::SchemaError(..) => SqlState::DatatypeMismatch,
        DataFusionError::Internal(_) => SqlState::InternalError,
        _ => SqlState::DataException,
    };
    Error::new(state, message).with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field};
    use datafusion::common::DFSchema;
    use datafusion::prelude::{col, lit};

    fn schema() -> DFSchemaRef {
        let arrow = Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
            Field::new("c", DataType::Int64, true),
            Field::new("d", DataType::Utf8, false),
        ]);
        Arc::new(DFSchema::try_from(arrow).unwrap())
    }

    fn rows() -> Vec<Row> {
        vec![
            rampart_repr::row![
                Datum::Int(1),
                Datum::Str("x".into()),
                Datum::Int(10),
                Datum::Str("p".into()),
            ],
            rampart_repr::row![Datum::Int(2), Datum::Null, Datum::Null, Datum::Str("q".into())],
        ]
    }

    #[test]
    fn column_references_are_copied_and_the_rest_computed_in_order() {
        let exprs = [col("b"), col("a") + col("c"), col("d"), col("a").gt(lit(1i64))];
        let e = Evaluator::new(&exprs, &schema()).unwrap();
        let out = e.eval_rows(rows().iter()).unwrap();
        assert_eq!(
            out,
            vec![
                rampart_repr::row![
                    Datum::Str("x".into()),
                    Datum::Int(11),
                    Datum::Str("p".into()),
                    Datum::Bool(false)
                ],
                rampart_repr::row![Datum::Null, Datum::Null, Datum::Str("q".into()), Datum::Bool(true)],
            ]
        );
        // The same expressions through Arrow as columns agree.
        let cols = e.eval_columns(rows().iter()).unwrap();
        assert_eq!(cols.len(), 4);
        assert_eq!(array_to_datums(&cols[1]).unwrap(), vec![Datum::Int(11), Datum::Null]);
    }

    /// Predicates of which only some conjuncts run on rows: the rest runs through Arrow on
    /// the rows those pass. Expected values: the same predicates through DataFusion alone.
    #[test]
    fn split_predicates_agree_with_datafusion() {
        use datafusion::functions::expr_fn::upper;
        let strs = [
            Datum::Null,
            Datum::str("powershell -enc"),
            Datum::str("x"),
            Datum::str("p"),
        ];
        let ints = [Datum::Null, Datum::Int(-1), Datum::Int(10)];
        // Columns a, b, c, d of `schema()`; d is not nullable.
        let rows = crate::test_rows::every_combination(&[&ints, &strs, &[Datum::Int(3)], &strs[1..]]);
        let s = schema();
        for p in [
            // LIKE on a column runs on rows; over a function it stays with Arrow.
            col("d").eq(lit("p")).and(upper(col("b")).like(lit("%POWERSHELL%"))),
            upper(col("b")).like(lit("%ENC")).and(col("a").gt(lit(0i64))),
            col("a")
                .is_not_null()
                .and(upper(col("b")).ilike(lit("x%")))
                .and(col("d").not_eq(lit("x"))),
            col("b").ilike(lit("%POWERSHELL%")).and(upper(col("d")).eq(lit("P"))),
            (col("a") + col("c")).gt(lit(5i64)).and(col("d").eq(lit("x"))),
        ] {
            let e = Evaluator::new(std::slice::from_ref(&p), &s).unwrap();
            assert!(
                e.predicate.as_ref().is_some_and(|p| p.rest.is_some()),
                "{p} should split"
            );
            let reference = Evaluator::reference(std::slice::from_ref(&p), &s);
            assert_eq!(
                e.eval_predicate(rows.iter()).unwrap(),
                reference.eval_predicate(rows.iter()).unwrap(),
                "{p}"
            );
        }
    }

    #[test]
    fn only_the_columns_read_are_converted() {
        // Reads column c only: the batch holds one column, and the others (one of them a
        // non-nullable string) are never built.
        let e = Evaluator::new(&[col("c").gt(lit(5i64))], &schema()).unwrap();
        assert_eq!(e.columns, vec![2]);
        assert_eq!(e.eval_predicate(rows().iter()).unwrap(), vec![true, false]);
    }
}
