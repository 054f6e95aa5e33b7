// The tutorial query (config/tutorial.yaml) in Kafka Streams, for scripts/bench-kstreams.sh:
// hourly tumbling-window count per action over JSON events {time, action, id}, event time
// `time`, grace 2 h (eddy's watermark_delay), exactly_once_v2, commit interval 100 ms,
// in-memory stores, one final result per window (suppress until the window closes).
//
//   java Tutorial BOOTSTRAP APPLICATION_ID INPUT_TOPIC OUTPUT_TOPIC STATE_DIR
//
// The input is keyed by action (eddy gen's default, config/tutorial.yaml's partition_key), so
// the count groups by key and needs no repartition topic, as in eddy. The application stops
// by itself once its committed offsets reach the input's end offsets (taken at start): with
// exactly-once, the transaction that commits those offsets holds every result they caused.
// It prints one line: `done end_ms=… wall_ms=… steady_events=… steady_ms=…` (see Progress).

import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Properties;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.processor.TimestampExtractor;
import org.apache.kafka.streams.state.BuiltInDslStoreSuppliers;
import org.apache.kafka.streams.state.Stores;

public class Tutorial {
    /** One input record, as eddy gen tutorial writes it. */
    public record Event(String time, String action, String id) {}

    static final Duration WINDOW = Duration.ofHours(1);
    static final Duration GRACE = Duration.ofHours(2);
    static final DateTimeFormatter RFC3339_MILLIS =
        DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);

    /** Event time is the JSON field `time` (RFC 3339), parsed once by the value serde. */
    static class EventTime implements TimestampExtractor {
        @Override
        public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
            return Instant.parse(((Event) record.value()).time()).toEpochMilli();
        }
    }

    static Serde<Event> eventSerde() {
        ObjectMapper json = new ObjectMapper().disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);
        Deserializer<Event> read = (topic, bytes) -> {
            try {
                return json.readValue(bytes, Event.class);
            } catch (java.io.IOException e) {
                throw new org.apache.kafka.common.errors.SerializationException(e);
            }
        };
        return Serdes.serdeFrom((topic, event) -> { throw new UnsupportedOperationException(); }, read);
    }

    /** The output record eddy writes: {"action","window_start","window_end","count"}. */
    static String result(String action, long start, long end, long count) {
        return "{\"action\":\"" + action + "\",\"window_start\":\"" + RFC3339_MILLIS.format(Instant.ofEpochMilli(start))
            + "\",\"window_end\":\"" + RFC3339_MILLIS.format(Instant.ofEpochMilli(end)) + "\",\"count\":" + count + "}";
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: Tutorial BOOTSTRAP APPLICATION_ID INPUT_TOPIC OUTPUT_TOPIC STATE_DIR");
            System.exit(2);
        }
        String bootstrap = args[0], appId = args[1], input = args[2], output = args[3], stateDir = args[4];

        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(input, Consumed.with(Serdes.String(), eventSerde()).withTimestampExtractor(new EventTime()))
            .groupByKey()
            .windowedBy(TimeWindows.ofSizeAndGrace(WINDOW, GRACE))
            .count(Materialized.as(Stores.inMemoryWindowStore("hourly-counts", WINDOW.plus(GRACE), WINDOW, false)))
            .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()).withName("final-counts"))
            .toStream()
            .map((w, count) -> KeyValue.pair(w.key(), result(w.key(), w.window().start(), w.window().end(), count)))
            .to(output, Produced.with(Serdes.String(), Serdes.String()));

        Properties p = new Properties();
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        p.put(StreamsConfig.DSL_STORE_SUPPLIERS_CLASS_CONFIG, BuiltInDslStoreSuppliers.InMemoryDslStoreSuppliers.class);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.getInteger("threads", 1));
        p.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");

        try (Progress progress = Progress.start(bootstrap, appId, input);
             KafkaStreams streams = new KafkaStreams(builder.build(), p)) {
            streams.setUncaughtExceptionHandler(e -> {
                e.printStackTrace();
                Runtime.getRuntime().halt(1);
                return null;
            });
            streams.start();
            System.out.println("done " + progress.awaitEnd());
            streams.close(Duration.ofSeconds(30));
        }
    }
}
