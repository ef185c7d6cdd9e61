//! Enrichment joins: a range join (inner or left) whose left input is a left equi join
//! without a residual and whose probe reads only that join's left input:
//! `x LEFT JOIN t1 ON key(x) = key(t1) [LEFT] JOIN t2 ON probe(x) BETWEEN low(t2) AND
//! high(t2)` (the seed's `enriched_events`). `rampart-dataflow` runs it as one operator
//! that keeps the rows of `x` themselves instead of the rows the first join builds.

use datafusion::common::DFSchemaRef;
use datafusion::logical_expr::Expr;

use crate::{JoinKind, Plan, RangeJoin};

/// The parts of an enrichment join.
pub struct EnrichJoin<'p> {
    /// The enriched input `x`.
    pub input: &'p Plan,
    /// The equality-keyed table `t1`.
    pub table: &'p Plan,
    /// The range table `t2`.
    pub ranges: &'p Plan,
    /// Schema of `x`.
    pub input_schema: &'p DFSchemaRef,
    /// Key expressions over `x`.
    pub input_keys: &'p [Expr],
    /// Schema of `t1`.
    pub table_schema: &'p DFSchemaRef,
    /// Key expressions over `t1`.
    pub table_keys: &'p [Expr],
    /// Schema of `t2`.
    pub ranges_schema: &'p DFSchemaRef,
    /// The range condition (its probe reads only `x`).
    pub range: RangeJoin,
}

impl Plan {
    /// This plan as an enrichment join, if it is one.
    pub fn enrich_join(&self) -> Option<EnrichJoin<'_>> {
        let range = self.range_join()?;
        let Plan::Join {
            left: inner,
            right: ranges,
            right_schema: ranges_schema,
            ..
        } = self
        else {
            return None;
        };
        let Plan::Join {
            kind: JoinKind::Left,
            left,
            right,
            left_keys,
            right_keys,
            residual: None,
            left_schema,
            right_schema,
            ..
        } = inner.as_ref()
        else {
            return None;
        };
        let reads_input_only = range.probe.column_refs().iter().all(|c| left_schema.has_column(c));
        (!left_keys.is_empty() && reads_input_only).then_some(EnrichJoin {
            input: left,
            table: right,
            ranges,
            input_schema: left_schema,
            input_keys: left_keys,
            table_schema: right_schema,
            table_keys: right_keys,
            ranges_schema,
            range,
        })
    }
}
