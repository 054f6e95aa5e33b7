//! Partitions another instance owns: who owns them, from the consumer group's description
//! (each member's client id ends in the HTTP address it advertises, and its assignment lists
//! its partitions), and their committed state entries, fetched from the owner's
//! `/query?state=<table>&partitions=...` (what `local_entries` reads there, hex-encoded). The
//! entries are loaded here as local ones are, so the answer is computed in one place, from
//! each partition's own last committed cycle. Depends on `kafka::client` (a client to
//! describe the group), `config` and the HTTP client.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use super::read::Entries;
use crate::config::PipelineConfig;
use crate::kafka::client::{self, ADVERTISED};

/// Asks other instances for their partitions.
pub struct Remote {
    config: ClientConfig,
    group: String,
    consumer: Mutex<Option<BaseConsumer>>,
}

/// A partition fetched from its owner, or why it could not be.
pub enum Fetched {
    Got { partition: i32, entries: Entries, from: String },
    Failed { partition: i32, reason: String },
}

impl Remote {
    pub fn new(config: &PipelineConfig) -> Remote {
        Remote { config: client::admin(config), group: crate::names::consumer_group(&config.app), consumer: Mutex::new(None) }
    }

    /// Partition of `topic` → the advertised address of the member assigned it.
    fn owners(&self, topic: &str, timeout: Duration) -> Result<HashMap<i32, String>, String> {
        let mut slot = self.consumer.lock().map_err(|_| "the group client failed".to_string())?;
        if slot.is_none() {
            *slot = Some(self.config.create::<BaseConsumer>().map_err(|e| format!("cannot create a client to describe the group: {e}"))?);
        }
        let consumer = slot.as_ref().ok_or("no group client")?;
        let groups =
            consumer.fetch_group_list(Some(&self.group), timeout).map_err(|e| format!("cannot describe group {}: {e}", self.group))?;
        let mut owners = HashMap::new();
        for g in groups.groups() {
            for m in g.members() {
                let Some((_, address)) = m.client_id().rsplit_once(ADVERTISED) else { continue };
                for (t, partitions) in decode_assignment(m.assignment().unwrap_or_default()) {
                    if t == topic {
                        owners.extend(partitions.into_iter().map(|p| (p, address.to_string())));
                    }
                }
            }
        }
        Ok(owners)
    }

    /// The entries of `wanted` partitions of `table`, each from its owner (never from
    /// `myself`: what this instance does not have, its group entry is only stale about).
    pub fn fetch(&self, table: &str, topic: &str, wanted: &[i32], myself: Option<&str>, timeout: Duration) -> Vec<Fetched> {
        let owners = match self.owners(topic, timeout) {
            Ok(o) => o,
            Err(reason) => return wanted.iter().map(|&partition| Fetched::Failed { partition, reason: reason.clone() }).collect(),
        };
        let mut by_owner: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        let mut out = Vec::new();
        for &p in wanted {
            match owners.get(&p) {
                Some(a) if Some(a.as_str()) != myself => by_owner.entry(a.clone()).or_default().push(p),
                _ => out.push(Fetched::Failed {
                    partition: p,
                    reason: "no other member of the group owns it (a rebalance is under way)".into(),
                }),
            }
        }
        for (address, partitions) in by_owner {
            match fetch_from(&address, table, &partitions, timeout) {
                Ok(got) => out.extend(got.into_iter().map(|f| match f {
                    Fetched::Got { partition, entries, .. } => Fetched::Got { partition, entries, from: address.clone() },
                    failed => failed,
                })),
                Err(reason) => {
                    out.extend(partitions.iter().map(|&partition| Fetched::Failed {
                        partition,
                        reason: format!("its owner at {address} did not answer: {reason}"),
                    }))
                }
            }
        }
        out
    }
}

fn fetch_from(address: &str, table: &str, partitions: &[i32], timeout: Duration) -> Result<Vec<Fetched>, String> {
    let addr: SocketAddr = super::client::address(address).map_err(|e| e.to_string())?;
    let list: Vec<String> = partitions.iter().map(i32::to_string).collect();
    let target = format!("/query?state={}&partitions={}", super::percent_encode(table), list.join(","));
    let (status, body) = super::client::get(addr, &target, "application/json", timeout).map_err(|e| format!("{e:#}"))?;
    let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("not JSON ({status}): {e}"))?;
    if status != 200 {
        return Err(v["error"].as_str().unwrap_or("an error").to_string());
    }
    let mut out = Vec::new();
    for part in v["partitions"].as_array().into_iter().flatten() {
        let partition = part["partition"].as_i64().ok_or("a partition without a number")? as i32;
        let mut entries = Vec::new();
        for e in part["entries"].as_array().into_iter().flatten() {
            let (k, v) = (e[0].as_str().and_then(unhex), e[1].as_str().and_then(unhex));
            entries.push((k.ok_or("a bad entry")?, v.ok_or("a bad entry")?));
        }
        out.push(Fetched::Got { partition, entries, from: String::new() });
    }
    for m in v["missing"].as_array().into_iter().flatten() {
        let partition = m["partition"].as_i64().unwrap_or(-1) as i32;
        out.push(Fetched::Failed { partition, reason: format!("its owner at {address}: {}", m["reason"].as_str().unwrap_or("missing")) });
    }
    Ok(out)
}

/// The `state` answer: each partition's entries as `[hex key, hex value]` pairs.
pub fn state_json(found: &[(i32, Entries)], missing: &[(i32, &str)]) -> String {
    let parts: Vec<serde_json::Value> = found
        .iter()
        .map(|(p, entries)| {
            let entries: Vec<[String; 2]> = entries.iter().map(|(k, v)| [hex(k), hex(v)]).collect();
            serde_json::json!({ "partition": p, "entries": entries })
        })
        .collect();
    let missing: Vec<serde_json::Value> = missing.iter().map(|(p, r)| serde_json::json!({ "partition": p, "reason": r })).collect();
    serde_json::json!({ "partitions": parts, "missing": missing }).to_string()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// A classic consumer group member's assignment (ConsumerProtocolAssignment, any version):
/// version, then per topic its name and partitions, then user data.
fn decode_assignment(b: &[u8]) -> Vec<(String, Vec<i32>)> {
    fn i16_at(b: &[u8], at: &mut usize) -> Option<i16> {
        let v = i16::from_be_bytes(b.get(*at..*at + 2)?.try_into().ok()?);
        *at += 2;
        Some(v)
    }
    fn i32_at(b: &[u8], at: &mut usize) -> Option<i32> {
        let v = i32::from_be_bytes(b.get(*at..*at + 4)?.try_into().ok()?);
        *at += 4;
        Some(v)
    }
    let parse = || -> Option<Vec<(String, Vec<i32>)>> {
        let mut at = 0;
        i16_at(b, &mut at)?;
        let topics = i32_at(b, &mut at)?;
        let mut out = Vec::new();
        for _ in 0..topics.max(0) {
            let len = i16_at(b, &mut at)?.max(0) as usize;
            let name = String::from_utf8_lossy(b.get(at..at + len)?).into_owned();
            at += len;
            let n = i32_at(b, &mut at)?;
            let partitions = (0..n.max(0)).map(|_| i32_at(b, &mut at)).collect::<Option<Vec<i32>>>()?;
            out.push((name, partitions));
        }
        Some(out)
    };
    parse().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_and_entries_decode() {
        let mut b = vec![0, 1, 0, 0, 0, 2];
        for (t, ps) in [("in", vec![0i32, 3]), ("rep", vec![1])] {
            b.extend((t.len() as i16).to_be_bytes());
            b.extend(t.as_bytes());
            b.extend((ps.len() as i32).to_be_bytes());
            for p in ps {
                b.extend(p.to_be_bytes());
            }
        }
        b.extend((-1i32).to_be_bytes());
        assert_eq!(decode_assignment(&b), vec![("in".to_string(), vec![0, 3]), ("rep".to_string(), vec![1])]);
        assert_eq!(decode_assignment(&b[..9]), Vec::new(), "a cut assignment is no assignment");
        assert_eq!(unhex(&hex(&[0, 1, 0xab, 0xff])), Some(vec![0, 1, 0xab, 0xff]));
        assert_eq!(unhex("abc"), None);
    }
}
