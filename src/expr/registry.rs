//! Every function a query may call, by name: DataFusion's scalar, nested and aggregate
//! functions, then `datafusion-spark`'s (Spark's semantics win where the two differ), then
//! eddy's own ([`super::functions`]), with Spark's aliases. Built once per process.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use datafusion_common::DataFusionError;
use datafusion_expr::{AggregateUDF, ScalarUDF};

use super::functions::Fun;

/// Where a function's implementation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// eddy's own (Spark's semantics where DataFusion's differ, or missing in both).
    Eddy,
    /// `datafusion-spark`.
    Spark,
    /// DataFusion.
    DataFusion,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Eddy => "eddy",
            Origin::Spark => "datafusion-spark",
            Origin::DataFusion => "datafusion",
        }
    }
}

/// One name in `eddy functions`.
#[derive(Debug, Clone)]
pub struct FunctionInfo {
    pub name: String,
    pub aggregate: bool,
    pub origin: Origin,
    /// The name it is an alias of, when it is one.
    pub alias_of: Option<String>,
    pub description: String,
}

/// The function library.
pub struct Registry {
    scalars: HashMap<String, (Arc<ScalarUDF>, Origin)>,
    aggregates: HashMap<String, (Arc<AggregateUDF>, Origin)>,
    aliases: HashMap<String, String>,
}

/// Spark names that are other names here (Spark name → registered name).
const SPARK_ALIASES: &[(&str, &str)] = &[
    ("startswith", "starts_with"),
    ("endswith", "ends_with"),
    ("ucase", "upper"),
    ("lcase", "lower"),
    ("sign", "signum"),
    ("power", "pow"),
    ("variance", "var_samp"),
    ("std", "stddev"),
    ("every", "bool_and"),
    ("some", "bool_or"),
    ("any", "bool_or"),
];

/// DataFusion names whose meaning differs from Spark's function of the same name, with no
/// Spark implementation to replace them yet: not offered, so they are not mistaken for Spark's.
const HIDDEN: &[&str] = &["date_format", "to_char", "split_part_spark_unsupported"];

impl Registry {
    /// The process-wide registry.
    pub fn global() -> &'static Registry {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        REGISTRY.get_or_init(Registry::build)
    }

    fn build() -> Registry {
        let mut scalars: HashMap<String, (Arc<ScalarUDF>, Origin)> = HashMap::new();
        let mut add_scalar = |f: Arc<ScalarUDF>, origin: Origin| {
            for name in std::iter::once(f.name().to_string()).chain(f.aliases().iter().cloned()) {
                if HIDDEN.contains(&name.as_str()) && origin == Origin::DataFusion {
                    continue;
                }
                scalars.insert(name.to_ascii_lowercase(), (f.clone(), origin));
            }
        };
        for f in
            datafusion_functions::all_default_functions().into_iter().chain(datafusion_functions_nested::all_default_nested_functions())
        {
            add_scalar(f, Origin::DataFusion);
        }
        for f in datafusion_spark::all_default_scalar_functions() {
            add_scalar(f, Origin::Spark);
        }
        for f in Fun::all() {
            add_scalar(f.udf(), Origin::Eddy);
        }
        for f in super::functions::library() {
            add_scalar(super::functions::RowUdf::udf(f), Origin::Eddy);
        }
        let mut aggregates: HashMap<String, (Arc<AggregateUDF>, Origin)> = HashMap::new();
        let mut add_aggregate = |f: Arc<AggregateUDF>, origin: Origin| {
            for name in std::iter::once(f.name().to_string()).chain(f.aliases().iter().cloned()) {
                aggregates.insert(name.to_ascii_lowercase(), (f.clone(), origin));
            }
        };
        for f in datafusion_functions_aggregate::all_default_aggregate_functions() {
            add_aggregate(f, Origin::DataFusion);
        }
        for f in datafusion_spark::all_default_aggregate_functions() {
            // datafusion-spark's avg returns a double for decimals; Spark (and DataFusion's avg)
            // return decimal(p + 4, s + 4).
            if f.name() != "avg" {
                add_aggregate(f, Origin::Spark);
            }
        }
        for f in super::udafs::all() {
            add_aggregate(f, Origin::Eddy);
        }
        let aliases = SPARK_ALIASES.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        Registry { scalars, aggregates, aliases }
    }

    fn resolve<'a>(&'a self, name: &'a str) -> String {
        let lower = name.to_ascii_lowercase();
        match self.aliases.get(&lower) {
            Some(target) if !self.scalars.contains_key(&lower) && !self.aggregates.contains_key(&lower) => target.clone(),
            _ => lower,
        }
    }

    pub fn scalar(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        self.scalars.get(&self.resolve(name)).map(|(f, _)| f.clone())
    }

    pub fn aggregate(&self, name: &str) -> Option<Arc<AggregateUDF>> {
        self.aggregates.get(&self.resolve(name)).map(|(f, _)| f.clone())
    }

    pub fn scalar_names(&self) -> Vec<String> {
        self.scalars.keys().cloned().chain(self.aliases.keys().filter(|a| self.scalar(a).is_some()).cloned()).collect()
    }

    pub fn aggregate_names(&self) -> Vec<String> {
        self.aggregates.keys().cloned().chain(self.aliases.keys().filter(|a| self.aggregate(a).is_some()).cloned()).collect()
    }

    /// True when `name` is an aggregate function.
    pub fn is_aggregate(&self, name: &str) -> bool {
        self.aggregate(name).is_some()
    }

    /// The known name closest to `name`, for "did you mean" hints.
    pub fn suggest(&self, name: &str) -> Option<String> {
        let lower = name.to_ascii_lowercase();
        let mut best: Option<(usize, String)> = None;
        for n in self.scalar_names().into_iter().chain(self.aggregate_names()) {
            if Fun::all().iter().any(|f| f.is_internal() && f.udf().name() == n) {
                continue;
            }
            let d = crate::sql::edit_distance(&lower, &n);
            if d <= 2.max(lower.len() / 4) && best.as_ref().is_none_or(|(bd, bn)| d < *bd || (d == *bd && n < *bn)) {
                best = Some((d, n));
            }
        }
        best.map(|(_, n)| n)
    }

    /// Every function name, sorted, with where it comes from and what it does.
    pub fn listing(&self) -> Vec<FunctionInfo> {
        let mut out = Vec::new();
        for (name, (f, origin)) in &self.scalars {
            if Fun::all().iter().any(|x| x.is_internal() && x.udf().name() == f.name()) || name.starts_with("spark_") {
                continue;
            }
            let description = eddy_description(f.name())
                .map(str::to_string)
                .or_else(|| f.documentation().map(|d| d.description.clone()))
                .unwrap_or_default();
            out.push(FunctionInfo {
                name: name.clone(),
                aggregate: false,
                origin: *origin,
                alias_of: (f.name() != name).then(|| f.name().to_string()),
                description,
            });
        }
        for (name, (f, origin)) in &self.aggregates {
            let description = super::udafs::description(f.name())
                .map(str::to_string)
                .or_else(|| f.documentation().map(|d| d.description.clone()))
                .unwrap_or_default();
            out.push(FunctionInfo {
                name: name.clone(),
                aggregate: true,
                origin: *origin,
                alias_of: (f.name() != name).then(|| f.name().to_string()),
                description,
            });
        }
        for (alias, target) in &self.aliases {
            if self.scalars.contains_key(alias) || self.aggregates.contains_key(alias) {
                continue;
            }
            let aggregate = self.aggregates.contains_key(target);
            let origin = self.scalars.get(target).map(|x| x.1).or_else(|| self.aggregates.get(target).map(|x| x.1));
            if let Some(origin) = origin {
                out.push(FunctionInfo {
                    name: alias.clone(),
                    aggregate,
                    origin,
                    alias_of: Some(target.clone()),
                    description: String::new(),
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

fn eddy_description(name: &str) -> Option<&'static str> {
    Fun::all()
        .into_iter()
        .find(|f| f.udf().name() == name)
        .map(Fun::description)
        .or_else(|| super::functions::library().into_iter().find(|f| f.name == name).map(|f| f.description))
}

/// DataFusion's error text without its category prefixes and backtrace.
pub fn clean_error(e: &DataFusionError) -> String {
    let text = e.strip_backtrace();
    let mut t = text.as_str();
    loop {
        let before = t;
        for prefix in [
            "Error during planning: ",
            "Schema error: ",
            "Execution error: ",
            "Arrow error: ",
            "Internal error: ",
            "This feature is not implemented: ",
            "Optimizer rule 'simplify_expressions' failed\ncaused by\n",
            "type_coercion\ncaused by\n",
            "Invalid argument error: ",
            "Compute error: ",
            "Cast error: ",
        ] {
            t = t.strip_prefix(prefix).unwrap_or(t);
        }
        if t == before {
            break;
        }
    }
    t.trim().to_string()
}

/// An expression as `explain` and error messages print it.
pub fn display(e: &datafusion_expr::Expr) -> String {
    e.human_display().to_string()
}
