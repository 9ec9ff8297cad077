//! Key, certificate and CSR generation for signatories, checked with the `openssl` CLI.

use std::path::Path;
use std::process::Command;

use chrono::{Duration, Utc};
use epix_shared::signature::keygen::{
    KeySpec, KeygenError, MAX_VALIDITY_DAYS, NOT_BEFORE_BACKDATE_SECONDS, SubjectName,
    certificate_pem, certificate_request, certificate_request_pem, generate_key,
    self_signed_certificate, write_private_key_pem, write_public_pem,
};
use epix_shared::signature::{
    Algorithm, KeyType, ParsedCertificate, Signer, SigningKey, check_certificate, verify,
};

fn subject() -> SubjectName {
    SubjectName {
        common_name: "Anna Muster".to_owned(),
        organization: "Federal Food Safety and Veterinary Office".to_owned(),
        country: "CH".to_owned(),
    }
}

fn signer_for(
    key: &openssl::pkey::PKeyRef<openssl::pkey::Private>,
    certificate: &openssl::x509::X509,
) -> Signer {
    let parsed = ParsedCertificate::from_x509(certificate.clone()).expect("certificate parses");
    Signer::new(SigningKey::new(key.to_owned(), parsed).expect("key fits certificate"))
}

fn openssl_text(args: &[&str]) -> String {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl command-line tool is installed");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("openssl prints text")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

#[test]
fn generated_keys_have_expected_type() {
    let cases = [
        (KeySpec::EcP256, KeyType::EcP256, Algorithm::Es256),
        (
            KeySpec::Rsa3072,
            KeyType::Rsa { bits: 3072 },
            Algorithm::Ps256,
        ),
    ];
    for (spec, key_type, algorithm) in cases {
        let key = generate_key(spec).expect("key generation");
        let certificate = self_signed_certificate(&key, &subject(), 365).expect("certificate");
        let parsed = ParsedCertificate::from_x509(certificate).expect("certificate parses");
        assert_eq!(parsed.key_type(), key_type, "{spec:?}");

        let signing_key = SigningKey::new(key, parsed.clone()).expect("key fits certificate");
        let signer = Signer::new(signing_key);
        assert_eq!(signer.algorithm(), algorithm, "{spec:?}");
        let jws = signer.sign(b"<permit/>", Utc::now()).expect("sign");
        verify(&jws, b"<permit/>", &parsed).expect("the generated key signs verifiably");
    }
    assert_eq!(KeySpec::default(), KeySpec::EcP256);
}

#[test]
fn self_signed_certificate_passes_checks() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let key = generate_key(KeySpec::EcP256).expect("key generation");
    let certificate = self_signed_certificate(&key, &subject(), 365).expect("certificate");
    let pem = certificate_pem(&certificate).expect("PEM");

    let info = check_certificate(&pem, Utc::now()).expect("registration checks pass");
    assert_eq!(
        info.subject,
        "C=CH, O=Federal Food Safety and Veterinary Office, CN=Anna Muster"
    );
    assert_eq!(info.issuer, info.subject);
    let validity = info.not_after - info.not_before;
    assert_eq!(validity, Duration::days(365));
    // not_before lies five minutes back, so a signer whose clock is a little behind can
    // use the certificate at once.
    let backdate = Utc::now() - info.not_before;
    assert!(
        backdate >= Duration::seconds(NOT_BEFORE_BACKDATE_SECONDS),
        "{backdate}"
    );
    assert!(
        backdate < Duration::seconds(NOT_BEFORE_BACKDATE_SECONDS + 60),
        "{backdate}"
    );
    let early =
        signer_for(&key, &certificate).sign(b"<permit/>", Utc::now() - Duration::minutes(2));
    let parsed = ParsedCertificate::from_x509(certificate.clone()).expect("parses");
    verify(&early.expect("sign"), b"<permit/>", &parsed)
        .expect("a slightly early signing time passes");

    let cert_path = dir.path().join("cert.pem");
    write_public_pem(&cert_path, &pem).expect("write certificate");
    let text = openssl_text(&["x509", "-in", path_str(&cert_path), "-noout", "-text"]);
    assert!(text.contains("Version: 3"), "{text}");
    assert!(
        text.contains("Digital Signature, Non Repudiation"),
        "{text}"
    );
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(text.contains("ecdsa-with-SHA256"), "{text}");
    // The CLI checks the self-signature.
    let verified = openssl_text(&[
        "verify",
        "-CAfile",
        path_str(&cert_path),
        "-partial_chain",
        path_str(&cert_path),
    ]);
    assert!(verified.contains("OK"), "{verified}");
}

#[test]
fn certificate_request_verifies_with_cli() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let key = generate_key(KeySpec::Rsa3072).expect("key generation");
    let request = certificate_request(&key, &subject()).expect("CSR");
    let path = dir.path().join("request.csr");
    write_public_pem(&path, &certificate_request_pem(&request).expect("PEM")).expect("write");

    let text = openssl_text(&["req", "-in", path_str(&path), "-noout", "-verify", "-text"]);
    assert!(
        text.contains("CN = Anna Muster") || text.contains("CN=Anna Muster"),
        "{text}"
    );
    assert!(text.contains("Digital Signature"), "{text}");
    assert!(text.contains("3072 bit"), "{text}");
}

#[cfg(unix)]
#[test]
fn private_key_file_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("signer.key.pem");
    let key = generate_key(KeySpec::EcP256).expect("key generation");
    write_private_key_pem(&path, &key).expect("write key");
    let mode = std::fs::metadata(&path)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let check = openssl_text(&["pkey", "-in", path_str(&path), "-noout", "-check"]);
    assert!(check.contains("valid"), "{check}");

    // An existing key is never overwritten.
    let other = generate_key(KeySpec::EcP256).expect("key generation");
    let error = write_private_key_pem(&path, &other).expect_err("file exists");
    assert!(matches!(error, KeygenError::Write { .. }), "{error}");

    let certificate = self_signed_certificate(&key, &subject(), 30).expect("certificate");
    let cert_path = dir.path().join("signer.cert.pem");
    write_public_pem(&cert_path, &certificate_pem(&certificate).expect("PEM")).expect("write");
    SigningKey::from_pem_files(&path, &cert_path).expect("written files load as a signing key");
}

#[test]
fn invalid_subject_and_validity_rejected() {
    let key = generate_key(KeySpec::EcP256).expect("key generation");
    let bad_subjects = [
        SubjectName {
            country: "Switzerland".to_owned(),
            ..subject()
        },
        SubjectName {
            country: "ch".to_owned(),
            ..subject()
        },
        SubjectName {
            common_name: " ".to_owned(),
            ..subject()
        },
        SubjectName {
            organization: "x".repeat(65),
            ..subject()
        },
    ];
    for bad in bad_subjects {
        let error = self_signed_certificate(&key, &bad, 30).expect_err("invalid subject");
        assert!(
            matches!(error, KeygenError::InvalidSubject(_)),
            "{bad:?}: {error}"
        );
        let Err(error) = certificate_request(&key, &bad) else {
            panic!("{bad:?}: a CSR with an invalid subject was made");
        };
        assert!(
            matches!(error, KeygenError::InvalidSubject(_)),
            "{bad:?}: {error}"
        );
    }
    for days in [0, MAX_VALIDITY_DAYS + 1] {
        let error = self_signed_certificate(&key, &subject(), days).expect_err("validity");
        assert!(
            matches!(error, KeygenError::InvalidValidity(_)),
            "{days}: {error}"
        );
    }
}
