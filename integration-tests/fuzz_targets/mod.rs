//! The decoders and the SQL front end under fuzzing, with the samples mutations start from.

use std::path::Path;
use std::sync::Arc;

use eddy::config::CsvOptions;
use eddy::formats::avro::{AvroDecoder, RegistryClient};
use eddy::formats::{CsvDecoder, CsvEncoder, JsonDecoder};
use eddy::types::{DataType, Field, Schema, TimeUnit, Value};

pub const JSON_SAMPLES: &[&str] = &[
    r#"{"time":"2016-07-26T00:00:00Z","action":"Open","n":3,"x":2.5,"ok":true,"secs":1469491200}"#,
    r#"{"time":1469491200000,"action":"Cl\u006fse","extra":[1,{"a":[null,2e300]}],"n":-9223372036854775808}"#,
    r#"{"time":"2016-07-26 10:15:00.123456789+02:00","action":"","x":-0.0,"ok":false,"secs":1.5e9}"#,
];

pub const CSV_SAMPLES: &[&str] = &[
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",
    "536365,X,\"SET 7, BABUSHKA \"\"NESTING\"\" BOXES\",1,2010-12-01T08:26:00Z,7.65,,\"\"",
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country",
];

pub const SQL_SAMPLES: &[&str] = &[
    "SELECT action, window.start AS ws, count(*) AS c FROM events GROUP BY action, window(time, '1 hour')",
    "SELECT action, sum(n) / sum(x) AS r, avg(x) FROM events WHERE n > 3 AND action LIKE 'O%' GROUP BY action, window(time, '10 minutes', '5 minutes')",
    "SELECT e.action, f.n FROM events e JOIN events f ON e.action = f.action AND f.time BETWEEN e.time AND e.time + INTERVAL 1 HOUR",
    "SELECT CAST(n AS string), CASE WHEN ok THEN 1 ELSE 2 END, coalesce(x, 0.0), round(x, 2), abs(n) % 7 FROM events",
    "SELECT action, session_window.start, count(*) FROM events GROUP BY action, session_window(time, '5 minutes')",
];

pub const SQL_TOKENS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "HAVING",
    "JOIN",
    "ON",
    "AND",
    "OR",
    "NOT",
    "AS",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "window(time,",
    "'1 hour')",
    "session_window(time,",
    "window.start",
    "window.end",
    "count(*)",
    "sum(",
    "avg(",
    "min(",
    "max(",
    "CAST(",
    "AS",
    "string)",
    "INTERVAL",
    "1",
    "HOUR",
    "events",
    "e",
    "f",
    "action",
    "n",
    "x",
    "ok",
    "time",
    "secs",
    "(",
    ")",
    ",",
    "+",
    "-",
    "*",
    "/",
    "%",
    "=",
    "<",
    ">=",
    "<>",
    "NULL",
    "TRUE",
    "'a'",
    "0",
    "-1",
    "1e308",
    "9223372036854775807",
    "DISTINCT",
    "LIMIT",
    "ORDER",
    "UNION",
    "SELECT *",
    ".",
    "IS",
    "IN",
    "BETWEEN",
    "LIKE",
    "coalesce(",
    "round(",
    "dropDuplicates",
    ";",
];

fn schema() -> Schema {
    let mut secs = Field::new("secs", eddy::types::TIMESTAMP, true);
    secs.numeric_unit = TimeUnit::Seconds;
    Schema::new(vec![
        Field::new("time", eddy::types::TIMESTAMP, false),
        Field::new("action", DataType::Utf8, false),
        Field::new("n", DataType::Int64, true),
        Field::new("x", DataType::Float64, true),
        Field::new("ok", DataType::Boolean, true),
        secs,
    ])
}

fn retail() -> Schema {
    Schema::new(vec![
        Field::new("InvoiceNo", DataType::Utf8, false),
        Field::new("StockCode", DataType::Utf8, true),
        Field::new("Description", DataType::Utf8, true),
        Field::new("Quantity", DataType::Int64, false),
        Field::new("InvoiceDate", eddy::types::TIMESTAMP, false),
        Field::new("UnitPrice", DataType::Float64, false),
        Field::new("CustomerID", DataType::Float64, true),
        Field::new("Country", DataType::Utf8, true),
    ])
}

pub fn json_decoder() -> JsonDecoder {
    JsonDecoder::new(&schema(), &[true; 6])
}

pub fn decode_json(d: &JsonDecoder, b: &[u8]) {
    let mut row = vec![Value::Null; 6];
    let _ = d.decode(b, &mut row);
}

pub fn csv_decoder() -> CsvDecoder {
    CsvDecoder::new(&retail(), &[true; 8], &CsvOptions::default()).unwrap()
}

pub fn decode_csv(d: &CsvDecoder, b: &[u8]) {
    let mut row = vec![Value::Null; 8];
    let _ = d.decode(b, &mut row);
}

/// Any strings (or NULLs) written as a CSV line read back as themselves.
pub fn csv_round_trip(fields: &[Option<String>]) {
    let schema = Schema::new((0..fields.len()).map(|i| Field::new(format!("c{i}"), DataType::Utf8, true)).collect());
    let options = CsvOptions { skip_header: Some(false), ..CsvOptions::default() };
    let values: Vec<Value> = fields.iter().map(|f| f.as_deref().map_or(Value::Null, Value::str)).collect();
    let mut line = Vec::new();
    CsvEncoder::new(&options).unwrap().encode(&values, &mut line);
    let mut row = vec![Value::Null; fields.len()];
    CsvDecoder::new(&schema, &vec![true; fields.len()], &options).unwrap().decode(&line, &mut row).unwrap();
    assert_eq!(row, values, "line {:?}", String::from_utf8_lossy(&line));
}

const AVRO: &str = r#"{"type":"record","name":"r","fields":[
 {"name":"time","type":{"type":"long","logicalType":"timestamp-millis"}},
 {"name":"action","type":["null","string"]},
 {"name":"n","type":"int"},
 {"name":"x","type":{"type":"bytes","logicalType":"decimal","precision":20,"scale":4}},
 {"name":"ok","type":{"type":"array","items":{"type":"map","values":"string"}}},
 {"name":"secs","type":{"type":"enum","name":"e","symbols":["A","B"]}}]}"#;

pub fn avro_decoder() -> AvroDecoder {
    AvroDecoder::plain(&schema(), &[true; 6], apache_avro::Schema::parse_str(AVRO).unwrap())
}

pub fn decode_avro(d: &AvroDecoder, b: &[u8]) {
    let mut row = vec![Value::Null; 6];
    let _ = d.decode(b, &mut row);
}

/// A wire-format decoder whose registry knows schema 1 (read with a reader schema that adds
/// a field with a default and drops one); other ids go to a closed port.
pub fn wire_decoder() -> AvroDecoder {
    let client = Arc::new(RegistryClient::new("http://127.0.0.1:1").unwrap());
    client.preload(1, AVRO);
    let reader = AVRO.replace(r#"{"name":"n","type":"int"},"#, r#"{"name":"extra","type":"long","default":7},"#);
    AvroDecoder::with_registry(&schema(), &[true; 6], client, Some(apache_avro::Schema::parse_str(&reader).unwrap()))
}

pub fn decode_wire(d: &AvroDecoder, b: &[u8]) {
    // Ids other than 1 would try the network: keep the fuzzing local.
    if b.len() >= 5 && b[0] == 0 && b[1..5] != [0, 0, 0, 1] {
        return;
    }
    decode_avro(d, b);
}

/// Plans `sql` as the query of a pipeline over `events`.
pub fn plan_sql(sql: &str) {
    let text = format!(
        "app: fuzz\nkafka: {{ bootstrap_servers: \"localhost:9092\" }}\nsources:\n  events:\n    topic: events\n    \
         schema: {{ time: timestamp, action: string, n: long, x: double?, ok: boolean? }}\n    event_time: time\n    \
         watermark_delay: 1h\nsinks:\n  out: {{ topic: out }}\nqueries:\n  - name: q\n    sink: out\n    sql: {}\n",
        serde_json::to_string(sql).unwrap()
    );
    let _ = eddy::pipeline::from_text(Path::new("fuzz.yaml"), &text, |_| None);
}
