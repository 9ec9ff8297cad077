//! Making and checking detached compact JWS signatures.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, PKeyRef, Private, Public};
use openssl::rsa::Padding;
use openssl::sign::RsaPssSaltlen;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::certificate::classify_key;
use super::{
    Algorithm, HEADER_SIGNING_TIME, KeyType, MAX_JWS_BYTES, ParsedCertificate, SignatureError,
    Thumbprint,
};

/// Header parameters that RFC 7515 and RFC 7518 define, which must not appear in `crit`.
const REGISTERED_HEADERS: &[&str] = &[
    "alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit", "enc",
    "zip", "epk", "apu", "apv", "iv", "tag", "p2s", "p2c",
];

/// Extension parameters that this verifier processes, so they may be listed in `crit`.
const UNDERSTOOD_CRITICAL: &[&str] = &[HEADER_SIGNING_TIME];

/// Body bytes base64url-encoded per signer or verifier update. It is a multiple of 3, so the
/// encoded chunks concatenate without padding in between.
const BODY_CHUNK_BYTES: usize = 3 * 1024;

pub(super) fn base64url_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url and rejects padding, other alphabets and non-zero trailing bits.
pub(super) fn base64url_decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_NO_PAD.decode(text)
}

/// A private key with the certificate that names it.
pub struct SigningKey {
    private_key: PKey<Private>,
    certificate: ParsedCertificate,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The private key stays out of debug output.
        f.debug_struct("SigningKey")
            .field("certificate", &self.certificate)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Pairs a private key with its certificate, rejecting a weak key and a key that does
    /// not belong to the certificate.
    pub fn new(
        private_key: PKey<Private>,
        certificate: ParsedCertificate,
    ) -> Result<Self, SignatureError> {
        classify_key(&private_key)?;
        if !private_key.public_eq(certificate.public_key()) {
            return Err(SignatureError::KeyInvalid(format!(
                "the private key does not belong to the certificate with thumbprint {}",
                certificate.thumbprint()
            )));
        }
        Ok(Self {
            private_key,
            certificate,
        })
    }

    /// Reads an unencrypted PEM private key (PKCS#8, or traditional EC or RSA) and a PEM
    /// certificate.
    pub fn from_pem(
        private_key_pem: &[u8],
        certificate_pem: &[u8],
    ) -> Result<Self, SignatureError> {
        let private_key = PKey::private_key_from_pem(private_key_pem).map_err(|error| {
            SignatureError::KeyInvalid(format!("not an unencrypted PEM private key: {error}"))
        })?;
        let certificate = ParsedCertificate::from_pem(certificate_pem)?;
        Self::new(private_key, certificate)
    }

    /// Reads the private key and certificate from PEM files.
    pub fn from_pem_files(
        private_key_path: impl AsRef<Path>,
        certificate_path: impl AsRef<Path>,
    ) -> Result<Self, SignatureError> {
        let private_key_path = private_key_path.as_ref();
        let certificate_path = certificate_path.as_ref();
        let private_key_pem = std::fs::read(private_key_path).map_err(|error| {
            SignatureError::KeyInvalid(format!(
                "failed to read private key file {}: {error}",
                private_key_path.display()
            ))
        })?;
        let certificate_pem = std::fs::read(certificate_path).map_err(|error| {
            SignatureError::CertificateInvalid(format!(
                "failed to read certificate file {}: {error}",
                certificate_path.display()
            ))
        })?;
        Self::from_pem(&private_key_pem, &certificate_pem)
    }

    pub fn certificate(&self) -> &ParsedCertificate {
        &self.certificate
    }
}

/// Makes detached JWS signatures with one key and algorithm.
#[derive(Debug)]
pub struct Signer {
    key: SigningKey,
    algorithm: Algorithm,
    key_id: Option<String>,
}

/// The protected header as written by [`Signer::sign`], in this field order.
#[derive(Serialize)]
struct OutgoingHeader<'a> {
    alg: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
    #[serde(rename = "x5t#S256")]
    thumbprint: String,
    #[serde(rename = "sigT")]
    signing_time: String,
    crit: [&'static str; 1],
}

impl Signer {
    /// Signs with the key type's default algorithm: ES256 for P-256, ES384 for P-384 and
    /// PS256 for RSA.
    pub fn new(key: SigningKey) -> Self {
        let algorithm = key.certificate.key_type().default_algorithm();
        Self {
            key,
            algorithm,
            key_id: None,
        }
    }

    /// Signs with `algorithm`, which must fit the key type (RS256 or PS256 for RSA).
    pub fn with_algorithm(key: SigningKey, algorithm: Algorithm) -> Result<Self, SignatureError> {
        check_algorithm_fits(algorithm, key.certificate.key_type())?;
        Ok(Self {
            key,
            algorithm,
            key_id: None,
        })
    }

    /// Adds a `kid` header parameter to every signature. Verifiers select the certificate by
    /// `x5t#S256`, so `kid` is informative only.
    pub fn with_key_id(mut self, key_id: impl Into<String>) -> Self {
        self.key_id = Some(key_id.into());
        self
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn certificate(&self) -> &ParsedCertificate {
        &self.key.certificate
    }

    /// Signs the exact `body` bytes and returns the detached compact JWS. The signing time
    /// is written in whole seconds, so a verifier reads `signing_time` truncated to seconds.
    pub fn sign(&self, body: &[u8], signing_time: DateTime<Utc>) -> Result<String, SignatureError> {
        let header = OutgoingHeader {
            alg: self.algorithm.as_str(),
            kid: self.key_id.as_deref(),
            thumbprint: self.key.certificate.thumbprint().to_base64url(),
            signing_time: signing_time.to_rfc3339_opts(SecondsFormat::Secs, true),
            crit: [HEADER_SIGNING_TIME],
        };
        let header_json = serde_json::to_vec(&header).map_err(|error| {
            SignatureError::Malformed(format!("failed to write the header: {error}"))
        })?;
        let encoded_header = base64url_encode(&header_json);

        let mut signer =
            openssl::sign::Signer::new(digest_of(self.algorithm), &self.key.private_key)?;
        if self.algorithm == Algorithm::Ps256 {
            signer.set_rsa_padding(Padding::PKCS1_PSS)?;
            signer.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
            signer.set_rsa_mgf1_md(MessageDigest::sha256())?;
        }
        feed_signing_input(&encoded_header, body, |chunk| signer.update(chunk))?;
        let signature = signer.sign_to_vec()?;
        let signature = match self.algorithm {
            Algorithm::Es256 | Algorithm::Es384 => {
                ecdsa_der_to_raw(&signature, ec_scalar_bytes(self.algorithm))?
            }
            Algorithm::Rs256 | Algorithm::Ps256 => signature,
        };
        Ok(format!(
            "{encoded_header}..{}",
            base64url_encode(&signature)
        ))
    }
}

/// The fields of a detached JWS, read and checked for form but not yet verified.
#[derive(Debug, Clone)]
pub struct ParsedSignature {
    pub algorithm: Algorithm,
    /// SHA-256 thumbprint of the signer certificate, from `x5t#S256`.
    pub thumbprint: Thumbprint,
    /// Signing time claimed by the signer, from `sigT`. It is authenticated only once
    /// [`ParsedSignature::verify`] succeeds.
    pub signing_time: DateTime<Utc>,
    /// The `kid` header parameter, if any.
    pub key_id: Option<String>,
    encoded_header: String,
    signature: Vec<u8>,
}

/// A signature that matched the body and certificate, with its authenticated header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    pub algorithm: Algorithm,
    pub thumbprint: Thumbprint,
    pub signing_time: DateTime<Utc>,
    pub key_id: Option<String>,
}

/// Parses a detached compact JWS and checks its form without verifying it.
///
/// The JWS must have three parts with an empty payload. Its header must be a JSON object
/// without duplicate names, with an accepted `alg`, an `x5t#S256` and an RFC 3339 UTC
/// `sigT`. Any `crit` may name only `sigT`. An empty input is [`SignatureError::Missing`].
pub fn parse_detached(jws: &str) -> Result<ParsedSignature, SignatureError> {
    if jws.is_empty() {
        return Err(SignatureError::Missing);
    }
    if jws.len() > MAX_JWS_BYTES {
        return Err(SignatureError::Malformed(format!(
            "the JWS has {} bytes; at most {MAX_JWS_BYTES} are accepted",
            jws.len()
        )));
    }
    let parts: Vec<&str> = jws.split('.').collect();
    let [encoded_header, payload, encoded_signature] = parts[..] else {
        return Err(SignatureError::Malformed(format!(
            "the JWS has {} dot-separated parts; a compact JWS has 3",
            parts.len()
        )));
    };
    if !payload.is_empty() {
        return Err(SignatureError::Malformed(
            "the payload part is not empty; EPIX signatures are detached (header..signature)"
                .to_owned(),
        ));
    }

    let header_json = base64url_decode(encoded_header).map_err(|error| {
        SignatureError::Malformed(format!("the header is not unpadded base64url: {error}"))
    })?;
    let header = read_header(&header_json)?;
    let signature = base64url_decode(encoded_signature).map_err(|error| {
        SignatureError::Malformed(format!("the signature is not unpadded base64url: {error}"))
    })?;
    if signature.is_empty() {
        return Err(SignatureError::Malformed(
            "the signature part is empty".to_owned(),
        ));
    }

    Ok(ParsedSignature {
        algorithm: header.algorithm,
        thumbprint: header.thumbprint,
        signing_time: header.signing_time,
        key_id: header.key_id,
        encoded_header: encoded_header.to_owned(),
        signature,
    })
}

/// Parses `jws` and verifies it over the exact `body` bytes with `certificate`, which the
/// caller found by the JWS thumbprint. See [`ParsedSignature::verify`] for the checks.
pub fn verify(
    jws: &str,
    body: &[u8],
    certificate: &ParsedCertificate,
) -> Result<VerifiedSignature, SignatureError> {
    parse_detached(jws)?.verify(body, certificate)
}

impl ParsedSignature {
    /// Verifies the signature over the exact `body` bytes. Checks, in order: the certificate
    /// thumbprint equals `x5t#S256`, `alg` fits the certificate's key, the signature is
    /// valid, and the certificate was valid at the signing time.
    ///
    /// Whether the signer was empowered at the signing time, and whether that time is
    /// plausible against the receipt time, is for the caller to check.
    pub fn verify(
        &self,
        body: &[u8],
        certificate: &ParsedCertificate,
    ) -> Result<VerifiedSignature, SignatureError> {
        if certificate.thumbprint() != &self.thumbprint {
            return Err(SignatureError::CertificateMismatch {
                expected: self.thumbprint,
                actual: *certificate.thumbprint(),
            });
        }
        check_algorithm_fits(self.algorithm, certificate.key_type())?;
        if !self.verify_signature(body, certificate.public_key())? {
            return Err(SignatureError::Invalid);
        }
        certificate.check_valid_at(self.signing_time)?;
        Ok(VerifiedSignature {
            algorithm: self.algorithm,
            thumbprint: self.thumbprint,
            signing_time: self.signing_time,
            key_id: self.key_id.clone(),
        })
    }

    fn verify_signature(
        &self,
        body: &[u8],
        public_key: &PKeyRef<Public>,
    ) -> Result<bool, SignatureError> {
        let der_signature;
        let signature = match self.algorithm {
            Algorithm::Es256 | Algorithm::Es384 => {
                let Some(der) = ecdsa_raw_to_der(&self.signature, ec_scalar_bytes(self.algorithm))?
                else {
                    return Ok(false);
                };
                der_signature = der;
                &der_signature
            }
            Algorithm::Rs256 | Algorithm::Ps256 => &self.signature,
        };
        let mut verifier = openssl::sign::Verifier::new(digest_of(self.algorithm), public_key)?;
        if self.algorithm == Algorithm::Ps256 {
            verifier.set_rsa_padding(Padding::PKCS1_PSS)?;
            verifier.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
            verifier.set_rsa_mgf1_md(MessageDigest::sha256())?;
        }
        feed_signing_input(&self.encoded_header, body, |chunk| verifier.update(chunk))?;
        // OpenSSL returns an error instead of `false` for some malformed signatures, such as
        // an RSA signature of the wrong length. Both mean that the signature is invalid.
        Ok(verifier.verify(signature).unwrap_or(false))
    }
}

fn check_algorithm_fits(algorithm: Algorithm, key: KeyType) -> Result<(), SignatureError> {
    if key.algorithms().contains(&algorithm) {
        Ok(())
    } else {
        Err(SignatureError::AlgorithmKeyMismatch { algorithm, key })
    }
}

fn digest_of(algorithm: Algorithm) -> MessageDigest {
    match algorithm {
        Algorithm::Es384 => MessageDigest::sha384(),
        Algorithm::Es256 | Algorithm::Rs256 | Algorithm::Ps256 => MessageDigest::sha256(),
    }
}

/// Length of each of R and S in a JWS ECDSA signature (RFC 7518 section 3.4).
fn ec_scalar_bytes(algorithm: Algorithm) -> usize {
    match algorithm {
        Algorithm::Es384 => 48,
        _ => 32,
    }
}

/// Passes `BASE64URL(header) '.' BASE64URL(body)` to `update` in pieces, so that a large
/// body is never encoded into one buffer.
pub(crate) fn feed_signing_input(
    encoded_header: &str,
    body: &[u8],
    mut update: impl FnMut(&[u8]) -> Result<(), openssl::error::ErrorStack>,
) -> Result<(), SignatureError> {
    update(encoded_header.as_bytes())?;
    update(b".")?;
    let mut encoded = [0u8; BODY_CHUNK_BYTES / 3 * 4];
    for chunk in body.chunks(BODY_CHUNK_BYTES) {
        let length = URL_SAFE_NO_PAD
            .encode_slice(chunk, &mut encoded)
            .map_err(|error| {
                SignatureError::Malformed(format!("failed to encode the body: {error}"))
            })?;
        update(&encoded[..length])?;
    }
    Ok(())
}

/// Converts OpenSSL's DER `ECDSA-Sig-Value` to the fixed-width R || S that JWS uses.
fn ecdsa_der_to_raw(der: &[u8], scalar_bytes: usize) -> Result<Vec<u8>, SignatureError> {
    let signature = EcdsaSig::from_der(der)?;
    let scalar_width = i32::try_from(scalar_bytes).unwrap_or(i32::MAX);
    let mut raw = signature.r().to_vec_padded(scalar_width)?;
    raw.extend(signature.s().to_vec_padded(scalar_width)?);
    Ok(raw)
}

/// Converts a JWS R || S signature to DER, or returns `None` when its length does not fit
/// the curve.
pub(crate) fn ecdsa_raw_to_der(
    raw: &[u8],
    scalar_bytes: usize,
) -> Result<Option<Vec<u8>>, SignatureError> {
    if raw.len() != 2 * scalar_bytes {
        return Ok(None);
    }
    let (r, s) = raw.split_at(scalar_bytes);
    let signature =
        EcdsaSig::from_private_components(BigNum::from_slice(r)?, BigNum::from_slice(s)?)?;
    Ok(Some(signature.to_der()?))
}

/// The header fields that EPIX reads, after the profile checks.
struct IncomingHeader {
    algorithm: Algorithm,
    thumbprint: Thumbprint,
    signing_time: DateTime<Utc>,
    key_id: Option<String>,
}

/// The members of a JSON object in document order, kept so that duplicates can be detected.
/// RFC 7515 section 4 lets a recipient reject a header with duplicate names, and EPIX does.
struct HeaderMembers(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for HeaderMembers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;

        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = HeaderMembers;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, Value>()? {
                    members.push((name, value));
                }
                Ok(HeaderMembers(members))
            }
        }

        deserializer.deserialize_map(MembersVisitor)
    }
}

fn read_header(json: &[u8]) -> Result<IncomingHeader, SignatureError> {
    let HeaderMembers(members) = serde_json::from_slice(json).map_err(|error| {
        SignatureError::Malformed(format!("the header is not a JSON object: {error}"))
    })?;
    for (index, (name, _)) in members.iter().enumerate() {
        if members[..index].iter().any(|(earlier, _)| earlier == name) {
            return Err(SignatureError::Malformed(format!(
                "the header names {name:?} more than once"
            )));
        }
    }
    let member = |name: &str| {
        members
            .iter()
            .find(|(member_name, _)| member_name == name)
            .map(|(_, value)| value)
    };
    let string_member = |name: &str| -> Result<Option<&str>, SignatureError> {
        match member(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(SignatureError::Malformed(format!(
                "header parameter {name:?} is not a string"
            ))),
        }
    };
    let required_string = |name: &str| -> Result<&str, SignatureError> {
        string_member(name)?.ok_or_else(|| {
            SignatureError::Malformed(format!("the header has no {name:?} parameter"))
        })
    };

    let algorithm: Algorithm = required_string("alg")?.parse()?;
    check_critical(member("crit"), &member)?;
    match member("b64") {
        None | Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => return Err(SignatureError::UnencodedPayloadUnsupported),
        Some(_) => {
            return Err(SignatureError::Malformed(
                "header parameter \"b64\" is not a boolean".to_owned(),
            ));
        }
    }
    let thumbprint: Thumbprint = required_string("x5t#S256")?.parse()?;
    let signing_time = parse_signing_time(required_string(HEADER_SIGNING_TIME)?)?;
    let key_id = string_member("kid")?.map(str::to_owned);
    Ok(IncomingHeader {
        algorithm,
        thumbprint,
        signing_time,
        key_id,
    })
}

/// Applies RFC 7515 section 4.1.11: `crit` is a non-empty array of distinct names, none
/// registered by RFC 7515 or 7518, each present in the header and understood here.
fn check_critical<'a>(
    crit: Option<&Value>,
    member: &impl Fn(&str) -> Option<&'a Value>,
) -> Result<(), SignatureError> {
    let Some(crit) = crit else {
        return Ok(());
    };
    let Value::Array(names) = crit else {
        return Err(SignatureError::Malformed(
            "\"crit\" is not an array".to_owned(),
        ));
    };
    if names.is_empty() {
        return Err(SignatureError::Malformed(
            "\"crit\" is an empty array".to_owned(),
        ));
    }
    for (index, name) in names.iter().enumerate() {
        let Value::String(name) = name else {
            return Err(SignatureError::Malformed(
                "\"crit\" contains a value that is not a string".to_owned(),
            ));
        };
        if names[..index]
            .iter()
            .any(|earlier| earlier.as_str() == Some(name))
        {
            return Err(SignatureError::Malformed(format!(
                "\"crit\" lists {name:?} more than once"
            )));
        }
        if REGISTERED_HEADERS.contains(&name.as_str()) {
            return Err(SignatureError::Malformed(format!(
                "\"crit\" lists {name:?}, which RFC 7515 or 7518 defines"
            )));
        }
        if !UNDERSTOOD_CRITICAL.contains(&name.as_str()) {
            return Err(SignatureError::CriticalHeaderUnsupported(name.clone()));
        }
        if member(name).is_none() {
            return Err(SignatureError::Malformed(format!(
                "\"crit\" lists {name:?}, which the header does not contain"
            )));
        }
    }
    Ok(())
}

/// Parses `sigT`: RFC 3339 with the UTC designator `Z`, fractional seconds allowed.
fn parse_signing_time(text: &str) -> Result<DateTime<Utc>, SignatureError> {
    let invalid = || {
        SignatureError::Malformed(format!(
            "{HEADER_SIGNING_TIME} {text:?} is not an RFC 3339 UTC time such as 2026-12-04T10:15:30Z"
        ))
    };
    if !text.ends_with('Z') {
        return Err(invalid());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| invalid())
}
