//! `epix-bench`: end-to-end throughput of the hub, and beside it, in the same run, a bare
//! relay that does only what any store-and-forward hub must do, as the machine's limit.
//!
//! Hub run: several spokes each send permits to the next one, flat out with a window of
//! unconfirmed publishes; each addressee stores nothing but acknowledges every delivery, and
//! a permit counts as done when its sender receives the delivered receipt. The figure is
//! permits / (last delivered receipt - first publish), with p50/p99 of sent -> delivered.
//!
//! Bare relay: the same number of messages of the same size go through one queue, a
//! consumer that inserts each batch into PostgreSQL in one statement and republishes it
//! with confirms, then acknowledges; the figure ends at the last arrival.
//!
//! Each run uses a database and a broker virtual host of its own (see `epix_tests`).

mod bare;
mod hub_run;

use clap::Parser;

#[derive(Parser, Clone, Debug)]
#[command(
    name = "epix-bench",
    about = "End-to-end benchmark of EPIX Hub beside a bare relay"
)]
pub struct Args {
    /// Permits (and bare-relay messages) per run.
    #[arg(long, default_value_t = 20_000)]
    pub permits: usize,
    /// Spokes; each sends an equal share to the next one.
    #[arg(long, default_value_t = 4)]
    pub spokes: usize,
    /// Unconfirmed publishes each sender keeps in flight.
    #[arg(long, default_value_t = 500)]
    pub window: usize,
    /// Hub submission workers (and bare-relay workers).
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Messages per database transaction, for both.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Line items per permit; four give about 3.5 KB of JSON.
    #[arg(long, default_value_t = 4)]
    pub lines: usize,
    /// Send unsigned permits to a hub that does not require signatures, to see what
    /// signature verification costs.
    #[arg(long)]
    pub unsigned: bool,
    /// Skip the bare relay.
    #[arg(long)]
    pub skip_bare: bool,
    /// Skip the hub run.
    #[arg(long)]
    pub skip_hub: bool,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub label: &'static str,
    pub messages: usize,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl RunResult {
    pub fn per_second(&self) -> f64 {
        self.messages as f64 / self.seconds
    }

    fn print(&self) {
        println!(
            "{:<10} {:>7} messages in {:>6.2} s = {:>7.0}/s   latency p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
            self.label,
            self.messages,
            self.seconds,
            self.per_second(),
            self.p50_ms,
            self.p99_ms,
            self.max_ms
        );
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        println!(
            "epix-bench: {} permits, {} spokes, window {}, {} workers, batch {}, {} lines per permit, {}",
            args.permits,
            args.spokes,
            args.window,
            args.workers,
            args.batch,
            args.lines,
            if args.unsigned { "unsigned" } else { "signed (ES256)" }
        );
        let hub = if args.skip_hub { None } else { Some(hub_run::run(&args).await?) };
        let bare = if args.skip_bare { None } else { Some(bare::run(&args).await?) };
        println!();
        if let Some(hub) = &hub {
            hub.print();
        }
        if let Some(bare) = &bare {
            bare.print();
        }
        if let (Some(hub), Some(bare)) = (&hub, &bare) {
            println!("hub / bare relay = {:.2}", hub.per_second() / bare.per_second());
        }
        Ok(())
    })
}

/// A permit of `issuer` to `importer` with `lines` line items of real Appendix II species.
pub fn permit(issuer: &str, importer: &str, number: &str, lines: usize) -> Vec<u8> {
    const SPECIES: [(&str, &str, &str, &str); 4] = [
        ("Testudo hermanni", "Hermann's tortoise", "C", "LIV"),
        ("Python regius", "ball python", "C", "LIV"),
        (
            "Alligator mississippiensis",
            "American alligator",
            "W",
            "LPS",
        ),
        ("Dendrobates tinctorius", "dyeing poison frog", "C", "LIV"),
    ];
    let today = chrono::Utc::now().date_naive();
    let items: Vec<serde_json::Value> = (0..lines)
        .map(|index| {
            let (name, common, source, term) = SPECIES[index % SPECIES.len()];
            serde_json::json!({
                "block": char::from(b'A' + (index % 26) as u8).to_string(),
                "scientific_name": name,
                "common_name": common,
                "description": format!("{common}, {term} specimens, individually marked; transponder series {number}-{index:02}-0001 to {number}-{index:02}-0040; shipped under the IATA Live Animals Regulations where live"),
                "appendix": "II",
                "source": source,
                "term": term,
                "quantity": 40,
                "unit": ""
            })
        })
        .collect();
    let document = serde_json::json!({
        "document_type": "export",
        "permit_number": number,
        "issuing_country": issuer,
        "issue_date": today.to_string(),
        "valid_until": (today + chrono::Days::new(150)).to_string(),
        "purpose": "T",
        "special_conditions": "Live animals must travel in accordance with the CITES Guidelines for the non-air transport of live wild animals and plants or the IATA Live Animals Regulations.",
        "importer": {"name": format!("Importer of {importer}"), "address": "Hauptstrasse 1, 10115 Berlin", "country": importer},
        "exporter": {"name": format!("Exporter of {issuer}"), "address": "Bahnhofstrasse 1, 8001 Zürich", "country": issuer},
        "lines": items
    });
    serde_json::to_vec_pretty(&document).expect("a JSON value serialises")
}

/// Builds a latency histogram in microseconds, up to one hour.
pub fn histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}
