//! Exports as JSON Lines, and their offline check by the rules of the database check.

use std::io::{BufRead, Write};

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use epix_shared::audit::{ChainBreak, ChainChecker, ChainEntry};

use super::query::{self, ExportError};

/// Writes the chain entries of `[from, to)` to `writer`, one JSON object a line: see
/// [`query::export`] for which entries. Returns how many lines were written.
pub async fn write_jsonl(
    connection: &mut AsyncPgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    writer: &mut impl Write,
) -> Result<u64, ExportError> {
    let written = query::export(connection, from, to, |entry| {
        serde_json::to_writer(&mut *writer, entry)?;
        writer.write_all(b"\n")
    })
    .await?;
    writer.flush()?;
    Ok(written)
}

/// The result of checking an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    /// Entries checked, purged stubs included.
    pub checked: u64,
    /// The last entry's seq and hash (hexadecimal); `None` for an empty file.
    pub last: Option<(i64, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read line {line}: {source}")]
    Read { line: usize, source: std::io::Error },
    #[error(
        "line {line} is not an audit event or purged stub: {message}; expected the JSON that `epix-hub audit export` writes"
    )]
    Parse { line: usize, message: String },
    /// A line that does not verify; for a stub whose purge event never came, `line` is the
    /// file's last line.
    #[error("line {line} (seq {}) does not verify: {}", .problem.seq, .problem.reason)]
    Broken { line: usize, problem: ChainBreak },
}

/// Checks every line of an export in order. The first line's `prev_hash` is taken as
/// given, because an export may start anywhere in the chain. Compare it with the last hash
/// of the export before it.
pub fn verify_jsonl(reader: impl BufRead) -> Result<FileSummary, FileError> {
    let mut checker = ChainChecker::from_anywhere();
    let mut last_line = 0;
    for (index, line) in reader.lines().enumerate() {
        let number = index + 1;
        let line = line.map_err(|source| FileError::Read {
            line: number,
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let entry: ChainEntry = serde_json::from_str(&line).map_err(|error| FileError::Parse {
            line: number,
            message: error.to_string(),
        })?;
        checker.check(&entry).map_err(|problem| FileError::Broken {
            line: number,
            problem,
        })?;
        last_line = number;
    }
    checker.finish().map_err(|problem| FileError::Broken {
        line: last_line,
        problem,
    })?;
    Ok(FileSummary {
        checked: checker.checked(),
        last: checker
            .last()
            .map(|(seq, hash)| (seq, epix_shared::audit::to_hex(&hash))),
    })
}
