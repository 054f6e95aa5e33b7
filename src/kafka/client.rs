//! librdkafka configuration for each client eddy creates, built from typed pipeline fields
//! plus the raw `kafka.properties` overrides (which the config check keeps from clashing).

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};

use crate::config::{PipelineConfig, StartFrom};

fn base(c: &PipelineConfig, client_id: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &c.kafka.bootstrap_servers);
    cfg.set("client.id", client_id);
    for (k, v) in &c.kafka.properties {
        cfg.set(k, v);
    }
    cfg.set_log_level(RDKafkaLogLevel::Warning);
    cfg
}

/// The group consumer: read_committed under exactly-once, offsets committed by eddy only,
/// the range assignor so that same-numbered partitions of co-partitioned topics meet.
pub fn group_consumer(c: &PipelineConfig, instance: &str, exactly_once: bool, start: StartFrom) -> ClientConfig {
    let mut cfg = base(c, &format!("{}-{instance}", c.app));
    cfg.set("group.id", &c.app);
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
    cfg
}

/// A consumer without a group, for changelog restore: it reads to the end as fast as the
/// broker serves, without waiting for more data at the end of a partition.
pub fn plain_consumer(c: &PipelineConfig, client_id: &str) -> ClientConfig {
    let mut cfg = base(c, client_id);
    cfg.set("fetch.wait.max.ms", "10");
    cfg.set("max.partition.fetch.bytes", "16777216");
    cfg.set("fetch.max.bytes", "67108864");
    cfg.set("group.id", format!("{}-restore", c.app));
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

/// `<app>-<instance>`: stable across restarts of the same instance, so a restarted instance
/// fences its predecessor.
pub fn transactional_id(app: &str, instance: &str) -> String {
    format!("{app}-{instance}")
}

/// The admin client.
pub fn admin(c: &PipelineConfig) -> ClientConfig {
    base(c, &format!("{}-admin", c.app))
}
