//! The `epix-hub audit` commands that print or read files.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use epix_hub::audit::{export, query};

pub async fn verify(connection: &mut AsyncPgConnection) -> anyhow::Result<()> {
    let report = query::verify(connection).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    match report.first_bad {
        None => Ok(()),
        Some(bad) => anyhow::bail!(
            "the audit chain does not verify at seq {}: {}",
            bad.seq,
            bad.reason
        ),
    }
}

pub async fn export(
    connection: &mut AsyncPgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    output: Option<&Path>,
) -> anyhow::Result<()> {
    if from >= to {
        anyhow::bail!("--from {from} is not before --to {to}: expected a non-empty range");
    }
    let mut writer: Box<dyn Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let written = export::write_jsonl(connection, from, to, &mut writer).await?;
    eprintln!("exported {written} chain entries");
    Ok(())
}

pub fn verify_file(path: &Path) -> anyhow::Result<()> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let summary = export::verify_jsonl(std::io::BufReader::new(file))?;
    match summary.last {
        Some((seq, hash)) => println!(
            "ok: {} chain entries verified, ending at seq {seq} with hash {hash}",
            summary.checked
        ),
        None => println!("ok: the file holds no chain entries"),
    }
    Ok(())
}
