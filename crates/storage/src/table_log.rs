//! [`TableLog`]: a table's changes (INSERT, DELETE, COPY), durable before acknowledged.

use std::collections::HashMap;
use std::io;
use std::path::Path;

use rampart_repr::Diff;
use rampart_repr::Row;

use crate::record_log::RecordLog;

/// One table's durable contents: a log of change batches, compacted to the consolidated
/// contents when opened.
pub struct TableLog {
    log: RecordLog,
}

impl TableLog {
    /// Starts an empty log for a new table (replacing a stale file of a dropped table).
    pub fn create(path: &Path) -> io::Result<TableLog> {
        Ok(TableLog {
            log: RecordLog::create(path)?,
        })
    }

    /// Opens an existing table's log and returns its contents as (row, count) pairs.
    pub fn open(path: &Path) -> io::Result<(TableLog, Vec<(Row, Diff)>)> {
        let (_, records) = RecordLog::open(path)?;
        let mut contents: HashMap<Row, Diff> = HashMap::new();
        for (i, bytes) in records.iter().enumerate() {
            let changes: Vec<(Row, Diff)> = serde_json::from_slice(bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("table change record {i} in {} does not parse: {e}", path.display()),
                )
            })?;
            crate::sink_state::apply(&mut contents, changes.iter().map(|(row, d)| (row, *d)));
        }
        let mut rows: Vec<(Row, Diff)> = contents.into_iter().collect();
        rows.sort();
        // Compacting is best effort: on a full disk the log is kept as it was.
        let compacted = if records.len() > 1 {
            RecordLog::replace(path, &[encode(&rows)])
                .map_err(|e| tracing::warn!(file = %path.display(), "table log not compacted: {e}"))
                .ok()
        } else {
            None
        };
        let log = match compacted {
            Some(log) => log,
            None => RecordLog::open(path)?.0,
        };
        Ok((TableLog { log }, rows))
    }

    /// Durably appends a batch of changes (fsync before returning).
    pub fn append(&mut self, changes: &[(Row, Diff)]) -> io::Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        self.log.append(&encode(changes))?;
        self.log.sync()
    }

    /// Deletes the log of a dropped table.
    pub fn remove(self) -> io::Result<()> {
        std::fs::remove_file(self.log.path())
    }
}

fn encode(changes: &[(Row, Diff)]) -> Vec<u8> {
    serde_json::to_vec(changes).expect("rows serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_repr::Datum;

    #[test]
    fn changes_consolidate_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.log");
        let row = |i: i64, s: &str| rampart_repr::row![Datum::Int(i), Datum::Str(s.into()), Datum::Timestamp(i * 1000)];
        let mut log = TableLog::create(&path).unwrap();
        log.append(&[(row(1, "a"), 1), (row(2, "b"), 1)]).unwrap();
        log.append(&[(row(1, "a"), -1), (row(3, "c"), 2)]).unwrap();
        drop(log);
        let (mut log, rows) = TableLog::open(&path).unwrap();
        assert_eq!(rows, vec![(row(2, "b"), 1), (row(3, "c"), 2)]);
        log.append(&[(row(2, "b"), -1)]).unwrap();
        drop(log);
        let (_, rows) = TableLog::open(&path).unwrap();
        assert_eq!(rows, vec![(row(3, "c"), 2)]);
    }
}
