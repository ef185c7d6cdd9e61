//! Where dataflow output leaves timely: [`ViewStore`]s that track how far each
//! materialized view (or table) is complete, so that queries read every view at one
//! consistent time, and [`SinkWriter`]s that receive sink changes.
//!
//! The contents themselves are not copied out: a query *peeks* into the workers'
//! arrangements ([`crate::Engine::peek`]) at the registry's *sealed* time, the minimum
//! frontier over every shard of every store, and so sees all views as of one instant.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use rampart_repr::{Delivered, Error, Positions, Row, SinkWriter};

use crate::{Diff, Time};

/// How far a materialized view or table is complete, one frontier per worker.
pub struct ViewStore {
    uppers: Vec<AtomicU64>,
}

impl ViewStore {
    /// A store with one shard per worker, registered so that it takes part in sealing.
    pub fn new(workers: usize, registry: &Arc<StoreRegistry>) -> Arc<Self> {
        let store = Arc::new(ViewStore {
            uppers: (0..workers).map(|_| AtomicU64::new(0)).collect(),
        });
        registry.register(&store);
        store
    }

    /// Called by worker `shard`'s capture operator with its input frontier: every update
    /// at a time before `upper` has arrived.
    pub fn advance(&self, shard: usize, upper: Time) {
        if let Some(u) = self.uppers.get(shard) {
            u.fetch_max(upper, Ordering::AcqRel);
        }
    }

    /// The time before which every worker's updates are complete (the lowest shard's).
    pub fn upper(&self) -> Time {
        self.uppers.iter().map(|u| u.load(Ordering::Acquire)).min().unwrap_or(0)
    }
}

/// Every live store, for computing the sealed time.
#[derive(Default)]
pub struct StoreRegistry {
    stores: Mutex<Vec<Weak<ViewStore>>>,
    sealed: AtomicU64,
}

impl StoreRegistry {
    /// An empty registry.
    pub fn new() -> Arc<Self> {
        Arc::new(StoreRegistry::default())
    }

    fn register(&self, store: &Arc<ViewStore>) {
        self.stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::downgrade(store));
    }

    /// The time below which every store's updates are complete and may be applied.
    pub fn sealed(&self) -> Time {
        self.sealed.load(Ordering::Acquire)
    }

    /// Recomputes the sealed time as the minimum upper over all live stores. Stores that
    /// were dropped are forgotten. Returns the new sealed time.
    pub fn reseal(&self) -> Time {
        let mut stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        stores.retain(|w| w.strong_count() > 0);
        let min = stores.iter().filter_map(Weak::upgrade).map(|s| s.upper()).min();
        if let Some(m) = min {
            self.sealed.fetch_max(m, Ordering::AcqRel);
        }
        self.sealed()
    }

    /// Waits (polling) until the sealed time reaches `t` or `timeout` passes. Returns
    /// whether it did.
    pub fn wait_sealed(&self, t: Time, timeout: std::time::Duration) -> bool {
        poll_until(timeout, || self.reseal() >= t)
    }
}

/// Polls `done` every millisecond until it holds (true) or `timeout` passes (false).
fn poll_until(timeout: std::time::Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// A sink writer that remembers how far the sink's input has progressed (the last
/// [`SinkWriter::progress`]), so a statement can wait until a new sink has taken in
/// everything before a time. Every other call goes to the writer it wraps.
pub struct WatchedSink {
    inner: Arc<dyn SinkWriter>,
    upper: AtomicU64,
}

impl WatchedSink {
    /// Watches `inner`.
    pub fn new(inner: Arc<dyn SinkWriter>) -> Self {
        WatchedSink {
            inner,
            upper: AtomicU64::new(0),
        }
    }

    /// The time before which the sink has written every change.
    pub fn upper(&self) -> Time {
        self.upper.load(Ordering::Acquire)
    }

    /// Waits (polling) until the sink's input has progressed past `t` or `timeout` passes.
    /// Returns whether it did.
    pub fn wait_past(&self, t: Time, timeout: std::time::Duration) -> bool {
        poll_until(timeout, || self.upper.load(Ordering::Acquire) > t)
    }
}

impl SinkWriter for WatchedSink {
    fn write(&self, updates: &[(Row, Time, Diff)]) {
        self.inner.write(updates)
    }

    fn progress(&self, upper: Time) {
        self.inner.progress(upper);
        self.upper.fetch_max(upper, Ordering::AcqRel);
    }

    fn output_len(&self) -> Option<u64> {
        self.inner.output_len()
    }

    fn sync(&self) -> Result<(), Error> {
        self.inner.sync()
    }

    fn acknowledged_writes(&self) -> Option<u64> {
        self.inner.acknowledged_writes()
    }

    fn take_error(&self) -> Option<Error> {
        self.inner.take_error()
    }

    fn cut_back(&self, len: u64) -> Result<(), Error> {
        self.inner.cut_back(len)
    }

    fn output_positions(&self, write: u64) -> Option<Positions> {
        self.inner.output_positions(write)
    }

    fn delivered_since(&self, recorded: &Positions) -> Result<Delivered, Error> {
        self.inner.delivered_since(recorded)
    }
}
