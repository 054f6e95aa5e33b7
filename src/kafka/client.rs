//! librdkafka configuration for each client eddy creates, built from typed pipeline fields
//! plus the raw `kafka.properties` overrides (which the config check keeps from clashing).

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::config::security::librdkafka_settings;
use crate::config::{PipelineConfig, StartFrom};

fn base(c: &PipelineConfig, client_id: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &c.kafka.bootstrap_servers);
    cfg.set("client.id", client_id);
    for (k, v) in &c.kafka.properties {
        cfg.set(k, v);
    }
    if let Some(security) = &c.kafka.security {
        // Secrets were read at load time; only librdkafka sees their values.
        for (k, v) in librdkafka_settings(security) {
            cfg.set(k, v.expose());
        }
    }
    cfg.set_log_level(RDKafkaLogLevel::Warning);
    cfg
}

/// The group consumer: read_committed under exactly-once, offsets committed by eddy only,
/// the range assignor so that same-numbered partitions of co-partitioned topics meet. Its
/// client id ends in `@` and the instance's HTTP address (`advertised`), which the group's
/// description shows every member: how an instance finds the owners of other partitions.
pub fn group_consumer(c: &PipelineConfig, instance: &str, exactly_once: bool, start: StartFrom, advertised: Option<&str>) -> ClientConfig {
    let client_id = match advertised {
        Some(a) => format!("{}-{instance}{ADVERTISED}{a}", c.app),
        None => format!("{}-{instance}", c.app),
    };
    let mut cfg = base(c, &client_id);
    cfg.set("group.id", crate::names::consumer_group(&c.app));
    if c.kafka.static_membership {
        // A restarted instance (same pod name) takes its partitions back without a rebalance.
        cfg.set("group.instance.id", format!("{}-{instance}", c.app));
    }
    cfg.set("enable.auto.commit", "false");
    cfg.set("enable.auto.offset.store", "false");
    cfg.set("enable.partition.eof", "true");
    cfg.set("isolation.level", if exactly_once { "read_committed" } else { "read_uncommitted" });
    cfg.set(
        "auto.offset.reset",
        match start {
            StartFrom::Earliest => "earliest",
            StartFrom::Latest => "latest",
        },
    );
    if !c.kafka.properties.contains_key("partition.assignment.strategy") {
        cfg.set("partition.assignment.strategy", "range");
    }
    if !c.kafka.properties.contains_key("statistics.interval.ms") {
        cfg.set("statistics.interval.ms", "5000");
    }
    // librdkafka's default (1 s) stalls a catching-up partition for a second each time its
    // local queue passes queued.min.messages; re-check soon instead (memory stays bounded by
    // queued.max.messages.kbytes).
    if !c.kafka.properties.contains_key("fetch.queue.backoff.ms") {
        cfg.set("fetch.queue.backoff.ms", "10");
    }
    // librdkafka prefetches until each partition's local queue holds queued.min.messages
    // (100,000 by default): with 4 partitions of small records that alone was ~40 MB of
    // RSS. 10,000 is 100 ms of input at 100K records/s per partition, refilled every
    // fetch.queue.backoff.ms; the end-to-end tutorial benchmark read as fast with it
    // (docs/benchmarks.md, change 11).
    if !c.kafka.properties.contains_key("queued.min.messages") {
        cfg.set("queued.min.messages", "10000");
    }
    cfg
}

/// What separates a group member's client id from the HTTP address it advertises.
pub const ADVERTISED: char = '@';

/// A consumer without a group, for changelog restore: it reads to the end as fast as the
/// broker serves, without waiting for more data at the end of a partition.
pub fn plain_consumer(c: &PipelineConfig, client_id: &str) -> ClientConfig {
    let mut cfg = base(c, client_id);
    cfg.set("fetch.wait.max.ms", "10");
    // librdkafka postpones a partition's next fetch by fetch.queue.backoff.ms (1 s) whenever
    // its local queue is over queued.min.messages; a restore drains that queue at once.
    cfg.set("fetch.queue.backoff.ms", "5");
    cfg.set("max.partition.fetch.bytes", "16777216");
    cfg.set("fetch.max.bytes", "67108864");
    cfg.set("group.id", crate::names::restore_group(&c.app));
    cfg.set("enable.auto.commit", "false");
    cfg.set("enable.auto.offset.store", "false");
    cfg.set("enable.partition.eof", "true");
    cfg.set("isolation.level", "read_committed");
    cfg.set("auto.offset.reset", "earliest");
    cfg
}

/// The process's producer: idempotent always; transactional under exactly-once.
pub fn producer(c: &PipelineConfig, instance: &str, exactly_once: bool) -> ClientConfig {
    let mut cfg = base(c, &format!("{}-{instance}-producer", c.app));
    cfg.set("enable.idempotence", "true");
    if exactly_once {
        cfg.set("transactional.id", transactional_id(&c.app, instance));
        cfg.set("transaction.timeout.ms", (c.kafka.transaction_timeout.micros() / 1000).to_string());
    }
    if !c.kafka.properties.contains_key("linger.ms") {
        cfg.set("linger.ms", "5");
    }
    if !c.kafka.properties.contains_key("partitioner") {
        // The Java client's partitioner, so keys land where Kafka Streams and Spark put them.
        cfg.set("partitioner", "murmur2_random");
    }
    cfg
}

/// librdkafka's error callback, forwarded to tracing. Failed authentication and TLS handshakes
/// arrive here and nowhere else (rdkafka's default hands them to the `log` crate, which eddy
/// does not install), so without it a wrong password reads as a bare transport failure.
pub fn forward_error(client: &str, error: &KafkaError, reason: &str) {
    match error.rdkafka_error_code() {
        // The end of a partition is news, not trouble (bounded runs ask for it).
        Some(RDKafkaErrorCode::PartitionEOF) => tracing::debug!(target: "librdkafka", client, error = %error, "{reason}"),
        Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed | RDKafkaErrorCode::SSL) => {
            tracing::error!(target: "librdkafka", client, error = %error, "Kafka authentication or TLS failed: {reason}")
        }
        _ => tracing::warn!(target: "librdkafka", client, error = %error, "{reason}"),
    }
}

/// `<app>-<instance>`: stable across restarts of the same instance, so a restarted instance
/// fences its predecessor.
pub fn transactional_id(app: &str, instance: &str) -> String {
    crate::names::transactional_id(app, instance)
}

/// The admin client.
pub fn admin(c: &PipelineConfig) -> ClientConfig {
    base(c, &format!("{}-admin", c.app))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rdkafka::producer::BaseProducer;

    use super::*;

    const SECURE: &str = "app: s\nkafka:\n  bootstrap_servers: 127.0.0.1:1\n  security:\n    protocol: SASL_SSL\n    sasl: { mechanism: SCRAM-SHA-512, username: eddy, password_env: PW }\nsources:\n  e: { topic: e, schema: { a: string } }\nsinks:\n  o: { topic: o, output_mode: update }\nqueries:\n  - { name: q, sink: o, sql: \"SELECT a, count(*) AS n FROM e GROUP BY a\" }\n";

    #[test]
    fn every_client_gets_the_security_settings_and_librdkafka_accepts_them() {
        let c = crate::config::parse(Path::new("p.yaml"), SECURE, |n| (n == "PW").then(|| "pw-value".to_string())).unwrap().config;
        for cfg in [
            group_consumer(&c, "i", true, StartFrom::Earliest, Some("10.0.0.1:9464")),
            plain_consumer(&c, "r"),
            producer(&c, "i", true),
            admin(&c),
        ] {
            assert_eq!(cfg.get("security.protocol"), Some("SASL_SSL"));
            assert_eq!(cfg.get("sasl.mechanisms"), Some("SCRAM-SHA-512"));
            assert_eq!(cfg.get("sasl.username"), Some("eddy"));
            assert_eq!(cfg.get("sasl.password"), Some("pw-value"));
        }
        // Fails when librdkafka is built without OpenSSL (the rdkafka crate's `ssl` feature).
        let created = producer(&c, "i", false).create::<BaseProducer>();
        assert!(created.is_ok(), "librdkafka refused SASL_SSL/SCRAM: {:?}", created.err());
    }
}
