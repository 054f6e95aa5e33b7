//! Small typed ids for what the engine indexes, so a topic's position, a partition and a
//! query's index cannot be swapped for one another: a consumed topic, one partition of it,
//! and a query's task. Depends on nothing.

use std::fmt;
use std::ops::{Index, IndexMut};

/// A consumed topic: its position in the engine's topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicId(pub usize);

/// One partition of a consumed topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InputId {
    pub topic: TopicId,
    pub partition: i32,
}

impl InputId {
    pub fn new(topic: TopicId, partition: i32) -> InputId {
        InputId { topic, partition }
    }

    /// Every partition of `topic`, as a range of a map ordered by id.
    pub fn all_of(topic: TopicId) -> std::ops::RangeInclusive<InputId> {
        InputId::new(topic, i32::MIN)..=InputId::new(topic, i32::MAX)
    }
}

/// A task: one query's operator stage on one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId {
    pub query: usize,
    pub partition: i32,
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "query #{} partition {}", self.query, self.partition)
    }
}

/// The engine's topics, indexed by [`TopicId`].
pub struct Topics<T>(pub Vec<T>);

impl<T> Topics<T> {
    pub fn iter(&self) -> impl Iterator<Item = (TopicId, &T)> {
        self.0.iter().enumerate().map(|(i, t)| (TopicId(i), t))
    }

    pub fn position(&self, f: impl Fn(&T) -> bool) -> Option<TopicId> {
        self.0.iter().position(f).map(TopicId)
    }
}

impl<T> Index<TopicId> for Topics<T> {
    type Output = T;
    fn index(&self, id: TopicId) -> &T {
        &self.0[id.0]
    }
}

impl<T> IndexMut<TopicId> for Topics<T> {
    fn index_mut(&mut self, id: TopicId) -> &mut T {
        &mut self.0[id.0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_s_partitions_are_one_range_of_an_ordered_map() {
        let mut m = std::collections::BTreeMap::new();
        for (t, p) in [(0, 3), (1, -1), (1, 0), (1, 7), (2, 0)] {
            m.insert(InputId::new(TopicId(t), p), ());
        }
        let of_1: Vec<i32> = m.range(InputId::all_of(TopicId(1))).map(|(k, _)| k.partition).collect();
        assert_eq!(of_1, vec![-1, 0, 7]);
    }
}
