//! A Confluent Schema Registry client (REST API v1): schema by id, register a subject
//! version, compatibility against the latest version, latest version of a subject; subjects
//! by TopicNameStrategy (`<topic>-value`). Schemas by id are immutable, so they are cached
//! for good. Depends on the HTTP client beside it and serde_json.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use super::http::{self, BaseUrl};

/// Why a registry call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The registry answered with an error (e.g. 40403 schema not found, 409 incompatible).
    #[error("schema registry: HTTP {status}, error {code}: {message}")]
    Api { status: u16, code: i64, message: String },
    /// The registry could not be reached or answered nonsense.
    #[error("schema registry unavailable: {0}")]
    Unavailable(String),
}

impl RegistryError {
    /// Not found (a subject, version or schema id that does not exist).
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::Api { status: 404, .. })
    }
}

/// A registered schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub id: u32,
    pub version: Option<i64>,
    pub schema: String,
}

#[derive(Deserialize)]
struct SchemaBody {
    schema: String,
    #[serde(default)]
    id: Option<u32>,
    #[serde(default)]
    version: Option<i64>,
    #[serde(default, rename = "schemaType")]
    schema_type: Option<String>,
}

#[derive(Deserialize)]
struct IdBody {
    id: u32,
}

#[derive(Deserialize)]
struct CompatibilityBody {
    is_compatible: bool,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error_code: i64,
    #[serde(default)]
    message: String,
}

/// The client; cheap to share.
#[derive(Debug)]
pub struct RegistryClient {
    base: BaseUrl,
    by_id: Mutex<HashMap<u32, Arc<str>>>,
}

impl RegistryClient {
    pub fn new(url: &str) -> Result<RegistryClient, String> {
        Ok(RegistryClient { base: BaseUrl::parse(url)?, by_id: Mutex::new(HashMap::new()) })
    }

    /// The schema text of `id` (GET /schemas/ids/{id}), cached.
    pub fn schema_by_id(&self, id: u32) -> Result<Arc<str>, RegistryError> {
        if let Some(s) = self.by_id.lock().ok().and_then(|m| m.get(&id).cloned()) {
            return Ok(s);
        }
        let body: SchemaBody = self.call("GET", &format!("/schemas/ids/{id}"), None)?;
        if body.schema_type.as_deref().is_some_and(|t| t != "AVRO") {
            return Err(RegistryError::Api { status: 200, code: 0, message: format!("schema {id} is not Avro") });
        }
        let s: Arc<str> = Arc::from(body.schema);
        if let Ok(mut m) = self.by_id.lock() {
            m.insert(id, s.clone());
        }
        Ok(s)
    }

    /// Registers `schema` under `subject` (POST /subjects/{subject}/versions) and returns its
    /// id; registering an existing schema returns the existing id.
    pub fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let body = serde_json::json!({ "schema": schema }).to_string();
        let r: IdBody = self.call("POST", &format!("/subjects/{}/versions", encode(subject)), Some(&body))?;
        if let Ok(mut m) = self.by_id.lock() {
            m.insert(r.id, Arc::from(schema));
        }
        Ok(r.id)
    }

    /// Whether `schema` is compatible with the subject's latest version (POST
    /// /compatibility/subjects/{subject}/versions/latest); true when the subject is new.
    pub fn is_compatible(&self, subject: &str, schema: &str) -> Result<bool, RegistryError> {
        let body = serde_json::json!({ "schema": schema }).to_string();
        match self.call::<CompatibilityBody>("POST", &format!("/compatibility/subjects/{}/versions/latest", encode(subject)), Some(&body)) {
            Ok(r) => Ok(r.is_compatible),
            Err(e) if e.is_not_found() => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// The latest version of `subject` (GET /subjects/{subject}/versions/latest), or None.
    pub fn latest(&self, subject: &str) -> Result<Option<Registered>, RegistryError> {
        match self.call::<SchemaBody>("GET", &format!("/subjects/{}/versions/latest", encode(subject)), None) {
            Ok(b) => Ok(Some(Registered { id: b.id.unwrap_or(0), version: b.version, schema: b.schema })),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn call<T: for<'de> Deserialize<'de>>(&self, method: &str, path: &str, body: Option<&str>) -> Result<T, RegistryError> {
        let r = http::request(&self.base, method, path, body).map_err(RegistryError::Unavailable)?;
        if !(200..300).contains(&r.status) {
            let e: ErrorBody = serde_json::from_slice(&r.body).unwrap_or(ErrorBody {
                error_code: i64::from(r.status),
                message: String::from_utf8_lossy(&r.body).chars().take(200).collect(),
            });
            if r.status >= 500 {
                return Err(RegistryError::Unavailable(format!("HTTP {}: {}", r.status, e.message)));
            }
            return Err(RegistryError::Api { status: r.status, code: e.error_code, message: e.message });
        }
        serde_json::from_slice(&r.body).map_err(|e| RegistryError::Unavailable(format!("unexpected answer to {method} {path}: {e}")))
    }

    /// Puts a schema in the cache, as if fetched (tests and fuzzing without a registry).
    pub fn preload(&self, id: u32, schema: &str) {
        if let Ok(mut m) = self.by_id.lock() {
            m.insert(id, Arc::from(schema));
        }
    }
}

/// Percent-encodes a subject for a URL path.
fn encode(s: &str) -> String {
    crate::formats::percent_encode(s)
}
