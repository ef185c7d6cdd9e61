//! [`Str`]: the string inside a [`Datum`](crate::Datum): short strings inline, longer ones
//! shared.
//!
//! Most strings in security events are short (IP addresses, user names, country codes,
//! outcomes, actions). Inline, they cost no allocation when decoded and no reference count
//! when a row is copied or dropped, and a row built on one worker and dropped on another
//! touches no memory the first worker is still using. Strings of more than
//! [`Str::INLINE_MAX`] bytes are thin reference-counted pointers ([`ArcStr`]): a clone is a
//! reference count. Constants that every row of a view carries ([`Str::shared_forever`])
//! are never counted at all.
//!
//! A `Str` compares, orders, hashes, prints and serializes as the `str` it holds: which
//! form holds it is never visible.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use arcstr::ArcStr;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A string value: inline up to [`Str::INLINE_MAX`] bytes, otherwise shared. 16 bytes,
/// and it leaves [`Datum`](crate::Datum) at 16 bytes too (the enum's tag is the niche).
#[derive(Clone)]
pub struct Str(Repr);

#[derive(Clone)]
enum Repr {
    /// `len` bytes of `buf` are the string (valid UTF-8); the rest are zero.
    Inline { len: u8, buf: [u8; Str::INLINE_MAX] },
    /// A string longer than `INLINE_MAX` bytes.
    Shared(ArcStr),
}

impl Str {
    /// The longest string kept inline, in bytes.
    pub const INLINE_MAX: usize = 14;

    /// A string holding `s`: inline when it is short, otherwise one shared allocation.
    pub fn new(s: &str) -> Str {
        Str::inline(s).unwrap_or_else(|| Str(Repr::Shared(ArcStr::from(s))))
    }

    /// A string holding `s` whose clones never count references: for the constants an
    /// expression puts in every row it builds (`'network' AS event_category`). A long one
    /// is allocated once and never freed, so this is for the constants of plans, not for
    /// data.
    pub fn shared_forever(s: &str) -> Str {
        Str::inline(s).unwrap_or_else(|| {
            let shared = ArcStr::from(s);
            shared.leak();
            Str(Repr::Shared(shared))
        })
    }

    fn inline(s: &str) -> Option<Str> {
        let bytes = s.as_bytes();
        (bytes.len() <= Str::INLINE_MAX).then(|| {
            let mut buf = [0u8; Str::INLINE_MAX];
            buf[..bytes.len()].copy_from_slice(bytes);
            Str(Repr::Inline {
                len: bytes.len() as u8,
                buf,
            })
        })
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, buf } => {
                let bytes = &buf[..*len as usize];
                // SAFETY: `Str::inline` copies exactly the bytes of a `&str` (valid UTF-8)
                // into `buf[..len]`, and nothing else ever writes to an inline `Str`.
                unsafe { std::str::from_utf8_unchecked(bytes) }
            }
            Repr::Shared(s) => s,
        }
    }
}

impl Deref for Str {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Str {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Str {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Str {
    fn from(s: &str) -> Str {
        Str::new(s)
    }
}

impl From<String> for Str {
    fn from(s: String) -> Str {
        Str::new(&s)
    }
}

impl From<&String> for Str {
    fn from(s: &String) -> Str {
        Str::new(s)
    }
}

impl PartialEq for Str {
    fn eq(&self, other: &Str) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Str {}

impl PartialEq<str> for Str {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Str {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialOrd for Str {
    fn partial_cmp(&self, other: &Str) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Str {
    fn cmp(&self, other: &Str) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Str {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl Serialize for Str {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Str {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Str, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Str;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Str, E> {
                Ok(Str::new(s))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::hash_map::DefaultHasher;

    use super::*;

    fn hash_of<T: Hash + ?Sized>(v: &T) -> u64 {
        let mut h = DefaultHasher::new();
        v.hash(&mut h);
        h.finish()
    }

    /// Strings on both sides of the inline limit, and ones that share a prefix across it.
    fn samples() -> Vec<&'static str> {
        vec![
            "",
            "a",
            "10.0.0.1",
            "abcdefghijklm",   // 13 bytes
            "abcdefghijklmn",  // 14: the longest inline
            "abcdefghijklmno", // 15: shared
            "abcdefghijklmnopqrstuvwxyz",
            "zé",
            "ééééééé",  // 14 bytes
            "éééééééa", // 15 bytes
        ]
    }

    #[test]
    fn short_strings_are_inline_and_long_ones_shared() {
        assert!(matches!(Str::new("abcdefghijklmn").0, Repr::Inline { .. }));
        assert!(matches!(Str::new("abcdefghijklmno").0, Repr::Shared(_)));
        assert_eq!(std::mem::size_of::<Str>(), 16);
    }

    #[test]
    fn compares_orders_and_hashes_as_its_string_whatever_its_form() {
        let all = samples();
        for a in &all {
            let sa = Str::new(a);
            assert_eq!(sa.as_str(), *a);
            assert_eq!(hash_of(&sa), hash_of(*a), "{a:?}");
            assert_eq!(Str::shared_forever(a), sa);
            for b in &all {
                let sb = Str::new(b);
                assert_eq!(sa.cmp(&sb), a.cmp(b), "{a:?} vs {b:?}");
                assert_eq!(sa == sb, a == b);
            }
        }
    }

    #[test]
    fn serializes_as_a_plain_string() {
        for s in samples() {
            let json = serde_json::to_string(&Str::new(s)).unwrap();
            assert_eq!(json, serde_json::to_string(s).unwrap());
            let back: Str = serde_json::from_str(&json).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn a_long_string_shared_forever_counts_no_references() {
        let s = Str::shared_forever("a constant longer than fourteen bytes");
        let copy = s.clone();
        match (&s.0, &copy.0) {
            (Repr::Shared(a), Repr::Shared(b)) => assert!(ArcStr::is_static(a) && ArcStr::is_static(b)),
            _ => panic!("a long constant is shared"),
        }
        match &Str::new("a value longer than fourteen bytes").0 {
            Repr::Shared(a) => assert!(!ArcStr::is_static(a)),
            Repr::Inline { .. } => panic!("a long value is shared"),
        }
    }
}
