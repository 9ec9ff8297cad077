//! The hub run: spokes send permits through an in-process hub and wait for the delivered
//! receipts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use epix_shared::ReceiptStatus;
use epix_shared::envelope::{Acknowledgement, AcknowledgementOutcome};
use epix_shared::signature::{ParsedCertificate, Signer, SigningKey};
use epix_spoke::{Outgoing, Spoke};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use uuid::Uuid;

use crate::{Args, RunResult, histogram, permit};

const CODES: [&str; 8] = ["CH", "DE", "FR", "IT", "AT", "NL", "BE", "ES"];

pub async fn run(args: &Args) -> anyhow::Result<RunResult> {
    let env = epix_tests::TestEnv::new().await?;
    let spoke_count = args.spokes.clamp(2, CODES.len());
    let mut spokes = Vec::new();
    for code in &CODES[..spoke_count] {
        let config = env.add_party(code).await?;
        spokes.push(Arc::new(Spoke::connect(config).await?));
    }
    let mut config = env.hub_config();
    config.workers = args.workers;
    config.batch_size = args.batch;
    config.prefetch = (args.batch * 2).min(u16::MAX as usize) as u16;
    config.db_pool_size = args.workers + 6;
    config.outbox_grace = std::time::Duration::from_secs(5);
    config.require_signatures = !args.unsigned;
    let hub = epix_hub::Hub::start(config).await?;
    let signers = register_signers(&env, &hub, &CODES[..spoke_count]).await?;

    // Prepare every message before the clock starts.
    let per_spoke = args.permits / spoke_count;
    let total = per_spoke * spoke_count;
    let mut prepared: Vec<Vec<Outgoing>> = Vec::new();
    for (index, code) in CODES[..spoke_count].iter().enumerate() {
        let to = CODES[(index + 1) % spoke_count];
        let signer = &signers[index];
        let mut outgoing = Vec::with_capacity(per_spoke);
        for serial in 0..per_spoke {
            let number = format!("26{code}{serial:07}");
            let mut message =
                Outgoing::issued_json(permit(code, to, &number, args.lines), to.parse()?)
                    .with_context(|| format!("benchmark permit {number} is invalid"))?;
            message.message_id = Some(Uuid::new_v4());
            if !args.unsigned {
                message.sign(signer)?;
            }
            outgoing.push(message);
        }
        prepared.push(outgoing);
    }
    println!(
        "hub run: {total} permits of {} bytes each",
        prepared[0].first().map_or(0, |m| m.body.len())
    );

    let sent_at: Arc<Mutex<HashMap<Uuid, Instant>>> =
        Arc::new(Mutex::new(HashMap::with_capacity(total)));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<(Uuid, Instant)>();

    let mut tasks = tokio::task::JoinSet::new();
    for spoke in &spokes {
        tasks.spawn(acknowledge_everything(spoke.clone()));
        tasks.spawn(collect_delivered(spoke.clone(), done_tx.clone()));
    }
    // Let the consumers attach before the clock starts.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for (spoke, outgoing) in spokes.iter().cloned().zip(prepared) {
        let sent_at = sent_at.clone();
        let window = args.window;
        senders.spawn(async move {
            let mut stream = futures_util::stream::iter(outgoing)
                .map(|message| {
                    let spoke = spoke.clone();
                    let sent_at = sent_at.clone();
                    async move {
                        let id = message.message_id.unwrap_or_default();
                        sent_at
                            .lock()
                            .expect("not poisoned")
                            .insert(id, Instant::now());
                        spoke.send(message).await
                    }
                })
                .buffer_unordered(window);
            while let Some(result) = stream.next().await {
                result?;
            }
            anyhow::Ok(())
        });
    }

    let mut latency = histogram();
    let mut finished = 0usize;
    let mut last = started;
    let deadline = std::time::Duration::from_secs(600);
    while finished < total {
        let Ok(Some((id, at))) = tokio::time::timeout(deadline, done_rx.recv()).await else {
            anyhow::bail!(
                "only {finished} of {total} delivered receipts arrived within {deadline:?}"
            );
        };
        let Some(sent) = sent_at.lock().expect("not poisoned").remove(&id) else {
            continue; // a repeated receipt
        };
        latency.record(at.duration_since(sent).as_micros().max(1) as u64)?;
        finished += 1;
        last = at;
    }
    while let Some(result) = senders.join_next().await {
        result??;
    }
    let seconds = last.duration_since(started).as_secs_f64();
    tasks.abort_all();
    hub.stop().await;
    Ok(RunResult {
        label: "hub",
        messages: total,
        seconds,
        p50_ms: latency.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: latency.value_at_quantile(0.99) as f64 / 1000.0,
        max_ms: latency.max() as f64 / 1000.0,
    })
}

/// Puts one signatory per Party on the register and returns their signers, in `codes` order.
async fn register_signers(
    env: &epix_tests::TestEnv,
    hub: &epix_hub::Hub,
    codes: &[&str],
) -> anyhow::Result<Vec<Signer>> {
    use epix_shared::signature::keygen::{self, KeySpec, SubjectName};
    let token = env
        .user_token(hub, "bench-registrar", None, &["secretariat"])
        .await?;
    let client = reqwest::Client::new();
    let mut signers = Vec::new();
    for code in codes {
        let subject = SubjectName {
            common_name: format!("Signatory of {code}"),
            organization: "Management Authority".to_owned(),
            country: (*code).to_owned(),
        };
        let key = keygen::generate_key(KeySpec::EcP256)?;
        let certificate = keygen::self_signed_certificate(&key, &subject, 30)?;
        let pem = String::from_utf8(keygen::certificate_pem(&certificate)?)?;
        let response = client
            .post(format!("http://{}/v1/signatories", hub.http_address()))
            .bearer_auth(&token)
            .json(&serde_json::json!({
                "party": code, "full_name": subject.common_name, "certificate": pem,
                "empowered_from": chrono::Utc::now() - chrono::Duration::days(1)
            }))
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == 201,
            "registering the signatory of {code} failed: {}",
            response.status()
        );
        let parsed = ParsedCertificate::from_x509(certificate)?;
        signers.push(Signer::new(SigningKey::new(key, parsed)?));
    }
    Ok(signers)
}

/// Acknowledges every delivery at once, several at a time.
async fn acknowledge_everything(spoke: Arc<Spoke>) -> anyhow::Result<()> {
    let mut inbox = spoke.inbox().await?;
    let acknowledgement = Acknowledgement {
        outcome: AcknowledgementOutcome::Received,
        problems: Vec::new(),
    };
    let mut pending = FuturesUnordered::new();
    loop {
        tokio::select! {
            delivered = inbox.next() => {
                let delivered = delivered?;
                let spoke = spoke.clone();
                let acknowledgement = acknowledgement.clone();
                pending.push(async move {
                    // Register broadcasts are removed, not acknowledged to the hub.
                    if delivered.is_broadcast() {
                        spoke.settle_broadcast(&delivered).await
                    } else {
                        spoke.acknowledge(&delivered, &acknowledgement).await
                    }
                });
            }
            Some(result) = pending.next(), if !pending.is_empty() => result?,
        }
    }
}

async fn collect_delivered(
    spoke: Arc<Spoke>,
    done: tokio::sync::mpsc::UnboundedSender<(Uuid, Instant)>,
) -> anyhow::Result<()> {
    let mut receipts = spoke.receipts().await?;
    loop {
        let received = receipts.next().await?;
        let now = Instant::now();
        if let Ok(receipt) = &received.receipt
            && receipt.status == ReceiptStatus::Delivered
        {
            let _ = done.send((receipt.message_id, now));
        }
        received.ack().await?;
    }
}
