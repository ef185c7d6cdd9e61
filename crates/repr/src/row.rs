//! [`Row`]: one row of a relation, its datums in column order, immutable and shared.
//!
//! A row is held in many places at once: a view's arrangement and the batches its merges
//! build, the state of the joins that read it, the copies later views take out of the
//! arrangement. A clone shares the datums (one reference count) instead of copying every
//! datum and touching every string's count, and dropping a clone frees nothing until the
//! last one goes. Building a changed row (a projection, a join's output) makes a new one.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Datum;

/// A tuple of datums, compared, ordered and hashed by its datums as a slice is.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Row(Arc<[Datum]>);

impl Row {
    /// A row of the datums in `datums`.
    pub fn new(datums: Vec<Datum>) -> Row {
        Row(datums.into())
    }
}

impl Default for Row {
    fn default() -> Row {
        Row(Arc::from([]))
    }
}

impl Deref for Row {
    type Target = [Datum];
    fn deref(&self) -> &[Datum] {
        &self.0
    }
}

impl fmt::Debug for Row {
    /// As a list of datums, as `Vec<Datum>` prints (late-event records show rows so).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

impl From<Vec<Datum>> for Row {
    fn from(datums: Vec<Datum>) -> Row {
        Row::new(datums)
    }
}

impl From<&[Datum]> for Row {
    fn from(datums: &[Datum]) -> Row {
        Row(datums.into())
    }
}

impl FromIterator<Datum> for Row {
    /// One allocation where the iterator knows its length (slices, vectors, chains and
    /// maps of them), as `Arc<[T]>` collects.
    fn from_iter<I: IntoIterator<Item = Datum>>(iter: I) -> Row {
        Row(iter.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a Row {
    type Item = &'a Datum;
    type IntoIter = std::slice::Iter<'a, Datum>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// The datums of a row by value (each cloned: the row may be shared).
pub struct RowIntoIter {
    row: Row,
    next: usize,
}

impl Iterator for RowIntoIter {
    type Item = Datum;
    fn next(&mut self) -> Option<Datum> {
        let d = self.row.0.get(self.next).cloned();
        self.next += 1;
        d
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.row.0.len().saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for RowIntoIter {}

impl IntoIterator for Row {
    type Item = Datum;
    type IntoIter = RowIntoIter;
    fn into_iter(self) -> RowIntoIter {
        RowIntoIter { row: self, next: 0 }
    }
}

impl Serialize for Row {
    /// As a sequence of datums, as `Vec<Datum>` is: table and sink logs written before
    /// rows were shared still load.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Row, D::Error> {
        Vec::<Datum>::deserialize(d).map(Row::new)
    }
}

/// A row of the given datums: `row![Datum::Int(1), Datum::Null]`.
#[macro_export]
macro_rules! row {
    ($($d:expr),* $(,)?) => {
        $crate::Row::new(vec![$($d),*])
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_datums() {
        let a = Row::new(vec![Datum::Int(1), Datum::str("x")]);
        let b = a.clone();
        assert!(std::ptr::eq(a.as_ptr(), b.as_ptr()));
        assert_eq!(a, b);
    }

    #[test]
    fn serialized_and_printed_as_a_vector_of_datums() {
        let datums = vec![Datum::Int(1), Datum::Null, Datum::str("a")];
        let row = Row::new(datums.clone());
        assert_eq!(
            serde_json::to_string(&row).unwrap(),
            serde_json::to_string(&datums).unwrap()
        );
        let back: Row = serde_json::from_str(&serde_json::to_string(&datums).unwrap()).unwrap();
        assert_eq!(back, row);
        assert_eq!(format!("{row:?}"), format!("{datums:?}"));
    }

    #[test]
    fn ordered_and_hashed_as_its_datums() {
        use std::hash::{BuildHasher, RandomState};
        let a = Row::new(vec![Datum::Int(1), Datum::Int(2)]);
        let b = Row::new(vec![Datum::Int(1), Datum::Int(3)]);
        assert!(a < b);
        assert!(Row::new(vec![Datum::Int(1)]) < a, "a prefix sorts first");
        let h = RandomState::new();
        assert_eq!(h.hash_one(&a), h.hash_one(&a[..]));
        let by_value: Vec<Datum> = a.clone().into_iter().collect();
        assert_eq!(by_value, a.to_vec());
    }
}
