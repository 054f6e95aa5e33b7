use std::path::Path;

use super::*;

const GOOD: &str = r#"app: tutorial-counts
kafka:
  bootstrap_servers: localhost:9092
sources:
  events:
    topic: events
    format: json
    schema: { time: timestamp, action: string, id: string? }
    event_time: time
    watermark_delay: 2h
    partition_key: [action]
sinks:
  counts:
    topic: action-counts
    output_mode: append
queries:
  - name: hourly_counts
    sink: counts
    sql: |
      SELECT action, count(*) AS count
      FROM events
      GROUP BY action, window(time, '1 hour')
"#;

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse_err(text: &str) -> Diagnostic {
    *parse(Path::new("p.yaml"), text, no_env).unwrap_err()
}

#[test]
fn a_good_file_parses_with_defaults() {
    let c = parse(Path::new("p.yaml"), GOOD, no_env).unwrap().config;
    assert_eq!(c.commit_interval, ConfigDuration::from_millis(100));
    assert_eq!(c.processing_guarantee, ProcessingGuarantee::ExactlyOnce);
    let events = &c.sources["events"];
    assert_eq!(events.watermark_delay, Some(ConfigDuration::from_micros(7_200_000_000)));
    let names: Vec<_> = events.schema.schema.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["time", "action", "id"], "schema keeps file order");
    assert!(events.schema.schema.fields[2].nullable);
    assert!(!events.schema.schema.fields[1].nullable);
    assert_eq!(events.event_time, Some(EventTimeConfig::Column("time".into())));
}

#[test]
fn unknown_field_names_line_and_column() {
    let text = GOOD.replace("    watermark_delay: 2h", "    watermark_dely: 2h");
    let d = parse_err(&text);
    assert_eq!(d.position, Some((10, 5)), "{d}");
    assert!(d.message.contains("unknown field `watermark_dely`"), "{d}");
    assert!(d.message.contains("watermark_delay"), "lists the expected fields: {d}");
    let shown = d.to_string();
    assert!(shown.contains("p.yaml:10:5"), "{shown}");
    assert!(shown.contains("watermark_dely: 2h"), "{shown}");
}

#[test]
fn bad_duration_says_what_to_write() {
    let text = GOOD.replace("watermark_delay: 2h", "watermark_delay: 2");
    let d = parse_err(&text);
    assert_eq!(d.line(), Some(10), "{d}");
    assert!(d.message.contains("\"2s\""), "{d}");
    let text = GOOD.replace("watermark_delay: 2h", "watermark_delay: 2 fortnights");
    let d = parse_err(&text);
    assert!(d.message.contains("unknown unit \"fortnights\""), "{d}");
}

#[test]
fn wrong_type_is_located() {
    let text = GOOD.replace("partition_key: [action]", "partition_key: { a: 1 }");
    let d = parse_err(&text);
    assert_eq!(d.line(), Some(11), "{d}");
}

#[test]
fn unknown_schema_type() {
    let text = GOOD.replace("action: string,", "action: strng,");
    let d = parse_err(&text);
    assert_eq!(d.line(), Some(8), "{d}");
    assert!(d.message.contains("unknown type \"strng\""), "{d}");
}

#[test]
fn unknown_sink_points_at_the_sink_field() {
    let text = GOOD.replace("    sink: counts", "    sink: cnts");
    let d = parse_err(&text);
    assert_eq!(d.position, Some((18, 11)), "{d}");
    assert!(d.message.contains("sink \"cnts\", which is not defined; sinks: counts"), "{d}");
}

#[test]
fn event_time_must_be_a_timestamp_column() {
    let d = parse_err(&GOOD.replace("event_time: time", "event_time: action"));
    assert!(d.message.contains("declare it as `timestamp`"), "{d}");
    let d = parse_err(&GOOD.replace("event_time: time", "event_time: tme"));
    assert!(d.message.contains("not a column of source events"), "{d}");
    assert_eq!(d.line(), Some(9));
}

#[test]
fn owned_librdkafka_properties_are_rejected() {
    let text =
        GOOD.replace("  bootstrap_servers: localhost:9092", "  bootstrap_servers: localhost:9092\n  properties:\n    group.id: other");
    let d = parse_err(&text);
    assert_eq!(d.line(), Some(5), "{d}");
    assert!(d.message.contains("group id is the pipeline's `app`"), "{d}");
}

#[test]
fn environment_overrides_win() {
    let env = |name: &str| match name {
        ENV_BOOTSTRAP_SERVERS => Some("broker:29092".to_string()),
        ENV_STATE_DIR => Some("/var/lib/eddy".to_string()),
        _ => None,
    };
    let c = parse(Path::new("p.yaml"), GOOD, env).unwrap().config;
    assert_eq!(c.kafka.bootstrap_servers, "broker:29092");
    assert_eq!(c.state.dir, std::path::PathBuf::from("/var/lib/eddy"));
}

#[test]
fn locate_finds_nested_nodes() {
    let q = [PathSeg::key("queries"), PathSeg::Index(0), PathSeg::key("sql")];
    assert_eq!(locate(GOOD, &q), Some((19, 10)));
    let missing = [PathSeg::key("sources"), PathSeg::key("events"), PathSeg::key("late_topic")];
    assert_eq!(locate(GOOD, &missing).map(|p| p.0), Some(6), "falls back to the parent");
}

#[test]
fn every_example_pipeline_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            if let Err(d) = parse(&path, &text, no_env) {
                panic!("{d}");
            }
            seen += 1;
        }
    }
    assert!(seen > 0, "no example pipelines in {}", dir.display());
}
