//! A user-facing error in a file, rendered like a compiler's: the message, `file:line:column`,
//! and the offending line with a caret under the column.

use std::fmt;
use std::path::{Path, PathBuf};

/// An error at a position in a pipeline file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line and column, when known.
    pub position: Option<(usize, usize)>,
    pub message: String,
    /// The text of the line at `position`.
    pub source_line: Option<String>,
    /// A warning: the file is valid, but probably not what the user wants.
    pub warning: bool,
}

impl Diagnostic {
    pub fn new(file: &Path, text: &str, position: Option<(usize, usize)>, message: String) -> Diagnostic {
        let source_line = position.and_then(|(line, _)| text.lines().nth(line.saturating_sub(1))).map(str::to_string);
        Diagnostic { file: file.to_path_buf(), position, message, source_line, warning: false }
    }

    /// An error about the file as a whole (it cannot be read, say).
    pub fn plain(file: &Path, message: String) -> Diagnostic {
        Diagnostic { file: file.to_path_buf(), position: None, message, source_line: None, warning: false }
    }

    /// The same message as a warning.
    pub fn into_warning(self) -> Diagnostic {
        Diagnostic { warning: true, ..self }
    }

    pub fn line(&self) -> Option<usize> {
        self.position.map(|p| p.0)
    }

    pub fn column(&self) -> Option<usize> {
        self.position.map(|p| p.1)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {}", if self.warning { "warning" } else { "error" }, self.message)?;
        match self.position {
            Some((line, column)) => {
                writeln!(f, "  --> {}:{line}:{column}", self.file.display())?;
                if let Some(src) = &self.source_line {
                    let gutter = line.to_string().len();
                    writeln!(f, "{:gutter$} |", "")?;
                    writeln!(f, "{line} | {src}")?;
                    let pad: String = src.chars().take(column.saturating_sub(1)).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
                    write!(f, "{:gutter$} | {pad}^", "")?;
                }
                Ok(())
            }
            None => write!(f, "  --> {}", self.file.display()),
        }
    }
}

impl std::error::Error for Diagnostic {}
