//! Stream-table joins on a broker: a table source (`kind: table`) on a compacted topic,
//! loaded to its end before the stream starts (latest value per key wins, a tombstone deletes),
//! then updated while the query runs; inner and left joins against an independent lookup.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::{json, Value};

use super::{broker, expected, head, ts, BASE, MIN};
use crate::common::*;

/// The table's contents: device -> (owner, tier).
type Devices = BTreeMap<String, (String, i64)>;

/// Writes table records: (device, Some(owner, tier)) upserts, (device, None) a tombstone.
fn write_table(bootstrap: &str, topic: &str, changes: &[(&str, Option<(&str, i64)>)], table: &mut Devices) {
    let p: BaseProducer = ClientConfig::new().set("bootstrap.servers", bootstrap).set("enable.idempotence", "true").create().unwrap();
    for (id, change) in changes {
        let payload = change.map(|(owner, tier)| json!({"id": id, "owner": owner, "tier": tier}).to_string());
        let mut r = BaseRecord::<str, str>::to(topic).key(*id);
        if let Some(v) = &payload {
            r = r.payload(v);
        }
        p.send(r).map_err(|(e, _)| e).unwrap();
        match change {
            Some((owner, tier)) => table.insert(id.to_string(), (owner.to_string(), *tier)),
            None => table.remove(*id),
        };
    }
    p.flush(Duration::from_secs(30)).unwrap();
}

/// A compacted topic on the real broker (the mock cluster ignores topic configs).
fn create_compacted(b: &Broker, topic: &str) {
    if b.real {
        let admin = eddy::kafka::admin::Admin::new(ClientConfig::new().set("bootstrap.servers", &b.bootstrap)).unwrap();
        admin.ensure(&eddy::kafka::admin::changelog_spec(topic.to_string(), 2, "test table".into())).unwrap();
    } else {
        b.create_topic(topic, 2);
    }
}

fn events(topic: &str, bootstrap: &str, tag: &str, ids: &[String]) {
    let recs = ids.iter().enumerate().map(|(i, id)| {
        (Some(id.clone()), json!({"id": id, "seq": format!("{tag}-{i}"), "time": ts(BASE + i as i64 * MIN)}).to_string(), None)
    });
    produce(bootstrap, topic, recs);
}

/// Output rows by `seq`.
fn by_seq(b: &Broker, topic: &str) -> BTreeMap<String, Value> {
    read(&b.bootstrap, topic)
        .iter()
        .map(|r| serde_json::from_str::<Value>(r.value_str()).unwrap())
        .map(|v| (v["seq"].as_str().unwrap().to_string(), v))
        .collect()
}

/// The expected left-join row of event `seq` on `id` against `table`.
fn lookup(seq: &str, id: &str, table: &Devices) -> Value {
    match table.get(id) {
        Some((owner, tier)) => json!({"seq": seq, "id": id, "owner": owner, "tier": tier}),
        None => json!({"seq": seq, "id": id, "owner": null, "tier": null}),
    }
}

#[test]
fn stream_table_joins_see_the_loaded_table_and_its_updates() {
    let b = broker();
    let (table_topic, stream_topic) = (unique("devices"), unique("events"));
    create_compacted(&b, &table_topic);
    b.create_topic(&stream_topic, 2);
    let mut table = Devices::new();
    // Before the start: d1 is overwritten (the latest value wins), d2 deleted by a tombstone.
    let initial: Vec<(String, (String, i64))> = (0..10).map(|i| (format!("d{i}"), (format!("owner-{i}"), i % 3))).collect();
    let initial: Vec<(&str, Option<(&str, i64)>)> = initial.iter().map(|(id, (o, t))| (id.as_str(), Some((o.as_str(), *t)))).collect();
    write_table(&b.bootstrap, &table_topic, &initial, &mut table);
    write_table(&b.bootstrap, &table_topic, &[("d1", Some(("new-owner-1", 7))), ("d2", None)], &mut table);
    let ids: Vec<String> = (0..60).map(|i| format!("d{}", i % 12)).collect();
    events(&stream_topic, &b.bootstrap, "a", &ids);

    let (left_out, inner_out) = (unique("left"), unique("inner"));
    let text = format!(
        "{}sources:
  events: {{ topic: {stream_topic}, schema: {{ id: string, seq: string, time: timestamp }}, partition_key: [id] }}
  devices: {{ topic: {table_topic}, kind: table, primary_key: [id], schema: {{ id: string, owner: string, tier: long }} }}
sinks:
  left: {{ topic: {left_out} }}
  inner: {{ topic: {inner_out} }}
queries:
  - {{ name: enrich_left, sink: left, sql: 'SELECT e.seq, e.id, d.owner, d.tier FROM events e LEFT JOIN devices d ON e.id = d.id' }}
  - {{ name: enrich_inner, sink: inner, sql: 'SELECT e.seq, e.id, d.owner, d.tier FROM events e JOIN devices d ON e.id = d.id' }}
",
        head(&b)
    );
    let run = Running::start(b.plan(&text, 2), "a", false, false);
    wait_for("the first events joined", Duration::from_secs(30), || count(&b.bootstrap, &left_out) >= ids.len());
    let mut want: Vec<Value> = ids.iter().enumerate().map(|(i, id)| lookup(&format!("a-{i}"), id, &table)).collect();

    // While running: d3 changes owner, d4 is deleted, d10 appears.
    let before = table.clone();
    write_table(&b.bootstrap, &table_topic, &[("d3", Some(("moved-3", 9))), ("d4", None), ("d10", Some(("owner-10", 1)))], &mut table);
    // Probe until the updates are seen (each probe sees the old or the new table).
    let probe_ids: Vec<String> = ["d3", "d4", "d10"].iter().map(|s| s.to_string()).collect();
    let mut round = 0;
    wait_for("the table updates applied", Duration::from_secs(30), || {
        events(&stream_topic, &b.bootstrap, &format!("probe{round}"), &probe_ids);
        round += 1;
        wait_for("probe joined", Duration::from_secs(30), || by_seq(&b, &left_out).contains_key(&format!("probe{}-2", round - 1)));
        let got = by_seq(&b, &left_out);
        (0..3).all(|i| {
            got.get(&format!("probe{}-{i}", round - 1)) == Some(&lookup(&format!("probe{}-{i}", round - 1), &probe_ids[i], &table))
        })
    });
    events(&stream_topic, &b.bootstrap, "b", &ids);
    want.extend(ids.iter().enumerate().map(|(i, id)| lookup(&format!("b-{i}"), id, &table)));
    let total = 2 * ids.len() + 3 * round;
    wait_for("every event joined", Duration::from_secs(30), || count(&b.bootstrap, &left_out) >= total);
    run.stop();

    let mut left = by_seq(&b, &left_out);
    let mut inner = by_seq(&b, &inner_out);
    for r in 0..round {
        for (i, id) in probe_ids.iter().enumerate() {
            let seq = format!("probe{r}-{i}");
            let row = left.remove(&seq).unwrap();
            assert!(row == lookup(&seq, id, &before) || row == lookup(&seq, id, &table), "probe {row} saw neither table");
            assert_eq!(inner.remove(&seq).is_some(), !row["owner"].is_null(), "inner and left agree on {seq}");
        }
    }
    let rows = |m: BTreeMap<String, Value>| expected(m.into_values());
    assert_eq!(rows(left), expected(want.clone()), "left join");
    assert_eq!(rows(inner), expected(want.into_iter().filter(|v| !v["owner"].is_null())), "inner join");
}
