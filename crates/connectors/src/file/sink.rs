//! [`JsonSink`]: the `file` sink, JSON lines appended to a file, and the `stdout` sink, the
//! same lines printed to standard output, in the format of the sink's `FORMAT`
//! ([`crate::envelope`]). A file sink's output length is its position: a checkpoint records
//! it, and a sink resuming at a checkpoint cuts the file back to it.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::sync::Mutex;

use rampart_dataflow::{Diff, SinkWriter, Time};
use rampart_repr::{Error, RelationDesc, Row};

use crate::envelope::{write_lines, SinkFormat};
use crate::sink::SinkTarget;

/// Writes encoded changes to a file or stdout.
pub struct JsonSink {
    desc: RelationDesc,
    format: SinkFormat,
    out: Mutex<Output>,
    /// The error of the last failed write, until taken.
    failed: Mutex<Option<Error>>,
}

enum Output {
    /// A file and how many bytes it holds.
    File {
        file: File,
        len: u64,
    },
    Stdout,
    /// Nothing: every change is discarded.
    Discard,
}

impl JsonSink {
    /// Opens the target (creating the file and its directory if needed). With
    /// `resume_at`, a file longer than that is cut back to it: the lines after it were
    /// written after the sink's last checkpoint and will be written again. A failed file
    /// operation is `58030` naming the file.
    pub fn open(
        target: &SinkTarget,
        desc: RelationDesc,
        format: SinkFormat,
        resume_at: Option<u64>,
    ) -> Result<Self, Error> {
        let out = match target {
            SinkTarget::File(path) => {
                if let Some(dir) = std::path::Path::new(path).parent() {
                    if !dir.as_os_str().is_empty() {
                        std::fs::create_dir_all(dir)
                            .map_err(|e| Error::io(format!("cannot create {}: {e}", dir.display()), e))?;
                    }
                }
                let mut file: File = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| Error::io(format!("cannot open sink file {path}: {e}"), e))?;
                let mut len = file
                    .metadata()
                    .map_err(|e| Error::io(format!("cannot read sink file {path}: {e}"), e))?
                    .len();
                if let Some(at) = resume_at {
                    if len > at {
                        file.set_len(at).map_err(|e| {
                            Error::io(format!("cannot cut sink file {path} back to its checkpoint: {e}"), e)
                        })?;
                        file.seek(SeekFrom::End(0))
                            .map_err(|e| Error::io(format!("cannot seek sink file {path}: {e}"), e))?;
                        tracing::info!(path, dropped_bytes = len - at, "sink file cut back to its checkpoint");
                        len = at;
                    } else if len < at {
                        tracing::warn!(
                            path,
                            missing_bytes = at - len,
                            "sink file is shorter than its checkpoint (was it truncated or rotated?)"
                        );
                    }
                }
                Output::File { file, len }
            }
            SinkTarget::Stdout => Output::Stdout,
            SinkTarget::Blackhole => Output::Discard,
            SinkTarget::Kafka { .. } => {
                return Err(Error::internal("a kafka sink is written by KafkaSink, not JsonSink"));
            }
        };
        Ok(JsonSink {
            desc,
            format,
            out: Mutex::new(out),
            failed: Mutex::new(None),
        })
    }
}

impl SinkWriter for JsonSink {
    fn write(&self, updates: &[(Row, Time, Diff)]) {
        if matches!(*self.out.lock().unwrap_or_else(|p| p.into_inner()), Output::Discard) {
            return;
        }
        let mut lines = String::new();
        write_lines(self.format, &self.desc, updates, &mut lines);
        if lines.is_empty() {
            return;
        }
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let result = match &mut *out {
            Output::File { file, len } => {
                // One write per batch: a crash never leaves half a batch behind a checkpoint.
                let r = file.write_all(lines.as_bytes());
                if r.is_ok() {
                    *len += lines.len() as u64;
                } else if let Ok(m) = file.metadata() {
                    *len = m.len();
                }
                r
            }
            Output::Stdout => {
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(lines.as_bytes()).and_then(|_| stdout.flush())
            }
            Output::Discard => Ok(()),
        };
        if let Err(e) = result {
            tracing::error!("sink write failed: {e}");
            *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(Error::io(e.to_string(), e));
        }
    }

    fn take_error(&self) -> Option<Error> {
        self.failed.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn cut_back(&self, to: u64) -> Result<(), Error> {
        match &mut *self.out.lock().unwrap_or_else(|p| p.into_inner()) {
            Output::File { file, len } => {
                file.set_len(to)
                    .map_err(|e| Error::io(format!("cannot cut the sink file back: {e}"), e))?;
                *len = to;
                Ok(())
            }
            Output::Stdout | Output::Discard => Ok(()),
        }
    }

    fn output_len(&self) -> Option<u64> {
        match &*self.out.lock().unwrap_or_else(|p| p.into_inner()) {
            Output::File { len, .. } => Some(*len),
            Output::Stdout | Output::Discard => None,
        }
    }

    fn sync(&self) -> Result<(), Error> {
        match &*self.out.lock().unwrap_or_else(|p| p.into_inner()) {
            Output::File { file, .. } => file.sync_data().map_err(|e| Error::io(e.to_string(), e)),
            Output::Stdout | Output::Discard => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_repr::{Column, ColumnType, Datum};

    #[test]
    fn a_file_sink_appends_one_line_per_copy_and_cuts_back_to_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/sink.jsonl");
        let target = SinkTarget::File(path.display().to_string());
        let desc = RelationDesc {
            columns: vec![Column {
                name: "k".into(),
                ty: ColumnType::Text,
            }],
        };
        let row = |k: &str| rampart_repr::row![Datum::Str(k.into())];
        let sink = JsonSink::open(&target, desc.clone(), SinkFormat::Debezium, None).unwrap();
        sink.write(&[(row("a"), 1, 2)]);
        let first = sink.output_len().unwrap();
        sink.write(&[(row("a"), 2, -1)]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "{\"after\":{\"k\":\"a\"},\"before\":null,\"op\":\"c\"}\n".repeat(2)
                + "{\"after\":null,\"before\":{\"k\":\"a\"},\"op\":\"d\"}\n"
        );
        drop(sink);
        // Reopened at the checkpoint after the first write: the second write's line goes.
        let sink = JsonSink::open(&target, desc, SinkFormat::Debezium, Some(first)).unwrap();
        assert_eq!(sink.output_len(), Some(first));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), first);
    }

    #[test]
    fn a_sink_file_that_cannot_be_created_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_dir = dir.path().join("plain");
        std::fs::write(&not_a_dir, "").unwrap();
        let path = not_a_dir.join("sink.jsonl");
        let target = SinkTarget::File(path.display().to_string());
        let e = JsonSink::open(&target, RelationDesc { columns: vec![] }, SinkFormat::Plain, None)
            .err()
            .unwrap();
        assert_eq!(e.sqlstate(), "58030");
        assert!(e.message().contains(&not_a_dir.display().to_string()), "{e}");
    }
}
