//! `eddy query`: asks a running instance's `/query` (the pipeline's `http.listen`, or `--url`)
//! and prints the answer as a table, JSON or CSV; `--watch` asks again at an interval and
//! redraws the table, like re-running `display(spark.sql(...))`. Plain HTTP/1.1 over std's
//! TCP stream, bounded by a timeout. Depends on `query`'s parameter encoding only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};

use super::percent_encode;

#[derive(clap::Args)]
pub struct QueryArgs {
    /// The query, e.g. "SELECT action, sum(count) FROM counts GROUP BY action": a SELECT over
    /// the pipeline's queries by name.
    pub sql: String,
    /// The pipeline file: its http.listen says where the running instance answers.
    #[arg(short, long, required_unless_present = "url")]
    pub config: Option<PathBuf>,
    /// host:port of the instance to ask, instead of the file's http.listen.
    #[arg(long, env = "EDDY_QUERY_URL")]
    pub url: Option<String>,
    /// How to print the answer.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub format: Output,
    /// Accept an answer for the partitions this instance owns, naming the others.
    #[arg(long)]
    pub partial: bool,
    /// Ask again at this interval and redraw the table, e.g. "1s" (Ctrl-C stops).
    #[arg(long, value_parser = crate::time::parse_duration)]
    pub watch: Option<i64>,
    /// How long to wait for one answer, e.g. "30s".
    #[arg(long, default_value = "30s", value_parser = crate::time::parse_duration)]
    pub timeout: i64,
}

/// `eddy query`.
pub fn run(a: &QueryArgs) -> anyhow::Result<()> {
    let listen = match (&a.url, &a.config) {
        (Some(url), _) => url.clone(),
        (None, Some(path)) => crate::pipeline::load(path).map_err(|d| anyhow!("{d}"))?.config().http.listen.clone(),
        (None, None) => bail!("give the pipeline file (-c) or the instance's address (--url)"),
    };
    let addr = address(&listen)?;
    let timeout = Duration::from_micros(a.timeout.max(1) as u64);
    let Some(every) = a.watch else {
        let (status, body) = ask(addr, &a.sql, a.format == Output::Csv, a.partial, timeout)?;
        print!("{}", render(status, &body, a.format)?);
        return Ok(());
    };
    let every = Duration::from_micros(every.max(1_000) as u64);
    loop {
        let shown = match ask(addr, &a.sql, a.format == Output::Csv, a.partial, timeout) {
            Ok((status, body)) => render(status, &body, a.format).unwrap_or_else(|e| format!("{e}\n")),
            Err(e) => format!("{e:#}\n"),
        };
        let mut now = String::new();
        let micros = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
        crate::time::format_timestamp(micros, &mut now);
        // Clear the screen and home the cursor, then the table.
        print!("\x1b[2J\x1b[H{now}  every {every:?}: {}\n\n{shown}", a.sql);
        std::io::stdout().flush()?;
        std::thread::sleep(every);
    }
}

/// How to print an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
    Csv,
}

/// Where to ask: `host:port` of a listener (`0.0.0.0` and `[::]` mean this machine).
pub fn address(listen: &str) -> anyhow::Result<SocketAddr> {
    let listen = listen.trim_start_matches("http://").trim_end_matches('/');
    let listen = listen.replace("0.0.0.0:", "127.0.0.1:").replace("[::]:", "[::1]:");
    listen.to_socket_addrs().with_context(|| format!("cannot resolve {listen}"))?.next().ok_or_else(|| anyhow!("{listen} has no address"))
}

/// GETs `/query` with `sql`; the status and the body.
pub fn ask(addr: SocketAddr, sql: &str, csv: bool, partial: bool, timeout: Duration) -> anyhow::Result<(u16, String)> {
    let mut target = format!("/query?sql={}", percent_encode(sql));
    if partial {
        target.push_str("&partial=true");
    }
    get(addr, &target, if csv { "text/csv" } else { "application/json" }, timeout)
}

/// GETs `target` from `addr`: the status and the body.
pub fn get(addr: SocketAddr, target: &str, accept: &str, timeout: Duration) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("cannot connect to eddy at {addr} (is the pipeline running, and is this its http.listen?)"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "GET {target} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).with_context(|| format!("no answer from {addr} within {timeout:?}"))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| anyhow!("{addr} sent no HTTP response"))?;
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| anyhow!("{addr}: bad status line"))?;
    Ok((status, body.to_string()))
}

/// The answer's body printed as asked; an error answer becomes an error with its message.
pub fn render(status: u16, body: &str, output: Output) -> anyhow::Result<String> {
    if status != 200 {
        let message = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| body.trim().to_string());
        bail!("the query failed ({status}): {message}");
    }
    match output {
        Output::Csv => Ok(body.to_string()),
        Output::Json => Ok(body.to_string()),
        Output::Table => table(body),
    }
}

fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "NULL".to_string(),
        other => other.to_string(),
    }
}

/// Spark's `show()` layout: a ruled table with a header, then how many rows and what is missing.
fn table(body: &str) -> anyhow::Result<String> {
    let v: serde_json::Value = serde_json::from_str(body).context("the answer is not JSON")?;
    let columns: Vec<String> = v["columns"].as_array().map(|c| c.iter().map(cell).collect()).unwrap_or_default();
    let rows: Vec<Vec<(String, bool)>> = v["rows"]
        .as_array()
        .map(|rows| rows.iter().map(|r| columns.iter().map(|c| (cell(&r[c.as_str()]), r[c.as_str()].is_number())).collect()).collect())
        .unwrap_or_default();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| rows.iter().map(|r| r[i].0.chars().count()).chain([c.chars().count()]).max().unwrap_or(0))
        .collect();
    let rule: String = widths.iter().map(|w| format!("+{}", "-".repeat(*w))).collect::<String>() + "+\n";
    let line = |cells: Vec<(String, bool)>| -> String {
        let mut s = String::new();
        for ((text, right), w) in cells.into_iter().zip(&widths) {
            let pad = " ".repeat(w - text.chars().count());
            s.push('|');
            if right {
                s.push_str(&pad);
                s.push_str(&text);
            } else {
                s.push_str(&text);
                s.push_str(&pad);
            }
        }
        s + "|\n"
    };
    let mut out = rule.clone();
    out.push_str(&line(columns.iter().map(|c| (c.clone(), false)).collect()));
    out.push_str(&rule);
    let n = rows.len();
    for r in rows {
        out.push_str(&line(r));
    }
    out.push_str(&rule);
    out.push_str(&format!("{n} row{}", if n == 1 { "" } else { "s" }));
    for t in v["tables"].as_array().into_iter().flatten() {
        let missing = t["missing"].as_array().map_or(0, Vec::len);
        if missing > 0 {
            out.push_str(&format!(
                "; {}: {missing} of {} partitions missing ({})",
                cell(&t["table"]),
                t["partitions"],
                t["missing"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| format!("{} {}", m["partition"], cell(&m["reason"])))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_drawn_with_the_answer_s_columns_in_order() {
        let body = r#"{"columns":["action","n"],"rows":[{"n":12,"action":"Open"},{"n":3,"action":"Close"}],"tables":[{"table":"counts","partitions":2,"answered":[0],"missing":[{"partition":1,"reason":"restoring"}]}]}"#;
        let t = render(200, body, Output::Table).unwrap();
        assert_eq!(
            t,
            "+------+--+\n|action|n |\n+------+--+\n|Open  |12|\n|Close | 3|\n+------+--+\n2 rows; counts: 1 of 2 partitions missing (1 restoring)\n"
        );
        let e = render(422, r#"{"error":"too big"}"#, Output::Table).err().unwrap();
        assert_eq!(e.to_string(), "the query failed (422): too big");
        assert_eq!(address("0.0.0.0:9464").unwrap().to_string(), "127.0.0.1:9464");
    }
}
