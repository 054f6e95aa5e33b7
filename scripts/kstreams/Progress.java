// How far a consumer group has committed through a topic, polled every 100 ms through Admin
// against the topic's end offsets taken at start: when every partition is committed to its end
// (the run is over), and the rate while 10% to 90% of the records were committed (the steady
// state, without start-up and the tail).

import java.lang.management.ManagementFactory;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;

public class Progress implements AutoCloseable {
    private final Admin admin;
    private final String group;
    private final Map<TopicPartition, Long> end;
    private final long total;

    private Progress(Admin admin, String group, Map<TopicPartition, Long> end) {
        this.admin = admin;
        this.group = group;
        this.end = end;
        this.total = end.values().stream().mapToLong(Long::longValue).sum();
    }

    static Admin admin(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        return Admin.create(p);
    }

    /** The end offsets of every partition of `topic`, now. */
    static Map<TopicPartition, Long> endOffsets(Admin admin, String topic) throws Exception {
        int partitions = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().size();
        Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
        for (int i = 0; i < partitions; i++) {
            latest.put(new TopicPartition(topic, i), OffsetSpec.latest());
        }
        return admin.listOffsets(latest).all().get().entrySet().stream()
            .collect(Collectors.toMap(Map.Entry::getKey, e -> e.getValue().offset()));
    }

    static Progress start(String bootstrap, String group, String topic) throws Exception {
        Admin admin = admin(bootstrap);
        return new Progress(admin, group, endOffsets(admin, topic));
    }

    long total() {
        return total;
    }

    /** Records committed so far, each partition counted up to its end offset. */
    private long committed() throws Exception {
        Map<TopicPartition, OffsetAndMetadata> offsets =
            admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        long sum = 0;
        for (Map.Entry<TopicPartition, Long> e : end.entrySet()) {
            OffsetAndMetadata o = offsets.get(e.getKey());
            sum += Math.min(o == null ? 0 : o.offset(), e.getValue());
        }
        return sum;
    }

    /**
     * Polls until every partition is committed to its end. Returns `end_ms=… wall_ms=…
     * steady_events=… steady_ms=…`: end_ms the Unix time of the first poll that saw the end,
     * wall_ms the time from this JVM's start to it, the steady figures between the first polls
     * that saw 10% and 90% of the records committed.
     */
    String awaitEnd() throws Exception {
        long jvmStart = ManagementFactory.getRuntimeMXBean().getStartTime();
        long at10 = -1, count10 = 0, at90 = -1, count90 = 0;
        while (true) {
            long now = System.currentTimeMillis();
            long done = committed();
            if (at10 < 0 && done >= total / 10) {
                at10 = now;
                count10 = done;
            }
            if (at90 < 0 && done >= total * 9 / 10) {
                at90 = now;
                count90 = done;
            }
            if (done == total) {
                return "end_ms=" + now + " wall_ms=" + (now - jvmStart) + " steady_events=" + (count90 - count10) + " steady_ms=" + (at90 - at10);
            }
            Thread.sleep(100);
        }
    }

    @Override
    public void close() {
        admin.close();
    }
}
