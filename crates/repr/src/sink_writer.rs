//! [`SinkWriter`]: what a sink's destination implements (file, stdout, Kafka), and what the
//! engine and resumable sinks call. Here, below both, so storage does not depend on the
//! engine.

use crate::time::{Diff, Time};
use crate::{Error, Positions, Row};

/// What a readback found at a sink's destination ([`SinkWriter::delivered_since`]): the
/// changes its messages carried, and the output positions after them.
pub type Delivered = (Vec<(Row, Diff)>, Positions);

/// Receives a sink's changes: complete, consolidated updates in time order, per worker.
pub trait SinkWriter: Send + Sync {
    /// Writes the changes of one or more completed times. `updates` is sorted by time.
    fn write(&self, updates: &[(Row, Time, Diff)]);

    /// Every change before `upper` has been passed to [`SinkWriter::write`]. Called each
    /// time the sink's input frontier advances, with or without changes.
    fn progress(&self, _upper: Time) {}

    /// Bytes of output made visible so far, for sinks whose output can be cut back to a
    /// checkpoint after a crash (files); `None` for sinks that cannot (stdout, Kafka).
    fn output_len(&self) -> Option<u64> {
        None
    }

    /// Makes the output written so far durable (fsync for files; for sinks that count
    /// [`SinkWriter::acknowledged_writes`], waits until everything written is acknowledged).
    fn sync(&self) -> Result<(), Error> {
        Ok(())
    }

    /// For sinks whose `write` only queues its output for delivery (Kafka): how many calls
    /// to `write`, counted from the first, the destination has acknowledged, each together
    /// with every call before it. A failed delivery counts as acknowledged, and its error is
    /// visible through [`SinkWriter::take_error`] before it is counted. `None` (the default):
    /// the output is in place when `write` returns.
    fn acknowledged_writes(&self) -> Option<u64> {
        None
    }

    /// The error of a write that failed since the last call, if any (`write` itself cannot
    /// fail: a sink that cannot write reports it here).
    fn take_error(&self) -> Option<Error> {
        None
    }

    /// Cuts the output back to `len` bytes (see [`SinkWriter::output_len`]).
    fn cut_back(&self, _len: u64) -> Result<(), Error> {
        Ok(())
    }

    /// For sinks that count acknowledged writes and can read their destination back
    /// (Kafka): where the output stood right after write number `write` (see
    /// [`SinkWriter::acknowledged_writes`]), recorded with the changes of the writes up to
    /// it. `None` (the default): the destination cannot be read back.
    fn output_positions(&self, _write: u64) -> Option<Positions> {
        None
    }

    /// After a restart, for sinks with [`SinkWriter::output_positions`]: the changes carried
    /// by every message that reached the destination after `recorded` (the output positions
    /// of the sink's last record), as they were written, and the output positions after
    /// them. The sink continues after them. These are the writes that were delivered but
    /// not yet acknowledged (or not yet recorded) when the server stopped.
    fn delivered_since(&self, recorded: &Positions) -> Result<Delivered, Error> {
        Ok((Vec::new(), recorded.clone()))
    }
}
