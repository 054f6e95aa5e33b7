//! Differential tests: the scanning JSON decoder against the serde_json-visitor decoder it
//! replaced (`json_oracle`), on generated records (random schemas of the five types, needed
//! and skipped columns, keys in other cases or escaped, values with escapes, unicode, big
//! numbers, deep nesting and whitespace) and on mutations of them (bytes flipped, inserted,
//! cut). Both must succeed with the same row, or fail with the same kind (and the same message
//! unless Malformed, whose messages now name the byte position).
//!
//! The one legitimate difference: floats. serde_json (without `float_roundtrip`) may be off
//! by an ULP or so for long mantissas or large exponents; the scanner uses `str::parse::<f64>`,
//! which is correctly rounded (as Java's `Double.parseDouble`, which Spark uses). Where the
//! rows differ there, the test checks that the two are within rounding of each other and that
//! the scanner's value is the correctly rounded one of a number in the payload.
//!
//! Size: PROPTEST_CASES cases (default 2,000), fixed seed.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

use super::json::JsonDecoder;
use super::json_oracle::OracleDecoder;
use super::DecodeErrorKind;
use crate::types::{DataType, Field, Schema, TimeUnit, Value};

/// Column names: some differ only in case, some need escaping in JSON.
const NAMES: &[&str] = &["id", "name", "Name", "price", "dateTime", "x", "é", "a b", "q\"t", "c\u{1}"];
const TYPES: &[DataType] = &[DataType::Utf8, DataType::Int64, DataType::Float64, DataType::Boolean, crate::types::TIMESTAMP];
const UNITS: &[TimeUnit] = &[TimeUnit::Seconds, TimeUnit::Millis, TimeUnit::Micros];

/// Number literals: edges of i64/u64, `-0`, long mantissas, exponents near the f64 limits.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "7",
    "-12",
    "1469491200",
    "1469491200000",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "-18446744073709551616",
    "123456789012345678901234567890",
    "0.1",
    "-0.0",
    "2.5",
    "1e3",
    "1E+2",
    "1e-7",
    "-1.5e300",
    "1e308",
    "1.7976931348623157e308",
    "1.8e308",
    "1e309",
    "4.9e-324",
    "2e-324",
    "1e-400",
    "0e999999999999",
    "1e99999999999",
    "0.30000000000000004",
    "3.141592653589793238462643383279",
    "1469491200.123456",
    "9007199254740993",
    "1e22",
    "1e23",
    "8.98846567431158e307",
];

/// String contents, written verbatim between quotes: escapes valid and not, surrogates
/// paired and lone, raw control bytes, invalid UTF-8, timestamps good and bad.
const STRINGS: &[&[u8]] = &[
    b"",
    b"Open",
    b"Cl\\u006fse",
    b"tab\\there",
    b"q\\\"uote\\\\",
    b"\\/\\b\\f\\n\\r",
    b"caf\xc3\xa9",
    b"\xe2\x82\xac",
    b"\xf0\x9f\x98\x80",
    b"\\ud83d\\ude00",
    b"\\ud800",
    b"\\udc00",
    b"\\ud800\\u0041",
    b"\\ud800\\n",
    b"\\ud800x",
    b"\\ud800\\ud800\\udc00",
    b"\\u00e9\\u20AC",
    b"\\x",
    b"\\u12g4",
    b"\\u12",
    b"raw\x01ctl",
    b"bad\xff",
    b"cut\xc3",
    b"2016-07-26T00:00:00Z",
    b"2016-07-26 10:15:00.123456789+02:00",
    b"2016-07-26T00:00:00.991Z",
    b"tomorrow",
    b"1469491200000",
    b"long string with spaces, punctuation; and more than thirty-two bytes of text in it",
];

#[derive(Debug, Clone)]
struct Col {
    name: usize,
    data_type: DataType,
    nullable: bool,
    needed: bool,
    unit: TimeUnit,
}

/// A JSON value to write; `Text` is written verbatim between quotes.
#[derive(Debug, Clone)]
enum J {
    Null,
    Bool(bool),
    Num(&'static str),
    Text(&'static [u8]),
    Chars(String),
    Array(Vec<J>),
    Object(Vec<(String, J)>),
    /// `n` nested arrays (or objects under key "a") around a value.
    Deep(usize, bool),
}

fn leaf() -> impl Strategy<Value = J> {
    prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        proptest::sample::select(NUMBERS).prop_map(J::Num),
        proptest::sample::select(STRINGS).prop_map(J::Text),
        "[a-zA-Z0-9 \"\\\\/\u{0}-\u{1f}é€😀\u{7f}]{0,40}".prop_map(J::Chars),
    ]
}

fn value() -> impl Strategy<Value = J> {
    let nested = leaf().prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(J::Array),
            proptest::collection::vec(("[a-z]{0,3}", inner), 0..5).prop_map(J::Object),
        ]
    });
    prop_oneof![8 => leaf(), 3 => nested, 1 => (0usize..300, any::<bool>()).prop_map(|(n, o)| J::Deep(n, o))]
}

/// How a key is written: a column's name as is, in upper case, escaped; or another key.
#[derive(Debug, Clone)]
enum Key {
    Column(usize, u8),
    Other(String),
}

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![6 => (0..NAMES.len(), 0u8..4).prop_map(|(i, s)| Key::Column(i, s)), 1 => "[a-zA-Z\u{1}]{0,6}".prop_map(Key::Other)]
}

/// Writes JSON, taking whitespace from a cycle of choices.
struct Writer<'w> {
    out: Vec<u8>,
    ws: &'w [u8],
    n: usize,
}

impl Writer<'_> {
    fn ws(&mut self) {
        const WS: &[&str] = &["", "", "", " ", "\n", "\t ", "\r\n  "];
        let pick = self.ws.get(self.n % self.ws.len().max(1)).copied().unwrap_or(0);
        self.n += 1;
        self.out.extend_from_slice(WS[usize::from(pick) % WS.len()].as_bytes());
    }

    /// A string escaped in one of several styles (chosen by the whitespace cycle too).
    fn string(&mut self, s: &str) {
        let style = self.ws.get(self.n % self.ws.len().max(1)).copied().unwrap_or(0) % 3;
        self.n += 1;
        self.out.push(b'"');
        for c in s.chars() {
            match c {
                '"' => self.out.extend_from_slice(b"\\\""),
                '\\' => self.out.extend_from_slice(b"\\\\"),
                '\n' if style != 2 => self.out.extend_from_slice(b"\\n"),
                c if (c as u32) < 0x20 || (style == 1 && !c.is_ascii()) || (style == 2 && c.is_ascii_lowercase()) => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        self.out.extend_from_slice(format!("\\u{:04x}", u).as_bytes());
                    }
                }
                c => self.out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        self.out.push(b'"');
    }

    /// `open item, item, ... close`, with whitespace around every item.
    fn list<T>(&mut self, open: u8, items: &[T], close: u8, mut each: impl FnMut(&mut Self, &T)) {
        self.out.push(open);
        for (i, item) in items.iter().enumerate() {
            self.ws();
            if i > 0 {
                self.out.push(b',');
                self.ws();
            }
            each(self, item);
        }
        self.ws();
        self.out.push(close);
    }

    fn value(&mut self, v: &J) {
        match v {
            J::Null => self.out.extend_from_slice(b"null"),
            J::Bool(b) => self.out.extend_from_slice(if *b { b"true" } else { b"false" }),
            J::Num(n) => self.out.extend_from_slice(n.as_bytes()),
            J::Text(t) => {
                self.out.push(b'"');
                self.out.extend_from_slice(t);
                self.out.push(b'"');
            }
            J::Chars(s) => self.string(s),
            J::Array(items) => self.list(b'[', items, b']', |w, item| w.value(item)),
            J::Object(fields) => self.list(b'{', fields, b'}', |w, (k, item)| {
                w.string(k);
                w.ws();
                w.out.push(b':');
                w.ws();
                w.value(item);
            }),
            J::Deep(n, object) => {
                let (open, close): (&[u8], &[u8]) = if *object { (b"{\"a\":", b"}") } else { (b"[", b"]") };
                self.out.extend(open.repeat(*n));
                self.out.extend_from_slice(b"[1,{\"b\":\"x\"}]");
                self.out.extend(close.repeat(*n));
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Case {
    cols: Vec<Col>,
    fields: Vec<(Key, J)>,
    ws: Vec<u8>,
    edits: Vec<(u16, u8, u8)>,
}

fn case() -> impl Strategy<Value = Case> {
    let col = (0..TYPES.len(), any::<bool>(), proptest::bool::weighted(0.7), 0..UNITS.len());
    let cols =
        (proptest::sample::subsequence((0..NAMES.len()).collect::<Vec<_>>(), 1..=6).prop_shuffle(), proptest::collection::vec(col, 6))
            .prop_map(|(names, props)| {
                names
                    .into_iter()
                    .zip(props)
                    .map(|(name, (t, nullable, needed, u))| Col { name, data_type: TYPES[t].clone(), nullable, needed, unit: UNITS[u] })
                    .collect::<Vec<_>>()
            });
    let edits = prop_oneof![2 => Just(vec![]), 1 => proptest::collection::vec((any::<u16>(), any::<u8>(), 0u8..3), 1..4)];
    (cols, proptest::collection::vec((key(), value()), 0..8), proptest::collection::vec(any::<u8>(), 1..16), edits)
        .prop_map(|(cols, fields, ws, edits)| Case { cols, fields, ws, edits })
}

fn payload(c: &Case) -> Vec<u8> {
    let mut w = Writer { out: Vec::new(), ws: &c.ws, n: 0 };
    w.ws();
    w.out.push(b'{');
    for (i, (k, v)) in c.fields.iter().enumerate() {
        w.ws();
        if i > 0 {
            w.out.push(b',');
            w.ws();
        }
        match k {
            Key::Column(n, 1) => w.string(&NAMES[*n].to_ascii_uppercase()),
            Key::Column(n, _) => w.string(NAMES[*n]),
            Key::Other(s) => w.string(s),
        }
        w.ws();
        w.out.push(b':');
        w.ws();
        w.value(v);
    }
    w.ws();
    w.out.push(b'}');
    w.ws();
    let mut b = w.out;
    for &(at, byte, op) in &c.edits {
        let at = usize::from(at) % (b.len() + 1);
        match op {
            0 if at < b.len() => b[at] = byte,
            1 => b.insert(at, byte),
            _ => b.truncate(at),
        }
    }
    b
}

/// Every number-looking token of the payload, as correctly rounded f64s.
fn number_tokens(payload: &[u8]) -> Vec<f64> {
    let text = String::from_utf8_lossy(payload);
    text.split(|c: char| !(c.is_ascii_digit() || "-+.eE".contains(c))).filter_map(|t| t.parse::<f64>().ok()).collect()
}

/// Whether `new` (scanner) and `old` (oracle) differ only by the oracle's float rounding,
/// with `new` correctly rounded from some number in the payload.
fn rounding_only(new: &Value, old: &Value, unit: TimeUnit, payload: &[u8]) -> bool {
    let close = |a: f64, b: f64| (a - b).abs() <= a.abs().max(b.abs()) * 1e-15 || (a - b).abs() < 1e-300;
    match (new, old) {
        (Value::Double(a), Value::Double(b)) => close(*a, *b) && number_tokens(payload).iter().any(|t| t.to_bits() == a.to_bits()),
        (Value::Timestamp(a), Value::Timestamp(b)) => {
            close(*a as f64, *b as f64) && number_tokens(payload).iter().any(|t| (t * unit.micros() as f64) as i64 == *a)
        }
        _ => false,
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => x.to_bits() == y.to_bits(),
        _ => a == b && std::mem::discriminant(a) == std::mem::discriminant(b),
    }
}

fn check(c: &Case) -> Result<(), TestCaseError> {
    let fields: Vec<Field> = c
        .cols
        .iter()
        .map(|col| {
            let mut f = Field::new(NAMES[col.name], col.data_type.clone(), col.nullable);
            f.numeric_unit = col.unit;
            f
        })
        .collect();
    let needed: Vec<bool> = c.cols.iter().map(|col| col.needed).collect();
    let schema = Schema::new(fields);
    let bytes = payload(c);
    let shown = String::from_utf8_lossy(&bytes).into_owned();
    let (mut new_row, mut old_row) = (vec![Value::Long(99); c.cols.len()], vec![Value::Null; c.cols.len()]);
    let new = JsonDecoder::new(&schema, &needed).decode(&bytes, &mut new_row);
    let old = OracleDecoder::new(&schema, &needed).decode(&bytes, &mut old_row);
    match (new, old) {
        (Ok(()), Ok(())) => {
            for (i, (a, b)) in new_row.iter().zip(&old_row).enumerate() {
                prop_assert!(
                    same(a, b) || rounding_only(a, b, c.cols[i].unit, &bytes),
                    "column {i}: scanner {a:?}, oracle {b:?}\npayload {shown}"
                );
            }
        }
        (Err(a), Err(b)) => {
            prop_assert_eq!(a.kind, b.kind, "scanner {:?}, oracle {:?}\npayload {}", a, b, shown);
            if a.kind != DecodeErrorKind::Malformed {
                prop_assert_eq!(&a.message, &b.message, "payload {}", shown);
            } else {
                prop_assert!(a.message.starts_with("invalid JSON at byte ") || a.message.starts_with("empty payload"), "{}", a.message);
            }
        }
        (a, b) => prop_assert!(false, "scanner {a:?}, oracle {b:?}\npayload {shown}"),
    }
    Ok(())
}

#[test]
fn scanner_agrees_with_the_serde_json_decoder() {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(2_000);
    let config = Config { cases, failure_persistence: None, rng_seed: RngSeed::Fixed(20_261_121), ..Config::default() };
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&case(), |c| check(&c)) {
        panic!("{e}");
    }
}
