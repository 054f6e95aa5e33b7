//! Planning errors, with a position inside the SQL text when one is known.

use datafusion_sql::sqlparser::tokenizer::{Location, Span};

/// An error in a query, rendered as the message plus an optional hint.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SqlError {
    pub message: String,
    /// 1-based line and column inside the SQL text.
    pub position: Option<(usize, usize)>,
}

impl SqlError {
    pub fn new(message: impl Into<String>) -> SqlError {
        SqlError { message: message.into(), position: None }
    }

    pub fn at(span: Span, message: impl Into<String>) -> SqlError {
        SqlError { message: message.into(), position: position(span.start) }
    }

    /// Keeps an existing position, or takes `span`'s.
    pub fn or_at(mut self, span: Span) -> SqlError {
        if self.position.is_none() {
            self.position = position(span.start);
        }
        self
    }

    /// From sqlparser's error, whose text ends with "at Line: L, Column: C".
    /// Errors at the end of input ("found: EOF") point just past the last character.
    pub fn from_parser(e: datafusion_sql::sqlparser::parser::ParserError, sql: &str) -> SqlError {
        let text = e.to_string();
        let text = text.strip_prefix("sql parser error: ").unwrap_or(&text).to_string();
        if let Some(i) = text.rfind(" at Line: ") {
            let tail = &text[i + " at Line: ".len()..];
            let mut parts = tail.split(", Column: ");
            let line = parts.next().and_then(|l| l.trim().parse().ok());
            let col = parts.next().and_then(|c| c.trim().parse().ok());
            if let (Some(line), Some(col)) = (line, col) {
                return SqlError { message: format!("syntax error: {}", &text[..i]), position: Some((line, col)) };
            }
        }
        let position = text.contains("found: EOF").then(|| end_of(sql));
        SqlError { message: format!("syntax error: {text}"), position }
    }
}

fn position(loc: Location) -> Option<(usize, usize)> {
    if loc.line == 0 {
        None
    } else {
        Some((loc.line as usize, loc.column as usize))
    }
}

/// The 1-based position just after the last non-whitespace character of `text`.
fn end_of(text: &str) -> (usize, usize) {
    let trimmed = text.trim_end();
    let line = trimmed.lines().count().max(1);
    let col = trimmed.lines().last().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

impl SqlError {
    /// At the first column `e` reads whose position DataFusion kept.
    pub fn at_column(e: &datafusion_expr::Expr, message: impl Into<String>) -> SqlError {
        let position = e
            .column_refs()
            .iter()
            .find_map(|c| c.spans().first())
            .map(|s| (s.start.line as usize, s.start.column as usize))
            .filter(|p| p.0 > 0);
        SqlError { message: message.into(), position }
    }
}
