//! Verifying detached JWS signatures with a cached certificate:
//! `cargo bench -p epix-shared --bench signature`.
//!
//! Keys and self-signed certificates are generated in memory before timing starts, so the
//! figures cover what a verifier pays per message once the signer's certificate is cached.

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use epix_shared::signature::keygen::{KeySpec, SubjectName, generate_key, self_signed_certificate};
use epix_shared::signature::{
    Algorithm, ParsedCertificate, Signer, SigningKey, parse_detached, verify,
};

/// Builds a JSON body of 2,325 bytes, the permit size of the end-to-end benchmark.
fn permit_body() -> Vec<u8> {
    let line = br#"{"scientific_name":"Crocodylus siamensis","appendix":"I","source":"D","term":"LPS","quantity":10,"unit":"PCS"},"#;
    let mut body = br#"{"document_type":"export","permit_number":"26CH000123","lines":["#.to_vec();
    while body.len() + line.len() < 2_323 {
        body.extend_from_slice(line);
    }
    body.resize(2_323, b' ');
    body.extend_from_slice(b"]}");
    body
}

fn signer(spec: KeySpec, algorithm: Algorithm) -> (Signer, ParsedCertificate) {
    let subject = SubjectName {
        common_name: "Bench Signer".to_owned(),
        organization: "EPIX benchmark".to_owned(),
        country: "CH".to_owned(),
    };
    let key = generate_key(spec).expect("key generation");
    let certificate = self_signed_certificate(&key, &subject, 30).expect("certificate");
    let parsed = ParsedCertificate::from_x509(certificate).expect("certificate parses");
    let signing_key = SigningKey::new(key, parsed.clone()).expect("key fits certificate");
    let signer = Signer::with_algorithm(signing_key, algorithm).expect("algorithm fits key");
    (signer, parsed)
}

fn benchmarks(c: &mut Criterion) {
    let body = permit_body();

    for (name, spec, algorithm) in [
        ("ES256", KeySpec::EcP256, Algorithm::Es256),
        ("PS256", KeySpec::Rsa3072, Algorithm::Ps256),
    ] {
        let (signer, certificate) = signer(spec, algorithm);
        let signing_time: DateTime<Utc> = Utc::now();
        let jws = signer.sign(&body, signing_time).expect("signing");
        verify(&jws, &body, &certificate).expect("the signature verifies");

        c.bench_function(
            &format!("verify {name}, cached certificate, 2.3 KB body"),
            |b| b.iter(|| verify(black_box(&jws), black_box(&body), black_box(&certificate))),
        );
        c.bench_function(&format!("parse {name} JWS header only"), |b| {
            b.iter(|| parse_detached(black_box(&jws)))
        });
        c.bench_function(&format!("sign {name}, 2.3 KB body"), |b| {
            b.iter(|| signer.sign(black_box(&body), signing_time))
        });
    }
}

criterion_group!(benches, benchmarks);
criterion_main!(benches);
