//! Retention of a materialized view (`WITH (retention = '1 hour')`): bounded state for
//! views that would otherwise keep every event.
//!
//! [`render_retain`] keeps each row until the watermark passes its event time plus the
//! retention, then retracts it: the view holds the last stretch of event time, and the
//! operators of its own dataflow (enrichment joins, say) free the row's state when the
//! retraction reaches them. A row that arrives already past its expiry (a change to an old
//! row) is not let in, and neither is a later change to it, so the view is always exactly
//! its query's rows whose event time is within the retention of the watermark. Rows with a
//! NULL event time never expire.
//!
//! Those expiry retractions are not changes of the data, and a view without retention that
//! reads a retained one (an alert view over `enriched_events`) must keep what it derived
//! from expired rows: [`drop_expiry`] removes them where such a view imports it. They are
//! recognisable exactly: a retraction of a row whose expiry is at or below the watermark
//! can only be the expiry itself, because the retained view lets no change of an expired
//! row through. "The watermark" in both rules is the one as of the previous time stepped:
//! rows arriving at a time are only promised to be at or above that one (a replay reads
//! many batches in one millisecond, and the watermark at the end of it may be far past the
//! first rows), so a view never drops a source row on arrival, and the same rows expire
//! however the input was batched. A view with retention that reads a retained one sees the
//! expiries, so its own state is freed too.
//!
//! Expiry retractions are emitted one millisecond (of processing time) after the
//! watermark step that causes them.
//!
//! State: each live row with an event time, by expiry, on the worker that received it.

use std::collections::BTreeMap;

use differential_dataflow::consolidation::consolidate;
use rampart_plan::Retention;
use rampart_repr::Row;
use timely::dataflow::channels::pact::Pipeline;

use super::watermark::{broadcast_watermark, in_time_order, Watermark};
use super::Rows;
use crate::command::ExpiryFloors;
use crate::{Diff, Time};

/// Keeps `input`'s rows until `watermark` passes their expiry, then retracts them.
/// `resumed`: the watermark a restored view had reached, whose expired rows stay out.
pub(super) fn render_retain<'s>(
    input: Rows<'s>,
    watermark: &Watermark<'s>,
    retention: Retention,
    resumed: Option<i64>,
) -> Rows<'s> {
    let mut live: BTreeMap<i64, Vec<(Row, Diff)>> = BTreeMap::new();
    // The watermark as of the last time stepped: rows arriving now were promised to be
    // at or above it (the watermark at this very time may already be past rows that came
    // in the same batch), so only a row older than this is a change to an expired one.
    let mut current = resumed.unwrap_or(i64::MIN);
    in_time_order(
        input.inner,
        Pipeline,
        broadcast_watermark(watermark),
        "Retain",
        move |t, updates: Vec<(Row, Diff)>, w, out| {
            for (row, d) in updates {
                match retention.expires(&row) {
                    Some(e) if e <= current => {} // expired before: never part of the view again
                    Some(e) => {
                        live.entry(e).or_default().push((row.clone(), d));
                        out.push((row, t, d));
                    }
                    None => out.push((row, t, d)),
                }
            }
            let w = w.unwrap_or(i64::MIN);
            if w > current {
                current = w;
                let still_live = live.split_off(&w.saturating_add(1));
                for (_, mut rows) in std::mem::replace(&mut live, still_live) {
                    consolidate(&mut rows);
                    // One millisecond after the watermark moved: operators downstream
                    // have closed the windows and dropped the interval-join rows that
                    // watermark closes by then, so they skip these instead of applying.
                    out.extend(rows.into_iter().map(|(row, d)| (row, t + 1, -d)));
                }
            }
        },
    )
}

/// How a view without retention that reads a retained view tells which of that view's
/// retractions are expiries it must not apply.
#[derive(Clone)]
pub(crate) enum ExpiryCut {
    /// At creation: the imported snapshot passes whole (rows that had expired before the
    /// import cancel out), later expiries are dropped. The highest watermark whose
    /// expiries the snapshot already holds (the watermark as of 2 ms before the snapshot's
    /// upper: expiry comes 1 ms after the watermark step) is reported under `view`, for the
    /// catalog.
    Snapshot { report: ExpiryFloors, view: String },
    /// Restoring with that recorded floor: the replay holds every row again, so the expiry
    /// of a row expiring at or below the floor (it had left before this view was created)
    /// is applied, later expiries are dropped. The view comes back as it was.
    Floor(i64),
    /// Restoring without a recorded floor (a view created before floors were recorded, or
    /// a crash between the CREATE and its floor record): every expiry is dropped, so the
    /// view also keeps what it derives from rows that expired before it was created.
    Replay,
}

/// `input` (rows read from a view with `retention`, whose watermark is `watermark`)
/// without the retractions by which that view's rows expire (see [`ExpiryCut`]).
pub(super) fn drop_expiry<'s>(
    input: Rows<'s>,
    watermark: &Watermark<'s>,
    retention: Retention,
    snapshot_upper: Time,
    cut: ExpiryCut,
) -> Rows<'s> {
    // As in `render_retain`: the watermark as of the last time stepped. Expiry comes one
    // millisecond after the step that passed the row, so it is at or below this.
    let mut current = i64::MIN;
    in_time_order(
        input.inner,
        Pipeline,
        broadcast_watermark(watermark),
        "DropExpiry",
        move |t, updates: Vec<(Row, Diff)>, w, out| {
            let before = current;
            let keep = |row: &Row, d: Diff| {
                if d > 0 {
                    return true;
                }
                let Some(e) = retention.expires(row) else { return true };
                // A retraction of a row whose expiry is above the watermark is a change.
                e > before
                    || match &cut {
                        ExpiryCut::Snapshot { .. } => t < snapshot_upper,
                        ExpiryCut::Floor(floor) => e <= *floor,
                        ExpiryCut::Replay => false,
                    }
            };
            out.extend(
                updates
                    .into_iter()
                    .filter(|(row, d)| keep(row, *d))
                    .map(|(row, d)| (row, t, d)),
            );
            if let (ExpiryCut::Snapshot { report, view }, Some(w)) = (&cut, w) {
                if t.saturating_add(2) <= snapshot_upper {
                    report.lock().insert(view.clone(), w);
                }
            }
            current = current.max(w.unwrap_or(i64::MIN));
        },
    )
}
