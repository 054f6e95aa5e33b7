//! The group consumer's context: rebalances are handed to a [`RebalanceHandler`] (the engine),
//! which commits or aborts before partitions are given up and restores state before they are
//! taken, inside librdkafka's rebalance callback (Vector's `pre_rebalance` pattern).

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaResult;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Statistics, TopicPartitionList};

/// Receives partition changes synchronously, before they take effect.
pub trait RebalanceHandler: Send + Sync + Sized + 'static {
    /// Partitions are about to be taken away (`lost`: they already belong to someone else).
    fn on_revoke(&self, consumer: &BaseConsumer<GroupContext<Self>>, partitions: &TopicPartitionList, lost: bool);
    /// Partitions are about to be assigned.
    fn on_assign(&self, consumer: &BaseConsumer<GroupContext<Self>>, partitions: &TopicPartitionList);
    /// librdkafka's periodic statistics.
    fn on_stats(&self, _stats: &Statistics) {}
}

/// The consumer's context.
pub struct GroupContext<H> {
    pub handler: H,
}

impl<H: RebalanceHandler> ClientContext for GroupContext<H> {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        forward_log("consumer", level, fac, message);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        crate::kafka::client::forward_error("consumer", &error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        self.handler.on_stats(&statistics);
    }
}

impl<H: RebalanceHandler> ConsumerContext for GroupContext<H> {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.handler.on_assign(consumer, tpl);
                let r = if cooperative { consumer.incremental_assign(tpl) } else { consumer.assign(tpl) };
                log_failure("assign", r);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.handler.on_revoke(consumer, tpl, consumer.assignment_lost());
                let r = if cooperative { consumer.incremental_unassign(tpl) } else { consumer.unassign() };
                log_failure("unassign", r);
            }
            other => {
                tracing::error!(error = ?other, "the consumer group rebalance failed: {other:?}; giving up all partitions");
                self.handler.on_revoke(consumer, tpl, true);
                log_failure("unassign", consumer.unassign());
            }
        }
    }
}

fn log_failure(what: &str, r: KafkaResult<()>) {
    if let Err(e) = r {
        tracing::error!(error = %e, "the consumer could not {what} partitions: {e}");
    }
}

/// librdkafka's own log lines, forwarded to tracing at the matching level.
pub fn forward_log(client: &str, level: RDKafkaLogLevel, fac: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", client, facility = fac, "{message}")
        }
        // Raw properties go to every client; each client warns about the ones it ignores.
        RDKafkaLogLevel::Warning if fac == "CONFWARN" => tracing::debug!(target: "librdkafka", client, facility = fac, "{message}"),
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", client, facility = fac, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => tracing::info!(target: "librdkafka", client, facility = fac, "{message}"),
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", client, facility = fac, "{message}"),
    }
}
