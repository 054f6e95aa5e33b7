// Kafka helpers of scripts/bench-kstreams.sh, each one bounded by the script's `timeout`:
//
//   java Bench topic    BOOTSTRAP TOPIC PARTITIONS   create a topic, time retention off
//   java Bench sentinel BOOTSTRAP TOPIC TIME         append one record with event time TIME to
//                                                    each partition that holds records
//   java Bench watch    BOOTSTRAP GROUP TOPIC        print `ready`, then Progress' `done …` line
//                                                    once GROUP has committed TOPIC to its end
//   java Bench dump     BOOTSTRAP TOPIC...           print `TOPIC<tab>VALUE` for every committed
//                                                    record (read_committed, up to the end)
//   java Bench clean    BOOTSTRAP PREFIX             delete the topics and groups named PREFIX…

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.RemoveMembersFromConsumerGroupOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class Bench {
    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            usage();
        }
        String bootstrap = args[1];
        switch (args[0]) {
            case "topic" -> topic(bootstrap, args[2], Integer.parseInt(args[3]));
            case "sentinel" -> sentinel(bootstrap, args[2], args[3]);
            case "watch" -> watch(bootstrap, args[2], args[3]);
            case "dump" -> dump(bootstrap, List.of(args).subList(2, args.length));
            case "clean" -> clean(bootstrap, args[2]);
            default -> usage();
        }
    }

    static void usage() {
        System.err.println("usage: Bench topic|sentinel|watch|dump|clean BOOTSTRAP … (see Bench.java)");
        System.exit(2);
    }

    static void topic(String bootstrap, String name, int partitions) throws Exception {
        try (Admin admin = Progress.admin(bootstrap)) {
            NewTopic t = new NewTopic(name, partitions, (short) 1).configs(Map.of("retention.ms", "-1"));
            admin.createTopics(List.of(t)).all().get();
        }
    }

    static KafkaConsumer<byte[], byte[]> consumer(String bootstrap) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        return new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    /**
     * The sentinel of a partition copies the key and fields of its last record with `time` set
     * to TIME: the same action, so the same group and partition as the records it follows.
     */
    static void sentinel(String bootstrap, String topic, String time) throws Exception {
        ObjectMapper json = new ObjectMapper();
        List<ProducerRecord<byte[], byte[]>> sentinels = new ArrayList<>();
        try (Admin admin = Progress.admin(bootstrap); KafkaConsumer<byte[], byte[]> consumer = consumer(bootstrap)) {
            for (Map.Entry<TopicPartition, Long> e : Progress.endOffsets(admin, topic).entrySet()) {
                if (e.getValue() == 0) {
                    continue;
                }
                TopicPartition tp = e.getKey();
                consumer.assign(List.of(tp));
                consumer.seek(tp, e.getValue() - 1);
                ConsumerRecord<byte[], byte[]> last = null;
                for (int i = 0; i < 50 && last == null; i++) {
                    for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                        last = r;
                    }
                }
                if (last == null) {
                    throw new IllegalStateException("cannot read the last record of " + tp);
                }
                ObjectNode value = (ObjectNode) json.readTree(last.value());
                value.put("time", time);
                value.put("id", "sentinel");
                long ts = java.time.Instant.parse(time).toEpochMilli();
                sentinels.add(new ProducerRecord<>(topic, tp.partition(), ts, last.key(), json.writeValueAsBytes(value)));
            }
        }
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            for (ProducerRecord<byte[], byte[]> r : sentinels) {
                producer.send(r).get();
            }
        }
        System.out.println(sentinels.size());
    }

    static void watch(String bootstrap, String group, String topic) throws Exception {
        try (Progress progress = Progress.start(bootstrap, group, topic)) {
            System.out.println("ready");
            System.out.flush();
            System.out.println("done " + progress.awaitEnd());
        }
    }

    static void dump(String bootstrap, List<String> topics) throws Exception {
        try (Admin admin = Progress.admin(bootstrap); KafkaConsumer<byte[], byte[]> consumer = consumer(bootstrap)) {
            for (String topic : topics) {
                // read_committed end offsets are the last stable offsets: nothing committed lies beyond.
                Map<TopicPartition, Long> end = consumer.endOffsets(Progress.endOffsets(admin, topic).keySet());
                consumer.assign(end.keySet());
                consumer.seekToBeginning(end.keySet());
                while (end.entrySet().stream().anyMatch(e -> consumer.position(e.getKey()) < e.getValue())) {
                    for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                        if (r.value() == null) {
                            continue;
                        }
                        System.out.println(topic + "\t" + new String(r.value(), java.nio.charset.StandardCharsets.UTF_8));
                    }
                }
            }
        }
    }

    /** Kafka Streams does not leave its group on close: its members are removed first. */
    static void clean(String bootstrap, String prefix) throws Exception {
        try (Admin admin = Progress.admin(bootstrap)) {
            List<String> topics = admin.listTopics().names().get().stream().filter(t -> t.startsWith(prefix)).toList();
            admin.deleteTopics(topics).all().get();
            List<String> groups = admin.listGroups().all().get().stream()
                .map(GroupListing::groupId).filter(g -> g.startsWith(prefix)).toList();
            for (String g : groups) {
                try {
                    admin.removeMembersFromConsumerGroup(g, new RemoveMembersFromConsumerGroupOptions()).all().get();
                } catch (java.util.concurrent.ExecutionException e) {
                    // an empty group has no members to remove
                }
            }
            admin.deleteConsumerGroups(groups).all().get();
            System.out.println("deleted " + topics.size() + " topics and " + groups.size() + " groups named " + prefix + "*");
        }
    }
}
