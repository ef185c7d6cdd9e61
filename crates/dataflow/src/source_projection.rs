//! [`SourceProjection`]: the projection a view applies right above a source, run by the
//! source's reader instead of by an operator.
//!
//! When every read of a source in a view's plan is the input of one projection whose
//! expressions all run on rows (`rampart_plan::Plan::projection_over`; the seed's
//! `normalized_events` is three such), the reader builds each row in the projection's
//! shape straight from the values it decoded, and the dataflow takes the rows it receives
//! as the projection's output (`SourceFeed::projected`). No decoded row is allocated only
//! to be projected into another, freed, and counted twice by its strings.

use datafusion::common::DFSchemaRef;
use datafusion::logical_expr::Expr;
use rampart_repr::{Datum, Error, Row};

use crate::eval::Evaluator;
use crate::row_expr::RowExpr;

/// A projection of a source's columns whose every expression runs on rows.
#[derive(Debug, Clone)]
pub struct SourceProjection {
    exprs: Vec<RowExpr>,
}

impl SourceProjection {
    /// Compiles `exprs` over `schema` (the source's columns). `None` when some expression
    /// needs DataFusion (then the projection stays an operator of the dataflow).
    pub fn compile(exprs: &[Expr], schema: &DFSchemaRef) -> Result<Option<Self>, Error> {
        Ok(Evaluator::new(exprs, schema)?
            .row_exprs()
            .map(|exprs| SourceProjection { exprs }))
    }

    /// The projected row of `decoded`, the source's values in column order (the same
    /// row the projection's operator would build from the decoded row).
    pub fn apply(&self, decoded: &[Datum]) -> Row {
        self.exprs.iter().map(|e| e.eval(decoded)).collect()
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::cast;
    use datafusion::prelude::{col, lit};

    use super::*;
    use crate::test_rows::{every_combination, nullable_schema};

    /// The expected rows are DataFusion's: the same expressions evaluated through Arrow
    /// (no row-level shortcuts) on the decoded rows.
    #[test]
    fn a_projection_in_the_reader_builds_the_rows_its_operator_would() {
        let schema = nullable_schema(&[("s", DataType::Utf8), ("n", DataType::Int32)]);
        let exprs = [
            col("s"),
            lit("network"),
            cast(col("n"), DataType::Utf8),
            cast(col("s"), DataType::Utf8View),
            Expr::Literal(datafusion::common::ScalarValue::Utf8(None), None),
        ];
        let p = SourceProjection::compile(&exprs, &schema)
            .unwrap()
            .expect("runs on rows");
        let strs = [Datum::Null, Datum::str("a"), Datum::str("a string longer than inline")];
        let ints = [Datum::Null, Datum::Int(-7), Datum::Int(443)];
        let rows = every_combination(&[&strs, &ints]);
        let expected = Evaluator::reference(&exprs, &schema).eval_rows(rows.iter()).unwrap();
        let got: Vec<Row> = rows.iter().map(|r| p.apply(r)).collect();
        assert_eq!(got, expected);
        assert!(
            SourceProjection::compile(&[col("n") + lit(1)], &schema)
                .unwrap()
                .is_none(),
            "arithmetic runs through DataFusion, so it is no source projection"
        );
    }
}
