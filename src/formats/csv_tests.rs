use super::*;
use crate::types::Field;

fn retail_schema() -> Schema {
    Schema::new(vec![
        Field::new("InvoiceNo", DataType::Utf8, false),
        Field::new("StockCode", DataType::Utf8, true),
        Field::new("Description", DataType::Utf8, true),
        Field::new("Quantity", DataType::Int64, false),
        Field::new("InvoiceDate", crate::types::timestamp_type(), false),
        Field::new("UnitPrice", DataType::Float64, false),
        Field::new("CustomerID", DataType::Float64, true),
        Field::new("Country", DataType::Utf8, true),
    ])
}

fn decode_with(options: &CsvOptions, line: &str) -> Result<Option<Vec<Value>>, DecodeError> {
    let schema = retail_schema();
    let d = CsvDecoder::new(&schema, &[true; 8], options).unwrap();
    let mut row = vec![Value::Null; 8];
    d.decode(line.as_bytes(), &mut row).map(|ok| ok.then_some(row))
}

fn decode(line: &str) -> Result<Option<Vec<Value>>, DecodeError> {
    decode_with(&CsvOptions::default(), line)
}

#[test]
fn decodes_the_retail_dataset() {
    let row =
        decode("536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n").unwrap().unwrap();
    assert_eq!(row[0], Value::str("536365"));
    assert_eq!(row[2], Value::str("WHITE HANGING HEART T-LIGHT HOLDER"));
    assert_eq!(row[3], Value::Long(6));
    assert_eq!(row[4], Value::Timestamp(parse_timestamp("2010-12-01T08:26:00Z").unwrap()));
    assert_eq!(row[5], Value::Double(2.55));
    assert_eq!(row[6], Value::Double(17850.0));
    assert_eq!(row[7], Value::str("United Kingdom"));
    let row = decode("536365,85123A,,6,2010-12-01 08:26:00,2.55,,United Kingdom\r\n").unwrap().unwrap();
    assert_eq!(row[2], Value::Null, "an empty field is NULL");
    assert_eq!(row[6], Value::Null);
}

#[test]
fn quoting_follows_rfc_4180() {
    let row = decode("536365,X,\"SET 7, BABUSHKA \"\"NESTING\"\" BOXES\",1,2010-12-01T08:26:00Z,7.65,1,\"\"").unwrap().unwrap();
    assert_eq!(row[2], Value::str("SET 7, BABUSHKA \"NESTING\" BOXES"));
    assert_eq!(row[7], Value::str(""), "a quoted empty field is the empty string");
    let row = decode("1,X,\"two\nlines\",1,2010-12-01 08:26:00,1,1,\"\"\"\"").unwrap().unwrap();
    assert_eq!(row[2], Value::str("two\nlines"));
    assert_eq!(row[7], Value::str("\""));
}

#[test]
fn the_header_line_is_skipped() {
    assert_eq!(decode("InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country").unwrap(), None);
    let keep = CsvOptions { skip_header: Some(false), ..CsvOptions::default() };
    let e = decode_with(&keep, "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country").unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::WrongType);
}

#[test]
fn classifies_bad_lines() {
    let kind = |line: &str| decode(line).unwrap_err().kind;
    assert_eq!(kind("1,2,3"), DecodeErrorKind::Malformed);
    assert_eq!(kind(""), DecodeErrorKind::Malformed);
    assert_eq!(kind("1,X,\"open,1,2010-12-01 08:26:00,1,1,UK"), DecodeErrorKind::Malformed);
    assert_eq!(kind("1,X,\"a\"b,1,2010-12-01 08:26:00,1,1,UK"), DecodeErrorKind::Malformed);
    assert_eq!(kind("1,X,a\"b,1,2010-12-01 08:26:00,1,1,UK"), DecodeErrorKind::Malformed);
    assert_eq!(kind("1,X,a\nb,1,2010-12-01 08:26:00,1,1,UK"), DecodeErrorKind::Malformed);
    assert_eq!(kind("1,X,d,six,2010-12-01 08:26:00,1,1,UK"), DecodeErrorKind::WrongType);
    assert_eq!(kind("1,X,d,1.5,2010-12-01 08:26:00,1,1,UK"), DecodeErrorKind::WrongType);
    assert_eq!(kind("1,X,d,1,12/1/2010 8:26,1,1,UK"), DecodeErrorKind::BadTimestamp);
    assert_eq!(kind(",X,d,1,2010-12-01 08:26:00,1,1,UK"), DecodeErrorKind::MissingField);
    assert_eq!(kind("1,X,d,,2010-12-01 08:26:00,1,1,UK"), DecodeErrorKind::MissingField);
    let e = decode("1,X,d,six,2010-12-01 08:26:00,1,1,UK").unwrap_err();
    assert_eq!(e.message, "field \"Quantity\" should be a whole number (long), found \"six\"");
    assert!(decode_with(&CsvOptions::default(), "1,X,d,1,2010-12-01 08:26:00,1,1,UK\u{0}").is_ok(), "NUL is text");
    let schema = retail_schema();
    let d = CsvDecoder::new(&schema, &[true; 8], &CsvOptions::default()).unwrap();
    let e = d.decode(b"1,X,\xff,1,2010-12-01 08:26:00,1,1,UK", &mut vec![Value::Null; 8]).unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::Malformed);
}

#[test]
fn columns_option_orders_and_ignores_extra_fields() {
    let options = CsvOptions {
        delimiter: Some(';'),
        columns: Some(
            ["Country", "extra", "InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"]
                .map(String::from)
                .to_vec(),
        ),
        timestamp_format: Some("M/d/yyyy H:mm".into()),
        skip_header: None,
    };
    let row = decode_with(&options, "France;ignored;536370;22728;ALARM CLOCK;24;12/1/2010 8:45;3.75;12583").unwrap().unwrap();
    assert_eq!(row[0], Value::str("536370"));
    assert_eq!(row[4], Value::Timestamp(parse_timestamp("2010-12-01T08:45:00Z").unwrap()));
    assert_eq!(row[7], Value::str("France"));
    assert_eq!(
        decode_with(&options, "Country;extra;InvoiceNo;StockCode;Description;Quantity;InvoiceDate;UnitPrice;CustomerID").unwrap(),
        None
    );
}

#[test]
fn unneeded_columns_are_not_parsed() {
    let schema = retail_schema();
    let mut needed = [true; 8];
    needed[3] = false;
    let d = CsvDecoder::new(&schema, &needed, &CsvOptions::default()).unwrap();
    let mut row = vec![Value::Null; 8];
    assert!(d.decode(b"1,X,d,not a number,2010-12-01 08:26:00,1,1,UK", &mut row).unwrap());
    assert_eq!(row[3], Value::Null);
}

#[test]
fn encodes_lines_that_decode_back() {
    let e = CsvEncoder::new(&CsvOptions::default()).unwrap();
    let mut out = Vec::new();
    let t = parse_timestamp("2010-12-01T08:26:00Z").unwrap();
    e.encode(
        &[
            Value::str("a,b"),
            Value::str("say \"hi\""),
            Value::str(""),
            Value::Null,
            Value::Long(-3),
            Value::Double(0.1),
            Value::Bool(true),
            Value::Timestamp(t),
            Value::Window { start: t, end: t + 86_400_000_000 },
            Value::Double(f64::NAN),
        ],
        &mut out,
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "\"a,b\",\"say \"\"hi\"\"\",\"\",,-3,0.1,true,2010-12-01T08:26:00.000Z,2010-12-01T08:26:00.000Z/2010-12-02T08:26:00.000Z,NaN"
    );
    let cells = split_line("\"a,b\",\"say \"\"hi\"\"\",\"\",,-3", b',').unwrap();
    let texts: Vec<&str> = cells.iter().map(|c| c.text.as_ref()).collect();
    assert_eq!(texts, ["a,b", "say \"hi\"", "", "", "-3"]);
    let tabs = CsvEncoder::new(&CsvOptions {
        delimiter: Some('\t'),
        timestamp_format: Some("yyyy-MM-dd HH:mm:ss".into()),
        ..CsvOptions::default()
    })
    .unwrap();
    let mut out = Vec::new();
    tabs.encode(&[Value::str("a,b"), Value::Timestamp(t)], &mut out);
    assert_eq!(String::from_utf8(out).unwrap(), "a,b\t2010-12-01 08:26:00");
}
