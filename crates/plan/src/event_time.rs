//! Event-time columns: which output columns of a plan node stay above the watermark.
//!
//! A watermark `W` (as of some processing time) promises that rows arriving later have an
//! event time of at least `W` (later rows go to `rampart_late_events`). A column has *lag*
//! `L` when every row a node emits later has a value of at least `W - L` in it. Window
//! operators close a group once its event-time key is below `W - L`: no later row can
//! reach it, so its state can be freed (and, with `EMIT ON WINDOW CLOSE`, its final
//! result emitted).
//!
//! Lags flow bottom-up: a source's `WATERMARK` column has lag 0; `col ± INTERVAL`,
//! `CAST(col AS TIMESTAMP)` and `date_bin(size, col)` (the start of `TUMBLE`/`HOP`
//! windows) shift it; `UNION ALL` keeps a column's largest lag when every branch has one;
//! a join with a table keeps the stream side's lags (but a join with a stream that has no
//! event time keeps none: its new rows can pair with old ones); a join of two streams keeps a lag only
//! where its condition bounds one side's time by the other's (`b.t > a.t AND b.t < a.t +
//! INTERVAL`); `GROUP BY` keeps its keys' lags.
//!
//! Changes that do not come from new source rows (a reference table updated, a temporal
//! filter expiring rows) can carry older event times; operators that rely on lags treat
//! them as late.

use std::collections::BTreeMap;

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};

use crate::{JoinKind, Plan};

/// Per output column, its lag in microseconds behind the watermark, or `None` when the
/// column is not bounded by any watermark.
pub type Lags = Vec<Option<i64>>;

/// Whether `plan` reads a stream: a catalog object for which `inputs` has lags (possibly
/// all `None`: a stream without event time). Tables have none.
pub fn reads_stream(plan: &Plan, inputs: &dyn Fn(&str) -> Option<Lags>) -> bool {
    plan.dependencies().iter().any(|d| inputs(d).is_some())
}

/// The lags of `plan`'s output columns, given the lags of each catalog object it reads
/// (`inputs` returns `None` for tables, and all-`None` lags for streams without event-time
/// columns).
pub fn plan_lags(plan: &Plan, inputs: &dyn Fn(&str) -> Option<Lags>) -> Lags {
    match plan {
        Plan::Get { name, desc } => {
            let mut lags = inputs(name).unwrap_or_default();
            lags.resize(desc.columns.len(), None);
            lags
        }
        Plan::Constant { rows } => vec![None; rows.first().map(|r| r.len()).unwrap_or(0)],
        Plan::Map {
            input,
            exprs,
            input_schema,
        } => {
            let lags = plan_lags(input, inputs);
            exprs.iter().map(|e| expr_lag(e, input_schema, &lags)).collect()
        }
        // Retention's expiry retracts old rows; readers either do not see those retractions
        // (views without retention) or skip them where state is already gone.
        Plan::Filter { input, .. } | Plan::Distinct { input } | Plan::Retain { input, .. } => plan_lags(input, inputs),
        // Expiring rows retract long after their event time.
        Plan::TemporalFilter { input, .. } => vec![None; plan_lags(input, inputs).len()],
        Plan::Union { inputs: branches } => {
            let all: Vec<Lags> = branches.iter().map(|b| plan_lags(b, inputs)).collect();
            let width = all.first().map(Vec::len).unwrap_or(0);
            (0..width)
                .map(|i| {
                    all.iter()
                        .map(|l| l.get(i).copied().flatten())
                        .try_fold(i64::MIN, |acc, l| l.map(|l| acc.max(l)))
                })
                .collect()
        }
        Plan::Join {
            left,
            right,
            kind,
            residual,
            joined_schema,
            ..
        } => {
            let (l, r) = (plan_lags(left, inputs), plan_lags(right, inputs));
            let streams = (reads_stream(left, inputs), reads_stream(right, inputs));
            join_lags(&l, &r, streams, *kind, residual.as_ref(), joined_schema)
        }
        Plan::Reduce {
            input,
            group_exprs,
            aggregates,
            input_schema,
            ..
        } => {
            let lags = plan_lags(input, inputs);
            let mut out: Lags = group_exprs.iter().map(|e| expr_lag(e, input_schema, &lags)).collect();
            out.extend(aggregates.iter().map(|_| None));
            out
        }
        Plan::Window { input, funcs, .. } => {
            // A rank changes whenever its partition does: no column is bounded.
            vec![None; plan_lags(input, inputs).len() + funcs.len()]
        }
    }
}

/// Whether any column of `lags` is bounded by a watermark.
pub fn has_event_time(lags: &Lags) -> bool {
    lags.iter().any(Option::is_some)
}

/// The lag of `expr` evaluated on rows whose columns have `lags` (in `schema`'s order).
pub fn expr_lag(expr: &Expr, schema: &DFSchema, lags: &Lags) -> Option<i64> {
    match expr {
        Expr::Column(c) => schema
            .index_of_column(c)
            .ok()
            .and_then(|i| lags.get(i).copied().flatten()),
        Expr::Alias(a) => expr_lag(&a.expr, schema, lags),
        Expr::Cast(c) if c.field.data_type().is_temporal() => expr_lag(&c.expr, schema, lags),
        Expr::TryCast(c) if c.field.data_type().is_temporal() => expr_lag(&c.expr, schema, lags),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let shift = interval_micros(right)?;
            let lag = expr_lag(left, schema, lags)?;
            match op {
                Operator::Plus => lag.checked_sub(shift),
                Operator::Minus => lag.checked_add(shift),
                _ => None,
            }
        }
        Expr::ScalarFunction(f) if f.name() == "date_bin" && (2..=3).contains(&f.args.len()) => {
            // date_bin(size, x) is in (x - size, x]: at least x - size + 1 µs.
            let size = interval_micros(&f.args[0]).filter(|s| *s > 0)?;
            expr_lag(&f.args[1], schema, lags)?.checked_add(size - 1)
        }
        _ => None,
    }
}

/// The length of a constant interval (days count as 24 hours; months are not constant).
pub fn interval_micros(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(v, _) => match v {
            ScalarValue::IntervalMonthDayNano(Some(v)) if v.months == 0 => {
                Some(v.days as i64 * 86_400_000_000 + v.nanoseconds / 1_000)
            }
            ScalarValue::IntervalDayTime(Some(v)) => {
                Some(v.days as i64 * 86_400_000_000 + v.milliseconds as i64 * 1_000)
            }
            _ => None,
        },
        Expr::Cast(c) => interval_micros(&c.expr),
        Expr::Alias(a) => interval_micros(&a.expr),
        _ => None,
    }
}

/// One side of a join condition `side_col >= other_col + offset` (or `>`): a lower bound
/// of a column of one side by a column of the other, with columns indexed in the joined
/// row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBound {
    /// The bounded column.
    pub bounded: usize,
    /// The column bounding it.
    pub by: usize,
    /// `bounded >= by + offset` (microseconds; a strict `>` is `+ 1`).
    pub offset: i64,
}

/// The lower bounds between event-time columns in a join's residual predicate
/// (conjuncts of the form `x > y + c`, `x >= y`, `x < y + c`, ...).
pub fn time_bounds(residual: Option<&Expr>, schema: &DFSchema, lags: &Lags) -> Vec<TimeBound> {
    let mut out = Vec::new();
    let Some(residual) = residual else { return out };
    for conj in conjuncts(residual) {
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = conj else {
            continue;
        };
        let (Some((a, ca)), Some((b, cb))) = (shifted_column(left, schema), shifted_column(right, schema)) else {
            continue;
        };
        if lags.get(a).copied().flatten().is_none() || lags.get(b).copied().flatten().is_none() || a == b {
            continue;
        }
        // left = a + ca, right = b + cb.
        let bound = match op {
            // a + ca > b + cb  =>  a >= b + cb - ca + 1
            Operator::Gt => TimeBound {
                bounded: a,
                by: b,
                offset: cb - ca + 1,
            },
            Operator::GtEq => TimeBound {
                bounded: a,
                by: b,
                offset: cb - ca,
            },
            // a + ca < b + cb  =>  b >= a + ca - cb + 1
            Operator::Lt => TimeBound {
                bounded: b,
                by: a,
                offset: ca - cb + 1,
            },
            Operator::LtEq => TimeBound {
                bounded: b,
                by: a,
                offset: ca - cb,
            },
            _ => continue,
        };
        out.push(bound);
    }
    out
}

/// The time interval a join condition allows: `right.t - left.t` within `[lo, hi]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinInterval {
    /// Index of the event-time column in left rows.
    pub left_col: usize,
    /// Index of the event-time column in right rows.
    pub right_col: usize,
    /// Smallest allowed `right - left` (µs).
    pub lo: i64,
    /// Largest allowed `right - left` (µs).
    pub hi: i64,
    /// The left column's lag behind the watermark (`None`: no watermark bounds it).
    pub left_lag: Option<i64>,
    /// The right column's lag behind the watermark (`None`: no watermark bounds it).
    pub right_lag: Option<i64>,
}

impl JoinInterval {
    /// Whether watermarks bound both columns, so rows can be dropped once no later row of
    /// the other side can fall in their interval.
    pub fn frees_state(&self) -> bool {
        self.left_lag.is_some() && self.right_lag.is_some()
    }
}

/// The interval the bounds allow between a time column of each side, if they bound it from
/// both sides (see [`time_bounds`]); a pair of watermarked columns is preferred.
pub fn join_interval(
    bounds: &[TimeBound],
    left_width: usize,
    left_lags: &Lags,
    right_lags: &Lags,
) -> Option<JoinInterval> {
    let mut best: BTreeMap<(usize, usize), (Option<i64>, Option<i64>)> = BTreeMap::new();
    for b in bounds {
        let (bounded_left, by_left) = (b.bounded < left_width, b.by < left_width);
        match (bounded_left, by_left) {
            // right >= left + offset
            (false, true) => {
                let e = best.entry((b.by, b.bounded - left_width)).or_default();
                e.0 = Some(e.0.map_or(b.offset, |lo| lo.max(b.offset)));
            }
            // left >= right + offset, i.e. right <= left - offset
            (true, false) => {
                let e = best.entry((b.bounded, b.by - left_width)).or_default();
                e.1 = Some(e.1.map_or(-b.offset, |hi| hi.min(-b.offset)));
            }
            _ => {}
        }
    }
    let mut found: Vec<JoinInterval> = best
        .into_iter()
        .filter_map(|((l, r), (lo, hi))| {
            Some(JoinInterval {
                left_col: l,
                right_col: r,
                lo: lo?,
                hi: hi?,
                left_lag: left_lags.get(l).copied().flatten(),
                right_lag: right_lags.get(r).copied().flatten(),
            })
        })
        .collect();
    found.sort_by_key(|i| !i.frees_state());
    found.into_iter().next()
}

/// What of a join's residual the interval join must still test once it probes only the
/// pairs inside `interval`: the residual without its conjuncts that bound the interval's
/// two columns against each other. Those are implied: `interval` is the tightest of them
/// all, and the probe covers exactly its pairs (NULL times match nothing, as the conjunct
/// would not). Only conjuncts between plain timestamp columns, shifted by whole
/// microseconds, are left out; `None` when nothing remains.
pub fn residual_beyond_interval(
    residual: Option<&Expr>,
    schema: &DFSchema,
    interval: &JoinInterval,
    left_width: usize,
) -> Option<Expr> {
    let pair = [interval.left_col, left_width + interval.right_col];
    let implied = |conj: &Expr| {
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = conj else {
            return false;
        };
        if !matches!(op, Operator::Gt | Operator::GtEq | Operator::Lt | Operator::LtEq) {
            return false;
        }
        let timestamp_column = |e: &Expr| match exact_shifted_column(e, schema) {
            Some((i, _))
                if matches!(
                    schema.field(i).data_type(),
                    DataType::Timestamp(TimeUnit::Microsecond, _)
                ) =>
            {
                Some(i)
            }
            _ => None,
        };
        match (timestamp_column(left), timestamp_column(right)) {
            (Some(a), Some(b)) => (a == pair[0] && b == pair[1]) || (a == pair[1] && b == pair[0]),
            _ => false,
        }
    };
    conjuncts(residual?)
        .into_iter()
        .filter(|c| !implied(c))
        .cloned()
        .reduce(Expr::and)
}

/// `col`, `col + INTERVAL`, `col - INTERVAL` with an interval of whole microseconds and no
/// months, and no cast: the column's index and the shift.
fn exact_shifted_column(e: &Expr, schema: &DFSchema) -> Option<(usize, i64)> {
    match e {
        Expr::Column(c) => schema.index_of_column(c).ok().map(|i| (i, 0)),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let whole = match right.as_ref() {
                Expr::Literal(ScalarValue::IntervalMonthDayNano(Some(v)), _) => {
                    v.months == 0 && v.nanoseconds % 1_000 == 0
                }
                Expr::Literal(ScalarValue::IntervalDayTime(Some(_)), _) => true,
                _ => false,
            };
            let shift = interval_micros(right).filter(|_| whole)?;
            let (i, s) = exact_shifted_column(left, schema)?;
            match op {
                Operator::Plus => Some((i, s.checked_add(shift)?)),
                Operator::Minus => Some((i, s.checked_sub(shift)?)),
                _ => None,
            }
        }
        _ => None,
    }
}

fn conjuncts(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::And,
            right,
        }) => {
            let mut v = conjuncts(left);
            v.extend(conjuncts(right));
            v
        }
        other => vec![other],
    }
}

/// `col`, `col + INTERVAL`, `col - INTERVAL`: the column's index and the shift.
fn shifted_column(e: &Expr, schema: &DFSchema) -> Option<(usize, i64)> {
    match e {
        Expr::Column(c) => schema.index_of_column(c).ok().map(|i| (i, 0)),
        Expr::Alias(a) => shifted_column(&a.expr, schema),
        Expr::Cast(c) if c.field.data_type().is_temporal() => shifted_column(&c.expr, schema),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let shift = interval_micros(right)?;
            let (i, s) = shifted_column(left, schema)?;
            match op {
                Operator::Plus => Some((i, s + shift)),
                Operator::Minus => Some((i, s - shift)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The lags of a join's output; `streams` says which sides read streams.
fn join_lags(
    l: &Lags,
    r: &Lags,
    streams: (bool, bool),
    kind: JoinKind,
    residual: Option<&Expr>,
    schema: &DFSchema,
) -> Lags {
    let (left_timed, right_timed) = (has_event_time(l), has_event_time(r));
    let mut joined: Lags = l.iter().chain(r.iter()).copied().collect();
    if !(left_timed && right_timed) {
        let untimed_is_stream = if left_timed { streams.1 } else { streams.0 };
        if (left_timed || right_timed) && untimed_is_stream {
            // A stream without event time: a new row there can pair with arbitrarily old
            // rows of the timed side, so nothing bounds the output's times.
            return vec![None; joined.len()];
        }
        // A stream joined with a table: rows arrive with the stream's rows. (A table change
        // re-emits old rows; those are late for operators that rely on lags.) The padded
        // side of an outer join is NULL, which no lag constrains.
        return joined;
    }
    if kind != JoinKind::Inner {
        return vec![None; joined.len()];
    }
    // Two streams: each output row is new because one of its two input rows is new. A
    // column keeps a lag only if it is bounded whichever side is new: by its own lag when
    // its side is new, and through a condition bounding it by the other side otherwise.
    let bounds = time_bounds(residual, schema, &joined);
    let nl = l.len();
    let side = |i: usize| i < nl;
    let own = joined.clone();
    for (i, lag) in joined.iter_mut().enumerate() {
        let Some(own_lag) = own[i] else { continue };
        // When the other side is new: i >= by + offset >= W - lag(by) + offset.
        let via_other = bounds
            .iter()
            .filter(|b| b.bounded == i && side(b.by) != side(i))
            .filter_map(|b| own[b.by].map(|by_lag| by_lag - b.offset))
            .min();
        *lag = via_other.map(|v| v.max(own_lag));
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion::logical_expr::{col, lit};
    use datafusion::prelude::date_bin;

    fn schema() -> DFSchema {
        let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
        DFSchema::try_from(Schema::new(vec![
            Field::new("t", ts.clone(), true),
            Field::new("u", DataType::Utf8, true),
            Field::new("t2", ts, true),
        ]))
        .unwrap()
    }

    fn minutes(n: i32) -> Expr {
        lit(ScalarValue::new_interval_mdn(0, 0, n as i64 * 60_000_000_000))
    }

    #[test]
    fn window_bounds_shift_the_lag() {
        let s = schema();
        let lags = vec![Some(0), None, Some(10)];
        assert_eq!(expr_lag(&col("t"), &s, &lags), Some(0));
        assert_eq!(expr_lag(&col("u"), &s, &lags), None);
        let start = date_bin(
            minutes(5),
            col("t"),
            lit(ScalarValue::TimestampMicrosecond(Some(0), None)),
        );
        assert_eq!(expr_lag(&start, &s, &lags), Some(300_000_000 - 1));
        let end = start + minutes(5);
        assert_eq!(
            expr_lag(&end, &s, &lags),
            Some(-1),
            "window_end is after every event in it"
        );
        assert_eq!(expr_lag(&(col("t") - minutes(1)), &s, &lags), Some(60_000_000));
        assert_eq!(expr_lag(&(col("t") * lit(2)), &s, &lags), None);
    }

    #[test]
    fn an_interval_join_tests_only_the_residual_its_interval_does_not_imply() {
        let s = schema();
        let lags = vec![Some(0), None, Some(0)];
        let other = col("u").not_eq(lit("x"));
        let cond = other
            .clone()
            .and(col("t2").gt(col("t")))
            .and(col("t2").lt(col("t") + minutes(30)));
        let bounds = time_bounds(Some(&cond), &s, &lags);
        // Columns 0 and 1 are the left side (t, u), column 2 the right (t2).
        let interval = join_interval(&bounds, 2, &vec![Some(0), None], &vec![Some(0)]).unwrap();
        assert_eq!((interval.lo, interval.hi), (1, 1_800_000_000 - 1));
        assert_eq!(
            residual_beyond_interval(Some(&cond), &s, &interval, 2),
            Some(other.clone())
        );
        let only_time = col("t2").gt(col("t")).and(col("t2").lt(col("t") + minutes(30)));
        assert_eq!(residual_beyond_interval(Some(&only_time), &s, &interval, 2), None);
        // A bound by an interval with months stays.
        let months = lit(ScalarValue::new_interval_mdn(1, 0, 0));
        let kept = col("t2").lt(col("t") + months);
        let cond = other.and(kept.clone());
        assert_eq!(
            residual_beyond_interval(Some(&cond), &s, &interval, 2),
            Some(cond.clone())
        );
    }

    #[test]
    fn interval_conditions_bound_each_side_of_a_stream_join() {
        // a.t at 0, a.u at 1, b.t at 2 ... use t and t2 as the two sides' times.
        let s = schema();
        let lags = vec![Some(0), None, Some(0)];
        // t2 > t AND t2 < t + 30 min
        let cond = col("t2").gt(col("t")).and(col("t2").lt(col("t") + minutes(30)));
        let b = time_bounds(Some(&cond), &s, &lags);
        assert_eq!(
            b,
            vec![
                TimeBound {
                    bounded: 2,
                    by: 0,
                    offset: 1
                },
                TimeBound {
                    bounded: 0,
                    by: 2,
                    offset: 1 - 1_800_000_000
                }
            ]
        );
        let both = (true, true);
        let joined = join_lags(
            &vec![Some(0), None],
            &vec![Some(0)],
            both,
            JoinKind::Inner,
            Some(&cond),
            &s,
        );
        assert_eq!(joined, vec![Some(1_800_000_000 - 1), None, Some(0)]);
        let unbounded = join_lags(&vec![Some(0), None], &vec![Some(0)], both, JoinKind::Inner, None, &s);
        assert_eq!(unbounded, vec![None, None, None], "a new row may join any old one");
        let with_table = join_lags(
            &vec![Some(0), None],
            &vec![None],
            (true, false),
            JoinKind::Left,
            None,
            &s,
        );
        assert_eq!(with_table, vec![Some(0), None, None]);
        let with_untimed_stream = join_lags(
            &vec![Some(0), None],
            &vec![None],
            (true, true),
            JoinKind::Inner,
            None,
            &s,
        );
        assert_eq!(
            with_untimed_stream,
            vec![None, None, None],
            "a new row of a stream without event time may join any old row"
        );
    }
}
