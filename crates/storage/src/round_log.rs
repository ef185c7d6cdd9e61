//! [`RoundLog`]: which checkpoint rounds are complete. Every checkpoint interval the
//! checkpointer writes the views that changed, each mark carrying the round's number, then
//! appends the number here: the round is then complete, and every view's log holds its
//! state as of the round's one dataflow time (a view that did not change keeps its earlier
//! mark). A restart opens each view's log back to its last mark of the last complete
//! round, so views that depend on each other's checkpoints (a view rebuilt from another's
//! restored rows next to its own saved rows) come back from the same moment, even when
//! the server died halfway through writing a round.

use std::io;
use std::path::Path;

use crate::record_log::RecordLog;

/// Bytes after which the log is rewritten as its last record.
const REWRITE_AFTER: u64 = 1 << 20;

/// The log of complete checkpoint rounds.
pub struct RoundLog {
    log: RecordLog,
    last: Option<u64>,
}

impl RoundLog {
    /// Opens (creating if missing) the log: the last complete round, if any.
    pub fn open(path: &Path) -> io::Result<RoundLog> {
        let mut last = None;
        let log = RecordLog::open_each(path, |payload, _| {
            let bytes: [u8; 8] = payload
                .try_into()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a round record is not 8 bytes"))?;
            last = Some(u64::from_le_bytes(bytes));
            Ok(())
        })?;
        Ok(RoundLog { log, last })
    }

    /// The last complete round.
    pub fn last(&self) -> Option<u64> {
        self.last
    }

    /// Durably records that `round` is complete.
    pub fn complete(&mut self, round: u64) -> io::Result<()> {
        if self.log.len() >= REWRITE_AFTER {
            self.log = RecordLog::replace(self.log.path(), &[round.to_le_bytes().to_vec()])?;
        } else {
            let before = self.log.len();
            let appended = self.log.append(&round.to_le_bytes()).and_then(|()| self.log.sync());
            if let Err(e) = appended {
                let _ = self.log.cut_to(before);
                return Err(e);
            }
        }
        self.last = Some(round);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_complete_round_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rounds.log");
        let mut log = RoundLog::open(&path).unwrap();
        assert_eq!(log.last(), None);
        log.complete(1).unwrap();
        log.complete(4).unwrap();
        drop(log);
        let mut log = RoundLog::open(&path).unwrap();
        assert_eq!(log.last(), Some(4));
        // A torn record (a kill while appending) falls back to the one before.
        log.complete(5).unwrap();
        drop(log);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(RoundLog::open(&path).unwrap().last(), Some(4));
    }
}
