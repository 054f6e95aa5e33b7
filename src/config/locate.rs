//! Finds the line and column of a node in YAML text, given its path (`queries[1].sql`), so
//! that errors found after parsing (an unknown source in SQL, a sink that does not exist)
//! point into the file as precisely as serde's own errors do.
//!
//! It walks the document with a serde visitor and raises an error at the wanted node;
//! serde_yaml attaches the position of the node it was reading to that error.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One step of a path: a map key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

impl PathSeg {
    pub fn key(k: &str) -> PathSeg {
        PathSeg::Key(k.to_string())
    }
}

const FOUND: &str = "\u{0}eddy-locate-found";

/// 1-based (line, column) of the node at `path`; the deepest existing ancestor's position when
/// the path goes further than the document; `None` when even the root cannot be read.
pub fn locate(text: &str, path: &[PathSeg]) -> Option<(usize, usize)> {
    for depth in (0..=path.len()).rev() {
        let seek = Seek { path: &path[..depth] };
        if let Err(e) = seek.deserialize(serde_yaml::Deserializer::from_str(text)) {
            if e.to_string().contains(FOUND) {
                if let Some(loc) = e.location() {
                    return Some((loc.line(), loc.column()));
                }
            }
        }
    }
    None
}

struct Seek<'p> {
    path: &'p [PathSeg],
}

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(SeekVisitor { path: self.path })
    }
}

struct SeekVisitor<'p> {
    path: &'p [PathSeg],
}

impl SeekVisitor<'_> {
    fn here<E: de::Error>(&self) -> Result<(), E> {
        if self.path.is_empty() {
            Err(E::custom(FOUND))
        } else {
            Ok(())
        }
    }
}

impl<'de> Visitor<'de> for SeekVisitor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.here()?;
        while let Some(key) = map.next_key::<serde_yaml::Value>()? {
            let matches = match (&self.path[0], &key) {
                (PathSeg::Key(want), serde_yaml::Value::String(k)) => k == want,
                (PathSeg::Key(want), other) => serde_yaml::to_string(other).map(|s| s.trim() == want).unwrap_or(false),
                _ => false,
            };
            if matches {
                map.next_value_seed(Seek { path: &self.path[1..] })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.here()?;
        let mut i = 0;
        loop {
            let found = matches!(self.path[0], PathSeg::Index(want) if want == i);
            let next =
                if found { seq.next_element_seed(Seek { path: &self.path[1..] })? } else { seq.next_element::<IgnoredAny>()?.map(|_| ()) };
            if next.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.here()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.here()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.here()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.here()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.here()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.here()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.here()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}
