//! Name resolution: the columns a query can see, with their qualifiers and row positions.

use crate::types::{DataType, Field, Schema};

/// Columns every source row carries after its schema's, from the Kafka record itself.
pub const METADATA_COLUMNS: &[(&str, DataType)] = &[
    ("kafka_timestamp", DataType::Timestamp),
    ("kafka_key", DataType::String),
    ("kafka_partition", DataType::Long),
    ("kafka_offset", DataType::Long),
];

/// One visible column.
#[derive(Debug, Clone)]
pub struct ScopeColumn {
    /// The source name or its alias.
    pub qualifier: String,
    pub name: String,
    pub data_type: DataType,
    pub index: usize,
    /// Metadata columns are not part of `SELECT *`.
    pub hidden: bool,
}

/// The columns visible to expressions of one query.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub columns: Vec<ScopeColumn>,
}

/// The outcome of looking a name up.
pub enum Lookup<'a> {
    Found(&'a ScopeColumn),
    NotFound,
    Ambiguous,
}

impl Scope {
    /// A source's schema plus metadata columns (unless the schema already uses the name).
    pub fn for_source(qualifiers: &[&str], schema: &Schema) -> (Scope, Schema) {
        let mut full = schema.clone();
        for (name, ty) in METADATA_COLUMNS {
            if full.index_of(name).is_none() {
                full.fields.push(Field::new(*name, *ty, true));
            }
        }
        let mut scope = Scope::default();
        for (i, f) in full.fields.iter().enumerate() {
            for q in qualifiers {
                scope.columns.push(ScopeColumn {
                    qualifier: q.to_string(),
                    name: f.name.clone(),
                    data_type: f.data_type,
                    index: i,
                    hidden: i >= schema.len(),
                });
            }
        }
        (scope, full)
    }

    /// Finds `name`, optionally qualified; names are case-insensitive as in Spark.
    pub fn lookup(&self, qualifier: Option<&str>, name: &str) -> Lookup<'_> {
        let mut found: Option<&ScopeColumn> = None;
        for c in &self.columns {
            if !c.name.eq_ignore_ascii_case(name) {
                continue;
            }
            if let Some(q) = qualifier {
                if !c.qualifier.eq_ignore_ascii_case(q) {
                    continue;
                }
            }
            match found {
                Some(prev) if prev.index != c.index => return Lookup::Ambiguous,
                _ => found = Some(c),
            }
        }
        found.map_or(Lookup::NotFound, Lookup::Found)
    }

    /// Whether any column has this qualifier.
    pub fn has_qualifier(&self, q: &str) -> bool {
        self.columns.iter().any(|c| c.qualifier.eq_ignore_ascii_case(q))
    }

    /// Visible (non-metadata) columns once each, in row order, for `SELECT *`.
    pub fn star(&self, qualifier: Option<&str>) -> Vec<&ScopeColumn> {
        let mut out: Vec<&ScopeColumn> = Vec::new();
        for c in &self.columns {
            if c.hidden || qualifier.is_some_and(|q| !c.qualifier.eq_ignore_ascii_case(q)) {
                continue;
            }
            if !out.iter().any(|o| o.index == c.index) {
                out.push(c);
            }
        }
        out
    }

    /// Names close to `name`, for "did you mean" hints.
    pub fn suggest(&self, name: &str) -> Option<String> {
        let mut best: Option<(usize, &str)> = None;
        for c in &self.columns {
            let d = edit_distance(&c.name.to_ascii_lowercase(), &name.to_ascii_lowercase());
            if d <= 2 && best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, &c.name));
            }
        }
        best.map(|(_, n)| n.to_string())
    }

    /// "a, b, c" of the visible columns.
    pub fn column_list(&self) -> String {
        self.star(None).iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
    }
}

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
