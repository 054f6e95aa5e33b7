//! Unit tests of the JSON decoder and encoder: key matching, typed fields, error kinds and
//! messages, and the scanner's edge cases (escapes, numbers, nesting, malformed input).

use super::json::{JsonDecoder, JsonEncoder};
use super::json_oracle::OracleDecoder;
use super::{DecodeError, DecodeErrorKind};
use crate::types::{DataType, Field, Schema, TimeUnit, Value};

fn schema() -> Schema {
    let mut secs = Field::new("secs", crate::types::timestamp_type(), true);
    secs.numeric_unit = TimeUnit::Seconds;
    Schema::new(vec![
        Field::new("time", crate::types::timestamp_type(), false),
        Field::new("action", DataType::Utf8, false),
        Field::new("n", DataType::Int64, true),
        Field::new("x", DataType::Float64, true),
        Field::new("ok", DataType::Boolean, true),
        secs,
    ])
}

fn decoder() -> JsonDecoder {
    JsonDecoder::new(&schema(), &[true; 6])
}

fn decode(json: &str) -> Result<Vec<Value>, DecodeError> {
    let mut row = vec![Value::Null; 6];
    decoder().decode(json.as_bytes(), &mut row).map(|()| row)
}

#[test]
fn keys_match_in_any_order_escaped_or_in_another_case() {
    let d = decoder();
    let mut row = vec![Value::Null; 6];
    // The same decoder sees the schema's order, then another one (the key hint misses).
    d.decode(br#"{"time":"2016-07-26T00:00:00Z","action":"Open","n":1}"#, &mut row).unwrap();
    assert_eq!((&row[1], &row[2]), (&Value::str("Open"), &Value::Long(1)));
    d.decode(br#"{"n":2,"x":1.5,"ACTION":"Close","\u0074ime":"2016-07-26T00:00:00Z","unknown":"\u00e9"}"#, &mut row).unwrap();
    assert_eq!(
        (&row[0], &row[1], &row[2], &row[3]),
        (&Value::Timestamp(1_469_491_200_000_000), &Value::str("Close"), &Value::Long(2), &Value::Double(1.5))
    );
}

#[test]
fn decodes_typed_fields() {
    let row =
        decode(r#"{"time":"2016-07-26T00:00:00Z","action":"Open","n":3,"x":2,"ok":true,"secs":1469491200,"extra":[1,{"a":2}]}"#).unwrap();
    assert_eq!(row[0], Value::Timestamp(1_469_491_200_000_000));
    assert_eq!(row[1], Value::str("Open"));
    assert_eq!(row[2], Value::Long(3));
    assert_eq!(row[3], Value::Double(2.0));
    assert_eq!(row[4], Value::Bool(true));
    assert_eq!(row[5], Value::Timestamp(1_469_491_200_000_000));
    let row = decode(r#"{"time":1469491200000,"action":"Cl\u006fse"}"#).unwrap();
    assert_eq!(row[0], Value::Timestamp(1_469_491_200_000_000), "numbers are epoch millis by default");
    assert_eq!(row[1], Value::str("Close"));
    assert_eq!(row[2], Value::Null, "nullable and absent");
}

#[test]
fn classifies_bad_records() {
    let kind = |json: &str| decode(json).unwrap_err().kind;
    assert_eq!(kind("{not json"), DecodeErrorKind::Malformed);
    assert_eq!(kind("[1,2]"), DecodeErrorKind::Malformed);
    assert_eq!(kind(""), DecodeErrorKind::Malformed);
    assert_eq!(kind(r#"{"time":"2016-07-26T00:00:00Z"} trailing"#), DecodeErrorKind::Malformed);
    assert_eq!(kind(r#"{"time":"2016-07-26T00:00:00Z"}"#), DecodeErrorKind::MissingField);
    assert_eq!(kind(r#"{"time":"2016-07-26T00:00:00Z","action":null}"#), DecodeErrorKind::MissingField);
    assert_eq!(kind(r#"{"time":"tomorrow","action":"Open"}"#), DecodeErrorKind::BadTimestamp);
    assert_eq!(kind(r#"{"time":"2016-07-26T00:00:00Z","action":5}"#), DecodeErrorKind::WrongType);
    assert_eq!(kind(r#"{"time":"2016-07-26T00:00:00Z","action":"a","n":1.5}"#), DecodeErrorKind::WrongType);
    let e = decode(r#"{"time":"2016-07-26T00:00:00Z"}"#).unwrap_err();
    assert_eq!(e.message, "required field \"action\" is missing");
    let e = decode(r#"{"time":"2016-07-26T00:00:00Z","action":{}}"#).unwrap_err();
    assert_eq!(e.message, "field \"action\" should be a string, found an object");
}

#[test]
fn unneeded_columns_are_not_checked() {
    let schema = Schema::new(vec![Field::new("a", DataType::Int64, false), Field::new("b", DataType::Int64, false)]);
    let d = JsonDecoder::new(&schema, &[true, false]);
    let mut row = vec![Value::Null; 2];
    d.decode(br#"{"a":1,"b":"not a number"}"#, &mut row).unwrap();
    assert_eq!(row, vec![Value::Long(1), Value::Null]);
}

#[test]
fn encodes_in_select_order() {
    let e = JsonEncoder::new(&[
        ("action", DataType::Utf8),
        ("window_start", crate::types::TIMESTAMP),
        ("n", DataType::Int64),
        ("avg", DataType::Float64),
        ("w", crate::types::window_type()),
        ("q\"uote", DataType::Utf8),
    ]);
    let mut out = Vec::new();
    let row = [
        Value::str("Open"),
        Value::Timestamp(1_469_491_200_000_000),
        Value::Long(1044),
        Value::Double(f64::NAN),
        Value::Window { start: 0, end: 3_600_000_000 },
        Value::str("a\"b\n"),
    ];
    e.encode(&row, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"action":"Open","window_start":"2016-07-26T00:00:00.000Z","n":1044,"avg":"NaN","w":{"start":"1970-01-01T00:00:00.000Z","end":"1970-01-01T01:00:00.000Z"},"q\"uote":"a\"b\n"}"#
    );
}

/// The oracle (the former serde_json decoder) and the scanner on `json`: same outcome.
fn agree(d: &JsonDecoder, o: &OracleDecoder, json: &[u8]) -> Result<Vec<Value>, DecodeError> {
    let (mut a, mut b) = (vec![Value::Null; 6], vec![Value::Null; 6]);
    let (new, old) = (d.decode(json, &mut a), o.decode(json, &mut b));
    let shown = String::from_utf8_lossy(json);
    match (&new, &old) {
        (Ok(()), Ok(())) => assert_eq!(a, b, "{shown}"),
        (Err(x), Err(y)) => assert_eq!(x.kind, y.kind, "{shown}: {x:?} / {y:?}"),
        _ => panic!("{shown}: scanner {new:?}, oracle {old:?}"),
    }
    new.map(|()| a)
}

fn oracle() -> OracleDecoder {
    OracleDecoder::new(&schema(), &[true; 6])
}

#[test]
fn edge_cases_match_the_former_decoder() {
    let (d, o) = (decoder(), oracle());
    let base = r#"{"time":0,"action":"a""#;
    let ok = |tail: &str| agree(&d, &o, format!("{base}{tail}").as_bytes());
    // Numbers: -0 is a float (so not a long), i64/u64 edges, out-of-range floats.
    assert_eq!(ok(r#","x":-0}"#).unwrap()[3], Value::Double(-0.0));
    assert_eq!(ok(r#","n":-0}"#).unwrap_err().kind, DecodeErrorKind::WrongType);
    assert_eq!(ok(r#","n":-9223372036854775808}"#).unwrap()[2], Value::Long(i64::MIN));
    assert_eq!(
        ok(r#","n":9223372036854775808}"#).unwrap_err().message,
        "field \"n\" should be a whole number (long), found a number too large for a long"
    );
    assert_eq!(ok(r#","x":18446744073709551615}"#).unwrap()[3], Value::Double(18446744073709551615.0));
    assert_eq!(ok(r#","x":1e400}"#).unwrap_err().kind, DecodeErrorKind::Malformed);
    assert_eq!(ok(r#","x":1e-400}"#).unwrap()[3], Value::Double(0.0));
    assert_eq!(ok(r#","n":1.5.3}"#).unwrap_err().kind, DecodeErrorKind::WrongType, "the value is converted before what follows is read");
    for bad in ["01", "-", "1.", "1e", "1e+", ".5", "+1", "1.e3"] {
        assert_eq!(ok(&format!(r#","x":{bad}}}"#)).unwrap_err().kind, DecodeErrorKind::Malformed, "{bad}");
        assert_eq!(ok(&format!(r#","skipped":{bad}}}"#)).unwrap_err().kind, DecodeErrorKind::Malformed, "{bad}");
    }
    // Skipped values are checked but not range-checked, and may nest without limit.
    ok(r#","skipped":1e400}"#).unwrap();
    let deep = format!(r#","skipped":{}1{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
    ok(&deep).unwrap();
    let deep = format!(r#","skipped":{}1{}}}"#, r#"{"a":["#.repeat(5_000), "]}".repeat(5_000));
    ok(&deep).unwrap();
    assert_eq!(ok(&format!(r#","skipped":{}1{}}}"#, "[".repeat(1000), "]".repeat(999))).unwrap_err().kind, DecodeErrorKind::Malformed);
    assert_eq!(ok(r#","skipped":[1,]}"#).unwrap_err().kind, DecodeErrorKind::Malformed);
    assert_eq!(ok(r#","skipped":{"a":1,}}"#).unwrap_err().kind, DecodeErrorKind::Malformed);
    assert_eq!(ok(r#","skipped":[}"#).unwrap_err().kind, DecodeErrorKind::Malformed);
    // Strings: control bytes fail in values and skipped strings, not in keys; lone
    // surrogates fail in values only; skipped strings are not checked for UTF-8.
    assert_eq!(ok(",\"skipped\":\"a\u{1}\"}").unwrap_err().kind, DecodeErrorKind::Malformed);
    assert_eq!(ok(",\"action\":\"a\tb\"}").unwrap_err().kind, DecodeErrorKind::Malformed);
    ok(",\"ke\u{1}y\":1}").unwrap();
    ok(r#","k\ud800":1}"#).unwrap();
    assert_eq!(ok(r#","action":"\ud800"}"#).unwrap_err().kind, DecodeErrorKind::Malformed);
    assert_eq!(ok(r#","action":"\udc00"}"#).unwrap_err().kind, DecodeErrorKind::Malformed);
    assert_eq!(ok(r#","action":"\ud83d\ude00\u00e9"}"#).unwrap()[1], Value::str("😀é"));
    assert_eq!(ok(r#","skipped":"\ud800"}"#).unwrap()[1], Value::str("a"));
    assert_eq!(agree(&d, &o, b"{\"time\":0,\"action\":\"a\",\"skipped\":\"\xff\"}").unwrap()[1], Value::str("a"));
    assert_eq!(agree(&d, &o, b"{\"time\":0,\"action\":\"\xff\"}").unwrap_err().kind, DecodeErrorKind::Malformed);
    assert_eq!(ok(r#","skipped":"\x"}"#).unwrap_err().kind, DecodeErrorKind::Malformed);
    assert_eq!(ok(r#","skipped":"\u12g4"}"#).unwrap_err().kind, DecodeErrorKind::Malformed);
    let long = "0123456789abcdef".repeat(20);
    assert_eq!(ok(&format!(r#","action":"{long}\"{long}"}}"#)).unwrap()[1], Value::str(&format!("{long}\"{long}")));
    assert_eq!(ok(&format!(",\"skipped\":\"{long}\u{1f}\"}}")).unwrap_err().kind, DecodeErrorKind::Malformed);
    // Keys: escaped, other case, duplicated (the last wins, a null one is "null").
    assert_eq!(ok(r#","\u006e":5,"N":6}"#).unwrap()[2], Value::Long(6));
    assert_eq!(ok(r#","action":null}"#).unwrap_err().message, "required field \"action\" is null");
    // Structure.
    for bad in [" ", "{", r#"{"time""#, r#"{"time":}"#, r#"{"time" 0}"#, r#"{,"time":0}"#, "{} {}", r#"{"a":1 "b":2}"#, "null", "\"s\""] {
        assert_eq!(agree(&d, &o, bad.as_bytes()).unwrap_err().kind, DecodeErrorKind::Malformed, "{bad}");
    }
    let e = agree(&d, &o, br#"{"time":0 "action":"a"}"#).unwrap_err();
    assert_eq!(e.message, "invalid JSON at byte 10: expected ',' or '}' after a field, found '\"'");
    agree(&d, &o, b" \r\n\t{ \"time\" :\t0 ,\n\"action\" : \"a\" } \n").unwrap();
}

#[test]
fn string_columns_go_to_texts_and_the_last_duplicate_key_wins() {
    let d = decoder();
    let mut row = vec![Value::Null; 6];
    let mut texts = super::batch::Texts::default();
    d.decode_texts(br#"{"time":1,"action":"Op\u0065n","n":3}"#, &mut row, &mut texts).unwrap();
    assert_eq!((texts.get(1), &row[1], &row[2]), (Some("Open"), &Value::Null, &Value::Long(3)));
    // A later null replaces an earlier string; a required column left NULL is an error.
    let e = d.decode_texts(br#"{"time":1,"action":"Open","action":null}"#, &mut row, &mut texts).unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::MissingField);
    d.decode_texts(br#"{"time":1,"action":null,"action":"Close"}"#, &mut row, &mut texts).unwrap();
    assert_eq!(texts.get(1), Some("Close"));
    // The next record starts clean.
    d.decode_texts(br#"{"action":"x","time":2}"#, &mut row, &mut texts).unwrap();
    assert_eq!((texts.get(1), texts.get(0)), (Some("x"), None));
}
