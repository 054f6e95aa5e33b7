//! Kafka security in the pipeline file (`kafka.security`): the protocol, SASL (PLAIN,
//! SCRAM-SHA-256/512) and TLS, checked at load time, with secrets read from files or
//! environment variables and held in [`Secret`], which never prints its value.
//! Maps onto librdkafka setting names but depends on nothing beyond `config` itself.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::PathSeg;

/// `kafka.security`: how eddy's clients authenticate and encrypt.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL` (Kafka's `security.protocol`).
    pub protocol: SecurityProtocol,
    /// Required by the SASL protocols, refused by the others.
    #[serde(default)]
    pub sasl: Option<SaslConfig>,
    /// Certificates for `SSL` and `SASL_SSL`; without it the system's CA store is used.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

/// Kafka's security protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SecurityProtocol {
    #[serde(alias = "plaintext")]
    Plaintext,
    #[serde(alias = "ssl")]
    Ssl,
    #[serde(alias = "sasl_plaintext")]
    SaslPlaintext,
    #[serde(alias = "sasl_ssl")]
    SaslSsl,
}

impl SecurityProtocol {
    /// The librdkafka (and Kafka) spelling.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
    fn uses_sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }
    fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }
}

/// SASL mechanisms eddy supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// The librdkafka (and Kafka) spelling.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// `kafka.security.sasl`. The password comes from exactly one of `password_file` or
/// `password_env`; it is never written in the pipeline file itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaslConfig {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: SaslMechanism,
    /// The user name (not a secret).
    pub username: String,
    /// A file holding the password (a mounted Kubernetes Secret, say); one trailing newline
    /// is ignored.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Filled in at load time from the file or variable.
    #[serde(skip)]
    pub password: Option<Secret>,
}

/// `kafka.security.tls`: PEM files. The key's password, if it has one, comes from a file or
/// an environment variable.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// CA certificate(s) that sign the brokers' certificates. Default: the system's store.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate, for brokers that require mutual TLS; needs `key_file`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// Client private key; needs `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// A file holding the private key's password.
    #[serde(default)]
    pub key_password_file: Option<PathBuf>,
    /// An environment variable holding the private key's password.
    #[serde(default)]
    pub key_password_env: Option<String>,
    /// Check that the broker's certificate names the host eddy connected to. Default true.
    #[serde(default = "default_true")]
    pub verify_hostname: bool,
    /// Filled in at load time from the file or variable.
    #[serde(skip)]
    pub key_password: Option<Secret>,
}

fn default_true() -> bool {
    true
}

/// A secret value: its Debug and Display print `***`, so neither logs nor `explain` show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }
    /// The value, for handing to librdkafka and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// librdkafka settings that `kafka.security` owns, or that carry secrets: `kafka.properties`
/// may not set them, so that no password sits in the pipeline file.
pub const OWNED_PROPERTIES: &[(&str, &str)] = &[
    ("security.protocol", "use kafka.security.protocol"),
    ("sasl.mechanism", "use kafka.security.sasl.mechanism"),
    ("sasl.mechanisms", "use kafka.security.sasl.mechanism"),
    ("sasl.username", "use kafka.security.sasl.username"),
    ("sasl.password", "use kafka.security.sasl.password_file or password_env; secrets stay out of the pipeline file"),
    ("ssl.ca.location", "use kafka.security.tls.ca_file"),
    ("ssl.certificate.location", "use kafka.security.tls.cert_file"),
    ("ssl.key.location", "use kafka.security.tls.key_file"),
    ("ssl.key.password", "use kafka.security.tls.key_password_file or key_password_env"),
    ("ssl.key.pem", "use kafka.security.tls.key_file; secrets stay out of the pipeline file"),
    ("ssl.keystore.password", "secrets stay out of the pipeline file; use kafka.security.tls with PEM files"),
    ("sasl.oauthbearer.client.secret", "secrets stay out of the pipeline file"),
    ("ssl.endpoint.identification.algorithm", "use kafka.security.tls.verify_hostname"),
];

/// A problem with `kafka.security`: where (a path under the file's root) and what.
pub type SecurityError = (Vec<PathSeg>, String);

fn at(rest: &[&str], message: String) -> SecurityError {
    let mut path = vec![PathSeg::key("kafka"), PathSeg::key("security")];
    path.extend(rest.iter().map(|k| PathSeg::key(k)));
    (path, message)
}

/// Cross-field checks that need no file or variable: what the protocol requires and refuses.
pub fn check(s: &SecurityConfig) -> Result<(), SecurityError> {
    let p = s.protocol.name();
    match (&s.sasl, s.protocol.uses_sasl()) {
        (None, true) => {
            return Err(at(
                &["protocol"],
                format!("protocol {p} needs a `sasl:` section (mechanism, username, password_file or password_env)"),
            ))
        }
        (Some(_), false) => {
            return Err(at(&["sasl"], format!("protocol {p} does not use SASL; write protocol: SASL_SSL (or SASL_PLAINTEXT) to use it")))
        }
        _ => {}
    }
    if s.tls.is_some() && !s.protocol.uses_tls() {
        return Err(at(&["tls"], format!("protocol {p} does not use TLS; write protocol: SSL (or SASL_SSL) to use it")));
    }
    if let Some(sasl) = &s.sasl {
        if sasl.username.is_empty() {
            return Err(at(&["sasl", "username"], "sasl.username is empty".into()));
        }
        one_source(&sasl.password_file, &sasl.password_env, &["sasl"], "password", true)?;
    }
    if let Some(tls) = &s.tls {
        match (&tls.cert_file, &tls.key_file) {
            (Some(_), None) => return Err(at(&["tls", "cert_file"], "tls.cert_file needs tls.key_file (the client's private key)".into())),
            (None, Some(_)) => return Err(at(&["tls", "key_file"], "tls.key_file needs tls.cert_file (the client's certificate)".into())),
            _ => {}
        }
        one_source(&tls.key_password_file, &tls.key_password_env, &["tls"], "key_password", false)?;
        if tls.key_file.is_none() && (tls.key_password_file.is_some() || tls.key_password_env.is_some()) {
            return Err(at(&["tls"], "a key password is set but tls.key_file is not".into()));
        }
    }
    Ok(())
}

fn one_source(file: &Option<PathBuf>, env: &Option<String>, section: &[&str], what: &str, required: bool) -> Result<(), SecurityError> {
    let sec = section.join(".");
    match (file, env) {
        (Some(_), Some(_)) => {
            let mut path = section.to_vec();
            let field = format!("{what}_env");
            path.push(&field);
            Err(at(&path, format!("{sec}.{what}_file and {sec}.{what}_env are both set; keep one")))
        }
        (None, None) if required => Err(at(
            section,
            format!("{sec} needs {what}_file (a file holding the {what}) or {what}_env (a variable holding it); it is never written in the pipeline file"),
        )),
        _ => Ok(()),
    }
}

/// Reads every secret the section names, from its file or environment variable. Called once
/// at load time; an unreadable file or unset variable is an error at the field that names it.
pub fn resolve(s: &mut SecurityConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<(), SecurityError> {
    if let Some(sasl) = &mut s.sasl {
        sasl.password = read_secret(&sasl.password_file, &sasl.password_env, env, "sasl", "password")?;
    }
    if let Some(tls) = &mut s.tls {
        tls.key_password = read_secret(&tls.key_password_file, &tls.key_password_env, env, "tls", "key_password")?;
    }
    Ok(())
}

fn read_secret(
    file: &Option<PathBuf>,
    var: &Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
    section: &str,
    what: &str,
) -> Result<Option<Secret>, SecurityError> {
    let value = match (file, var) {
        (Some(path), _) => {
            let field = format!("{what}_file");
            let text = std::fs::read_to_string(path)
                .map_err(|e| at(&[section, &field], format!("cannot read {section}.{field} {}: {e}", path.display())))?;
            let value = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text).to_string();
            if value.is_empty() {
                return Err(at(&[section, &field], format!("{section}.{field} {} is empty", path.display())));
            }
            value
        }
        (None, Some(name)) => {
            let field = format!("{what}_env");
            match env(name) {
                Some(v) if !v.is_empty() => v,
                _ => {
                    return Err(at(
                        &[section, &field],
                        format!("{section}.{field}: the environment variable {name} is not set or is empty"),
                    ))
                }
            }
        }
        (None, None) => return Ok(None),
    };
    Ok(Some(Secret::new(value)))
}

/// A librdkafka setting's value: plain, or a secret that only the client builder exposes.
#[derive(Debug, Clone, PartialEq)]
pub enum SettingValue<'a> {
    Plain(String),
    Secret(&'a Secret),
}

impl SettingValue<'_> {
    pub fn expose(&self) -> &str {
        match self {
            SettingValue::Plain(s) => s,
            SettingValue::Secret(s) => s.expose(),
        }
    }
}

/// The librdkafka settings for a resolved section, in a fixed order.
pub fn librdkafka_settings(s: &SecurityConfig) -> Vec<(&'static str, SettingValue<'_>)> {
    let plain = |v: &str| SettingValue::Plain(v.to_string());
    let path = |p: &Path| SettingValue::Plain(p.display().to_string());
    let mut out = vec![("security.protocol", plain(s.protocol.name()))];
    if let Some(sasl) = &s.sasl {
        out.push(("sasl.mechanisms", plain(sasl.mechanism.name())));
        out.push(("sasl.username", plain(&sasl.username)));
        if let Some(p) = &sasl.password {
            out.push(("sasl.password", SettingValue::Secret(p)));
        }
    }
    if let Some(tls) = &s.tls {
        if let Some(p) = &tls.ca_file {
            out.push(("ssl.ca.location", path(p)));
        }
        if let Some(p) = &tls.cert_file {
            out.push(("ssl.certificate.location", path(p)));
        }
        if let Some(p) = &tls.key_file {
            out.push(("ssl.key.location", path(p)));
        }
        if let Some(p) = &tls.key_password {
            out.push(("ssl.key.password", SettingValue::Secret(p)));
        }
        out.push(("ssl.endpoint.identification.algorithm", plain(if tls.verify_hostname { "https" } else { "none" })));
    }
    out
}

/// One line for `explain`: what is configured and where secrets come from, never their values.
impl fmt::Display for SecurityConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.protocol.name())?;
        if let Some(s) = &self.sasl {
            let from = match (&s.password_file, &s.password_env) {
                (Some(p), _) => format!("file {}", p.display()),
                (None, Some(v)) => format!("${v}"),
                (None, None) => "nowhere".into(),
            };
            write!(f, ", SASL {} as {} (password from {from})", s.mechanism.name(), s.username)?;
        }
        if let Some(t) = &self.tls {
            let ca = t.ca_file.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "the system store".into());
            write!(f, ", TLS with CA {ca}")?;
            if let Some(c) = &t.cert_file {
                write!(f, ", client certificate {}", c.display())?;
            }
            if !t.verify_hostname {
                f.write_str(", host names not verified")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "security_tests.rs"]
mod tests;
