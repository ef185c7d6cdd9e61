//! Left joins on equality keys without a residual predicate (enrichment against a
//! reference table: `LEFT JOIN asset_taxonomy at ON ne.target_resource = at.host_id`), as
//! one operator that looks each row up by key.
//!
//! Both sides are spread over the workers by key. Per key, the operator keeps the left
//! rows and the right rows. At each time, in time order: a left change is paired with the
//! right rows of its key, or padded with NULLs when there are none; then a right change is
//! paired with the left rows of its key (this time's included), and a key that gains its
//! first right row or loses its last one retracts or restores the padded left rows. A left
//! row with a NULL in its key never matches and is passed through padded, unstored.
//!
//! Built from differential operators the same join needs the left rows arranged, a second
//! join against the right side's distinct keys, and a copy of every left row minus the
//! matched ones; every matched row then leaves as three updates that cancel only where the
//! result is next consolidated. Here each change leaves as exactly the updates it causes.
//!
//! State: every left row and every right row, by key.

use std::collections::BTreeMap;

use foldhash::{HashMap, HashMapExt};

use differential_dataflow::{AsCollection, Hashable, VecCollection};
use rampart_repr::{Datum, Row};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;

use super::row_bag::{update_exact, RowBag};
use super::watermark::{downgrade, lower_of, pop_complete};
use super::{joined, padded, Rows};
use crate::{Diff, Time};

/// A row under its join key, with time and multiplicity.
type Keyed = ((Row, Row), Time, Diff);

/// Changes waiting for their time: (left changes, right changes), each `(key, row, diff)`.
type PendingAt = (Vec<(Row, Row, Diff)>, Vec<(Row, Row, Diff)>);

/// `left LEFT JOIN right` on keyed inputs (`(key, row)`; left rows whose key has a NULL
/// included, right ones not); `right_width` NULLs pad an unmatched left row.
pub(super) fn render_lookup_left_join<'s>(
    left: VecCollection<'s, Time, (Row, Row), Diff>,
    right: VecCollection<'s, Time, (Row, Row), Diff>,
    right_width: usize,
) -> Rows<'s> {
    let by_key_left = Exchange::new(|((k, _), _, _): &Keyed| k.hashed());
    let by_key_right = Exchange::new(|((k, _), _, _): &Keyed| k.hashed());
    left.inner
        .binary_frontier::<_, CapacityContainerBuilder<Vec<(Row, Time, Diff)>>, _, _, _, _>(
            right.inner,
            by_key_left,
            by_key_right,
            "LookupLeftJoin",
            move |cap, _info| {
                let mut cap = Some(cap);
                let mut pending: BTreeMap<Time, PendingAt> = BTreeMap::new();
                let mut lefts: HashMap<Row, RowBag> = HashMap::new();
                let mut rights: HashMap<Row, Vec<(Row, Diff)>> = HashMap::new();
                let pad = move |l: &Row| padded(l, right_width);
                let pair = joined;
                move |(left_in, left_frontier), (right_in, right_frontier), output| {
                    left_in.for_each(|_cap, batch| {
                        for ((k, row), t, d) in batch.drain(..) {
                            pending.entry(t).or_default().0.push((k, row, d));
                        }
                    });
                    right_in.for_each(|_cap, batch| {
                        for ((k, row), t, d) in batch.drain(..) {
                            pending.entry(t).or_default().1.push((k, row, d));
                        }
                    });
                    let Some(held) = cap.as_mut() else { return };
                    while let Some((t, (left_changes, right_changes))) =
                        pop_complete(&mut pending, left_frontier, right_frontier)
                    {
                        let mut out: Vec<(Row, Time, Diff)> = Vec::new();
                        // Left changes against the right rows before this time ...
                        for (k, row, d) in left_changes {
                            if k.iter().any(Datum::is_null) {
                                out.push((pad(&row), t, d));
                                continue;
                            }
                            match rights.get(&k) {
                                Some(rs) if !rs.is_empty() => {
                                    out.extend(rs.iter().map(|(r, dr)| (pair(&row, r), t, d * dr)))
                                }
                                _ => out.push((pad(&row), t, d)),
                            }
                            let bag = lefts.entry(k.clone()).or_default();
                            bag.update(row, d);
                            if bag.is_empty() {
                                lefts.remove(&k);
                            }
                        }
                        // ... then right changes against the left rows, this time's included.
                        for (k, row, d) in right_changes {
                            let rs = rights.entry(k.clone()).or_default();
                            let before = !rs.is_empty();
                            update_exact(rs, row.clone(), d);
                            let after = !rs.is_empty();
                            if !after {
                                rights.remove(&k);
                            }
                            let Some(bag) = lefts.get(&k) else { continue };
                            for (l, n) in &bag.rows {
                                out.push((pair(l, &row), t, d * n));
                                if before && !after {
                                    out.push((pad(l), t, *n));
                                } else if !before && after {
                                    out.push((pad(l), t, -n));
                                }
                            }
                        }
                        if !out.is_empty() {
                            let at = held.delayed(&t);
                            output.session(&at).give_container(&mut out);
                        }
                    }
                    downgrade(&mut cap, lower_of(left_frontier, right_frontier));
                }
            },
        )
        .as_collection()
}
