//! A Schema Registry for tests, speaking the part of Confluent's REST API eddy uses (no
//! Schema-Registry-compatible server can be installed here: Karapace is not on PyPI and
//! Redpanda or Confluent need images or jars). Real HTTP/1.1 over a real socket on port 0;
//! global ids, versions per subject, idempotent registration, BACKWARD compatibility by
//! apache-avro, Confluent's error codes (40401 subject, 40402 version, 40403 schema, 409).
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;

#[derive(Default)]
struct State {
    schemas: Vec<String>,
    subjects: HashMap<String, Vec<u32>>,
    requests: Vec<String>,
}

pub struct TestRegistry {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl TestRegistry {
    pub fn start() -> TestRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let s = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || serve(stream, &s));
            }
        });
        TestRegistry { url, state }
    }

    /// "METHOD path" of every request served so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn schema(&self, id: u32) -> Option<String> {
        self.state.lock().unwrap().schemas.get(id as usize - 1).cloned()
    }

    pub fn latest_id(&self, subject: &str) -> Option<u32> {
        self.state.lock().unwrap().subjects.get(subject).and_then(|v| v.last().copied())
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut length = 0;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let (status, json) = handle(state, &method, &path, &body);
    let text = json.to_string();
    let mut out = stream;
    let _ = write!(
        out,
        "HTTP/1.1 {status} X\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
}

fn error(status: u16, code: u32, message: &str) -> (u16, serde_json::Value) {
    (status, serde_json::json!({"error_code": code, "message": message}))
}

fn handle(state: &Mutex<State>, method: &str, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let mut st = state.lock().unwrap();
    st.requests.push(format!("{method} {path}"));
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let schema_of = |body: &[u8]| -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        let s = v["schema"].as_str()?.to_string();
        Schema::parse_str(&s).ok()?;
        Some(s)
    };
    match (method, segs.as_slice()) {
        ("GET", ["schemas", "ids", id]) => match id.parse::<usize>().ok().and_then(|i| st.schemas.get(i.wrapping_sub(1))) {
            Some(s) => (200, serde_json::json!({"schema": s})),
            None => error(404, 40403, "Schema not found"),
        },
        ("POST", ["subjects", subject, "versions"]) => {
            let Some(schema) = schema_of(body) else { return error(422, 42201, "Invalid schema") };
            let canonical = Schema::parse_str(&schema).unwrap().canonical_form();
            let existing = st.schemas.iter().position(|s| Schema::parse_str(s).unwrap().canonical_form() == canonical);
            let id = match existing {
                Some(i) => i as u32 + 1,
                None => {
                    st.schemas.push(schema);
                    st.schemas.len() as u32
                }
            };
            let versions = st.subjects.entry(subject.to_string()).or_default();
            if !versions.contains(&id) {
                versions.push(id);
            }
            (200, serde_json::json!({"id": id}))
        }
        ("POST", ["compatibility", "subjects", subject, "versions", "latest"]) => {
            let Some(schema) = schema_of(body) else { return error(422, 42201, "Invalid schema") };
            let Some(&latest) = st.subjects.get(*subject).and_then(|v| v.last()) else { return error(404, 40401, "Subject not found") };
            // apache-avro's checker rejects decimal against decimal; compare the underlying types.
            let writer = Schema::parse_str(&without_logical_types(&st.schemas[latest as usize - 1])).unwrap();
            let reader = Schema::parse_str(&without_logical_types(&schema)).unwrap();
            match SchemaCompatibility::can_read(&writer, &reader) {
                Ok(()) => (200, serde_json::json!({"is_compatible": true})),
                Err(e) => {
                    eprintln!("test registry: incompatible: {e}");
                    (200, serde_json::json!({"is_compatible": false, "messages": [e.to_string()]}))
                }
            }
        }
        ("GET", ["subjects", subject, "versions", "latest"]) => match st.subjects.get(*subject) {
            Some(v) if !v.is_empty() => {
                let id = *v.last().unwrap();
                (200, serde_json::json!({"subject": subject, "version": v.len(), "id": id, "schema": st.schemas[id as usize - 1]}))
            }
            _ => error(404, 40401, "Subject not found"),
        },
        _ => error(404, 404, "Not found"),
    }
}

fn without_logical_types(schema: &str) -> String {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                for k in ["logicalType", "precision", "scale"] {
                    m.remove(k);
                }
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v: serde_json::Value = serde_json::from_str(schema).unwrap();
    strip(&mut v);
    v.to_string()
}
