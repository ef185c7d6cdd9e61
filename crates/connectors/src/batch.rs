//! [`BatchSender`]: how every reader hands its rows to the dataflow workers: numbered
//! batches, spread over the workers in runs, each carrying the reader's positions (and
//! watermark) as of its last row; a full worker buffer makes the reader wait.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, Sender};
use rampart_dataflow::SourceBatch;
use rampart_repr::{Positions, Row};

/// Rows per batch handed to a worker.
pub const BATCH_ROWS: usize = 1024;

/// Consecutive batches a reader hands to one worker before the next.
pub const BATCH_RUN: usize = 8;

/// Batches buffered per worker before a reader waits (backpressure).
pub const CHANNEL_BATCHES: usize = 64;

/// Spreads batches over the workers in runs of [`BATCH_RUN`]; `send` fails once the
/// dataflow is gone.
/// Each batch carries the reader's positions ([`BatchSender::advance`]) as of its last row.
pub struct BatchSender {
    senders: Vec<Sender<SourceBatch>>,
    wake: Vec<std::thread::Thread>,
    next: usize,
    rows: Arc<AtomicU64>,
    positions: Positions,
    positions_changed: bool,
    seq: u64,
    watermark: Option<i64>,
    /// The largest event time admitted per stream (sources with a `WATERMARK`), merged
    /// into the positions of the next batch.
    event_times: HashMap<String, i64>,
    event_times_changed: bool,
}

impl BatchSender {
    /// A sender to `workers` workers (woken through `wake`, in worker order), counting the
    /// rows it delivers in `rows`, and the receivers to hand to the dataflow. A reader
    /// resuming at `resume_at` continues its positions and `watermark` from there.
    pub(crate) fn new(
        workers: usize,
        wake: Vec<std::thread::Thread>,
        rows: Arc<AtomicU64>,
        resume_at: Option<Positions>,
        watermark: Option<i64>,
    ) -> (Self, Vec<Receiver<SourceBatch>>) {
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..workers.max(1)).map(|_| bounded(CHANNEL_BATCHES)).unzip();
        let sender = BatchSender {
            wake,
            senders,
            next: 0,
            rows,
            positions: resume_at.unwrap_or_default(),
            positions_changed: false,
            seq: 0,
            watermark,
            event_times: HashMap::new(),
            event_times_changed: false,
        };
        (sender, receivers)
    }

    /// Records that the reader has consumed `stream` up to `pos` (the next batch sent
    /// carries it, even when it has no rows, so rejected input counts as read too).
    pub fn advance(&mut self, stream: &str, pos: u64) {
        if self.positions.0.get(stream) != Some(&pos) {
            self.positions.advance(stream, pos);
            self.positions_changed = true;
        }
    }

    /// Records the source's watermark after the rows read so far (the next batch carries
    /// it).
    pub fn set_watermark(&mut self, watermark: Option<i64>) {
        if watermark > self.watermark {
            self.watermark = watermark;
            self.event_times_changed = true;
        }
    }

    /// Records the largest event time admitted from `stream` (the next batch's positions
    /// carry it: see `Positions::advance_event_time`).
    pub fn set_event_time(&mut self, stream: &str, us: i64) {
        match self.event_times.get_mut(stream) {
            Some(t) if *t >= us => return,
            Some(t) => *t = us,
            None => {
                self.event_times.insert(stream.to_string(), us);
            }
        }
        self.event_times_changed = true;
    }

    /// Sends a batch to the next worker, waiting while its buffer is full. Returns false
    /// when the dataflow no longer reads this source.
    pub fn send(&mut self, batch: Vec<Row>) -> bool {
        if batch.is_empty() && !self.positions_changed && !self.event_times_changed {
            return true;
        }
        self.positions_changed = false;
        if std::mem::take(&mut self.event_times_changed) {
            for (stream, us) in &self.event_times {
                self.positions.advance_event_time(stream, *us);
            }
            if let Some(w) = self.watermark {
                self.positions.advance_watermark(w);
            }
        }
        let n = batch.len() as u64;
        // Runs of batches to each worker in turn: a checkpointed feed's batches enter in
        // order, so a worker waits for the other's run before its own (longer runs, fewer
        // waits; the workers still share the rows evenly).
        let i = (self.next / BATCH_RUN) % self.senders.len();
        self.next = self.next.wrapping_add(1);
        let ok = self.senders[i]
            .send(SourceBatch {
                rows: batch,
                positions: self.positions.clone(),
                seq: Some(self.seq),
                watermark: self.watermark,
            })
            .is_ok();
        self.seq += 1;
        if let Some(t) = self.wake.get(i) {
            t.unpark();
        }
        if ok {
            self.rows.fetch_add(n, Ordering::Relaxed);
        }
        ok
    }

    /// Whether any worker still reads this source.
    pub fn alive(&self) -> bool {
        self.senders.iter().any(|s| {
            // A bounded channel reports disconnection through `send_timeout` only when it
            // would block; probe with an empty batch that workers ignore.
            !matches!(
                s.try_send(SourceBatch::default()),
                Err(crossbeam_channel::TrySendError::Disconnected(_))
            )
        })
    }
}
