//! Signed permits checked against the register of signatories, at the signing time. Keys and
//! certificates are made at test time by the `openssl` command-line tool.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, Utc};
use epix_hub::Hub;
use epix_shared::signature::{Signer, SigningKey};
use epix_shared::{ErrorCode, ReceiptStatus};
use epix_spoke::{Outgoing, Spoke, SpokeConfig};
use epix_tests::{TestEnv, permit_json};

use crate::support::init_logging;

/// A key and certificate made by the openssl CLI.
pub(crate) struct Credentials {
    pub(crate) key: PathBuf,
    pub(crate) cert: PathBuf,
}

pub(crate) fn openssl_credentials(dir: &Path, name: &str, country: &str) -> Credentials {
    let key = dir.join(format!("{name}.key.pem"));
    let cert = dir.join(format!("{name}.cert.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args([
            "-subj",
            &format!("/CN={name}/O=Management Authority/C={country}"),
        ])
        .args(["-addext", "keyUsage=critical,digitalSignature"])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("the openssl command runs");
    assert!(status.success(), "openssl made no certificate for {name}");
    Credentials { key, cert }
}

pub(crate) fn signer(credentials: &Credentials) -> Signer {
    Signer::new(
        SigningKey::from_pem_files(&credentials.key, &credentials.cert)
            .expect("key and certificate load"),
    )
}

pub(crate) async fn register(
    hub: &Hub,
    token: &str,
    party: &str,
    name: &str,
    credentials: &Credentials,
    from: chrono::DateTime<Utc>,
) -> serde_json::Value {
    let certificate = std::fs::read_to_string(&credentials.cert).expect("certificate");
    let response = reqwest::Client::new()
        .post(format!("http://{}/v1/signatories", hub.http_address()))
        .bearer_auth(token)
        .json(&serde_json::json!({
            "party": party, "full_name": name, "title": "Head of permits",
            "certificate": certificate, "empowered_from": from
        }))
        .send()
        .await
        .expect("answers");
    let status = response.status();
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(status, 201, "{body}");
    body
}

struct Setup {
    env: TestEnv,
    hub: Hub,
    secretariat: String,
    spoke: Spoke,
    receipts: epix_spoke::Receipts,
    dir: tempfile::TempDir,
}

async fn setup(require_signatures: bool) -> Setup {
    init_logging();
    let env = TestEnv::new().await.expect("test environment");
    let ch: SpokeConfig = env.add_party("CH").await.expect("add CH");
    env.add_party("DE").await.expect("add DE");
    let mut config = env.hub_config();
    config.require_signatures = require_signatures;
    let hub = Hub::start(config).await.expect("hub starts");
    let secretariat = env
        .user_token(&hub, "registrar", None, &["secretariat"])
        .await
        .expect("login");
    let spoke = Spoke::connect(ch).await.expect("connects");
    let receipts = spoke.receipts().await.expect("receipts");
    Setup {
        env,
        hub,
        secretariat,
        spoke,
        receipts,
        dir: tempfile::tempdir().expect("temp dir"),
    }
}

fn permit(number: &str) -> Outgoing {
    Outgoing::issued_json(permit_json("CH", "DE", number), "DE".parse().expect("code"))
        .expect("valid")
}

/// Sends and returns the codes of the rejection, or an empty list when accepted.
async fn send(setup: &mut Setup, outgoing: Outgoing) -> Vec<ErrorCode> {
    let message_id = setup.spoke.send(outgoing).await.expect("sent");
    let seen = tokio::time::timeout(crate::support::WAIT, async {
        loop {
            let received = setup.receipts.next().await.expect("receipts open");
            let receipt = received.receipt.clone().expect("parses");
            received.ack().await.expect("ack");
            if receipt.message_id == message_id {
                return receipt;
            }
        }
    })
    .await
    .expect("a receipt arrives");
    match seen.status {
        ReceiptStatus::Accepted => Vec::new(),
        _ => seen.problems.iter().map(|p| p.code).collect(),
    }
}

#[tokio::test]
async fn signed_permit_is_checked_against_register() {
    let mut setup = setup(true).await;
    let now = Utc::now();
    let anna = openssl_credentials(setup.dir.path(), "anna", "CH");
    register(
        &setup.hub,
        &setup.secretariat,
        "CH",
        "Anna Signer",
        &anna,
        now - Duration::days(1),
    )
    .await;

    // Valid: signed by our code with the openssl-made key.
    let mut valid = permit("26CH000200");
    valid.sign(&signer(&anna)).expect("signs");
    assert_eq!(
        send(&mut setup, valid).await,
        vec![],
        "a validly signed permit is accepted"
    );
    let customs = setup
        .env
        .user_token(&setup.hub, "de-customs", Some("DE"), &["customs"])
        .await
        .expect("login");
    let record: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "http://{}/v1/permits/CH/26CH000200",
            setup.hub.http_address()
        ))
        .bearer_auth(&customs)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        record["signed_by"], "Anna Signer",
        "the permit's record names who issued it: {record}"
    );

    // The body changed after signing.
    let mut changed = permit("26CH000201");
    changed.sign(&signer(&anna)).expect("signs");
    changed.body = String::from_utf8(changed.body)
        .expect("UTF-8")
        .replace("\"quantity\": 12", "\"quantity\": 120")
        .into_bytes();
    assert_eq!(
        send(&mut setup, changed).await,
        vec![ErrorCode::SignatureInvalid]
    );

    // The same document re-serialised: equal as JSON, different as bytes.
    let mut reserialised = permit("26CH000202");
    reserialised.sign(&signer(&anna)).expect("signs");
    let value: serde_json::Value = serde_json::from_slice(&reserialised.body).expect("JSON");
    reserialised.body = serde_json::to_vec(&value).expect("compact JSON");
    assert_eq!(
        send(&mut setup, reserialised).await,
        vec![ErrorCode::SignatureInvalid]
    );

    // A certificate that is not on the register.
    let stranger = openssl_credentials(setup.dir.path(), "stranger", "CH");
    let mut unknown = permit("26CH000203");
    unknown.sign(&signer(&stranger)).expect("signs");
    assert_eq!(
        send(&mut setup, unknown).await,
        vec![ErrorCode::SignatoryUnknown]
    );

    // A signatory of another Party.
    let dieter = openssl_credentials(setup.dir.path(), "dieter", "DE");
    register(
        &setup.hub,
        &setup.secretariat,
        "DE",
        "Dieter Signer",
        &dieter,
        now - Duration::days(1),
    )
    .await;
    let mut foreign = permit("26CH000204");
    foreign.sign(&signer(&dieter)).expect("signs");
    assert_eq!(
        send(&mut setup, foreign).await,
        vec![ErrorCode::SignatoryOfOtherParty]
    );

    // A signing time in the future.
    let mut future = permit("26CH000205");
    future.signature = Some(
        signer(&anna)
            .sign(&future.body, now + Duration::hours(1))
            .expect("signs"),
    );
    assert_eq!(
        send(&mut setup, future).await,
        vec![ErrorCode::SigningTimeInFuture]
    );

    // A signing time before the empowerment took effect.
    let mut early = permit("26CH000206");
    early.signature = Some(
        signer(&anna)
            .sign(&early.body, now - Duration::days(2))
            .expect("signs"),
    );
    assert_eq!(
        send(&mut setup, early).await,
        vec![ErrorCode::SignatoryNotEmpowered]
    );

    // A signing time further back than the hub accepts.
    let mut stale = permit("26CH000208");
    stale.signature = Some(
        signer(&anna)
            .sign(&stale.body, now - Duration::days(4))
            .expect("signs"),
    );
    assert_eq!(
        send(&mut setup, stale).await,
        vec![ErrorCode::SigningTimeTooEarly]
    );

    // Missing where signatures are required.
    assert_eq!(
        send(&mut setup, permit("26CH000207")).await,
        vec![ErrorCode::SignatureMissing]
    );
    setup.hub.stop().await;
}

#[tokio::test]
async fn openssl_signature_is_accepted() {
    let mut setup = setup(true).await;
    let anna = openssl_credentials(setup.dir.path(), "anna", "CH");
    register(
        &setup.hub,
        &setup.secretariat,
        "CH",
        "Anna Signer",
        &anna,
        Utc::now() - Duration::days(1),
    )
    .await;

    // Build the JWS by hand and sign it with the openssl CLI, independently of our signer.
    let mut outgoing = permit("26CH000210");
    let der = openssl::x509::X509::from_pem(&std::fs::read(&anna.cert).expect("cert"))
        .expect("PEM")
        .to_der()
        .expect("DER");
    let thumbprint = URL_SAFE_NO_PAD.encode(openssl::sha::sha256(&der));
    let header = serde_json::json!({
        "alg": "ES256", "x5t#S256": thumbprint,
        "sigT": Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(), "crit": ["sigT"]
    });
    let protected = URL_SAFE_NO_PAD.encode(header.to_string());
    let input = format!("{protected}.{}", URL_SAFE_NO_PAD.encode(&outgoing.body));
    let input_path = setup.dir.path().join("input");
    std::fs::write(&input_path, &input).expect("write");
    let output = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(&anna.key)
        .arg(&input_path)
        .output()
        .expect("openssl runs");
    assert!(output.status.success());
    let raw = der_to_raw(&output.stdout);
    outgoing.signature = Some(format!("{protected}..{}", URL_SAFE_NO_PAD.encode(raw)));
    assert_eq!(
        send(&mut setup, outgoing).await,
        vec![],
        "a signature made by openssl is accepted"
    );

    // An alg-none and an HMAC signature are rejected whatever they claim.
    for alg in ["none", "HS256"] {
        let mut forged = permit(&format!("26CH00021{}", if alg == "none" { 1 } else { 2 }));
        let header = serde_json::json!({"alg": alg, "x5t#S256": thumbprint, "sigT": Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(), "crit": ["sigT"]});
        forged.signature = Some(format!(
            "{}..{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(b"x")
        ));
        assert_eq!(
            send(&mut setup, forged).await,
            vec![ErrorCode::SignatureAlgorithmRejected],
            "alg {alg}"
        );
    }
    setup.hub.stop().await;
}

/// Converts an ECDSA DER signature (SEQUENCE of two INTEGERs) to JWS's 64-byte R||S.
fn der_to_raw(der: &[u8]) -> Vec<u8> {
    let signature = openssl::ecdsa::EcdsaSig::from_der(der).expect("DER signature");
    let mut raw = signature.r().to_vec_padded(32).expect("r");
    raw.extend(signature.s().to_vec_padded(32).expect("s"));
    raw
}

#[tokio::test]
async fn removal_voids_only_later_signatures() {
    let mut setup = setup(true).await;
    let anna = openssl_credentials(setup.dir.path(), "anna", "CH");
    let record = register(
        &setup.hub,
        &setup.secretariat,
        "CH",
        "Anna Signer",
        &anna,
        Utc::now() - Duration::days(1),
    )
    .await;
    // The certificate starts when openssl made it, so sign after that.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let signed_while_empowered = Utc::now();
    let mut before = permit("26CH000220");
    before.signature = Some(
        signer(&anna)
            .sign(&before.body, signed_while_empowered)
            .expect("signs"),
    );

    let response = reqwest::Client::new()
        .post(format!("http://{}/v1/signatories/{}/removal", setup.hub.http_address(), record["signatory_id"].as_str().expect("id")))
        .bearer_auth(&setup.secretariat)
        .json(&serde_json::json!({"effective_at": signed_while_empowered + Duration::seconds(1), "reason": "left the Management Authority"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let mut after = permit("26CH000221");
    after.signature = Some(signer(&anna).sign(&after.body, Utc::now()).expect("signs"));

    let revocations: Vec<serde_json::Value> = reqwest::Client::new()
        .get(format!(
            "http://{}/v1/revocations",
            setup.hub.http_address()
        ))
        .bearer_auth(&setup.secretariat)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    let lengthened = reqwest::Client::new()
        .post(format!("http://{}/v1/signatories/{}/removal", setup.hub.http_address(), record["signatory_id"].as_str().expect("id")))
        .bearer_auth(&setup.secretariat)
        .json(&serde_json::json!({"effective_at": "2099-01-01T00:00:00Z", "reason": "moved the removal later"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(
        lengthened.status(),
        409,
        "a removal cannot be moved later to re-empower the signatory"
    );
    assert_eq!(revocations.len(), 1, "{revocations:?}");
    assert_eq!(revocations[0]["kind"], "signatory");
    assert_eq!(revocations[0]["reason"], "left the Management Authority");
    assert_eq!(
        send(&mut setup, before).await,
        vec![],
        "signed while empowered: still valid"
    );
    assert_eq!(
        send(&mut setup, after).await,
        vec![ErrorCode::SignatoryRevoked],
        "signed after the removal"
    );
    setup.hub.stop().await;
}

/// A P-256 key and a certificate valid from an hour ago until `seconds` from now. The
/// openssl CLI of Debian 12 cannot set a certificate's dates, so this uses the library.
fn short_lived(dir: &Path, seconds: i64) -> Credentials {
    use openssl::asn1::Asn1Time;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::extension::KeyUsage;
    use openssl::x509::{X509Builder, X509NameBuilder};
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("curve");
    let key = PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("key");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", "Short Lived").expect("CN");
    name.append_entry_by_text("C", "CH").expect("C");
    let name = name.build();
    let mut builder = X509Builder::new().expect("builder");
    builder.set_version(2).expect("version");
    builder.set_subject_name(&name).expect("subject");
    builder.set_issuer_name(&name).expect("issuer");
    builder.set_pubkey(&key).expect("key");
    let now = Utc::now().timestamp();
    let not_before = Asn1Time::from_unix(now - 3600).expect("time");
    let not_after = Asn1Time::from_unix(now + seconds).expect("time");
    builder.set_not_before(&not_before).expect("not before");
    builder.set_not_after(&not_after).expect("not after");
    let usage = KeyUsage::new()
        .critical()
        .digital_signature()
        .build()
        .expect("usage");
    builder.append_extension(usage).expect("extension");
    builder
        .sign(&key, openssl::hash::MessageDigest::sha256())
        .expect("signs");
    let credentials = Credentials {
        key: dir.join("short.key.pem"),
        cert: dir.join("short.cert.pem"),
    };
    std::fs::write(
        &credentials.key,
        key.private_key_to_pem_pkcs8().expect("PEM"),
    )
    .expect("write");
    std::fs::write(&credentials.cert, builder.build().to_pem().expect("PEM")).expect("write");
    credentials
}

#[tokio::test]
async fn expired_certificate_is_rejected() {
    let mut setup = setup(true).await;
    let short = short_lived(setup.dir.path(), 4);
    register(
        &setup.hub,
        &setup.secretariat,
        "CH",
        "Short Lived",
        &short,
        Utc::now() - Duration::days(1),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let mut outgoing = permit("26CH000230");
    outgoing.sign(&signer(&short)).expect("signs");
    assert_eq!(
        send(&mut setup, outgoing).await,
        vec![ErrorCode::CertificateExpired],
        "expired at the signing time"
    );
    setup.hub.stop().await;
}

#[tokio::test]
async fn register_changes_need_the_right_role() {
    let setup = setup(false).await;
    let anna = openssl_credentials(setup.dir.path(), "anna", "CH");
    let certificate = std::fs::read_to_string(&anna.cert).expect("certificate");
    let client = reqwest::Client::new();
    let url = format!("http://{}/v1/signatories", setup.hub.http_address());
    let body = serde_json::json!({"party": "CH", "full_name": "Anna Signer", "certificate": certificate, "empowered_from": Utc::now() - Duration::days(60)});

    let customs = setup
        .env
        .user_token(&setup.hub, "ch-customs", Some("CH"), &["customs"])
        .await
        .expect("login");
    let response = client
        .post(&url)
        .bearer_auth(&customs)
        .json(&body)
        .send()
        .await
        .expect("answers");
    assert_eq!(
        response.status(),
        403,
        "a customs token on a register write"
    );

    let other_admin = setup
        .env
        .user_token(&setup.hub, "de-admin", Some("DE"), &["authority-admin"])
        .await
        .expect("login");
    let response = client
        .post(&url)
        .bearer_auth(&other_admin)
        .json(&body)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 403, "an admin of another Party");

    let admin = setup
        .env
        .user_token(&setup.hub, "ch-admin", Some("CH"), &["authority-admin"])
        .await
        .expect("login");
    let response = client
        .post(&url)
        .bearer_auth(&admin)
        .json(&body)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 201);
    let pending: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(
        pending["status"], "pending",
        "an authority's notification waits for the Secretariat"
    );
    assert_eq!(
        pending["late_notification"], true,
        "notified two months after it took effect"
    );

    let register: Vec<serde_json::Value> = client
        .get(&url)
        .bearer_auth(&customs)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert!(
        register.is_empty(),
        "a pending record is not on the register yet"
    );

    let response = client
        .post(format!("{url}/records/{}/approval", pending["record_id"]))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("answers");
    assert_eq!(
        response.status(),
        403,
        "an authority cannot approve its own notification"
    );
    let response = client
        .post(format!("{url}/records/{}/approval", pending["record_id"]))
        .bearer_auth(&setup.secretariat)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 200);
    let register: Vec<serde_json::Value> = client
        .get(&url)
        .bearer_auth(&customs)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(register.len(), 1);

    let again = client
        .post(&url)
        .bearer_auth(&setup.secretariat)
        .json(&body)
        .send()
        .await
        .expect("answers");
    assert_eq!(again.status(), 409, "one certificate, one signatory");

    let weak_dir = setup.dir.path().join("weak");
    std::fs::create_dir_all(&weak_dir).expect("dir");
    let weak_key = weak_dir.join("k.pem");
    let weak_cert = weak_dir.join("c.pem");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:1024",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=weak/C=CH",
        ])
        .arg("-keyout")
        .arg(&weak_key)
        .arg("-out")
        .arg(&weak_cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success());
    let weak = serde_json::json!({"party": "CH", "full_name": "Weak Key", "certificate": std::fs::read_to_string(&weak_cert).expect("cert"), "empowered_from": Utc::now()});
    let response = client
        .post(&url)
        .bearer_auth(&setup.secretariat)
        .json(&weak)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 400);
    let problem: serde_json::Value = response.json().await.expect("JSON");
    assert!(
        problem["problems"].to_string().contains("key_too_weak"),
        "{problem}"
    );
    setup.hub.stop().await;
}

fn amendment(number: &str, quantity: u32) -> Outgoing {
    let mut document: serde_json::Value =
        serde_json::from_slice(&permit_json("CH", "DE", number)).expect("JSON");
    document["lines"][0]["quantity"] = quantity.into();
    let mut outgoing = Outgoing::issued_json(
        serde_json::to_vec_pretty(&document).expect("JSON"),
        "DE".parse().expect("code"),
    )
    .expect("valid");
    outgoing.message_type = epix_shared::envelope::MessageType::PermitAmended;
    outgoing
}

#[tokio::test]
async fn amendment_needs_issuer_signature() {
    let mut setup = setup(false).await;
    let anna = openssl_credentials(setup.dir.path(), "anna", "CH");
    let bert = openssl_credentials(setup.dir.path(), "bert", "CH");
    let dieter = openssl_credentials(setup.dir.path(), "dieter", "DE");
    let since = Utc::now() - Duration::days(1);
    register(
        &setup.hub,
        &setup.secretariat,
        "CH",
        "Anna Signer",
        &anna,
        since,
    )
    .await;
    register(
        &setup.hub,
        &setup.secretariat,
        "CH",
        "Bert Signer",
        &bert,
        since,
    )
    .await;
    register(
        &setup.hub,
        &setup.secretariat,
        "DE",
        "Dieter Signer",
        &dieter,
        since,
    )
    .await;

    let mut issued = permit("26CH000300");
    issued.sign(&signer(&anna)).expect("signs");
    assert_eq!(send(&mut setup, issued).await, vec![]);

    // Unsigned amendments are void even where unsigned permits still pass.
    assert_eq!(
        send(&mut setup, amendment("26CH000300", 10)).await,
        vec![ErrorCode::SignatureMissing]
    );
    let mut by_other_party = amendment("26CH000300", 10);
    by_other_party.sign(&signer(&dieter)).expect("signs");
    assert_eq!(
        send(&mut setup, by_other_party).await,
        vec![ErrorCode::SignatoryOfOtherParty]
    );
    let mut of_unknown = amendment("26CH000399", 10);
    of_unknown.sign(&signer(&bert)).expect("signs");
    assert_eq!(
        send(&mut setup, of_unknown).await,
        vec![ErrorCode::PermitUnknown]
    );

    let mut amended = amendment("26CH000300", 10);
    amended.sign(&signer(&bert)).expect("signs");
    assert_eq!(
        send(&mut setup, amended).await,
        vec![],
        "an amendment signed by the issuer's signatory"
    );

    let customs = setup
        .env
        .user_token(&setup.hub, "de-customs", Some("DE"), &["customs"])
        .await
        .expect("login");
    let record: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "http://{}/v1/permits/CH/26CH000300",
            setup.hub.http_address()
        ))
        .bearer_auth(&customs)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(record["version"], 2, "{record}");
    assert_eq!(record["issued_by"], "Anna Signer", "{record}");
    assert_eq!(record["altered_by"], "Bert Signer", "{record}");
    assert!(record["altered_at"].is_string(), "{record}");
    setup.hub.stop().await;
}

/// Checks the hub's detached JWS over `body` with the key the hub publishes in its JWKS.
fn hub_signature_valid(jwks: &serde_json::Value, signature: &str, body: &[u8]) -> bool {
    let parts: Vec<&str> = signature.split('.').collect();
    assert_eq!(parts.len(), 3, "a detached JWS has three parts");
    assert!(parts[1].is_empty(), "the payload is detached");
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("base64"))
            .expect("JSON header");
    let key = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|key| key["kid"] == header["kid"])
        .expect("the kid names a published key");
    let decoding = jsonwebtoken::DecodingKey::from_ec_components(
        key["x"].as_str().expect("x"),
        key["y"].as_str().expect("y"),
    )
    .expect("EC key");
    let input = format!("{}.{}", parts[0], URL_SAFE_NO_PAD.encode(body));
    jsonwebtoken::crypto::verify(
        parts[2],
        input.as_bytes(),
        &decoding,
        jsonwebtoken::Algorithm::ES256,
    )
    .unwrap_or(false)
}

#[tokio::test]
async fn trust_list_is_versioned_and_signed() {
    let setup = setup(false).await;
    let client = reqwest::Client::new();
    let base = format!("http://{}", setup.hub.http_address());
    let get = |path: &str, etag: Option<&str>| {
        let mut request = client
            .get(format!("{base}{path}"))
            .bearer_auth(&setup.secretariat);
        if let Some(etag) = etag {
            request = request.header("If-None-Match", etag);
        }
        request.send()
    };

    let empty = get("/v1/trust-list", None).await.expect("answers");
    assert_eq!(empty.headers()["etag"], "\"0\"");

    let anna = openssl_credentials(setup.dir.path(), "anna", "CH");
    let record = register(
        &setup.hub,
        &setup.secretariat,
        "CH",
        "Anna Signer",
        &anna,
        Utc::now() - Duration::days(1),
    )
    .await;
    let response = get("/v1/trust-list", None).await.expect("answers");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let signature = response.headers()["epix-signature"]
        .to_str()
        .expect("text")
        .to_owned();
    let body = response.bytes().await.expect("body").to_vec();
    let list: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(list["version"], 1);
    assert_eq!(list["signatories"][0]["full_name"], "Anna Signer");

    let jwks: serde_json::Value = reqwest::get(format!("{base}/.well-known/jwks.json"))
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert!(
        hub_signature_valid(&jwks, &signature, &body),
        "the hub's signature verifies"
    );
    let tampered = String::from_utf8(body.clone())
        .expect("UTF-8")
        .replace("Anna Signer", "Eve Forger")
        .into_bytes();
    assert!(
        !hub_signature_valid(&jwks, &signature, &tampered),
        "a tampered trust list fails verification"
    );

    assert_eq!(
        get("/v1/trust-list", Some("\"1\""))
            .await
            .expect("answers")
            .status(),
        304,
        "unchanged since version 1"
    );

    let removal = client
        .post(format!(
            "{base}/v1/signatories/{}/removal",
            record["signatory_id"].as_str().expect("id")
        ))
        .bearer_auth(&setup.secretariat)
        .json(&serde_json::json!({"reason": "left the Management Authority"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(removal.status(), 200);
    assert_eq!(
        get("/v1/trust-list", Some("\"1\""))
            .await
            .expect("answers")
            .status(),
        200,
        "changed after the removal"
    );
    let changes: serde_json::Value = get("/v1/trust-list/changes?since=1", None)
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(changes["version"], 2, "{changes}");
    assert_eq!(
        changes["changes"].as_array().map(Vec::len),
        Some(1),
        "{changes}"
    );
    assert!(
        changes["changes"][0]["empowered_until"].is_string(),
        "{changes}"
    );
    setup.hub.stop().await;
}
