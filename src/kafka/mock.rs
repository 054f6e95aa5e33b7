//! librdkafka's in-process mock broker, for the demo and the tests that need no real one.
//! rdkafka's `MockCluster` hides the native handle, and with it the one setting that matters
//! here: the group's initial rebalance delay (3 s, as Kafka's `group.initial.rebalance.delay.ms`),
//! which made every group join on the mock broker wait 3 s. This wrapper owns the cluster
//! through a client created with `test.mock.num.brokers` and sets the delay to zero.
//!
//! The mock broker does not filter aborted records for read_committed consumers, commit
//! transactional offsets or fence producers: it is no proof of exactly-once.

use std::ffi::{CStr, CString};

use rdkafka::bindings as rd;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, Producer};

/// A mock cluster living as long as this value.
pub struct MockBroker {
    /// The client that owns the cluster; the cluster goes with it.
    owner: BaseProducer,
    cluster: *mut rd::rd_kafka_mock_cluster_t,
    bootstrap: String,
}

// The cluster runs on its own librdkafka thread; the calls below are thread-safe C functions
// that post to it.
unsafe impl Send for MockBroker {}
unsafe impl Sync for MockBroker {}

impl MockBroker {
    /// Starts a cluster of `brokers` mock brokers whose groups assign at once.
    pub fn start(brokers: u32) -> Result<MockBroker, KafkaError> {
        let owner: BaseProducer = ClientConfig::new().set("test.mock.num.brokers", brokers.to_string()).create()?;
        // SAFETY: the handle is valid for as long as `owner` lives; the cluster it returns is
        // owned by that handle and destroyed with it, after every use below.
        let cluster = unsafe { rd::rd_kafka_handle_mock_cluster(owner.client().native_ptr()) };
        if cluster.is_null() {
            return Err(KafkaError::ClientCreation("librdkafka created no mock cluster".into()));
        }
        // SAFETY: `cluster` is live (above); the string it returns belongs to the cluster and
        // is copied at once.
        let bootstrap = unsafe {
            rd::rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, 0);
            CStr::from_ptr(rd::rd_kafka_mock_cluster_bootstraps(cluster)).to_string_lossy().into_owned()
        };
        Ok(MockBroker { owner, cluster, bootstrap })
    }

    pub fn bootstrap_servers(&self) -> String {
        self.bootstrap.clone()
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), KafkaError> {
        let name = CString::new(topic).map_err(|_| KafkaError::AdminOpCreation(format!("topic name {topic:?} holds a NUL")))?;
        let _alive = &self.owner;
        // SAFETY: the cluster lives as long as `self.owner`; `name` outlives the call.
        let code = unsafe { rd::rd_kafka_mock_topic_create(self.cluster, name.as_ptr(), partitions, 1) };
        match RDKafkaErrorCode::from(code) {
            RDKafkaErrorCode::NoError => Ok(()),
            e => Err(KafkaError::AdminOp(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use std::time::{Duration, Instant};

    #[test]
    fn a_group_member_is_assigned_without_the_initial_rebalance_delay() {
        let broker = MockBroker::start(1).unwrap();
        broker.create_topic("t", 2).unwrap();
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap_servers())
            .set("group.id", "g")
            .set("enable.partition.eof", "false")
            .create()
            .unwrap();
        c.subscribe(&["t"]).unwrap();
        let started = Instant::now();
        while c.assignment().unwrap().count() == 0 {
            // librdkafka's mock groups hold the first join for 3 s unless told otherwise.
            assert!(started.elapsed() < Duration::from_millis(2500), "the group waited for its initial rebalance delay");
            let _ = c.poll(Duration::from_millis(20));
        }
        assert_eq!(c.assignment().unwrap().count(), 2);
    }
}
