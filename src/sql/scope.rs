//! The columns a query sees beyond a source's schema, and name similarity for hints.

use crate::types::{timestamp_type, DataType};

/// Columns every source row carries after its schema's, from the Kafka record itself. They
/// are not part of `SELECT *`.
pub fn metadata_columns() -> [(&'static str, DataType); 4] {
    [
        ("kafka_timestamp", timestamp_type()),
        ("kafka_key", DataType::Utf8),
        ("kafka_partition", DataType::Int64),
        ("kafka_offset", DataType::Int64),
    ]
}

/// The metadata column names, in row order.
pub const METADATA_COLUMNS: [&str; 4] = ["kafka_timestamp", "kafka_key", "kafka_partition", "kafka_offset"];

/// Levenshtein distance, for suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The name in `names` closest to `name` (at most two edits away), for "did you mean".
pub fn closest<'a>(name: &str, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for n in names {
        let d = edit_distance(&n.to_ascii_lowercase(), &lower);
        if d <= 2 && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, n));
        }
    }
    best.map(|(_, n)| n)
}
