//! A minimal `pg_catalog` (pg_class, pg_namespace, pg_am and the functions psql calls), so
//! that psql's listing meta-commands (`\d`, `\dt`, `\dm`, `\dv`) show Rampart's objects.
//! Sources appear as foreign tables (relkind `f`), materialized views as `m`.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{MemTable, MemorySchemaProvider, SchemaProvider, TableProvider};
use datafusion::datasource::empty::EmptyTable;
use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
use datafusion::prelude::SessionContext;
use rampart_sql::ast::ObjectKind;

use crate::catalog::Catalog;

/// Namespace oid of `public`, where every Rampart object lives.
const PUBLIC_OID: i64 = 2200;

fn pg_class_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("oid", DataType::Int64, false),
        Field::new("relname", DataType::Utf8, false),
        Field::new("relnamespace", DataType::Int64, false),
        Field::new("relkind", DataType::Utf8, false),
        Field::new("relowner", DataType::Int64, false),
        Field::new("relam", DataType::Int64, false),
    ]))
}

fn pg_namespace_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("oid", DataType::Int64, false),
        Field::new("nspname", DataType::Utf8, false),
    ]))
}

fn pg_am_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("oid", DataType::Int64, false),
        Field::new("amname", DataType::Utf8, false),
    ]))
}

fn relkind(kind: ObjectKind) -> Option<&'static str> {
    match kind {
        ObjectKind::Table => Some("r"),
        ObjectKind::MaterializedView => Some("m"),
        ObjectKind::View => Some("v"),
        ObjectKind::Source => Some("f"),
        ObjectKind::Sink => None,
    }
}

/// Registers `pg_catalog` in `ctx`: with the catalog's objects when `catalog` is given,
/// else empty (for planning).
pub fn register(ctx: &SessionContext, catalog: Option<&Catalog>) {
    let schema = Arc::new(MemorySchemaProvider::new());
    let tables: Vec<(&str, Arc<dyn TableProvider>)> = match catalog {
        None => vec![
            ("pg_class", Arc::new(EmptyTable::new(pg_class_schema()))),
            ("pg_namespace", Arc::new(EmptyTable::new(pg_namespace_schema()))),
            ("pg_am", Arc::new(EmptyTable::new(pg_am_schema()))),
        ],
        Some(cat) => {
            let objs: Vec<(String, &'static str)> = cat
                .in_creation_order()
                .into_iter()
                .filter_map(|e| relkind(e.kind).map(|k| (e.name.clone(), k)))
                .collect();
            let class: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from_iter_values((0..objs.len() as i64).map(|i| 16384 + i))),
                Arc::new(StringArray::from_iter_values(objs.iter().map(|o| o.0.as_str()))),
                Arc::new(Int64Array::from_iter_values(objs.iter().map(|_| PUBLIC_OID))),
                Arc::new(StringArray::from_iter_values(objs.iter().map(|o| o.1))),
                Arc::new(Int64Array::from_iter_values(objs.iter().map(|_| 10))),
                Arc::new(Int64Array::from_iter_values(objs.iter().map(|_| 0))),
            ];
            let ns: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from(vec![11, PUBLIC_OID])),
                Arc::new(StringArray::from(vec!["pg_catalog", "public"])),
            ];
            let am: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from(vec![2])),
                Arc::new(StringArray::from(vec!["heap"])),
            ];
            let mem = |schema: SchemaRef, cols: Vec<ArrayRef>| -> Arc<dyn TableProvider> {
                let batch = RecordBatch::try_new(schema.clone(), cols)
                    .unwrap_or_else(|_| RecordBatch::new_empty(schema.clone()));
                match MemTable::try_new(schema.clone(), vec![vec![batch]]) {
                    Ok(t) => Arc::new(t),
                    Err(_) => Arc::new(EmptyTable::new(schema)),
                }
            };
            vec![
                ("pg_class", mem(pg_class_schema(), class)),
                ("pg_namespace", mem(pg_namespace_schema(), ns)),
                ("pg_am", mem(pg_am_schema(), am)),
            ]
        }
    };
    for (name, t) in tables {
        let _ = schema.register_table(name.to_string(), t);
    }
    if let Some(c) = ctx.catalog("dev") {
        let _ = c.register_schema("pg_catalog", schema);
    }
    ctx.register_udf(create_udf(
        "pg_get_userbyid",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let n = match &args[0] {
                ColumnarValue::Array(a) => a.len(),
                ColumnarValue::Scalar(_) => 1,
            };
            Ok(ColumnarValue::Array(Arc::new(StringArray::from_iter_values(
                (0..n).map(|_| "root"),
            ))))
        }),
    ));
    ctx.register_udf(create_udf(
        "pg_table_is_visible",
        vec![DataType::Int64],
        DataType::Boolean,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let n = match &args[0] {
                ColumnarValue::Array(a) => a.len(),
                ColumnarValue::Scalar(_) => 1,
            };
            Ok(ColumnarValue::Array(Arc::new(
                datafusion::arrow::array::BooleanArray::from(vec![true; n]),
            )))
        }),
    ));
}

/// Drops the `pg_catalog.` qualifier from function calls (`pg_catalog.pg_table_is_visible(..)`),
/// which DataFusion does not resolve; the functions are registered unqualified.
pub fn unqualify_functions(query: &mut datafusion::sql::sqlparser::ast::Query) {
    use datafusion::sql::sqlparser::ast::{Expr, VisitMut, VisitorMut};
    use std::ops::ControlFlow;
    struct Unqualify;
    impl VisitorMut for Unqualify {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if let Expr::Function(f) = e {
                let qualified = f.name.0.len() == 2
                    && f.name.0[0]
                        .as_ident()
                        .is_some_and(|i| i.value.eq_ignore_ascii_case("pg_catalog"));
                if qualified {
                    f.name.0.remove(0);
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = query.visit(&mut Unqualify);
}
