//! Detached JWS signing and verification, checked against the `openssl` command-line tool.
//!
//! Keys and certificates are made at test time with `openssl req` in a temporary directory.
//! Signatures made by the CLI over a signing input built here must verify with our code, and
//! signatures made by our code must verify with `openssl dgst -verify`.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, SecondsFormat, SubsecRound, Utc};
use epix_shared::ErrorCode;
use epix_shared::signature::{
    Algorithm, ParsedCertificate, SignatureError, Signer, SigningKey, check_certificate,
    parse_detached, verify,
};
use tempfile::TempDir;

/// A key and self-signed certificate made by the openssl CLI.
struct CliKey {
    key: PathBuf,
    cert: PathBuf,
    public_key: PathBuf,
}

struct Workspace {
    dir: TempDir,
}

impl Workspace {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        // A minimal configuration, so the system's openssl.cnf adds no extensions.
        std::fs::write(
            dir.path().join("req.cnf"),
            "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = unused\n",
        )
        .expect("write req.cnf");
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Makes a key with `newkey` (an `openssl req -newkey` argument list) and a certificate
    /// valid for 30 days from now with the given keyUsage, or none.
    fn key(&self, name: &str, newkey: &[&str], key_usage: Option<&str>) -> CliKey {
        let key = self.path(&format!("{name}.key.pem"));
        let cert = self.path(&format!("{name}.cert.pem"));
        let public_key = self.path(&format!("{name}.pub.pem"));
        let config = self.path("req.cnf");
        let mut args = vec!["req", "-config", path_str(&config), "-x509", "-newkey"];
        args.extend_from_slice(newkey);
        args.extend_from_slice(&["-nodes", "-keyout", path_str(&key), "-out", path_str(&cert)]);
        args.extend_from_slice(&["-days", "30", "-subj", "/C=CH/O=FSVO/CN=Anna Muster"]);
        let usage;
        if let Some(key_usage) = key_usage {
            usage = format!("keyUsage=critical,{key_usage}");
            args.extend_from_slice(&["-addext", &usage]);
        }
        run_openssl(&args);
        let public = run_openssl(&["x509", "-in", path_str(&cert), "-pubkey", "-noout"]);
        std::fs::write(&public_key, public).expect("write public key");
        CliKey {
            key,
            cert,
            public_key,
        }
    }

    fn p256(&self, name: &str) -> CliKey {
        self.key(
            name,
            &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            Some("digitalSignature"),
        )
    }

    fn p384(&self, name: &str) -> CliKey {
        self.key(
            name,
            &["ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
            Some("digitalSignature"),
        )
    }

    fn rsa2048(&self, name: &str) -> CliKey {
        self.key(name, &["rsa:2048"], Some("digitalSignature"))
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).expect("write file");
        path
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

fn run_openssl(args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl command-line tool is installed");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn load_cert(key: &CliKey) -> ParsedCertificate {
    ParsedCertificate::from_pem(&std::fs::read(&key.cert).expect("read cert"))
        .expect("certificate parses")
}

fn load_signer(key: &CliKey, algorithm: Algorithm) -> Signer {
    let signing_key = SigningKey::from_pem_files(&key.key, &key.cert).expect("signing key loads");
    Signer::with_algorithm(signing_key, algorithm).expect("algorithm fits key")
}

/// Computes the certificate thumbprint with the CLI and returns it in base64url.
fn cli_thumbprint(key: &CliKey) -> String {
    let output = run_openssl(&[
        "x509",
        "-in",
        path_str(&key.cert),
        "-noout",
        "-fingerprint",
        "-sha256",
    ]);
    let text = String::from_utf8(output).expect("fingerprint is text");
    let hex = text
        .trim()
        .rsplit('=')
        .next()
        .expect("fingerprint value")
        .replace(':', "");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit"))
        .collect();
    b64(&bytes)
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

/// Reads a DER `ECDSA-Sig-Value` (SEQUENCE of INTEGER r, INTEGER s) into fixed-width
/// R || S, independently of the library's conversion.
fn der_to_raw(der: &[u8], width: usize) -> Vec<u8> {
    fn read_length(bytes: &[u8], at: &mut usize) -> usize {
        let first = bytes[*at] as usize;
        *at += 1;
        if first < 0x80 {
            return first;
        }
        let count = first & 0x7f;
        let mut length = 0;
        for _ in 0..count {
            length = (length << 8) | bytes[*at] as usize;
            *at += 1;
        }
        length
    }
    let mut at = 0;
    assert_eq!(der[at], 0x30, "SEQUENCE");
    at += 1;
    read_length(der, &mut at);
    let mut raw = Vec::new();
    for _ in 0..2 {
        assert_eq!(der[at], 0x02, "INTEGER");
        at += 1;
        let length = read_length(der, &mut at);
        let mut integer = &der[at..at + length];
        at += length;
        while integer.len() > width && integer[0] == 0 {
            integer = &integer[1..];
        }
        assert!(integer.len() <= width, "integer wider than the curve");
        raw.extend(std::iter::repeat_n(0, width - integer.len()));
        raw.extend_from_slice(integer);
    }
    raw
}

/// Writes fixed-width R || S as a DER `ECDSA-Sig-Value`.
fn raw_to_der(raw: &[u8]) -> Vec<u8> {
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut content = Vec::new();
    for integer in [r, s] {
        let mut integer = integer;
        while integer.len() > 1 && integer[0] == 0 && integer[1] < 0x80 {
            integer = &integer[1..];
        }
        let mut bytes = Vec::new();
        if integer[0] >= 0x80 {
            bytes.push(0);
        }
        bytes.extend_from_slice(integer);
        content.push(0x02);
        content.push(bytes.len() as u8);
        content.extend(bytes);
    }
    let mut der = vec![0x30];
    if content.len() >= 0x80 {
        der.push(0x81);
    }
    der.push(content.len() as u8);
    der.extend(content);
    der
}

/// `openssl dgst` options for an algorithm: the digest, then signature options.
fn dgst_options(algorithm: &str) -> Vec<&'static str> {
    match algorithm {
        "ES384" => vec!["-sha384"],
        "PS256" => vec![
            "-sha256",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:digest",
        ],
        _ => vec!["-sha256"],
    }
}

/// Signs `header_json` and `body` with the CLI and returns the detached JWS. The raw
/// `openssl dgst` output is used as the JWS signature unless `ecdsa_width` is given, in which
/// case the DER signature is converted to R || S of that width.
fn cli_sign_with(
    work: &Workspace,
    key: &CliKey,
    header_json: &str,
    body: &[u8],
    options: &[&str],
    ecdsa_width: Option<usize>,
) -> String {
    let encoded_header = b64(header_json.as_bytes());
    let signing_input = format!("{encoded_header}.{}", b64(body));
    let input = work.write("input.txt", signing_input.as_bytes());
    let signature_path = work.path("signature.bin");
    let mut args = vec!["dgst"];
    args.extend_from_slice(options);
    args.extend_from_slice(&[
        "-sign",
        path_str(&key.key),
        "-out",
        path_str(&signature_path),
    ]);
    args.push(path_str(&input));
    run_openssl(&args);
    let mut signature = std::fs::read(&signature_path).expect("read signature");
    if let Some(width) = ecdsa_width {
        signature = der_to_raw(&signature, width);
    }
    format!("{encoded_header}..{}", b64(&signature))
}

fn ecdsa_width(algorithm: &str) -> Option<usize> {
    match algorithm {
        "ES256" => Some(32),
        "ES384" => Some(48),
        _ => None,
    }
}

fn standard_header(algorithm: &str, thumbprint: &str, signing_time: DateTime<Utc>) -> String {
    format!(
        r#"{{"alg":"{algorithm}","x5t#S256":"{thumbprint}","sigT":"{}","crit":["sigT"]}}"#,
        signing_time.format("%Y-%m-%dT%H:%M:%SZ")
    )
}

fn cli_sign(
    work: &Workspace,
    key: &CliKey,
    algorithm: &str,
    body: &[u8],
    at: DateTime<Utc>,
) -> String {
    let header = standard_header(algorithm, &cli_thumbprint(key), at);
    cli_sign_with(
        work,
        key,
        &header,
        body,
        &dgst_options(algorithm),
        ecdsa_width(algorithm),
    )
}

/// Verifies a JWS made by our signer with `openssl dgst -verify`.
fn cli_verify(work: &Workspace, key: &CliKey, jws: &str, body: &[u8]) -> bool {
    let (encoded_header, rest) = jws.split_once("..").expect("detached JWS");
    let mut signature = URL_SAFE_NO_PAD.decode(rest).expect("base64url signature");
    let header: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(encoded_header)
            .expect("base64url header"),
    )
    .expect("JSON header");
    let algorithm = header["alg"].as_str().expect("alg").to_owned();
    if ecdsa_width(&algorithm).is_some() {
        signature = raw_to_der(&signature);
    }
    let input = work.write(
        "verify-input.txt",
        format!("{encoded_header}.{}", b64(body)).as_bytes(),
    );
    let signature_path = work.write("verify-signature.bin", &signature);
    let mut args = vec!["dgst"];
    args.extend(dgst_options(&algorithm));
    args.extend_from_slice(&["-verify", path_str(&key.public_key), "-signature"]);
    args.push(path_str(&signature_path));
    args.push(path_str(&input));
    let output = Command::new("openssl")
        .args(&args)
        .output()
        .expect("run openssl");
    output.status.success()
}

const PERMIT_JSON: &[u8] = br#"{"documentNumber":"CH-2026-00042","type":"export","species":"Crocodylus niloticus","quantity":2.5,"issuer":"Bern"}"#;

const PERMIT_XML: &[u8] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<permit number=\"CH-2026-00042\">\n  <species>Crocodylus niloticus</species>\n  <remark>Caf\u{e9}</remark>\n</permit>\n".as_bytes();

fn expect_error(result: Result<impl std::fmt::Debug, SignatureError>) -> SignatureError {
    result.expect_err("the signature must be rejected")
}

// Accepted signatures, both directions.

#[test]
fn cli_signatures_verify_with_our_code() {
    let work = Workspace::new();
    let keys = [
        ("ES256", work.p256("es256")),
        ("ES384", work.p384("es384")),
        ("RS256", work.rsa2048("rs256")),
        ("PS256", work.rsa2048("ps256")),
    ];
    let at = now();
    for (algorithm, key) in &keys {
        let certificate = load_cert(key);
        for body in [PERMIT_JSON, PERMIT_XML] {
            let jws = cli_sign(&work, key, algorithm, body, at);
            let verified = verify(&jws, body, &certificate).unwrap_or_else(|error| {
                panic!("{algorithm} signature by the CLI rejected: {error}")
            });
            assert_eq!(verified.algorithm.as_str(), *algorithm);
            assert_eq!(verified.signing_time, at);
            assert_eq!(verified.thumbprint.to_base64url(), cli_thumbprint(key));
        }
    }
}

#[test]
fn our_signatures_verify_with_cli() {
    let work = Workspace::new();
    let cases = [
        (Algorithm::Es256, work.p256("es256")),
        (Algorithm::Es384, work.p384("es384")),
        (Algorithm::Rs256, work.rsa2048("rs256")),
        (Algorithm::Ps256, work.rsa2048("ps256")),
    ];
    for (algorithm, key) in &cases {
        let signer = load_signer(key, *algorithm);
        for body in [PERMIT_JSON, PERMIT_XML] {
            let jws = signer.sign(body, now()).expect("signing succeeds");
            assert!(
                cli_verify(&work, key, &jws, body),
                "{algorithm} signature rejected by the CLI"
            );
            let tampered = [body, b" "].concat();
            assert!(
                !cli_verify(&work, key, &jws, &tampered),
                "{algorithm} CLI accepted a changed body"
            );
        }
    }
}

#[test]
fn our_signatures_verify_with_our_code() {
    let work = Workspace::new();
    let key = work.p256("signer");
    let certificate = load_cert(&key);
    let signing_key = SigningKey::from_pem_files(&key.key, &key.cert).expect("signing key loads");
    let signer = Signer::new(signing_key).with_key_id("anna-2026");
    assert_eq!(signer.algorithm(), Algorithm::Es256);
    let at = Utc::now();
    let jws = signer.sign(PERMIT_JSON, at).expect("signing succeeds");

    let parsed = parse_detached(&jws).expect("our JWS parses");
    assert_eq!(parsed.thumbprint, *certificate.thumbprint());
    assert_eq!(parsed.key_id.as_deref(), Some("anna-2026"));
    let verified = parsed
        .verify(PERMIT_JSON, &certificate)
        .expect("our JWS verifies");
    assert_eq!(
        verified.signing_time,
        at.trunc_subsecs(0),
        "sigT is written in whole seconds"
    );
    assert_eq!(verified.key_id.as_deref(), Some("anna-2026"));
}

#[test]
fn signing_header_has_profile_fields() {
    let work = Workspace::new();
    let key = work.rsa2048("signer");
    let at: DateTime<Utc> = "2026-12-04T10:15:30Z".parse().expect("time");
    let jws = load_signer(&key, Algorithm::Ps256)
        .sign(PERMIT_JSON, at)
        .expect("sign");
    let (encoded_header, _) = jws.split_once("..").expect("detached form");
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(encoded_header).expect("base64url"))
            .expect("JSON header");
    assert_eq!(header["alg"], "PS256");
    assert_eq!(header["x5t#S256"], cli_thumbprint(&key));
    assert_eq!(header["sigT"], "2026-12-04T10:15:30Z");
    assert_eq!(header["crit"], serde_json::json!(["sigT"]));
}

// Body bytes.

#[test]
fn changed_body_rejected() {
    let work = Workspace::new();
    let key = work.p256("signer");
    let certificate = load_cert(&key);
    let jws = cli_sign(&work, &key, "ES256", PERMIT_JSON, now());
    let changed = String::from_utf8(PERMIT_JSON.to_vec())
        .expect("UTF-8")
        .replace("2.5", "25");
    let error = expect_error(verify(&jws, changed.as_bytes(), &certificate));
    assert!(matches!(error, SignatureError::Invalid), "{error}");
    assert_eq!(error.code(), ErrorCode::SignatureInvalid);
    assert_eq!(error.code().as_str(), "signature_invalid");
}

#[test]
fn reserialised_json_rejected() {
    let work = Workspace::new();
    let key = work.rsa2048("signer");
    let certificate = load_cert(&key);
    let signer = load_signer(&key, Algorithm::Rs256);
    let jws = signer.sign(PERMIT_JSON, now()).expect("sign");

    let value: serde_json::Value = serde_json::from_slice(PERMIT_JSON).expect("JSON");
    let pretty = serde_json::to_vec_pretty(&value).expect("pretty JSON");
    // serde_json without preserve_order sorts keys, which changes the key order.
    let sorted = serde_json::to_vec(&value).expect("sorted JSON");
    assert_ne!(
        sorted, PERMIT_JSON,
        "the test needs a body whose keys are not sorted"
    );
    for (case, body) in [("whitespace", pretty), ("key order", sorted)] {
        let error = expect_error(verify(&jws, &body, &certificate));
        assert!(matches!(error, SignatureError::Invalid), "{case}: {error}");
    }
}

#[test]
fn unicode_normalised_text_rejected() {
    let work = Workspace::new();
    let key = work.p256("signer");
    let certificate = load_cert(&key);
    // PERMIT_XML writes "Café" precomposed (NFC); NFD writes e + combining acute accent.
    let decomposed = String::from_utf8(PERMIT_XML.to_vec())
        .expect("UTF-8")
        .replace('\u{e9}', "e\u{301}");
    let jws = cli_sign(&work, &key, "ES256", PERMIT_XML, now());
    verify(&jws, PERMIT_XML, &certificate).expect("the signed bytes verify");
    let error = expect_error(verify(&jws, decomposed.as_bytes(), &certificate));
    assert!(matches!(error, SignatureError::Invalid), "{error}");
}

// Algorithms.

#[test]
fn none_and_hmac_rejected() {
    let work = Workspace::new();
    let key = work.p256("signer");
    let certificate = load_cert(&key);
    let thumbprint = cli_thumbprint(&key);
    let at = now();

    let none = format!(
        "{}..",
        b64(standard_header("none", &thumbprint, at).as_bytes())
    );
    let none_with_signature = format!(
        "{}..AA",
        b64(standard_header("none", &thumbprint, at).as_bytes())
    );
    // An HMAC keyed with the certificate, the classic confusion of public and secret key.
    let hs256_header = b64(standard_header("HS256", &thumbprint, at).as_bytes());
    let input = work.write(
        "hmac-input.txt",
        format!("{hs256_header}.{}", b64(PERMIT_JSON)).as_bytes(),
    );
    let hmac_key = format!("hexkey:{}", hex(&std::fs::read(&key.cert).expect("cert")));
    let mac = run_openssl(&[
        "dgst",
        "-sha256",
        "-mac",
        "HMAC",
        "-macopt",
        &hmac_key,
        "-binary",
        path_str(&input),
    ]);
    assert_eq!(mac.len(), 32, "HMAC-SHA256 output");
    let hs256 = format!("{hs256_header}..{}", b64(&mac));
    for (case, jws) in [("none", none_with_signature), ("HS256", hs256)] {
        let error = expect_error(verify(&jws, PERMIT_JSON, &certificate));
        assert!(
            matches!(error, SignatureError::AlgorithmRejected(_)),
            "{case}: {error}"
        );
        assert_eq!(error.code().as_str(), "signature_algorithm_rejected");
    }
    // With an empty signature part the form check may fail first; either way it is rejected.
    let error = expect_error(verify(&none, PERMIT_JSON, &certificate));
    assert!(
        matches!(
            error,
            SignatureError::AlgorithmRejected(_) | SignatureError::Malformed(_)
        ),
        "{error}"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn unknown_and_mismatched_algorithms_rejected() {
    let work = Workspace::new();
    let ec_key = work.p256("ec");
    let rsa_key = work.rsa2048("rsa");
    let at = now();

    for name in ["ES512", "EdDSA", "es256", "RS1", "HS512"] {
        let header = standard_header(name, &cli_thumbprint(&ec_key), at);
        let jws = format!("{}..AAAA", b64(header.as_bytes()));
        let error = expect_error(parse_detached(&jws));
        assert!(
            matches!(error, SignatureError::AlgorithmRejected(_)),
            "{name}: {error}"
        );
    }

    // RS256 header over an EC certificate, signed with the EC key.
    let header = standard_header("RS256", &cli_thumbprint(&ec_key), at);
    let jws = cli_sign_with(&work, &ec_key, &header, PERMIT_JSON, &["-sha256"], None);
    let error = expect_error(verify(&jws, PERMIT_JSON, &load_cert(&ec_key)));
    assert!(
        matches!(error, SignatureError::AlgorithmKeyMismatch { .. }),
        "{error}"
    );
    assert_eq!(error.code(), ErrorCode::SignatureAlgorithmRejected);

    // ES384 header over a P-256 certificate.
    let header = standard_header("ES384", &cli_thumbprint(&ec_key), at);
    let jws = cli_sign_with(&work, &ec_key, &header, PERMIT_JSON, &["-sha384"], Some(32));
    let error = expect_error(verify(&jws, PERMIT_JSON, &load_cert(&ec_key)));
    assert!(
        matches!(error, SignatureError::AlgorithmKeyMismatch { .. }),
        "{error}"
    );

    // ES256 header over an RSA certificate.
    let header = standard_header("ES256", &cli_thumbprint(&rsa_key), at);
    let jws = cli_sign_with(&work, &rsa_key, &header, PERMIT_JSON, &["-sha256"], None);
    let error = expect_error(verify(&jws, PERMIT_JSON, &load_cert(&rsa_key)));
    assert!(
        matches!(error, SignatureError::AlgorithmKeyMismatch { .. }),
        "{error}"
    );

    // Our signer refuses the same mismatch.
    let signing_key = SigningKey::from_pem_files(&ec_key.key, &ec_key.cert).expect("key");
    let error = Signer::with_algorithm(signing_key, Algorithm::Rs256).expect_err("mismatch");
    assert!(
        matches!(error, SignatureError::AlgorithmKeyMismatch { .. }),
        "{error}"
    );
}

#[test]
fn ecdsa_der_signature_rejected() {
    // A JWS ECDSA signature is R || S; the DER form that OpenSSL produces must not pass.
    let work = Workspace::new();
    let key = work.p256("signer");
    let header = standard_header("ES256", &cli_thumbprint(&key), now());
    let jws = cli_sign_with(&work, &key, &header, PERMIT_JSON, &["-sha256"], None);
    let error = expect_error(verify(&jws, PERMIT_JSON, &load_cert(&key)));
    assert!(matches!(error, SignatureError::Invalid), "{error}");
}

#[test]
fn pss_with_other_salt_rejected() {
    // RFC 7518 fixes the PSS salt at the digest length; a maximum-length salt must fail.
    let work = Workspace::new();
    let key = work.rsa2048("signer");
    let header = standard_header("PS256", &cli_thumbprint(&key), now());
    let options = [
        "-sha256",
        "-sigopt",
        "rsa_padding_mode:pss",
        "-sigopt",
        "rsa_pss_saltlen:max",
    ];
    let jws = cli_sign_with(&work, &key, &header, PERMIT_JSON, &options, None);
    let error = expect_error(verify(&jws, PERMIT_JSON, &load_cert(&key)));
    assert!(matches!(error, SignatureError::Invalid), "{error}");
}

// Certificates.

#[test]
fn wrong_certificate_rejected() {
    let work = Workspace::new();
    let signer_key = work.p256("signer");
    let other_key = work.p256("other");
    let other_certificate = load_cert(&other_key);

    let jws = cli_sign(&work, &signer_key, "ES256", PERMIT_JSON, now());
    let error = expect_error(verify(&jws, PERMIT_JSON, &other_certificate));
    assert!(
        matches!(error, SignatureError::CertificateMismatch { .. }),
        "{error}"
    );
    assert_eq!(error.code().as_str(), "signature_certificate_mismatch");

    // A header naming the other certificate over a signature by the signer's key.
    let header = standard_header("ES256", &cli_thumbprint(&other_key), now());
    let forged = cli_sign_with(
        &work,
        &signer_key,
        &header,
        PERMIT_JSON,
        &["-sha256"],
        Some(32),
    );
    let error = expect_error(verify(&forged, PERMIT_JSON, &other_certificate));
    assert!(matches!(error, SignatureError::Invalid), "{error}");
}

#[test]
fn weak_keys_rejected() {
    let work = Workspace::new();
    // OpenSSL 3.0 still generates P-192 (prime192v1) and RSA-1024 keys.
    let weak = [
        (
            "RSA-1024",
            work.key("rsa1024", &["rsa:1024"], Some("digitalSignature")),
        ),
        (
            "P-192",
            work.key(
                "p192",
                &["ec", "-pkeyopt", "ec_paramgen_curve:P-192"],
                Some("digitalSignature"),
            ),
        ),
    ];
    for (case, key) in &weak {
        let pem = std::fs::read(&key.cert).expect("cert");
        let error = ParsedCertificate::from_pem(&pem).expect_err("weak key must be rejected");
        assert!(
            matches!(error, SignatureError::KeyTooWeak(_)),
            "{case}: {error}"
        );
        assert_eq!(error.code().as_str(), "key_too_weak");

        let error = SigningKey::from_pem_files(&key.key, &key.cert).expect_err("weak signing key");
        assert!(
            matches!(error, SignatureError::KeyTooWeak(_)),
            "{case}: {error}"
        );

        let problems = check_certificate(&pem, Utc::now()).expect_err("weak key");
        let codes: Vec<ErrorCode> = problems.iter().map(|problem| problem.code).collect();
        assert_eq!(codes, [ErrorCode::KeyTooWeak], "{case}");
    }
}

#[test]
fn check_certificate_reports_every_problem() {
    let work = Workspace::new();
    let key = work.key("weak-agreement", &["rsa:1024"], Some("keyEncipherment"));
    let pem = std::fs::read(&key.cert).expect("cert");
    let problems =
        check_certificate(&pem, Utc::now() + Duration::days(90)).expect_err("three problems");
    let codes: Vec<ErrorCode> = problems.iter().map(|problem| problem.code).collect();
    assert_eq!(
        codes,
        [
            ErrorCode::KeyTooWeak,
            ErrorCode::CertificateKeyUsageInvalid,
            ErrorCode::CertificateExpired
        ]
    );
}

#[test]
fn unsupported_curve_rejected() {
    let work = Workspace::new();
    let key = work.key(
        "p521",
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-521"],
        Some("digitalSignature"),
    );
    let error = ParsedCertificate::from_pem(&std::fs::read(&key.cert).expect("cert"))
        .expect_err("P-521 has no accepted algorithm");
    assert!(
        matches!(error, SignatureError::KeyUnsupported(_)),
        "{error}"
    );
    assert_eq!(error.code().as_str(), "key_unsupported");
}

#[test]
fn check_certificate_reports_details() {
    let work = Workspace::new();
    let key = work.p256("signer");
    let pem = std::fs::read(&key.cert).expect("cert");
    let info = check_certificate(&pem, Utc::now()).expect("a good certificate passes");
    assert_eq!(info.subject, "C=CH, O=FSVO, CN=Anna Muster");
    assert_eq!(info.issuer, info.subject);
    assert_eq!(info.thumbprint, cli_thumbprint(&key));
    assert_eq!(info.key_type, "EC P-256");
    let validity = info.not_after - info.not_before;
    assert_eq!(validity, Duration::days(30));
    let serial = run_openssl(&["x509", "-in", path_str(&key.cert), "-noout", "-serial"]);
    let serial = String::from_utf8(serial).expect("text");
    assert_eq!(serial.trim().trim_start_matches("serial="), info.serial);

    // DER input gives the same result.
    let der = run_openssl(&["x509", "-in", path_str(&key.cert), "-outform", "DER"]);
    assert_eq!(
        check_certificate(&der, Utc::now()).expect("DER passes"),
        info
    );
}

#[test]
fn certificate_without_digital_signature_rejected() {
    let work = Workspace::new();
    let key = work.key(
        "agreement",
        &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        Some("keyAgreement"),
    );
    let pem = std::fs::read(&key.cert).expect("cert");
    let problems = check_certificate(&pem, Utc::now()).expect_err("missing digitalSignature");
    let codes: Vec<ErrorCode> = problems.iter().map(|problem| problem.code).collect();
    assert_eq!(codes, [ErrorCode::CertificateKeyUsageInvalid]);
    assert_eq!(problems[0].code.as_str(), "certificate_key_usage_invalid");

    // Without a key usage extension the key may be used for any purpose.
    let unrestricted = work.key("unrestricted", &["rsa:2048"], None);
    let pem = std::fs::read(&unrestricted.cert).expect("cert");
    check_certificate(&pem, Utc::now()).expect("no key usage extension passes");
}

#[test]
fn expired_certificate_reported_with_dates() {
    let work = Workspace::new();
    let key = work.p256("signer");
    let pem = std::fs::read(&key.cert).expect("cert");
    let certificate = load_cert(&key);
    let later = Utc::now() + Duration::days(60);

    let problems = check_certificate(&pem, later).expect_err("expired at the given time");
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].code, ErrorCode::CertificateExpired);
    let not_after = certificate
        .not_after()
        .to_rfc3339_opts(SecondsFormat::Secs, true);
    let not_before = certificate
        .not_before()
        .to_rfc3339_opts(SecondsFormat::Secs, true);
    assert!(
        problems[0].message.contains(&not_after),
        "{}",
        problems[0].message
    );
    assert!(
        problems[0].message.contains(&not_before),
        "{}",
        problems[0].message
    );
    assert_eq!(problems[0].value.as_deref(), Some(not_after.as_str()));

    let earlier = Utc::now() - Duration::days(1);
    let problems = check_certificate(&pem, earlier).expect_err("not yet valid");
    assert_eq!(problems[0].code, ErrorCode::CertificateNotYetValid);

    // The CLI agrees on the end of validity.
    let end = run_openssl(&["x509", "-in", path_str(&key.cert), "-noout", "-enddate"]);
    let end = String::from_utf8(end).expect("text");
    let end = end.trim().trim_start_matches("notAfter=");
    let parsed = DateTime::parse_from_str(&end.replace("GMT", "+0000"), "%b %e %H:%M:%S %Y %z")
        .expect("openssl date");
    assert_eq!(parsed, certificate.not_after());
}

#[test]
fn signing_time_outside_validity_rejected() {
    let work = Workspace::new();
    let key = work.p256("signer");
    let certificate = load_cert(&key);
    let signer = load_signer(&key, Algorithm::Es256);

    let after = Utc::now() + Duration::days(400);
    let jws = signer.sign(PERMIT_JSON, after).expect("sign");
    let error = expect_error(verify(&jws, PERMIT_JSON, &certificate));
    assert!(
        matches!(error, SignatureError::CertificateExpired { .. }),
        "{error}"
    );
    assert_eq!(error.code().as_str(), "certificate_expired");

    let before = Utc::now() - Duration::days(2);
    let jws = signer.sign(PERMIT_JSON, before).expect("sign");
    let error = expect_error(verify(&jws, PERMIT_JSON, &certificate));
    assert!(
        matches!(error, SignatureError::CertificateNotYetValid { .. }),
        "{error}"
    );
}

#[test]
fn private_key_of_other_certificate_rejected() {
    let work = Workspace::new();
    let first = work.p256("first");
    let second = work.p256("second");
    let error = SigningKey::from_pem_files(&first.key, &second.cert).expect_err("mismatch");
    assert!(matches!(error, SignatureError::KeyInvalid(_)), "{error}");
    assert_eq!(error.code().as_str(), "key_invalid");
}

#[test]
fn garbage_certificate_rejected() {
    for input in [
        &b""[..],
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        b"\x30\x03\x02\x01\x01",
    ] {
        let problems = check_certificate(input, Utc::now()).expect_err("not a certificate");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].code, ErrorCode::CertificateInvalid);
    }
}

// Header and form.

#[test]
fn unknown_critical_header_rejected() {
    let work = Workspace::new();
    let key = work.p256("signer");
    let certificate = load_cert(&key);
    let thumbprint = cli_thumbprint(&key);
    let at = now().format("%Y-%m-%dT%H:%M:%SZ");

    let header = format!(
        r#"{{"alg":"ES256","x5t#S256":"{thumbprint}","sigT":"{at}","exp":1,"crit":["sigT","exp"]}}"#
    );
    let jws = cli_sign_with(&work, &key, &header, PERMIT_JSON, &["-sha256"], Some(32));
    let error = expect_error(verify(&jws, PERMIT_JSON, &certificate));
    assert!(
        matches!(error, SignatureError::CriticalHeaderUnsupported(ref name) if name == "exp"),
        "{error}"
    );
    assert_eq!(error.code().as_str(), "signature_header_unsupported");

    // The same header without the critical extension verifies: unknown non-critical
    // parameters are ignored.
    let header = format!(r#"{{"alg":"ES256","x5t#S256":"{thumbprint}","sigT":"{at}","exp":1}}"#);
    let jws = cli_sign_with(&work, &key, &header, PERMIT_JSON, &["-sha256"], Some(32));
    verify(&jws, PERMIT_JSON, &certificate).expect("non-critical extension is ignored");

    let malformed_crit = [
        r#""crit":[]"#,
        r#""crit":"sigT""#,
        r#""crit":["sigT","sigT"]"#,
        r#""crit":["alg"]"#,
        r#""crit":[1]"#,
    ];
    for crit in malformed_crit {
        let header = format!(r#"{{"alg":"ES256","x5t#S256":"{thumbprint}","sigT":"{at}",{crit}}}"#);
        let jws = format!("{}..AAAA", b64(header.as_bytes()));
        let error = expect_error(parse_detached(&jws));
        assert!(
            matches!(error, SignatureError::Malformed(_)),
            "{crit}: {error}"
        );
    }

    // A critical parameter that the header does not contain.
    let header = format!(r#"{{"alg":"ES256","x5t#S256":"{thumbprint}","crit":["sigT"]}}"#);
    let error = expect_error(parse_detached(&format!("{}..AAAA", b64(header.as_bytes()))));
    assert!(matches!(error, SignatureError::Malformed(_)), "{error}");
}

#[test]
fn unencoded_payload_rejected() {
    let header = format!(
        r#"{{"alg":"ES256","x5t#S256":"{}","sigT":"2026-12-04T10:15:30Z","b64":false,"crit":["b64"]}}"#,
        b64(&[7; 32])
    );
    let error = expect_error(parse_detached(&format!("{}..AAAA", b64(header.as_bytes()))));
    assert!(
        matches!(error, SignatureError::CriticalHeaderUnsupported(_)),
        "{error}"
    );

    let header = format!(
        r#"{{"alg":"ES256","x5t#S256":"{}","sigT":"2026-12-04T10:15:30Z","b64":false}}"#,
        b64(&[7; 32])
    );
    let error = expect_error(parse_detached(&format!("{}..AAAA", b64(header.as_bytes()))));
    assert!(
        matches!(error, SignatureError::UnencodedPayloadUnsupported),
        "{error}"
    );
}

#[test]
fn malformed_jws_rejected() {
    let thumbprint = b64(&[7; 32]);
    let good_header = format!(
        r#"{{"alg":"ES256","x5t#S256":"{thumbprint}","sigT":"2026-12-04T10:15:30Z","crit":["sigT"]}}"#
    );
    let good = b64(good_header.as_bytes());
    let huge_header = format!(
        r#"{{"alg":"ES256","x5t#S256":"{thumbprint}","sigT":"2026-12-04T10:15:30Z","pad":"{}"}}"#,
        "x".repeat(100_000)
    );
    let header = |json: &str| b64(json.as_bytes());

    let cases: Vec<(&str, String)> = vec![
        ("one part", good.clone()),
        ("two parts", format!("{good}.AAAA")),
        ("four parts", format!("{good}...AAAA")),
        ("attached payload", format!("{good}.{}.AAAA", b64(b"{}"))),
        ("header not base64url", "!!!..AAAA".to_owned()),
        ("header with padding", format!("{}=..AAAA", good)),
        (
            "header in standard base64",
            format!("{}..AAAA", good.replace('-', "+").replace('_', "/") + "+/"),
        ),
        ("signature not base64url", format!("{good}..AA*A")),
        ("empty signature", format!("{good}..")),
        ("header not JSON", format!("{}..AAAA", header("alg=ES256"))),
        (
            "header JSON array",
            format!("{}..AAAA", header(r#"["ES256"]"#)),
        ),
        (
            "header not UTF-8",
            format!("{}..AAAA", b64(&[0xff, 0xfe, b'{', b'}'])),
        ),
        ("huge header", format!("{}..AAAA", header(&huge_header))),
        (
            "duplicate alg",
            format!(
                "{}..AAAA",
                header(&good_header.replacen('{', r#"{"alg":"ES256","#, 1))
            ),
        ),
        (
            "alg not string",
            format!(
                "{}..AAAA",
                header(&good_header.replace(r#""ES256""#, "256"))
            ),
        ),
        (
            "no x5t#S256",
            format!("{}..AAAA", header(&good_header.replace("x5t#S256", "x5t"))),
        ),
        (
            "short thumbprint",
            format!(
                "{}..AAAA",
                header(&good_header.replace(&thumbprint, "AAAA"))
            ),
        ),
        (
            "no sigT",
            format!(
                "{}..AAAA",
                header(&good_header.replace(
                    r#""sigT":"2026-12-04T10:15:30Z","crit":["sigT"]"#,
                    r#""x":1"#
                ))
            ),
        ),
        (
            "sigT with offset",
            format!(
                "{}..AAAA",
                header(&good_header.replace("10:15:30Z", "10:15:30+01:00"))
            ),
        ),
        (
            "sigT not a time",
            format!(
                "{}..AAAA",
                header(&good_header.replace("2026-12-04T10:15:30Z", "yesterday"))
            ),
        ),
        (
            "sigT not string",
            format!(
                "{}..AAAA",
                header(&good_header.replace(r#""2026-12-04T10:15:30Z""#, "1733307330"))
            ),
        ),
        ("whitespace around", format!(" {good}..AAAA")),
    ];
    for (case, jws) in cases {
        let result = std::panic::catch_unwind(|| parse_detached(&jws));
        let result = result.unwrap_or_else(|_| panic!("{case}: parse_detached panicked"));
        let error = result.expect_err(case);
        assert!(
            matches!(error, SignatureError::Malformed(_)),
            "{case}: {error}"
        );
        assert_eq!(error.code().as_str(), "signature_malformed", "{case}");
    }

    let error = expect_error(parse_detached(""));
    assert!(matches!(error, SignatureError::Missing), "{error}");
    assert_eq!(error.code().as_str(), "signature_missing");
}

#[test]
fn truncated_ecdsa_signature_rejected() {
    let work = Workspace::new();
    let key = work.p384("signer");
    let certificate = load_cert(&key);
    let jws = cli_sign(&work, &key, "ES384", PERMIT_JSON, now());
    let (header, signature) = jws.split_once("..").expect("detached");
    let raw = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
    for cut in [&raw[..95], &raw[..64], &[0u8; 96][..]] {
        let truncated = format!("{header}..{}", b64(cut));
        let error = expect_error(verify(&truncated, PERMIT_JSON, &certificate));
        assert!(
            matches!(error, SignatureError::Invalid),
            "{} bytes: {error}",
            cut.len()
        );
    }
}
