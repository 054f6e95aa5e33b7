//! Replays NDJSON and CSV files into a topic, one file per batch (Spark's maxFilesPerTrigger):
//! each file is produced and flushed before the next, with an optional pause between files.
//! CSV rows become JSON objects; numbers and booleans keep their types.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::{Destination, Output, ProgressBar, TargetArgs};

#[derive(Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Pause between files, e.g. "1s".
    #[arg(long, default_value = "0s")]
    pub interval: String,
    /// A field whose value keys each record.
    #[arg(long)]
    pub key: Option<String>,
    /// NDJSON (`.json`, `.ndjson`) or CSV (`.csv`, with a header) files, in order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(a: &ReplayArgs) -> anyhow::Result<()> {
    let interval = crate::time::parse_duration(&a.interval)?;
    let mut out = Output::open(&Destination::from_args(&a.target))?;
    let mut bar = ProgressBar::new("replay", a.files.len() as u64, out.is_kafka());
    for (i, path) in a.files.iter().enumerate() {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let records = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) { csv_to_json(&text) } else { ndjson(&text) };
        for r in records {
            let r = r.with_context(|| format!("in {}", path.display()))?;
            let key = a.key.as_ref().and_then(|k| r.get(k)).map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            let value = serde_json::to_vec(&r)?;
            out.send(key.as_deref().map(str::as_bytes), &value, None)?;
        }
        out.flush()?;
        bar.set(i as u64 + 1);
        if interval > 0 && i + 1 < a.files.len() {
            std::thread::sleep(std::time::Duration::from_micros(interval as u64));
        }
    }
    bar.done();
    out.finish()
}

fn ndjson(text: &str) -> Vec<anyhow::Result<serde_json::Map<String, serde_json::Value>>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| serde_json::from_str(l).with_context(|| format!("line {} is not a JSON object", n + 1)))
        .collect()
}

/// CSV with a header line; quoted fields may contain commas and doubled quotes.
pub fn csv_to_json(text: &str) -> Vec<anyhow::Result<serde_json::Map<String, serde_json::Value>>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else { return Vec::new() };
    let names = split_csv(header);
    lines
        .enumerate()
        .map(|(n, line)| {
            let fields = split_csv(line);
            if fields.len() != names.len() {
                anyhow::bail!("row {} has {} fields, the header has {}", n + 2, fields.len(), names.len());
            }
            Ok(names.iter().cloned().zip(fields.into_iter().map(|f| infer(&f))).collect())
        })
        .collect()
}

fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn infer(field: &str) -> serde_json::Value {
    let t = field.trim();
    if t.is_empty() {
        return serde_json::Value::Null;
    }
    if let Ok(i) = t.parse::<i64>() {
        return i.into();
    }
    if let Ok(f) = t.parse::<f64>() {
        if f.is_finite() {
            return f.into();
        }
    }
    match t {
        "true" => true.into(),
        "false" => false.into(),
        _ => serde_json::Value::String(field.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_become_typed_objects() {
        let text =
            "InvoiceNo,Description,Quantity,UnitPrice\n536365,\"WHITE HANGING HEART, T-LIGHT\",6,2.55\n536366,\"say \"\"hi\"\"\",,1\n";
        let rows: Vec<_> = csv_to_json(text).into_iter().map(Result::unwrap).collect();
        assert_eq!(rows[0]["InvoiceNo"], serde_json::json!(536365));
        assert_eq!(rows[0]["Description"], serde_json::json!("WHITE HANGING HEART, T-LIGHT"));
        assert_eq!(rows[0]["UnitPrice"], serde_json::json!(2.55));
        assert_eq!(rows[1]["Description"], serde_json::json!("say \"hi\""));
        assert_eq!(rows[1]["Quantity"], serde_json::Value::Null);
        assert!(csv_to_json("a,b\n1\n")[0].is_err());
    }
}
