//! Writing delivered documents into a folder, atomically.
//!
//! Each delivery becomes two files named by the hub's delivery id: `<id>.envelope.json`
//! and the document `<id>.json` (or `.xml`). Each is written to a temporary name, synced,
//! then renamed, so a reader of the folder never sees half a file. The envelope is renamed
//! first, so a document that is visible always has its envelope.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Delivered, SpokeError};

/// Writes `delivered` into `dir` and returns the document's path. Writing the same
/// delivery again replaces the files with identical ones.
pub fn write_delivery(dir: &Path, delivered: &Delivered) -> Result<PathBuf, SpokeError> {
    let extension = match delivered.content_type.as_deref() {
        Some("application/xml") => "xml",
        _ => "json",
    };
    let stem = delivered
        .correlation_id
        .unwrap_or(delivered.message_id)
        .to_string();
    let envelope = serde_json::to_vec_pretty(&delivered.envelope()).unwrap_or_default();
    write_atomically(dir, &format!("{stem}.envelope.json"), &envelope)?;
    write_atomically(dir, &format!("{stem}.{extension}"), &delivered.body)
}

pub(crate) fn write_atomically(
    dir: &Path,
    name: &str,
    bytes: &[u8],
) -> Result<PathBuf, SpokeError> {
    let target = dir.join(name);
    let failed = |source| SpokeError::Write {
        path: target.display().to_string(),
        source,
    };
    let temporary = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::File::create(&temporary).map_err(failed)?;
    file.write_all(bytes).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    std::fs::rename(&temporary, &target).map_err(failed)?;
    // Sync the folder so that the rename itself survives a crash.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(failed)?;
    Ok(target)
}
