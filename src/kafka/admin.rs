//! Topic administration at start-up: partition counts of sources, and internal topics
//! (changelogs) created with settings that cannot lose data, or checked when they exist.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientConfig;

/// Admin failures, with the topic they concern.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot create the Kafka admin client: {0}")]
    Client(#[source] KafkaError),
    #[error("cannot read metadata of topic {topic}: {source} (check kafka.bootstrap_servers; with kafka.security, a wrong password or an untrusted certificate also ends this way)")]
    Metadata { topic: String, source: KafkaError },
    #[error("topic {topic} does not exist; create it, or check the topic name in the pipeline file")]
    Missing { topic: String },
    #[error("cannot create topic {topic}: {source}")]
    Create { topic: String, source: KafkaError },
    #[error("topic {topic} has {actual} partitions but eddy needs {expected} ({why}); delete it or align the partition counts")]
    PartitionMismatch { topic: String, actual: usize, expected: usize, why: String },
}

/// What an internal topic must look like.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: usize,
    pub config: BTreeMap<&'static str, String>,
    /// Why eddy needs it, for error messages.
    pub why: String,
}

/// Admin operations on one cluster.
pub struct Admin {
    client: AdminClient<DefaultClientContext>,
    timeout: Duration,
}

impl Admin {
    pub fn new(cfg: &ClientConfig) -> Result<Admin, AdminError> {
        let client = cfg.create().map_err(AdminError::Client)?;
        Ok(Admin { client, timeout: Duration::from_secs(15) })
    }

    /// Partition count of an existing topic; `None` when it does not exist.
    pub fn partitions(&self, topic: &str) -> Result<Option<usize>, AdminError> {
        // Asking for one topic by name makes brokers with auto.create.topics.enable create it
        // (with the broker's default partition count); asking for all topics never does.
        let md = self
            .client
            .inner()
            .fetch_metadata(None, self.timeout)
            .map_err(|source| AdminError::Metadata { topic: topic.to_string(), source })?;
        let Some(t) = md.topics().iter().find(|t| t.name() == topic) else { return Ok(None) };
        match t.error() {
            None => Ok(Some(t.partitions().len())),
            Some(e) if RDKafkaErrorCode::from(e) == RDKafkaErrorCode::UnknownTopicOrPartition => Ok(None),
            Some(e) => Err(AdminError::Metadata { topic: topic.to_string(), source: KafkaError::MetadataFetch(e.into()) }),
        }
    }

    /// Partition count of a topic that must exist.
    pub fn require(&self, topic: &str) -> Result<usize, AdminError> {
        self.partitions(topic)?.filter(|&n| n > 0).ok_or_else(|| AdminError::Missing { topic: topic.to_string() })
    }

    /// Creates `spec` if missing; checks its partition count if present.
    pub fn ensure(&self, spec: &TopicSpec) -> Result<(), AdminError> {
        if let Some(actual) = self.partitions(&spec.name)? {
            if actual != spec.partitions {
                return Err(AdminError::PartitionMismatch {
                    topic: spec.name.clone(),
                    actual,
                    expected: spec.partitions,
                    why: spec.why.clone(),
                });
            }
            return Ok(());
        }
        let mut topic = NewTopic::new(&spec.name, spec.partitions as i32, TopicReplication::Fixed(-1));
        for (k, v) in &spec.config {
            topic = topic.set(k, v);
        }
        let opts = AdminOptions::new().operation_timeout(Some(self.timeout));
        let results = block_on(self.client.create_topics([&topic], &opts))
            .map_err(|source| AdminError::Create { topic: spec.name.clone(), source })?;
        for r in results {
            match r {
                Ok(_) => tracing::info!(topic = %spec.name, partitions = spec.partitions, "created topic {} ({})", spec.name, spec.why),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => return Err(AdminError::Create { topic: name, source: KafkaError::AdminOp(code) }),
            }
        }
        // Wait until the topic's metadata shows its partitions.
        for _ in 0..100 {
            if self.partitions(&spec.name)?.is_some_and(|n| n == spec.partitions) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Admin {
    /// Deletes records before the given offsets (Kafka's DeleteRecords).
    pub fn delete_records(&self, offsets: &rdkafka::TopicPartitionList) -> Result<(), KafkaError> {
        let opts = AdminOptions::new().operation_timeout(Some(self.timeout));
        block_on(self.client.delete_records(offsets, &opts)).map(|_| ())
    }
}

/// Creates `topic` with `partitions` partitions if it does not exist (for `eddy gen`), with
/// time retention off: generated records carry their event times (2016 for the tutorial) as
/// Kafka timestamps, which the broker's default 7-day retention would delete within minutes.
pub fn ensure_topic(bootstrap_servers: &str, topic: &str, partitions: i32) -> Result<(), AdminError> {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap_servers);
    let admin = Admin::new(&cfg)?;
    if admin.partitions(topic)?.is_some() {
        return Ok(());
    }
    admin.ensure(&generated_spec(topic.to_string(), partitions.max(1) as usize))
}

/// A topic `eddy gen` writes: time retention off (see [`ensure_topic`]).
pub fn generated_spec(name: String, partitions: usize) -> TopicSpec {
    let mut config = BTreeMap::new();
    config.insert("retention.ms", "-1".to_string());
    let why = "requested by eddy gen; time retention off, since its records carry old event times as timestamps".into();
    TopicSpec { name, partitions, config, why }
}

/// A changelog topic: compacted, never deleted by time, tombstones kept a day.
pub fn changelog_spec(name: String, partitions: usize, why: String) -> TopicSpec {
    let mut config = BTreeMap::new();
    config.insert("cleanup.policy", "compact".to_string());
    config.insert("delete.retention.ms", "86400000".to_string());
    config.insert("min.compaction.lag.ms", "0".to_string());
    TopicSpec { name, partitions, config, why }
}

/// A repartition topic: data must never expire before it is processed, so time and size
/// retention are off; eddy deletes what every owner has committed (DeleteRecords).
pub fn repartition_spec(name: String, partitions: usize, why: String) -> TopicSpec {
    let mut config = BTreeMap::new();
    config.insert("cleanup.policy", "delete".to_string());
    config.insert("retention.ms", "-1".to_string());
    config.insert("retention.bytes", "-1".to_string());
    TopicSpec { name, partitions, config, why }
}

/// An output topic eddy creates when it is missing.
pub fn output_spec(name: String, partitions: usize, why: String) -> TopicSpec {
    TopicSpec { name, partitions, config: BTreeMap::new(), why }
}

/// Runs a future to completion on this thread: admin calls are rare and short, and their
/// futures are completed by librdkafka's own thread, so no async runtime is needed.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::pin::pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
