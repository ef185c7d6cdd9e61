//! Projection fusion: fewer row-building steps for the same rows.
//!
//! A *reshaping* projection (each expression a column, or a cast of one) builds a new row
//! per input row only to move or retype datums. The lowering adds one over every `UNION
//! ALL` branch whose types differ from the union's (the seed's `normalized_events` gets one
//! over its first two branches: their `NULL AS raw_command` becomes text for the third).
//! [`Plan::fuse_projections`] moves such a projection into the branches of a union below
//! it and merges it into a projection right below, so `normalized_events` keeps one
//! projection per source, right above the source, which its reader can then apply
//! (`Plan::projection_over`).

use std::collections::HashMap;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::DFSchemaRef;
use datafusion::logical_expr::Expr;

use crate::Plan;

/// The column an expression reads when it is a column or a cast of one (aliases aside).
fn reshaped_column(e: &Expr) -> Option<&datafusion::common::Column> {
    match e {
        Expr::Alias(a) => reshaped_column(&a.expr),
        Expr::Column(c) => Some(c),
        Expr::Cast(c) => match c.expr.as_ref() {
            Expr::Column(col) => Some(col),
            _ => None,
        },
        _ => None,
    }
}

/// Whether an expression costs little enough to compute twice (a column, a constant, a
/// cast of one), so that a projection reading it twice may repeat it.
fn cheap(e: &Expr) -> bool {
    match e {
        Expr::Alias(a) => cheap(&a.expr),
        Expr::Column(_) | Expr::Literal(..) => true,
        Expr::Cast(c) => matches!(c.expr.as_ref(), Expr::Column(_) | Expr::Literal(..)),
        _ => false,
    }
}

/// `outer` (over `outer_schema`, the output of `inner`) with its column references
/// replaced by the `inner` expressions they read, when that is one projection computing
/// the same values: `outer` only reshapes, and every inner expression it reads more than
/// once is cheap and none is volatile.
fn compose(outer: &[Expr], outer_schema: &DFSchemaRef, inner: &[Expr]) -> Option<Vec<Expr>> {
    let mut reads: HashMap<usize, usize> = HashMap::new();
    for e in outer {
        let i = outer_schema.index_of_column(reshaped_column(e)?).ok()?;
        let inner_expr = inner.get(i)?;
        if inner_expr.is_volatile() {
            return None;
        }
        *reads.entry(i).or_default() += 1;
    }
    if reads.iter().any(|(i, n)| *n > 1 && !cheap(&inner[*i])) {
        return None;
    }
    outer
        .iter()
        .map(|e| {
            let (qualifier, name) = e.qualified_name();
            let substituted = e
                .clone()
                .unalias()
                .transform_up(|node| match &node {
                    Expr::Column(c) => {
                        let i = outer_schema.index_of_column(c)?;
                        Ok(Transformed::yes(inner[i].clone().unalias()))
                    }
                    _ => Ok(Transformed::no(node)),
                })
                .ok()?
                .data;
            // Keep the output column's name (EXPLAIN shows it).
            Some(if substituted.qualified_name() == (qualifier.clone(), name.clone()) {
                substituted
            } else {
                substituted.alias_qualified(qualifier, name)
            })
        })
        .collect()
}

/// A projection of `exprs` over `input`, pushed into `input` where it only reshapes.
fn project(input: Plan, exprs: Vec<Expr>, input_schema: DFSchemaRef) -> Plan {
    let reshapes = exprs.iter().all(|e| reshaped_column(e).is_some());
    match input {
        // Each branch's rows have the union's column types (the lowering casts them), so
        // the projection reads every branch as it reads the union.
        Plan::Union { inputs } if reshapes => Plan::Union {
            inputs: inputs
                .into_iter()
                .map(|b| project(b, exprs.clone(), input_schema.clone()))
                .collect(),
        },
        Plan::Map {
            input: inner_input,
            exprs: inner,
            input_schema: inner_schema,
        } if reshapes => match compose(&exprs, &input_schema, &inner) {
            Some(composed) => Plan::Map {
                input: inner_input,
                exprs: composed,
                input_schema: inner_schema,
            },
            None => Plan::Map {
                input: Box::new(Plan::Map {
                    input: inner_input,
                    exprs: inner,
                    input_schema: inner_schema,
                }),
                exprs,
                input_schema,
            },
        },
        input => Plan::Map {
            input: Box::new(input),
            exprs,
            input_schema,
        },
    }
}

impl Plan {
    /// Moves reshaping projections into the unions below them and merges them into the
    /// projections right below them (see the module docs): the same rows, fewer steps.
    pub fn fuse_projections(&mut self) {
        for c in self.children_mut() {
            c.fuse_projections();
        }
        let taken = std::mem::replace(self, Plan::Constant { rows: Vec::new() });
        *self = match taken {
            Plan::Map {
                input,
                exprs,
                input_schema,
            } => project(*input, exprs, input_schema),
            other => other,
        };
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::common::{DFSchema, ScalarValue};
    use datafusion::logical_expr::cast;
    use datafusion::prelude::{col, lit};
    use rampart_repr::{ColumnType, RelationDesc};

    use super::*;

    fn schema(qualifier: &str, fields: &[(&str, DataType)]) -> DFSchemaRef {
        let fields: Vec<Field> = fields.iter().map(|(n, t)| Field::new(*n, t.clone(), true)).collect();
        Arc::new(DFSchema::try_from_qualified_schema(qualifier, &Schema::new(fields)).unwrap())
    }

    fn get(name: &str) -> Plan {
        Plan::Get {
            name: name.into(),
            desc: RelationDesc::new([
                ("a".to_string(), ColumnType::Text),
                ("n".to_string(), ColumnType::Int64),
            ]),
        }
    }

    fn source_schema(name: &str) -> DFSchemaRef {
        schema(name, &[("a", DataType::Utf8), ("n", DataType::Int64)])
    }

    /// A branch of a union: the source's `a`, and an untyped NULL as `b`.
    fn branch(name: &str) -> Plan {
        Plan::Map {
            input: Box::new(get(name)),
            exprs: vec![
                col(format!("{name}.a")).alias("a"),
                Expr::Literal(ScalarValue::Null, None).alias("b"),
            ],
            input_schema: source_schema(name),
        }
    }

    fn union_schema() -> DFSchemaRef {
        Arc::new(
            DFSchema::try_from(Schema::new(vec![
                Field::new("a", DataType::Utf8, true),
                Field::new("b", DataType::Null, true),
            ]))
            .unwrap(),
        )
    }

    fn expressions(plan: &Plan) -> Vec<String> {
        match plan {
            Plan::Map { exprs, .. } => exprs.iter().map(|e| e.to_string()).collect(),
            other => panic!("expected a Map, found {other:?}"),
        }
    }

    /// The expected plans are written by hand: the cast moves into each branch and merges
    /// with the branch's projection, so each source is read by exactly one projection.
    #[test]
    fn a_union_coercion_merges_into_each_branch_projection() {
        let mut plan = Plan::Map {
            input: Box::new(Plan::Union {
                inputs: vec![branch("s"), branch("t")],
            }),
            exprs: vec![col("a"), cast(col("b"), DataType::Utf8).alias("b")],
            input_schema: union_schema(),
        };
        plan.fuse_projections();
        let Plan::Union { inputs } = &plan else {
            panic!("the union should be on top: {plan:?}")
        };
        for (b, name) in inputs.iter().zip(["s", "t"]) {
            assert!(
                matches!(b, Plan::Map { input, .. } if matches!(input.as_ref(), Plan::Get { name: n, .. } if n == name))
            );
            assert_eq!(
                expressions(b),
                vec![format!("{name}.a AS a"), "CAST(NULL AS Utf8) AS b".to_string()]
            );
            assert!(plan.projection_over(name).is_some());
        }
    }

    /// `exprs` over `upper(s.a) AS u` over source `s` (an inner expression that is not cheap).
    fn over_upper(exprs: Vec<Expr>) -> Plan {
        Plan::Map {
            input: Box::new(Plan::Map {
                input: Box::new(get("s")),
                exprs: vec![datafusion::functions::string::expr_fn::upper(col("s.a")).alias("u")],
                input_schema: source_schema("s"),
            }),
            exprs,
            input_schema: Arc::new(
                DFSchema::try_from(Schema::new(vec![Field::new("u", DataType::Utf8, true)])).unwrap(),
            ),
        }
    }

    #[test]
    fn projections_that_compute_are_not_merged() {
        // The outer projection computes (a concatenation), so it stays above the union.
        let computing = Plan::Map {
            input: Box::new(Plan::Union {
                inputs: vec![branch("s"), branch("t")],
            }),
            exprs: vec![datafusion::functions::string::expr_fn::concat(vec![col("a"), lit("x")])],
            input_schema: union_schema(),
        };
        let mut fused = computing.clone();
        fused.fuse_projections();
        assert!(matches!(&fused, Plan::Map { input, .. } if matches!(input.as_ref(), Plan::Union { .. })));

        // An inner expression read twice that is not cheap is not repeated.
        let mut twice = over_upper(vec![col("u"), col("u").alias("v")]);
        twice.fuse_projections();
        assert!(matches!(&twice, Plan::Map { input, .. } if matches!(input.as_ref(), Plan::Map { .. })));

        // Read once, it merges.
        let mut once = over_upper(vec![col("u").alias("v")]);
        once.fuse_projections();
        assert_eq!(expressions(&once), vec!["upper(s.a) AS v".to_string()]);
        assert!(matches!(&once, Plan::Map { input, .. } if matches!(input.as_ref(), Plan::Get { .. })));
    }
}
