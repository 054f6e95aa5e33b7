use std::sync::Arc;

use apache_avro::types::Value as Avro;
use apache_avro::Schema as AvroSchema;

use super::*;
use crate::time::parse_timestamp;
use crate::types::{DataType, Field};

const ALL_TYPES: &str = r#"{"type":"record","name":"all","fields":[
 {"name":"b","type":"boolean"},
 {"name":"i","type":"int"},
 {"name":"l","type":"long"},
 {"name":"f","type":"float"},
 {"name":"d","type":"double"},
 {"name":"by","type":"bytes"},
 {"name":"s","type":"string"},
 {"name":"e","type":{"type":"enum","name":"suit","symbols":["HEARTS","SPADES"]}},
 {"name":"fx","type":{"type":"fixed","name":"f4","size":4}},
 {"name":"day","type":{"type":"int","logicalType":"date"}},
 {"name":"tms","type":{"type":"long","logicalType":"timestamp-millis"}},
 {"name":"tus","type":{"type":"long","logicalType":"timestamp-micros"}},
 {"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
 {"name":"decs","type":{"type":"fixed","name":"d8","size":8,"logicalType":"decimal","precision":12,"scale":3}},
 {"name":"u","type":{"type":"string","logicalType":"uuid"}},
 {"name":"tod","type":{"type":"int","logicalType":"time-millis"}},
 {"name":"opt","type":["null","string"],"default":null},
 {"name":"opt2","type":["null","long"],"default":null},
 {"name":"arr","type":{"type":"array","items":"long"}}
]}"#;

fn eddy_schema() -> Schema {
    let f = |n: &str, t: DataType| Field::new(n, t, true);
    Schema::new(vec![
        f("b", DataType::Boolean),
        f("i", DataType::Int64),
        f("l", DataType::Int64),
        f("f", DataType::Float64),
        f("d", DataType::Float64),
        f("by", DataType::Utf8),
        f("s", DataType::Utf8),
        f("e", DataType::Utf8),
        f("fx", DataType::Utf8),
        f("day", crate::types::timestamp_type()),
        f("tms", crate::types::timestamp_type()),
        f("tus", crate::types::timestamp_type()),
        f("dec", DataType::Float64),
        f("decs", DataType::Utf8),
        f("u", DataType::Utf8),
        f("tod", DataType::Int64),
        f("opt", DataType::Utf8),
        f("opt2", DataType::Int64),
    ])
}

fn all_types_record(opt: Option<&str>) -> Avro {
    let t = parse_timestamp("2010-12-01T08:26:00.123456Z").unwrap();
    Avro::Record(vec![
        ("b".into(), Avro::Boolean(true)),
        ("i".into(), Avro::Int(-7)),
        ("l".into(), Avro::Long(1 << 40)),
        ("f".into(), Avro::Float(1.5)),
        ("d".into(), Avro::Double(-0.1)),
        ("by".into(), Avro::Bytes(b"raw".to_vec())),
        ("s".into(), Avro::String("héllo".into())),
        ("e".into(), Avro::Enum(1, "SPADES".into())),
        ("fx".into(), Avro::Fixed(4, b"abcd".to_vec())),
        ("day".into(), Avro::Date(14_944)),
        ("tms".into(), Avro::TimestampMillis(t / 1000)),
        ("tus".into(), Avro::TimestampMicros(t)),
        ("dec".into(), Avro::Decimal(apache_avro::Decimal::from((-12345i32).to_be_bytes()))),
        ("decs".into(), Avro::Decimal(apache_avro::Decimal::from(1_234_567i64.to_be_bytes()))),
        ("u".into(), Avro::Uuid(apache_avro::Uuid::from_u128(0x1234))),
        ("tod".into(), Avro::TimeMillis(30_000)),
        ("opt".into(), opt.map_or(Avro::Union(0, Box::new(Avro::Null)), |s| Avro::Union(1, Box::new(Avro::String(s.into()))))),
        ("opt2".into(), Avro::Union(1, Box::new(Avro::Long(5)))),
        ("arr".into(), Avro::Array(vec![Avro::Long(1)])),
    ])
}

#[test]
fn every_avro_type_reads_into_its_column() {
    let writer = AvroSchema::parse_str(ALL_TYPES).unwrap();
    let body = apache_avro::to_avro_datum(&writer, all_types_record(Some("x"))).unwrap();
    let d = AvroDecoder::plain(&eddy_schema(), &[true; 18], writer.clone());
    let mut row = vec![Value::Null; 18];
    d.decode(&body, &mut row).unwrap();
    let t = parse_timestamp("2010-12-01T08:26:00.123456Z").unwrap();
    let expected = vec![
        Value::Bool(true),
        Value::Long(-7),
        Value::Long(1 << 40),
        Value::Double(1.5),
        Value::Double(-0.1),
        Value::str("raw"),
        Value::str("héllo"),
        Value::str("SPADES"),
        Value::str("abcd"),
        Value::Timestamp(parse_timestamp("2010-12-01").unwrap()),
        Value::Timestamp(t / 1000 * 1000),
        Value::Timestamp(t),
        Value::Double(-123.45),
        Value::str("1234.567"),
        Value::str("00000000-0000-0000-0000-000000001234"),
        Value::Long(30_000),
        Value::str("x"),
        Value::Long(5),
    ];
    for (i, (got, want)) in row.iter().zip(&expected).enumerate() {
        assert_eq!(got.sql_cmp(want), Some(std::cmp::Ordering::Equal), "column {i}: {got:?} vs {want:?}");
    }
    let body = apache_avro::to_avro_datum(&writer, all_types_record(None)).unwrap();
    d.decode(&body, &mut row).unwrap();
    assert!(row[16].is_null(), "a null union branch is NULL");
}

#[test]
fn bad_bodies_and_types_are_classified() {
    let writer = AvroSchema::parse_str(ALL_TYPES).unwrap();
    let body = apache_avro::to_avro_datum(&writer, all_types_record(Some("x"))).unwrap();
    let d = AvroDecoder::plain(&eddy_schema(), &[true; 18], writer.clone());
    let mut row = vec![Value::Null; 18];
    assert_eq!(d.decode(&body[..body.len() / 2], &mut row).unwrap_err().kind, DecodeErrorKind::Malformed);
    assert_eq!(d.decode(&[body.clone(), vec![0]].concat(), &mut row).unwrap_err().kind, DecodeErrorKind::Malformed);
    let mut wrong = eddy_schema();
    wrong.fields[6].data_type = DataType::Int64;
    let d = AvroDecoder::plain(&wrong, &[true; 18], writer);
    assert_eq!(d.decode(&body, &mut row).unwrap_err().kind, DecodeErrorKind::WrongType);
    let required = Schema::new(vec![Field::new("opt", DataType::Utf8, false)]);
    let d = AvroDecoder::plain(&required, &[true], AvroSchema::parse_str(ALL_TYPES).unwrap());
    let body = apache_avro::to_avro_datum(&AvroSchema::parse_str(ALL_TYPES).unwrap(), all_types_record(None)).unwrap();
    assert_eq!(d.decode(&body, &mut [Value::Null]).unwrap_err().kind, DecodeErrorKind::MissingField);
    // A huge length prefix is refused, not allocated.
    let d = AvroDecoder::plain(
        &Schema::new(vec![Field::new("s", DataType::Utf8, true)]),
        &[true],
        AvroSchema::parse_str(r#"{"type":"record","name":"r","fields":[{"name":"s","type":"string"}]}"#).unwrap(),
    );
    let e = d.decode(&[0xfe, 0xff, 0xff, 0xff, 0x0f], &mut [Value::Null]).unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::Malformed);
}

const V1: &str = r#"{"type":"record","name":"user","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"}]}"#;
const V2: &str = r#"{"type":"record","name":"user","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"},{"name":"score","type":"double","default":1.5}]}"#;
const V3: &str = r#"{"type":"record","name":"user","fields":[{"name":"id","type":"long"},{"name":"score","type":"double","default":1.5}]}"#;

fn framed(id: u32, schema: &str, record: Vec<(&str, Avro)>) -> Vec<u8> {
    let s = AvroSchema::parse_str(schema).unwrap();
    let body = apache_avro::to_avro_datum(&s, Avro::Record(record.into_iter().map(|(k, v)| (k.to_string(), v)).collect())).unwrap();
    [vec![0], id.to_be_bytes().to_vec(), body].concat()
}

#[test]
fn evolution_reads_old_and_new_records() {
    let client = Arc::new(RegistryClient::new("http://127.0.0.1:1").unwrap());
    client.preload(1, V1);
    client.preload(2, V2);
    client.preload(3, V3);
    let old = framed(1, V1, vec![("id", Avro::Long(1)), ("name", Avro::String("ann".into()))]);
    let new = framed(2, V2, vec![("id", Avro::Long(2)), ("name", Avro::String("bob".into())), ("score", Avro::Double(9.0))]);
    let removed = framed(3, V3, vec![("id", Avro::Long(3)), ("score", Avro::Double(4.0))]);
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
    ]);
    let read = |reader: Option<&str>, payload: &[u8]| {
        let d = AvroDecoder::with_registry(&schema, &[true; 3], client.clone(), reader.map(|r| AvroSchema::parse_str(r).unwrap()));
        let mut row = vec![Value::Null; 3];
        d.decode(payload, &mut row).map(|()| row)
    };
    // A field added with a default: the new reader fills it in old records.
    assert_eq!(read(Some(V2), &old).unwrap(), vec![Value::Long(1), Value::str("ann"), Value::Double(1.5)]);
    assert_eq!(read(Some(V2), &new).unwrap(), vec![Value::Long(2), Value::str("bob"), Value::Double(9.0)]);
    // The old reader ignores the new field.
    assert_eq!(read(Some(V1), &new).unwrap(), vec![Value::Long(2), Value::str("bob"), Value::Null]);
    // A field removed: the reader without it reads old records; its column is NULL.
    assert_eq!(read(Some(V3), &old).unwrap(), vec![Value::Long(1), Value::Null, Value::Double(1.5)]);
    assert_eq!(read(Some(V3), &removed).unwrap(), vec![Value::Long(3), Value::Null, Value::Double(4.0)]);
    // Without a reader schema each record is read with its writer's.
    assert_eq!(read(None, &removed).unwrap(), vec![Value::Long(3), Value::Null, Value::Double(4.0)]);
    // A reader that needs a field the writer lacks, without a default, rejects the record.
    assert_eq!(read(Some(V1), &removed).unwrap_err().kind, DecodeErrorKind::Malformed);
    assert_eq!(read(None, &[1, 0, 0, 0, 1]).unwrap_err().kind, DecodeErrorKind::Malformed, "not magic byte 0");
    assert_eq!(read(None, &[0, 0, 0]).unwrap_err().kind, DecodeErrorKind::Malformed, "too short");
    assert_eq!(read(None, &[0, 0, 0, 0, 9, 2]).unwrap_err().kind, DecodeErrorKind::Unavailable, "nothing listens on port 1");
}

#[test]
fn derived_output_schemas_round_trip_through_apache_avro_and_back() {
    let columns = [
        ("customer id", DataType::Utf8),
        ("day", crate::types::timestamp_type()),
        ("total", DataType::Float64),
        ("n", DataType::Int64),
        ("ok", DataType::Boolean),
        ("window", crate::types::window_type()),
        ("w2", crate::types::window_type()),
        ("nothing", DataType::Null),
    ];
    let text = derive_schema("daily-spend", &columns);
    let schema = AvroSchema::parse_str(&text).unwrap();
    let t = parse_timestamp("2010-12-01T00:00:00Z").unwrap();
    let row = vec![
        Value::str("17850"),
        Value::Timestamp(t),
        Value::Double(-2.5),
        Value::Long(-300),
        Value::Bool(false),
        Value::Window { start: t, end: t + 1 },
        Value::Null,
        Value::Null,
    ];
    let e = AvroEncoder::new(&columns, Some(42));
    let mut out = Vec::new();
    e.encode(&row, &mut out);
    assert_eq!(&out[..5], &[0, 0, 0, 0, 42]);
    let v = apache_avro::from_avro_datum(&schema, &mut &out[5..], None).unwrap();
    let Avro::Record(fields) = v else { panic!() };
    assert_eq!(fields[0], ("customer_id".to_string(), Avro::Union(1, Box::new(Avro::String("17850".into())))));
    assert_eq!(fields[1].1, Avro::Union(1, Box::new(Avro::TimestampMicros(t))));
    assert_eq!(fields[6].1, Avro::Union(0, Box::new(Avro::Null)));
    // And eddy reads its own output.
    let client = Arc::new(RegistryClient::new("http://127.0.0.1:1").unwrap());
    client.preload(42, &text);
    let back = Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, true),
        Field::new("day", crate::types::timestamp_type(), true),
        Field::new("total", DataType::Float64, true),
        Field::new("n", DataType::Int64, true),
        Field::new("ok", DataType::Boolean, true),
    ]);
    let d = AvroDecoder::with_registry(&back, &[true; 5], client, None);
    let mut got = vec![Value::Null; 5];
    d.decode(&out, &mut got).unwrap();
    assert_eq!(got, row[..5].to_vec());
}
