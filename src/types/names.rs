//! Type names as users write them (schemas, CAST) and as Spark prints them (`bigint`,
//! `struct<start:timestamp,end:timestamp>`, `array<string>`, `decimal(10,2)`).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field as ArrowField, Fields};

use super::{is_window, timestamp_type};

/// Spark's name of a type (its `simpleString`), but `long` for `bigint` as eddy's schemas say.
pub fn type_name(t: &DataType) -> String {
    match t {
        DataType::Null => "void".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "int".into(),
        // eddy's schema name for Spark's bigint.
        DataType::Int64 | DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => "long".into(),
        DataType::Float16 | DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => "binary".into(),
        DataType::Timestamp(..) => "timestamp".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) | DataType::ListView(f) => {
            format!("array<{}>", type_name(f.data_type()))
        }
        DataType::Struct(fields) if is_window(t) && fields.len() == 2 => "struct<start:timestamp,end:timestamp>".into(),
        DataType::Struct(fields) => {
            let parts: Vec<String> = fields.iter().map(|f| format!("{}:{}", f.name(), type_name(f.data_type()))).collect();
            format!("struct<{}>", parts.join(","))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!("map<{},{}>", type_name(kv[0].data_type()), type_name(kv[1].data_type())),
            other => type_name(other),
        },
        DataType::Interval(_) | DataType::Duration(_) => "interval".into(),
        other => other.to_string().to_ascii_lowercase(),
    }
}

/// Parses a type as written in a schema or a CAST: `string`, `long`/`bigint`, `int`,
/// `double`/`float`, `boolean`, `timestamp`, `date`, `decimal(p,s)`, `binary`, `array<T>`,
/// `map<K,V>`, `struct<name: T, ...>`. Names are case-insensitive.
pub fn parse_type(text: &str) -> Result<DataType, String> {
    let mut p = TypeParser { s: text.as_bytes(), i: 0, text };
    let t = p.parse()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.error("end of the type"));
    }
    Ok(t)
}

struct TypeParser<'a> {
    s: &'a [u8],
    i: usize,
    text: &'a str,
}

impl TypeParser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn error(&self, wanted: &str) -> String {
        format!("in type \"{}\": expected {wanted} at character {}", self.text, self.i + 1)
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn word(&mut self) -> String {
        self.ws();
        let start = self.i;
        while self.s.get(self.i).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_') {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    /// A struct field name: a word, or a backquoted name.
    fn field_name(&mut self) -> Result<String, String> {
        self.ws();
        if self.eat(b'`') {
            let start = self.i;
            while self.s.get(self.i).is_some_and(|b| *b != b'`') {
                self.i += 1;
            }
            let name = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
            if !self.eat(b'`') {
                return Err(self.error("a closing `"));
            }
            return Ok(name);
        }
        let w = self.word();
        if w.is_empty() {
            return Err(self.error("a field name"));
        }
        Ok(w)
    }

    fn number(&mut self) -> Result<u8, String> {
        let w = self.word();
        w.parse().map_err(|_| self.error("a number"))
    }

    fn parse(&mut self) -> Result<DataType, String> {
        let word = self.word().to_ascii_lowercase();
        Ok(match word.as_str() {
            "string" | "str" | "varchar" | "text" | "char" => {
                if self.eat(b'(') {
                    self.number()?;
                    if !self.eat(b')') {
                        return Err(self.error("')'"));
                    }
                }
                DataType::Utf8
            }
            "long" | "bigint" | "int64" => DataType::Int64,
            "int" | "integer" | "int32" | "smallint" | "tinyint" | "short" | "byte" => DataType::Int32,
            "double" | "float" | "real" | "float64" => DataType::Float64,
            "boolean" | "bool" => DataType::Boolean,
            "timestamp" | "timestamp_ltz" | "timestamp_ntz" => timestamp_type(),
            "date" => DataType::Date32,
            "binary" | "bytes" => DataType::Binary,
            "decimal" | "numeric" | "dec" => {
                let (mut precision, mut scale) = (10u8, 0i8);
                if self.eat(b'(') {
                    precision = self.number()?;
                    if self.eat(b',') {
                        scale = self.number()? as i8;
                    }
                    if !self.eat(b')') {
                        return Err(self.error("')'"));
                    }
                }
                if precision == 0 || precision > 38 || scale as u8 > precision {
                    return Err(format!("in type \"{}\": a decimal's precision is 1 to 38 and its scale at most the precision", self.text));
                }
                DataType::Decimal128(precision, scale)
            }
            "array" => {
                if !self.eat(b'<') {
                    return Err(self.error("'<' after array"));
                }
                let item = self.parse()?;
                if !self.eat(b'>') {
                    return Err(self.error("'>'"));
                }
                DataType::List(Arc::new(ArrowField::new("item", item, true)))
            }
            "map" => {
                if !self.eat(b'<') {
                    return Err(self.error("'<' after map"));
                }
                let key = self.parse()?;
                if !self.eat(b',') {
                    return Err(self.error("',' between a map's key and value types"));
                }
                let value = self.parse()?;
                if !self.eat(b'>') {
                    return Err(self.error("'>'"));
                }
                map_type(key, value)
            }
            "struct" => {
                if !self.eat(b'<') {
                    return Err(self.error("'<' after struct"));
                }
                let mut fields = Vec::new();
                loop {
                    let name = self.field_name()?;
                    if !self.eat(b':') {
                        self.ws();
                    }
                    let t = self.parse()?;
                    if fields.iter().any(|f: &ArrowField| f.name().eq_ignore_ascii_case(&name)) {
                        return Err(format!("in type \"{}\": field {name} appears twice", self.text));
                    }
                    fields.push(ArrowField::new(name, t, true));
                    if self.eat(b',') {
                        continue;
                    }
                    if self.eat(b'>') {
                        break;
                    }
                    return Err(self.error("',' or '>'"));
                }
                DataType::Struct(Fields::from(fields))
            }
            "" => return Err(self.error("a type name")),
            other => {
                return Err(format!(
                    "unknown type \"{other}\" in \"{}\"; use string, long, int, double, boolean, timestamp, date, decimal(p,s), binary, array<T>, map<K,V> or struct<name: T, ...>",
                    self.text
                ))
            }
        })
    }
}

/// Arrow's map type with Spark's layout: entries of (key, value), keys required.
pub fn map_type(key: DataType, value: DataType) -> DataType {
    let entries = ArrowField::new(
        "entries",
        DataType::Struct(Fields::from(vec![ArrowField::new("key", key, false), ArrowField::new("value", value, true)])),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_types_parse_and_print_as_spark_does() {
        for (text, name) in [
            ("string", "string"),
            ("BIGINT", "long"),
            ("int", "int"),
            ("decimal(10, 2)", "decimal(10,2)"),
            ("decimal", "decimal(10,0)"),
            ("array<string>", "array<string>"),
            ("map<string, long>", "map<string,long>"),
            ("struct<id: long, tags: array<string>, `odd name`: date>", "struct<id:long,tags:array<string>,odd name:date>"),
            ("struct<a int>", "struct<a:int>"),
        ] {
            assert_eq!(type_name(&parse_type(text).unwrap()), name, "{text}");
        }
    }

    #[test]
    fn bad_types_say_where() {
        assert!(parse_type("array<string").unwrap_err().contains("expected '>'"));
        assert!(parse_type("decimal(40,2)").unwrap_err().contains("precision is 1 to 38"));
        assert!(parse_type("strng").unwrap_err().contains("unknown type \"strng\""));
        assert!(parse_type("struct<a: int, a: long>").unwrap_err().contains("appears twice"));
    }
}
