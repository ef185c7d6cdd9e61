//! [`ErrorJournal`]: the rows of `rampart_source_errors` (or of `rampart_late_events`), kept in the data directory so a
//! restart shows the input rejected before it. Views restored from a checkpoint do not
//! read that input again, so without it the errors would be gone.

use std::io;
use std::path::Path;

use rampart_repr::{ErrorRecord, MAX_RECORDS};

use crate::record_log::RecordLog;

/// The saved error records: appended in batches; on open, the newest [`MAX_RECORDS`] are
/// kept (the log is rewritten once it holds twice that).
pub struct ErrorJournal {
    log: RecordLog,
    records: usize,
}

impl ErrorJournal {
    /// Opens (creating if missing) the journal and returns the records it holds, oldest
    /// first. A batch that does not decode ends the journal there (it is cut).
    pub fn open(path: &Path) -> io::Result<(ErrorJournal, Vec<ErrorRecord>)> {
        let mut records: Vec<ErrorRecord> = Vec::new();
        let mut valid_end = 0;
        let mut broken = false;
        let mut log = RecordLog::open_each(path, |payload, end| {
            if broken {
                return Ok(());
            }
            match serde_json::from_slice::<Vec<ErrorRecord>>(payload) {
                Ok(mut batch) => {
                    records.append(&mut batch);
                    valid_end = end;
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), "an error record batch does not decode ({e}): the journal is cut there");
                    broken = true;
                }
            }
            Ok(())
        })?;
        if broken {
            log.cut_to(valid_end)?;
        }
        let excess = records.len().saturating_sub(MAX_RECORDS);
        records.drain(..excess);
        let mut journal = ErrorJournal {
            log,
            records: records.len() + excess,
        };
        if excess > 0 {
            journal.compact(&records)?;
        }
        Ok((journal, records))
    }

    /// Durably appends new records.
    pub fn append(&mut self, records: &[ErrorRecord]) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let bytes = serde_json::to_vec(records).map_err(|e| io::Error::other(e.to_string()))?;
        self.log.append(&bytes)?;
        self.log.sync()?;
        self.records += records.len();
        Ok(())
    }

    /// Whether the journal holds more than twice what is kept, so that the next open
    /// rewrites it.
    pub fn oversized(&self) -> bool {
        self.records > 2 * MAX_RECORDS
    }

    /// Replaces the journal with `records` (the ones still kept in memory).
    pub fn compact(&mut self, records: &[ErrorRecord]) -> io::Result<()> {
        let bytes = serde_json::to_vec(records).map_err(|e| io::Error::other(e.to_string()))?;
        self.log = RecordLog::replace(self.log.path(), &[bytes])?;
        self.records = records.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(line: i64) -> ErrorRecord {
        ErrorRecord {
            source: "auth".into(),
            location: "a.jsonl".into(),
            offset: Some(line),
            raw: "{".into(),
            reason: "not JSON".into(),
            at_us: 1_000 + line,
        }
    }

    #[test]
    fn records_come_back_in_order_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("errors.log");
        let (mut j, none) = ErrorJournal::open(&path).unwrap();
        assert!(none.is_empty());
        j.append(&[rec(1), rec(2)]).unwrap();
        j.append(&[rec(3)]).unwrap();
        drop(j);
        let (_, back) = ErrorJournal::open(&path).unwrap();
        assert_eq!(back, vec![rec(1), rec(2), rec(3)]);
    }
}
