//! Signatures on permits: a detached JWS (RFC 7515, compact serialisation) over the exact body
//! bytes, made with a key whose X.509 certificate is on the register of signatories.
//!
//! The compact form is `BASE64URL(header)..BASE64URL(signature)`: the payload part is empty,
//! and the signing input is `BASE64URL(header) '.' BASE64URL(body)` as for an attached JWS.
//! The protected header carries `alg`, `x5t#S256` (SHA-256 thumbprint of the signer
//! certificate's DER), `sigT` (signing time, RFC 3339 UTC, listed in `crit`) and an optional
//! `kid`. `docs/signatures.md` describes the profile and what is rejected.
//!
//! A verifier finds the certificate by [`ParsedSignature::thumbprint`] and passes it in as a
//! [`ParsedCertificate`], which can be parsed once and cached.

mod certificate;
mod jws;
pub mod keygen;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::problem::{ErrorCode, Problem};

pub use certificate::{CertificateInfo, ParsedCertificate, check_certificate};
pub use jws::{ParsedSignature, Signer, SigningKey, VerifiedSignature, parse_detached, verify};
pub(crate) use jws::{ecdsa_raw_to_der, feed_signing_input};

/// JWS header parameter that carries the signing time, named as in ETSI TS 119 182-1
/// (JAdES). EPIX lists it in `crit`, so a verifier that does not know it rejects the JWS
/// instead of ignoring the time.
pub const HEADER_SIGNING_TIME: &str = "sigT";

/// Longest compact JWS accepted, in bytes, checked before anything is decoded. A JWS with
/// an RSA-8192 signature and the header that [`Signer`] writes is under 2 KiB.
pub const MAX_JWS_BYTES: usize = 8 * 1024;

/// A JWS signature algorithm that EPIX accepts (RFC 7518 section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256.
    #[serde(rename = "ES256")]
    Es256,
    /// ECDSA on P-384 with SHA-384.
    #[serde(rename = "ES384")]
    Es384,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[serde(rename = "RS256")]
    Rs256,
    /// RSASSA-PSS with SHA-256, MGF1 with SHA-256 and a 32-byte salt.
    #[serde(rename = "PS256")]
    Ps256,
}

impl Algorithm {
    /// Every accepted algorithm.
    pub const ALL: &'static [Algorithm] = &[Self::Es256, Self::Es384, Self::Rs256, Self::Ps256];

    /// The `alg` value, such as `ES256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = SignatureError;

    /// Parses an `alg` value. `none`, the HMAC algorithms and anything else outside
    /// [`Algorithm::ALL`] fail with [`SignatureError::AlgorithmRejected`]. The match is
    /// case-sensitive, as RFC 7515 requires.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|algorithm| algorithm.as_str() == name)
            .ok_or_else(|| SignatureError::AlgorithmRejected(name.to_owned()))
    }
}

/// A signing key type that passed the strength rules: EC on P-256 or P-384, or RSA of at
/// least 2048 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    EcP256,
    EcP384,
    Rsa { bits: u32 },
}

impl KeyType {
    /// The algorithms that may be used with a key of this type. An EC key fits exactly one,
    /// because RFC 7518 ties ES256 to P-256 and ES384 to P-384.
    pub fn algorithms(self) -> &'static [Algorithm] {
        match self {
            Self::EcP256 => &[Algorithm::Es256],
            Self::EcP384 => &[Algorithm::Es384],
            Self::Rsa { .. } => &[Algorithm::Ps256, Algorithm::Rs256],
        }
    }

    /// The algorithm [`Signer::new`] uses: the first of [`KeyType::algorithms`].
    pub fn default_algorithm(self) -> Algorithm {
        self.algorithms()[0]
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EcP256 => f.write_str("EC P-256"),
            Self::EcP384 => f.write_str("EC P-384"),
            Self::Rsa { bits } => write!(f, "RSA {bits}"),
        }
    }
}

/// SHA-256 thumbprint of a certificate's DER encoding, as carried in `x5t#S256`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Thumbprint(pub [u8; 32]);

impl Thumbprint {
    /// Computes the thumbprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Self {
        Self(openssl::sha::sha256(der))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The unpadded base64url form used in `x5t#S256`, 43 characters.
    pub fn to_base64url(&self) -> String {
        jws::base64url_encode(&self.0)
    }
}

impl FromStr for Thumbprint {
    type Err = SignatureError;

    /// Parses the unpadded base64url form of a 32-byte thumbprint.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = jws::base64url_decode(text).map_err(|_| {
            SignatureError::Malformed(format!("x5t#S256 {text:?} is not base64url"))
        })?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|bytes: Vec<u8>| {
            SignatureError::Malformed(format!(
                "x5t#S256 has {} bytes; a SHA-256 thumbprint has 32",
                bytes.len()
            ))
        })?;
        Ok(Self(bytes))
    }
}

impl fmt::Display for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64url())
    }
}

impl fmt::Debug for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Thumbprint({self})")
    }
}

/// Why a signature, key or certificate was rejected. Each variant maps to one stable
/// [`ErrorCode`] through [`SignatureError::code`].
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "the message has no signature; sign the body and send the JWS in the epix-signature header"
    )]
    Missing,
    #[error("malformed detached JWS: {0}")]
    Malformed(String),
    #[error("JWS algorithm {0:?} is rejected; use ES256, ES384, RS256 or PS256")]
    AlgorithmRejected(String),
    #[error("JWS algorithm {algorithm} does not fit the certificate's {key} key")]
    AlgorithmKeyMismatch { algorithm: Algorithm, key: KeyType },
    #[error("critical JWS header parameter {0:?} is not supported")]
    CriticalHeaderUnsupported(String),
    #[error("unencoded payload (b64: false) is not supported; sign the base64url-encoded body")]
    UnencodedPayloadUnsupported,
    #[error("certificate thumbprint {actual} differs from the JWS x5t#S256 {expected}")]
    CertificateMismatch {
        expected: Thumbprint,
        actual: Thumbprint,
    },
    #[error("the signature does not match the body bytes and the signer's certificate")]
    Invalid,
    #[error("key too weak: {0}")]
    KeyTooWeak(String),
    #[error("key not supported: {0}")]
    KeyUnsupported(String),
    #[error("invalid private key: {0}")]
    KeyInvalid(String),
    #[error("invalid certificate: {0}")]
    CertificateInvalid(String),
    #[error(
        "certificate expired at {} (valid from {}), before {}",
        rfc3339(not_after),
        rfc3339(not_before),
        rfc3339(at)
    )]
    CertificateExpired {
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    #[error(
        "certificate not yet valid at {}: valid from {} to {}",
        rfc3339(at),
        rfc3339(not_before),
        rfc3339(not_after)
    )]
    CertificateNotYetValid {
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    #[error("certificate key usage does not allow digitalSignature")]
    KeyUsageInvalid,
    #[error("OpenSSL failed: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
}

impl SignatureError {
    /// The stable error code reported for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Missing => ErrorCode::SignatureMissing,
            Self::Malformed(_) => ErrorCode::SignatureMalformed,
            Self::AlgorithmRejected(_) | Self::AlgorithmKeyMismatch { .. } => {
                ErrorCode::SignatureAlgorithmRejected
            }
            Self::CriticalHeaderUnsupported(_) | Self::UnencodedPayloadUnsupported => {
                ErrorCode::SignatureHeaderUnsupported
            }
            Self::CertificateMismatch { .. } => ErrorCode::SignatureCertificateMismatch,
            Self::Invalid => ErrorCode::SignatureInvalid,
            Self::KeyTooWeak(_) => ErrorCode::KeyTooWeak,
            Self::KeyUnsupported(_) => ErrorCode::KeyUnsupported,
            Self::KeyInvalid(_) => ErrorCode::KeyInvalid,
            Self::CertificateInvalid(_) => ErrorCode::CertificateInvalid,
            Self::CertificateExpired { .. } => ErrorCode::CertificateExpired,
            Self::CertificateNotYetValid { .. } => ErrorCode::CertificateNotYetValid,
            Self::KeyUsageInvalid => ErrorCode::CertificateKeyUsageInvalid,
            Self::Crypto(_) => ErrorCode::InternalError,
        }
    }

    /// A [`Problem`] with this error's code and message, for receipts and API responses.
    pub fn to_problem(&self) -> Problem {
        Problem::new(self.code(), self.to_string())
    }
}

/// Formats a time as RFC 3339 UTC with the `Z` designator, such as `2026-12-04T10:15:30Z`.
pub(crate) fn rfc3339(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

impl From<SignatureError> for Problem {
    fn from(error: SignatureError) -> Self {
        error.to_problem()
    }
}
