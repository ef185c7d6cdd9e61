//! Where dataflow output leaves timely: [`ViewStore`]s that serve materialized views to
//! queries at a consistent time, and [`SinkWriter`]s that receive sink changes.
//!
//! Invariant: every store applies updates only up to the registry's *sealed* time, the
//! minimum frontier over every shard of every store. A reader locks the shards it reads,
//! brings each to the same sealed time, and so sees all views as of one instant.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use rampart_repr::Row;

use crate::{Diff, Time};

/// One worker's part of a view.
#[derive(Default)]
pub struct Shard {
    pending: Vec<(Row, Time, Diff)>,
    state: HashMap<Row, Diff>,
    upper: Time,
}

impl Shard {
    fn apply_below(&mut self, sealed: Time) {
        if self.pending.is_empty() {
            return;
        }
        let mut keep = Vec::new();
        for (row, t, d) in self.pending.drain(..) {
            if t < sealed {
                match self.state.entry(row) {
                    Entry::Occupied(mut o) => {
                        *o.get_mut() += d;
                        if *o.get() == 0 {
                            o.remove();
                        }
                    }
                    Entry::Vacant(v) => {
                        if d != 0 {
                            v.insert(d);
                        }
                    }
                }
            } else {
                keep.push((row, t, d));
            }
        }
        self.pending = keep;
    }
}

/// A materialized view's contents, one shard per worker.
pub struct ViewStore {
    shards: Vec<Mutex<Shard>>,
    registry: Arc<StoreRegistry>,
}

fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ViewStore {
    /// A store with one shard per worker, registered so that it takes part in sealing.
    pub fn new(workers: usize, registry: &Arc<StoreRegistry>) -> Arc<Self> {
        let store = Arc::new(ViewStore {
            shards: (0..workers).map(|_| Mutex::new(Shard::default())).collect(),
            registry: registry.clone(),
        });
        registry.register(&store);
        store
    }

    /// Called by worker `shard`'s capture operator with completed updates and its frontier.
    pub fn push(&self, shard: usize, updates: &mut Vec<(Row, Time, Diff)>, upper: Time) {
        let sealed = self.registry.sealed();
        let mut s = lock(&self.shards[shard]);
        s.pending.append(updates);
        s.upper = s.upper.max(upper);
        s.apply_below(sealed);
    }

    fn upper(&self) -> Time {
        self.shards.iter().map(|s| lock(s).upper).min().unwrap_or(0)
    }

    /// The rows of several stores at one consistent time, with that time. Rows appear
    /// once per unit of multiplicity.
    pub fn read_consistent(stores: &[Arc<ViewStore>]) -> (Vec<Vec<Row>>, Time) {
        let registry = match stores.first() {
            Some(s) => s.registry.clone(),
            None => return (vec![], 0),
        };
        let mut guards: Vec<Vec<MutexGuard<'_, Shard>>> = Vec::new();
        for s in stores {
            guards.push(s.shards.iter().map(lock).collect());
        }
        let sealed = registry.sealed();
        let mut out = Vec::new();
        for shards in guards.iter_mut() {
            let mut rows = Vec::new();
            for shard in shards.iter_mut() {
                shard.apply_below(sealed);
                for (row, count) in &shard.state {
                    for _ in 0..(*count).max(0) {
                        rows.push(row.clone());
                    }
                }
            }
            out.push(rows);
        }
        (out, sealed)
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
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.reseal() >= t {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

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
    fn sync(&self) -> Result<(), String> {
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
    fn take_error(&self) -> Option<String> {
        None
    }

    /// Cuts the output back to `len` bytes (see [`SinkWriter::output_len`]).
    fn cut_back(&self, _len: u64) -> Result<(), String> {
        Ok(())
    }
}
