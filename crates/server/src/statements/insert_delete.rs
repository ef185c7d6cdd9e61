//! Changes to tables: `INSERT` and `DELETE`. Each change becomes +1/-1 updates that flow
//! through every view reading the table; the statement returns once views reflect it.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::cast;
use datafusion::sql::sqlparser::ast::{Delete, FromTable, Insert, TableFactor, TableObject};
use rampart_dataflow::Diff;
use rampart_repr::{batch_to_rows, Datum, Row};
use rampart_sql::ast::{object_name, select_all_from, ObjectKind};
use rampart_sql::PlanError;

use crate::coordinator::{Executed, State};
use rampart_pgwire::QueryOutput;

impl State {
    pub(crate) fn table_entry(&self, name: &str) -> Result<rampart_repr::RelationDesc, PlanError> {
        match self.catalog.get(name) {
            None => Err(PlanError::undefined_table(name)),
            Some(e) if e.kind != ObjectKind::Table => Err(PlanError::new(
                "42809",
                format!(
                    "cannot change {} \"{name}\": only tables accept INSERT, DELETE and COPY",
                    e.kind.sql_name()
                ),
            )),
            Some(e) => Ok(e.desc.clone()),
        }
    }

    /// Sends updates to a table and waits until views reflect them.
    pub(crate) async fn apply_updates(
        &self,
        table: &str,
        updates: Vec<(Row, Diff)>,
        tag: &str,
    ) -> Result<Executed, PlanError> {
        let n = updates.len();
        let entered = if n > 0 {
            // Durable before the views see it, so an acknowledged change survives a crash.
            self.log_table_changes(table, &updates)?;
            Some(self.engine.update_table(table, updates))
        } else {
            None
        };
        let notices = self.catch_up_after(entered).await;
        Ok(Executed {
            output: QueryOutput::Command {
                tag: tag.to_string(),
                rows: Some(n),
            },
            notices,
        })
    }

    /// Converts query results to rows of `table`'s columns (by name when `columns` is
    /// given, else by position), casting each value to the column's type.
    pub(crate) fn conform(
        &self,
        table: &str,
        columns: &[String],
        batches: &[RecordBatch],
    ) -> Result<Vec<Row>, PlanError> {
        let desc = self.table_entry(table)?;
        let targets: Vec<usize> = if columns.is_empty() {
            (0..desc.columns.len()).collect()
        } else {
            columns
                .iter()
                .map(|c| {
                    desc.index_of(c).ok_or_else(|| {
                        PlanError::new(
                            "42703",
                            format!("column \"{c}\" of relation \"{table}\" does not exist"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?
        };
        let mut out = Vec::new();
        for b in batches {
            if b.num_columns() > targets.len() {
                return Err(PlanError::new(
                    "42601",
                    "INSERT has more expressions than target columns",
                ));
            }
            let mut cols = Vec::new();
            for (i, col) in b.columns().iter().enumerate() {
                let ty = desc.columns[targets[i]].ty.to_arrow();
                let c = cast(col, &ty).map_err(|e| {
                    PlanError::new(
                        "42804",
                        format!(
                            "column {} is of type {ty} but the value cannot be cast: {e}",
                            desc.columns[targets[i]].name
                        ),
                    )
                })?;
                cols.push(c);
            }
            let fields: Vec<_> = (0..cols.len())
                .map(|i| datafusion::arrow::datatypes::Field::new(format!("c{i}"), cols[i].data_type().clone(), true))
                .collect();
            let batch = RecordBatch::try_new(Arc::new(datafusion::arrow::datatypes::Schema::new(fields)), cols)
                .map_err(|e| PlanError::invalid(e.to_string()))?;
            for r in batch_to_rows(&batch).map_err(|e| PlanError::invalid(e.to_string()))? {
                let mut row = vec![Datum::Null; desc.columns.len()];
                for (i, d) in r.into_iter().enumerate() {
                    row[targets[i]] = d;
                }
                out.push(Row::new(row));
            }
        }
        Ok(out)
    }

    pub(crate) async fn insert(&self, ins: &Insert) -> Result<Executed, PlanError> {
        let TableObject::TableName(name) = &ins.table else {
            return Err(PlanError::unsupported("INSERT INTO a table function"));
        };
        let table = object_name(name);
        self.table_entry(&table)?;
        let Some(source) = &ins.source else {
            return Err(PlanError::unsupported("INSERT without VALUES or SELECT"));
        };
        let Executed {
            output: QueryOutput::Rows { batches, .. },
            ..
        } = self.select(source).await?
        else {
            return Err(PlanError::invalid("INSERT source returned no rows"));
        };
        let columns: Vec<String> = ins.columns.iter().map(object_name).collect();
        let rows = self.conform(&table, &columns, &batches)?;
        self.apply_updates(&table, rows.into_iter().map(|r| (r, 1)).collect(), "INSERT")
            .await
    }

    pub(crate) async fn delete(&self, del: &Delete) -> Result<Executed, PlanError> {
        let tables = match &del.from {
            FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
        };
        let [twj] = tables.as_slice() else {
            return Err(PlanError::unsupported("DELETE from several tables"));
        };
        let TableFactor::Table { name, alias, .. } = &twj.relation else {
            return Err(PlanError::unsupported("DELETE from something other than a table"));
        };
        let table = object_name(name);
        self.table_entry(&table)?;
        let query = select_all_from(name, alias.clone(), del.selection.clone());
        let Executed {
            output: QueryOutput::Rows { batches, .. },
            ..
        } = self.select(&query).await?
        else {
            return Err(PlanError::invalid("DELETE found no rows"));
        };
        let rows = self.conform(&table, &[], &batches)?;
        self.apply_updates(&table, rows.into_iter().map(|r| (r, -1)).collect(), "DELETE")
            .await
    }
}
