use std::path::{Path, PathBuf};

use super::super::{parse, Diagnostic, LoadedConfig};
use super::*;

const HEAD: &str = "app: secure\nkafka:\n  bootstrap_servers: broker:9093\n";
const TAIL: &str = r#"sources:
  events:
    topic: events
    schema: { action: string }
sinks:
  out:
    topic: out
    output_mode: update
queries:
  - name: q
    sink: out
    sql: SELECT action, count(*) AS n FROM events GROUP BY action
"#;

fn with_security(security: &str) -> String {
    format!("{HEAD}  security:\n{security}{TAIL}")
}

fn env_with(name: &'static str, value: &'static str) -> impl Fn(&str) -> Option<String> {
    move |n: &str| (n == name).then(|| value.to_string())
}

fn load(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<LoadedConfig, Diagnostic> {
    parse(Path::new("p.yaml"), text, env).map_err(|d| *d)
}

/// A file under the system's temp dir, unique to this test process.
fn secret_file(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eddy-security-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn settings(c: &LoadedConfig) -> Vec<(&'static str, String)> {
    let sec = c.config.kafka.security.as_ref().unwrap();
    librdkafka_settings(sec).into_iter().map(|(k, v)| (k, v.expose().to_string())).collect()
}

#[test]
fn sasl_ssl_with_scram_maps_onto_librdkafka_settings() {
    let pw = secret_file("scram", "s3cret-pw\n");
    let text = with_security(&format!(
        "    protocol: SASL_SSL\n    sasl:\n      mechanism: SCRAM-SHA-512\n      username: eddy\n      password_file: {}\n    tls:\n      ca_file: /tls/ca.crt\n",
        pw.display()
    ));
    let c = load(&text, |_| None).unwrap();
    assert_eq!(
        settings(&c),
        vec![
            ("security.protocol", "SASL_SSL".to_string()),
            ("sasl.mechanisms", "SCRAM-SHA-512".to_string()),
            ("sasl.username", "eddy".to_string()),
            ("sasl.password", "s3cret-pw".to_string()),
            ("ssl.ca.location", "/tls/ca.crt".to_string()),
            ("ssl.endpoint.identification.algorithm", "https".to_string()),
        ]
    );
}

#[test]
fn mutual_tls_with_a_key_password_from_the_environment() {
    let text = with_security(
        "    protocol: ssl\n    tls:\n      cert_file: /tls/tls.crt\n      key_file: /tls/tls.key\n      key_password_env: KEY_PW\n      verify_hostname: false\n",
    );
    let c = load(&text, env_with("KEY_PW", "hunter2")).unwrap();
    let s = settings(&c);
    assert!(s.contains(&("security.protocol", "SSL".into())));
    assert!(s.contains(&("ssl.certificate.location", "/tls/tls.crt".into())));
    assert!(s.contains(&("ssl.key.location", "/tls/tls.key".into())));
    assert!(s.contains(&("ssl.key.password", "hunter2".into())));
    assert!(s.contains(&("ssl.endpoint.identification.algorithm", "none".into())));
    assert!(!s.iter().any(|(k, _)| k.starts_with("sasl.")));
}

#[test]
fn secrets_never_show_in_debug_or_explain_output() {
    let text = with_security(
        "    protocol: SASL_PLAINTEXT\n    sasl:\n      mechanism: PLAIN\n      username: eddy\n      password_env: KAFKA_PASSWORD\n",
    );
    let c = load(&text, env_with("KAFKA_PASSWORD", "pa55-w0rd-value")).unwrap();
    let sec = c.config.kafka.security.as_ref().unwrap();
    assert_eq!(sec.sasl.as_ref().unwrap().password.as_ref().unwrap().expose(), "pa55-w0rd-value");
    let debug = format!("{:?}", c.config);
    assert!(!debug.contains("pa55-w0rd-value"), "{debug}");
    assert!(debug.contains("Secret(***)"));
    let settings_debug = format!("{:?}", librdkafka_settings(sec));
    assert!(!settings_debug.contains("pa55-w0rd-value"), "{settings_debug}");
    let shown = sec.to_string();
    assert_eq!(shown, "SASL_PLAINTEXT, SASL PLAIN as eddy (password from $KAFKA_PASSWORD)");
    let pipeline = crate::pipeline::from_text(Path::new("p.yaml"), &text, env_with("KAFKA_PASSWORD", "pa55-w0rd-value")).unwrap();
    let explained = pipeline.explain();
    assert!(explained.contains("SASL PLAIN as eddy"), "{explained}");
    assert!(!explained.contains("pa55-w0rd-value"));
}

#[test]
fn a_sasl_protocol_without_a_sasl_section_is_located() {
    let d = load(&with_security("    protocol: SASL_SSL\n"), |_| None).unwrap_err();
    assert!(d.message.contains("needs a `sasl:` section"), "{}", d.message);
    assert_eq!(d.position, Some((5, 15)));
}

#[test]
fn tls_with_a_plaintext_protocol_is_refused() {
    let d = load(
        &with_security(
            "    protocol: SASL_PLAINTEXT\n    sasl: { mechanism: PLAIN, username: u, password_env: P }\n    tls: { ca_file: /ca }\n",
        ),
        |_| None,
    )
    .unwrap_err();
    assert!(d.message.contains("does not use TLS"), "{}", d.message);
    assert_eq!(d.line(), Some(7));
}

#[test]
fn a_password_needs_exactly_one_source() {
    let none =
        load(&with_security("    protocol: SASL_SSL\n    sasl:\n      mechanism: PLAIN\n      username: u\n"), |_| None).unwrap_err();
    assert!(none.message.contains("password_file"), "{}", none.message);
    assert_eq!(none.line(), Some(7));
    let both = load(
        &with_security("    protocol: SASL_SSL\n    sasl:\n      mechanism: PLAIN\n      username: u\n      password_file: /p\n      password_env: P\n"),
        |_| None,
    )
    .unwrap_err();
    assert!(both.message.contains("both set"), "{}", both.message);
    assert_eq!(both.line(), Some(10));
}

#[test]
fn an_inline_password_or_unknown_mechanism_is_a_located_serde_error() {
    let inline =
        load(&with_security("    protocol: SASL_SSL\n    sasl:\n      mechanism: PLAIN\n      username: u\n      password: x\n"), |_| None)
            .unwrap_err();
    assert!(inline.message.contains("unknown field `password`"), "{}", inline.message);
    assert_eq!(inline.line(), Some(9));
    let mech = load(
        &with_security("    protocol: SASL_SSL\n    sasl:\n      mechanism: GSSAPI\n      username: u\n      password_env: P\n"),
        |_| None,
    )
    .unwrap_err();
    assert!(mech.message.contains("SCRAM-SHA-512"), "{}", mech.message);
    assert_eq!(mech.line(), Some(7));
}

#[test]
fn a_missing_secret_file_or_variable_points_at_its_field() {
    let missing = with_security(
        "    protocol: SASL_SSL\n    sasl:\n      mechanism: SCRAM-SHA-256\n      username: u\n      password_file: /nonexistent/eddy/pw\n",
    );
    let d = load(&missing, |_| None).unwrap_err();
    assert!(d.message.contains("cannot read sasl.password_file /nonexistent/eddy/pw"), "{}", d.message);
    assert_eq!(d.position, Some((9, 22)));
    let unset =
        with_security("    protocol: SASL_SSL\n    sasl:\n      mechanism: PLAIN\n      username: u\n      password_env: NOT_SET_HERE\n");
    let d = load(&unset, |_| None).unwrap_err();
    assert!(d.message.contains("NOT_SET_HERE is not set"), "{}", d.message);
    assert_eq!(d.line(), Some(9));
}

#[test]
fn properties_may_not_carry_secrets_or_security_settings() {
    let text = format!("{HEAD}  properties:\n    sasl.password: oops\n{TAIL}");
    let d = load(&text, |_| None).unwrap_err();
    assert!(d.message.contains("may not set \"sasl.password\""), "{}", d.message);
    assert!(d.message.contains("password_file"), "{}", d.message);
    assert_eq!(d.line(), Some(5));
    let text = format!("{HEAD}  properties:\n    security.protocol: SSL\n{TAIL}");
    assert!(load(&text, |_| None).unwrap_err().message.contains("kafka.security.protocol"));
}

#[test]
fn a_client_key_needs_its_certificate() {
    let d = load(&with_security("    protocol: SSL\n    tls:\n      key_file: /tls/key\n"), |_| None).unwrap_err();
    assert!(d.message.contains("needs tls.cert_file"), "{}", d.message);
    assert_eq!(d.line(), Some(7));
}
