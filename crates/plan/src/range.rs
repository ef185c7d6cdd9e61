//! Range joins: `probe(left) BETWEEN low(right) AND high(right)` without equality keys
//! (GeoIP enrichment), which `rampart-dataflow` runs as a lookup instead of pairing every
//! row with every range.

use datafusion::common::{Column, DFSchemaRef};
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator as Op};

use crate::{JoinKind, Plan};

/// The parts of a range join's condition.
pub struct RangeJoin {
    /// The value looked up, on the left input.
    pub probe: Expr,
    /// The range's low end, on the right input.
    pub low: Expr,
    /// The range's high end (inclusive), on the right input.
    pub high: Expr,
    /// A left join (unmatched left rows are padded with NULLs).
    pub left: bool,
}

impl Plan {
    /// For a join without equality keys whose whole condition is
    /// `probe(left) BETWEEN low(right) AND high(right)`, inner or left: its parts.
    pub fn range_join(&self) -> Option<RangeJoin> {
        let Plan::Join {
            kind,
            left_keys,
            residual: Some(residual),
            left_schema,
            right_schema,
            ..
        } = self
        else {
            return None;
        };
        if !left_keys.is_empty() || !matches!(kind, JoinKind::Inner | JoinKind::Left) {
            return None;
        }
        let on_side = |e: &Expr, schema: &DFSchemaRef| {
            let cols = e.column_refs();
            !cols.is_empty() && cols.iter().all(|c: &&Column| schema.has_column(c))
        };
        let (probe, low, high) = match residual {
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) => ((**expr).clone(), (**low).clone(), (**high).clone()),
            Expr::BinaryExpr(BinaryExpr {
                left: a,
                op: Op::And,
                right: b,
            }) => {
                // probe >= low AND probe <= high (either order).
                let ge_le = |x: &Expr, y: &Expr| -> Option<(Expr, Expr, Expr)> {
                    let (Expr::BinaryExpr(ge), Expr::BinaryExpr(le)) = (x, y) else {
                        return None;
                    };
                    (ge.op == Op::GtEq && le.op == Op::LtEq && ge.left == le.left)
                        .then(|| ((*ge.left).clone(), (*ge.right).clone(), (*le.right).clone()))
                };
                ge_le(a, b).or_else(|| ge_le(b, a))?
            }
            _ => return None,
        };
        (on_side(&probe, left_schema) && on_side(&low, right_schema) && on_side(&high, right_schema)).then_some(
            RangeJoin {
                probe,
                low,
                high,
                left: *kind == JoinKind::Left,
            },
        )
    }
}
