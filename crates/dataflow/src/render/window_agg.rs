//! Windowed aggregation: a `GROUP BY` whose key holds an event-time column (the
//! `window_start`/`window_end` of `TUMBLE`/`HOP` over a source with a `WATERMARK`).
//!
//! Once the watermark shows that no later row can reach a group (its event-time key is
//! below the watermark minus the key's lag), the group is *closed*: its state is dropped.
//! Without `EMIT ON WINDOW CLOSE` the operator emits each group's new result whenever it
//! changes, like `reduce`, and a closed group's last result simply stays. With it, a group
//! emits nothing while open and its final result once, when it closes: append-only output.
//!
//! A change that reaches a closed group (a reference-table update re-enriching old events,
//! say) cannot be applied: it is recorded in `rampart_late_events` and skipped. In a view
//! with a retention that reads retained views, retractions of closed groups' rows are
//! those views' expiry and are skipped without a record.
//!
//! State: per open group, its distinct aggregate inputs with multiplicities (and, without
//! EOWC, the result last emitted). Nothing is kept for closed groups.

use std::collections::BTreeMap;

use foldhash::{HashMap, HashMapExt};

use differential_dataflow::Hashable;
use rampart_plan::Aggregate;
use rampart_repr::{Datum, ErrorLog, Row};
use timely::dataflow::channels::pact::Exchange;

use super::reduce::compute;
use super::watermark::{broadcast_watermark, in_time_order, Watermark};
use super::Rows;
use crate::{Diff, Time};

/// How a windowed aggregate decides that a group is closed.
#[derive(Debug, Clone)]
pub(super) struct WindowClose {
    /// `(key column, lag)`: the group is closed once the column's timestamp is below the
    /// watermark minus the lag.
    pub keys: Vec<(usize, i64)>,
    /// `EMIT ON WINDOW CLOSE`.
    pub emit_on_close: bool,
    /// Skip retractions that reach closed groups without recording them: the view reads
    /// a retained view, whose expiry retracts rows long after their windows closed.
    pub skip_late_retractions: bool,
}

/// A (group key, aggregate inputs) change.
type KeyedUpdate = ((Row, Row), Diff);

struct Group {
    /// Distinct aggregate inputs (one datum per aggregate) and their multiplicities.
    values: BTreeMap<Row, Diff>,
    /// The result last emitted (without EOWC).
    emitted: Option<Row>,
}

/// Aggregates `keyed` (group key, aggregate inputs) per group, closing groups with the
/// watermark `watermark`.
pub(super) fn render_windowed_reduce<'s>(
    keyed: differential_dataflow::VecCollection<'s, Time, (Row, Row), Diff>,
    watermark: &Watermark<'s>,
    aggregates: Vec<Aggregate>,
    close: WindowClose,
    late: ErrorLog,
    view: String,
) -> Rows<'s> {
    let by_key = Exchange::new(|((k, _), _, _): &((Row, Row), Time, Diff)| k.hashed());
    let mut groups: HashMap<Row, Group> = HashMap::new();
    let mut by_close: BTreeMap<i64, Vec<Row>> = BTreeMap::new();
    let mut current = i64::MIN;
    let close_at = move |key: &Row| -> Option<i64> {
        close
            .keys
            .iter()
            .filter_map(|(i, lag)| match key.get(*i) {
                Some(Datum::Timestamp(v)) => Some(v.saturating_add(*lag)),
                _ => None,
            })
            .min()
    };
    let eowc = close.emit_on_close;
    let skip_late_retractions = close.skip_late_retractions;
    in_time_order(
        keyed.inner,
        by_key,
        broadcast_watermark(watermark),
        "WindowedReduce",
        move |t, updates: Vec<KeyedUpdate>, w, out| {
            let mut dirty: Vec<Row> = Vec::new();
            for ((key, vals), d) in updates {
                let closes = close_at(&key);
                if closes.is_some_and(|c| c < current) {
                    if d < 0 && skip_late_retractions {
                        continue;
                    }
                    late.record(
                        &view,
                        "window",
                        None,
                        &format!("{key:?}"),
                        format!(
                            "a change to group {key:?} arrived after the watermark ({current} µs) closed its window; it was not applied"
                        ),
                    );
                    continue;
                }
                let group = groups.entry(key.clone()).or_insert_with(|| {
                    if let Some(c) = closes {
                        by_close.entry(c).or_default().push(key.clone());
                    }
                    Group {
                        values: BTreeMap::new(),
                        emitted: None,
                    }
                });
                let n = group.values.entry(vals.clone()).or_insert(0);
                *n += d;
                if *n == 0 {
                    group.values.remove(&vals);
                }
                dirty.push(key);
            }
            dirty.sort();
            dirty.dedup();
            for key in dirty {
                let Some(group) = groups.get_mut(&key) else { continue };
                if !eowc {
                    let result = (!group.values.is_empty()).then(|| result_row(&key, group, &aggregates));
                    if result != group.emitted {
                        if let Some(old) = group.emitted.take() {
                            out.push((old, t, -1));
                        }
                        if let Some(new) = &result {
                            out.push((new.clone(), t, 1));
                        }
                        group.emitted = result;
                    }
                }
                if group.values.is_empty() {
                    groups.remove(&key);
                }
            }
            let w = w.unwrap_or(i64::MIN);
            if w > current {
                current = w;
                let open = by_close.split_off(&current);
                let closed = std::mem::replace(&mut by_close, open);
                for key in closed.into_values().flatten() {
                    if let Some(group) = groups.remove(&key) {
                        if eowc && !group.values.is_empty() {
                            out.push((result_row(&key, &group, &aggregates), t, 1));
                        }
                    }
                }
            }
        },
    )
}

fn result_row(key: &Row, group: &Group, aggregates: &[Aggregate]) -> Row {
    let input: Vec<(&Row, Diff)> = group.values.iter().map(|(r, d)| (r, *d)).collect();
    key.iter()
        .cloned()
        .chain(aggregates.iter().enumerate().map(|(i, a)| compute(a, i, &input)))
        .collect()
}
