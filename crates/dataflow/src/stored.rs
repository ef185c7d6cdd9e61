//! [`Stored`]: where a table's or materialized view's contents live on a worker: a
//! differential arrangement (tables, views with a retention) or a [`RowLog`] (other views),
//! behind the four things the worker does with them: read the upper, compact, answer a
//! peek, and hand them to a later dataflow.

use differential_dataflow::operators::arrange::TraceAgent;
use differential_dataflow::trace::cursor::cursor_list;
use differential_dataflow::trace::implementations::KeySpine;
use differential_dataflow::trace::{Cursor, TraceReader};
use rampart_plan::{Plan, Retention};
use rampart_repr::Row;
use timely::dataflow::Scope;
use timely::progress::frontier::{Antichain, AntichainRef};

use crate::render::ViewSource;
use crate::row_log::{Placement, RowLog};
use crate::{Diff, Time};

/// A differential trace of rows keyed by the whole row.
pub(crate) type Trace = TraceAgent<KeySpine<Row, Time, Diff>>;

/// How a materialized view keeps its rows, decided from its plan: what the workers build and
/// what `EXPLAIN CREATE MATERIALIZED VIEW` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewStorage {
    /// A view with a retention (a steady stream of expiries): an arrangement, whose merges
    /// spread the work of dropping them.
    Arranged,
    /// Any other view: a [`RowLog`] per worker, filled as the [`Placement`] says.
    Log(Placement),
}

/// The retention of a view whose plan is `plan` (a `Retain` at its root).
pub(crate) fn retention_of(plan: &Plan) -> Option<Retention> {
    match plan {
        Plan::Retain { retention, .. } => Some(*retention),
        _ => None,
    }
}

impl ViewStorage {
    /// The storage of a view with `plan`.
    pub fn of(plan: &Plan) -> ViewStorage {
        if retention_of(plan).is_some() {
            ViewStorage::Arranged
        } else if plan.retracts_where_it_inserted() {
            ViewStorage::Log(Placement::InPlace)
        } else {
            ViewStorage::Log(Placement::ByRow)
        }
    }

    /// One line for `EXPLAIN`.
    pub fn describe(self) -> &'static str {
        match self {
            ViewStorage::Arranged => {
                "Materialized view: rows in an arrangement by row (it has a retention: expired rows are dropped as the watermark passes)"
            }
            ViewStorage::Log(Placement::InPlace) => {
                "Materialized view: rows in a log of updates, each kept on the worker that produced it (its plan retracts a row where it inserted it)"
            }
            ViewStorage::Log(Placement::ByRow) => {
                "Materialized view: rows in a log of updates, on the worker each row hashes to (consolidated once retractions reach a third of it)"
            }
        }
    }
}

/// A table's or view's contents on one worker.
pub(crate) enum Stored {
    /// An arrangement (tables, and views with a retention).
    Arranged(Trace),
    /// A log of updates (views without a retention).
    Log(RowLog),
}

impl Stored {
    /// Every update from now on has a time at or after this (`Time::MAX`: closed).
    pub(crate) fn upper(&mut self) -> Time {
        match self {
            Stored::Arranged(t) => {
                let mut upper = Antichain::new();
                t.read_upper(&mut upper);
                upper.first().copied().unwrap_or(Time::MAX)
            }
            Stored::Log(l) => l.upper(),
        }
    }

    /// Whether a read at `at` is still possible (not compacted away).
    pub(crate) fn readable_at(&mut self, at: Time) -> bool {
        match self {
            Stored::Arranged(t) => t.get_logical_compaction().less_equal(&at),
            Stored::Log(l) => l.since() <= at,
        }
    }

    /// Allows times before `since` to be merged into it.
    pub(crate) fn compact(&mut self, since: Time) {
        match self {
            Stored::Arranged(t) => {
                t.set_logical_compaction(AntichainRef::new(&[since]));
                t.set_physical_compaction(AntichainRef::new(&[since]));
            }
            Stored::Log(l) => l.compact(since),
        }
    }

    /// The rows as of `at`, once per unit of multiplicity; `None` if they cannot be read
    /// right now (try again).
    pub(crate) fn rows_at(&mut self, at: Time) -> Option<Vec<Row>> {
        match self {
            Stored::Arranged(t) => read_trace(t, at),
            Stored::Log(l) => Some(l.rows_at(at)),
        }
    }

    /// The contents for a dataflow being built in `scope`.
    pub(crate) fn import<'s>(&mut self, scope: Scope<'s, Time>) -> ViewSource<'s> {
        match self {
            Stored::Arranged(t) => ViewSource::Arranged(t.import(scope)),
            Stored::Log(l) => ViewSource::Log(l.clone()),
        }
    }
}

/// The rows of `trace` as of `at`: every update at a time at most `at`, once per unit of
/// multiplicity. `None` if the trace cannot be read through its upper right now.
fn read_trace(trace: &mut Trace, at: Time) -> Option<Vec<Row>> {
    let mut rows = Vec::new();
    let mut upper = Antichain::new();
    trace.read_upper(&mut upper);
    let batches = trace.batches_through(upper.borrow())?;
    let (mut cursor, storage) = cursor_list(batches);
    while cursor.key_valid(&storage) {
        while cursor.val_valid(&storage) {
            let mut count: Diff = 0;
            cursor.map_times(&storage, |t, d| {
                if *t <= at {
                    count += *d;
                }
            });
            for _ in 0..count.max(0) {
                rows.push(cursor.key(&storage).clone());
            }
            cursor.step_val(&storage);
        }
        cursor.step_key(&storage);
    }
    Some(rows)
}
