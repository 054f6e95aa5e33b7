//! Avro end to end on the real broker: a source in Confluent's wire format whose producers
//! moved from schema v1 to v2 (a field added with a default) through a Schema Registry, an
//! Avro sink whose schema eddy derives and registers, records with unknown ids or broken
//! bodies dead-lettered; and plain Avro with a schema file. Output exact vs a batch sum.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod registry;

use std::collections::BTreeMap;

use apache_avro::types::Value as Avro;
use apache_avro::Schema as AvroSchema;
use common::*;
use eddy::formats::avro::RegistryClient;
use eddy::gen::rng::Rng;
use registry::TestRegistry;

const DAY: i64 = 86_400_000_000;
const T0: i64 = 1_291_161_600_000_000; // 2010-12-01T00:00:00Z

const V1: &str = r#"{"type":"record","name":"sale","namespace":"retail","fields":[
 {"name":"InvoiceNo","type":"string"},
 {"name":"Quantity","type":"int"},
 {"name":"InvoiceDate","type":{"type":"long","logicalType":"timestamp-millis"}},
 {"name":"UnitPrice","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
 {"name":"CustomerID","type":["null","string"],"default":null}]}"#;

fn v2() -> String {
    V1.replace(r#"{"name":"CustomerID""#, r#"{"name":"Country","type":"string","default":"United Kingdom"},{"name":"CustomerID""#)
}

type Spend = BTreeMap<(Option<String>, Option<String>, i64), f64>;

/// Sales as Avro records, and the expected sum per (customer, country, day).
fn sales(n: usize, rng: &mut Rng, v2_from: usize) -> (Vec<(bool, Avro)>, Spend) {
    let mut expected = Spend::new();
    let mut out = Vec::new();
    for i in 0..n {
        let t_ms = (T0 / 1000) + rng.below(5 * 86_400) as i64 * 1000;
        let qty = rng.below(20) as i32 - 2;
        let cents = rng.below(200) as i32 * 25;
        let customer = (rng.below(10) != 0).then(|| format!("{}", 12_000 + rng.below(40)));
        let newer = i >= v2_from;
        let country = if newer && rng.below(2) == 0 { "France" } else { "United Kingdom" };
        let day = (t_ms * 1000).div_euclid(DAY) * DAY;
        *expected.entry((customer.clone(), Some(country.to_string()), day)).or_default() += f64::from(cents) / 100.0 * f64::from(qty);
        let mut fields = vec![
            ("InvoiceNo".to_string(), Avro::String(format!("{i}"))),
            ("Quantity".to_string(), Avro::Int(qty)),
            ("InvoiceDate".to_string(), Avro::TimestampMillis(t_ms)),
            ("UnitPrice".to_string(), Avro::Decimal(apache_avro::Decimal::from(minimal_bytes(cents)))),
        ];
        if newer {
            fields.push(("Country".to_string(), Avro::String(country.to_string())));
        }
        fields.push((
            "CustomerID".to_string(),
            customer.map_or(Avro::Union(0, Box::new(Avro::Null)), |c| Avro::Union(1, Box::new(Avro::String(c)))),
        ));
        out.push((newer, Avro::Record(fields)));
    }
    (out, expected)
}

/// Two's complement in as few bytes as Java's BigInteger.toByteArray writes (apache-avro's
/// resolution refuses wider bytes than the precision needs).
fn minimal_bytes(x: i32) -> Vec<u8> {
    let mut b = x.to_be_bytes().to_vec();
    while b.len() > 1 && ((b[0] == 0 && b[1] & 0x80 == 0) || (b[0] == 0xff && b[1] & 0x80 != 0)) {
        b.remove(0);
    }
    b
}

fn pipeline(app: &str, bootstrap: &str, topic: &str, out: &str, source_avro: &str, sink_avro: &str) -> String {
    format!(
        r#"app: {app}
kafka: {{ bootstrap_servers: "{bootstrap}" }}
state: {{ dir: "{state}" }}
commit_interval: 100ms
http: {{ listen: "127.0.0.1:0" }}
sources:
  sales:
    topic: {topic}
    format: avro
    avro: {source_avro}
    schema: {{ InvoiceNo: string, Quantity: long, InvoiceDate: timestamp, UnitPrice: double, CustomerID: string?, Country: string? }}
    event_time: InvoiceDate
    watermark_delay: 1000d
    dead_letter_topic: {topic}-dlq
sinks:
  spend: {{ topic: {out}, format: avro, avro: {sink_avro} }}
queries:
  - name: spend
    sink: spend
    sql: |
      SELECT CustomerID, Country, window.start AS day, sum(UnitPrice * Quantity) AS total
      FROM sales GROUP BY CustomerID, Country, window(InvoiceDate, '1 day')
"#,
        state = temp_dir("avro").display()
    )
}

fn output(records: &[eddy::tail::TailRecord], schema: &AvroSchema, header: Option<u32>) -> Spend {
    let mut m = Spend::new();
    for r in records {
        let mut body = r.value.as_deref().unwrap();
        if let Some(id) = header {
            assert_eq!(&body[..5], &[&[0u8][..], &id.to_be_bytes()].concat()[..], "Confluent header with the registered id");
            body = &body[5..];
        }
        let Avro::Record(f) = apache_avro::from_avro_datum(schema, &mut body, None).unwrap() else { panic!() };
        let get = |i: usize| match &f[i].1 {
            Avro::Union(_, v) => (**v).clone(),
            v => v.clone(),
        };
        let customer = match get(0) {
            Avro::String(s) => Some(s),
            _ => None,
        };
        let country = match get(1) {
            Avro::String(s) => Some(s),
            _ => None,
        };
        let (Avro::TimestampMicros(day), Avro::Double(total)) = (get(2), get(3)) else { panic!("{f:?}") };
        assert!(m.insert((customer, country, day), total).is_none(), "a window twice");
    }
    m
}

#[test]
fn avro_through_a_schema_registry_with_evolution_and_dead_letters() {
    let Some(broker) = Broker::real("avro_through_a_schema_registry_with_evolution_and_dead_letters") else { return };
    // EDDY_SCHEMA_REGISTRY_URL points the test at a real registry (Redpanda's, Confluent's,
    // Karapace); otherwise it runs against the test server.
    let external = std::env::var("EDDY_SCHEMA_REGISTRY_URL").ok().filter(|u| !u.is_empty());
    let test_registry = external.is_none().then(TestRegistry::start);
    let url = external.unwrap_or_else(|| test_registry.as_ref().unwrap().url.clone());
    eprintln!("schema registry: {url}");
    let client = RegistryClient::new(&url).unwrap();
    let (topic, out) = (unique("avro-in"), unique("avro-out"));
    broker.create_topic(&topic, 3);
    let subject = format!("{topic}-value");
    let id1 = client.register(&subject, V1).unwrap();
    assert!(client.is_compatible(&subject, &v2()).unwrap(), "a field added with a default is backward compatible");
    let no_default = V1.replace(r#""default":null}]}"#, r#""default":null},{"name":"x","type":"long"}]}"#);
    assert!(!client.is_compatible(&subject, &no_default).unwrap(), "one without a default is not");
    let id2 = client.register(&subject, &v2()).unwrap();
    assert_ne!(id1, id2);
    assert_eq!(client.register(&subject, V1).unwrap(), id1, "registering again returns the same id");
    assert_eq!(client.latest(&subject).unwrap().unwrap().id, id2);
    assert!(client.latest("no-such-subject").unwrap().is_none());
    assert!(client.schema_by_id(9999).unwrap_err().is_not_found());

    let mut rng = Rng::new(3);
    let (records, expected) = sales(4_000, &mut rng, 2_000);
    let (s1, s2) = (AvroSchema::parse_str(V1).unwrap(), AvroSchema::parse_str(&v2()).unwrap());
    let mut payloads: Vec<Vec<u8>> = records
        .into_iter()
        .map(|(newer, rec)| {
            let (id, s) = if newer { (id2, &s2) } else { (id1, &s1) };
            [vec![0], id.to_be_bytes().to_vec(), apache_avro::to_avro_datum(s, rec).unwrap()].concat()
        })
        .collect();
    let bad = [vec![0, 0, 0, 0x27, 0x0f, 2, b'x'], vec![1, 0, 0, 0, 1, 2], payloads[0][..8].to_vec()];
    payloads.extend(bad.iter().cloned());
    let p = rdkafka_producer(&broker.bootstrap);
    for (i, v) in payloads.iter().enumerate() {
        p.send(rdkafka::producer::BaseRecord::<[u8], [u8]>::to(&topic).payload(v).partition((i % 3) as i32)).unwrap();
        if i % 1000 == 0 {
            rdkafka::producer::Producer::flush(&p, std::time::Duration::from_secs(30)).unwrap();
        }
    }
    rdkafka::producer::Producer::flush(&p, std::time::Duration::from_secs(30)).unwrap();

    let sink = format!("{{ registry: \"{url}\" }}");
    let text = pipeline(&unique("avro-app"), &broker.bootstrap, &topic, &out, &sink, &sink);
    Running::start(broker.plan(&text, 3), "a", true, true).join();

    let latest = client.latest(&format!("{out}-value")).unwrap().expect("the output schema was registered under <topic>-value");
    let out_id = latest.id;
    let out_schema = AvroSchema::parse_str(&client.schema_by_id(out_id).unwrap()).unwrap();
    let dead = read(&broker.bootstrap, &format!("{topic}-dlq"));
    let kinds: Vec<&str> = dead.iter().map(|d| d.header("eddy.error.kind").unwrap()).collect();
    let first = dead.first().and_then(|d| d.header("eddy.error.message")).unwrap_or("");
    assert_eq!(dead.len(), 3, "{} dead letters, the first: {first}", dead.len());
    assert_eq!(kinds.iter().filter(|k| **k == "unknown_schema").count(), 1, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "malformed").count(), 2, "{kinds:?}");
    let got = output(&read(&broker.bootstrap, &out), &out_schema, Some(out_id));
    assert!(
        got == expected,
        "v1 records read with v2's default Country, v2 records with theirs: {} rows, {} expected",
        got.len(),
        expected.len()
    );
    if let Some(registry) = test_registry {
        let requests = registry.requests();
        for id in [id1, id2] {
            let fetched = requests.iter().filter(|r| **r == format!("GET /schemas/ids/{id}")).count();
            assert_eq!(fetched, 1, "4,000 records, each schema fetched once (cached): {requests:?}");
        }
    }
}

#[test]
fn plain_avro_with_a_schema_file() {
    let Some(broker) = Broker::real("plain_avro_with_a_schema_file") else { return };
    let (topic, out) = (unique("plain-in"), unique("plain-out"));
    broker.create_topic(&topic, 2);
    let file = temp_dir("avsc").join("sale.avsc");
    std::fs::write(&file, V1).unwrap();
    let mut rng = Rng::new(9);
    let (records, expected) = sales(1_000, &mut rng, usize::MAX);
    let s1 = AvroSchema::parse_str(V1).unwrap();
    let p = rdkafka_producer(&broker.bootstrap);
    for (_, rec) in records {
        let body = apache_avro::to_avro_datum(&s1, rec).unwrap();
        p.send(rdkafka::producer::BaseRecord::<[u8], [u8]>::to(&topic).payload(&body)).unwrap();
        p.poll(std::time::Duration::ZERO);
    }
    rdkafka::producer::Producer::flush(&p, std::time::Duration::from_secs(30)).unwrap();
    let source = format!("{{ schema_file: \"{}\" }}", file.display());
    let text = pipeline(&unique("plain-app"), &broker.bootstrap, &topic, &out, &source, "{}");
    Running::start(broker.plan(&text, 2), "a", true, true).join();
    use eddy::types::DataType;
    let columns =
        [("CustomerID", DataType::Utf8), ("Country", DataType::Utf8), ("day", eddy::types::TIMESTAMP), ("total", DataType::Float64)];
    let schema = AvroSchema::parse_str(&eddy::formats::avro::derive_schema("spend", &columns)).unwrap();
    let got = output(&read(&broker.bootstrap, &out), &schema, None);
    let mut without_country = Spend::new();
    for ((c, _, d), v) in expected {
        *without_country.entry((c, None, d)).or_default() += v;
    }
    assert_eq!(got, without_country, "v1 records have no Country: NULL");
}

fn rdkafka_producer(bootstrap: &str) -> rdkafka::producer::BaseProducer {
    rdkafka::ClientConfig::new().set("bootstrap.servers", bootstrap).set("linger.ms", "5").create().unwrap()
}
