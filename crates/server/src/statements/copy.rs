//! `COPY table FROM 'file'` (CSV): rows read, conformed to the table, applied like an INSERT.

use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{CopyLegacyOption, CopyOption, CopySource, CopyTarget};
use rampart_sql::ast::object_name;
use rampart_sql::PlanError;

use crate::coordinator::{Executed, State};

impl State {
    pub(crate) async fn copy_from(
        &self,
        source: &CopySource,
        to: bool,
        target: &CopyTarget,
        options: &[CopyOption],
        legacy: &[CopyLegacyOption],
    ) -> Result<Executed, PlanError> {
        if to {
            return Err(PlanError::unsupported(
                "COPY ... TO is not supported; SELECT the rows instead",
            ));
        }
        let CopySource::Table { table_name, columns } = source else {
            return Err(PlanError::unsupported("COPY (query) FROM"));
        };
        let CopyTarget::File { filename } = target else {
            return Err(PlanError::unsupported(
                "COPY ... FROM STDIN is not supported yet; COPY from a file path on the server",
            ));
        };
        let table = object_name(table_name);
        let desc = self.table_entry(&table)?;
        let mut header = false;
        let mut delimiter = b',';
        for o in options {
            match o {
                CopyOption::Format(f) if f.value.eq_ignore_ascii_case("csv") => {}
                CopyOption::Format(f) => {
                    return Err(PlanError::unsupported(format!(
                        "COPY format {} (only csv is supported)",
                        f.value
                    )))
                }
                CopyOption::Header(h) => header = *h,
                CopyOption::Delimiter(d) => delimiter = *d as u8,
                other => return Err(PlanError::unsupported(format!("COPY option {other}"))),
            }
        }
        for o in legacy {
            match o {
                CopyLegacyOption::Csv(_) => {}
                CopyLegacyOption::Header => header = true,
                CopyLegacyOption::Delimiter(d) => delimiter = *d as u8,
                other => return Err(PlanError::unsupported(format!("COPY option {other}"))),
            }
        }
        let names: Vec<String> = if columns.is_empty() {
            desc.columns.iter().map(|c| c.name.clone()).collect()
        } else {
            columns.iter().map(|c| c.value.to_lowercase()).collect()
        };
        let fields: Vec<_> = names
            .iter()
            .map(|n| {
                let i = desc.index_of(n).ok_or_else(|| {
                    PlanError::new(
                        "42703",
                        format!("column \"{n}\" of relation \"{table}\" does not exist"),
                    )
                })?;
                Ok(datafusion::arrow::datatypes::Field::new(
                    n,
                    desc.columns[i].ty.to_arrow(),
                    true,
                ))
            })
            .collect::<Result<_, PlanError>>()?;
        let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
        let file = open_regular_file(filename)?;
        let reader = datafusion::arrow::csv::ReaderBuilder::new(schema)
            .with_header(header)
            .with_delimiter(delimiter)
            .build(file)
            .map_err(|e| PlanError::new("22P04", format!("bad CSV in {filename}: {e}")))?;
        let mut batches = Vec::new();
        for b in reader {
            batches.push(b.map_err(|e| PlanError::new("22P04", format!("bad CSV in {filename}: {e}")))?);
        }
        let rows = self.conform(&table, &names, &batches)?;
        self.apply_updates(&table, rows.into_iter().map(|r| (r, 1)).collect(), "COPY")
            .await
    }
}

/// Opens `path` for COPY, which reads regular files only: a FIFO, a device (`/dev/zero`), a
/// socket or a directory is refused. It is opened without blocking (a FIFO with no writer
/// would otherwise hold the statement, and every statement behind it, forever) and checked
/// after opening, so a file swapped in between is judged as it is read.
fn open_regular_file(path: &str) -> Result<std::fs::File, PlanError> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| PlanError::new("58P01", format!("could not open file \"{path}\" for reading: {e}")))?;
    let kind = file
        .metadata()
        .map_err(|e| PlanError::new("58030", format!("could not read the metadata of \"{path}\": {e}")))?
        .file_type();
    let what = if kind.is_file() {
        return Ok(file);
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    };
    Err(PlanError::new(
        "22023",
        format!("COPY reads regular files only: \"{path}\" is {what}"),
    ))
}
