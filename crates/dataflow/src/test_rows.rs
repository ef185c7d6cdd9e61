//! Test helpers for comparing row-level evaluation with DataFusion's: nullable schemas and
//! every combination of a few values per column.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::{DFSchema, DFSchemaRef};
use rampart_repr::{Datum, Row};

/// A schema of nullable columns with these names and types.
pub(crate) fn nullable_schema(columns: &[(&str, DataType)]) -> DFSchemaRef {
    let fields: Vec<Field> = columns.iter().map(|(n, t)| Field::new(*n, t.clone(), true)).collect();
    Arc::new(DFSchema::try_from(Schema::new(fields)).expect("valid schema"))
}

/// Every row whose `i`-th datum is one of `columns[i]` (the first column varies slowest).
pub(crate) fn every_combination(columns: &[&[Datum]]) -> Vec<Row> {
    columns.iter().fold(vec![Row::default()], |rows, values| {
        rows.iter()
            .flat_map(|row| values.iter().map(move |v| row.iter().chain([v]).cloned().collect()))
            .collect()
    })
}
