//! Signer certificates: parsing once for reuse, key strength rules and the checks run when a
//! certificate is registered.

use chrono::{DateTime, Utc};
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKey, PKeyRef, Public};
use openssl::x509::{X509, X509KeyUsage, X509NameRef, X509Ref};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{KeyType, SignatureError, Thumbprint};
use crate::problem::{ErrorCode, Problem};

/// An X.509 certificate parsed once, with its public key, key type and thumbprint, so that a
/// verifier can cache it and pay only the signature check per message.
///
/// Construction rejects keys that fail the strength rules, so every `ParsedCertificate`
/// holds an EC P-256, EC P-384 or RSA key of at least 2048 bits. It does not check key usage
/// or validity dates; [`check_certificate`] and [`ParsedCertificate::check_valid_at`] do.
#[derive(Clone)]
pub struct ParsedCertificate {
    x509: X509,
    public_key: PKey<Public>,
    key_type: KeyType,
    thumbprint: Thumbprint,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
}

impl std::fmt::Debug for ParsedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedCertificate")
            .field("subject", &format_name(self.x509.subject_name()))
            .field("key_type", &self.key_type)
            .field("thumbprint", &self.thumbprint)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish()
    }
}

impl ParsedCertificate {
    /// Parses a PEM certificate (the first one, if the input holds a chain).
    pub fn from_pem(pem: &[u8]) -> Result<Self, SignatureError> {
        let x509 = X509::from_pem(pem).map_err(|error| {
            SignatureError::CertificateInvalid(format!("not a PEM X.509 certificate: {error}"))
        })?;
        Self::from_x509(x509)
    }

    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, SignatureError> {
        let x509 = X509::from_der(der).map_err(|error| {
            SignatureError::CertificateInvalid(format!("not a DER X.509 certificate: {error}"))
        })?;
        Self::from_x509(x509)
    }

    /// Parses PEM when the input starts with `-----BEGIN` (after leading whitespace), and
    /// DER otherwise.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self, SignatureError> {
        if is_pem(bytes) {
            Self::from_pem(bytes)
        } else {
            Self::from_der(bytes)
        }
    }

    /// Wraps a parsed certificate after checking its key type and strength.
    pub fn from_x509(x509: X509) -> Result<Self, SignatureError> {
        let public_key = x509.public_key().map_err(|error| {
            SignatureError::CertificateInvalid(format!("unreadable public key: {error}"))
        })?;
        let key_type = classify_key(&public_key)?;
        let thumbprint = Thumbprint::of_der(&x509.to_der()?);
        let not_before = asn1_time_to_utc(x509.not_before())?;
        let not_after = asn1_time_to_utc(x509.not_after())?;
        Ok(Self {
            x509,
            public_key,
            key_type,
            thumbprint,
            not_before,
            not_after,
        })
    }

    pub fn x509(&self) -> &X509Ref {
        &self.x509
    }

    pub fn public_key(&self) -> &PKeyRef<Public> {
        &self.public_key
    }

    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    pub fn thumbprint(&self) -> &Thumbprint {
        &self.thumbprint
    }

    pub fn not_before(&self) -> DateTime<Utc> {
        self.not_before
    }

    pub fn not_after(&self) -> DateTime<Utc> {
        self.not_after
    }

    /// Checks that `at` lies within the validity period, both ends included as RFC 5280
    /// defines them.
    pub fn check_valid_at(&self, at: DateTime<Utc>) -> Result<(), SignatureError> {
        check_validity(self.not_before, self.not_after, at)
    }

    /// Checks that the key usage extension, when present, allows digitalSignature. Without
    /// the extension the key usage is unrestricted, as OpenSSL also treats it.
    pub fn check_key_usage(&self) -> Result<(), SignatureError> {
        check_key_usage(&self.x509)
    }

    /// Subject, issuer, serial number, thumbprint, key type and validity of the certificate.
    pub fn info(&self) -> CertificateInfo {
        let serial = self
            .x509
            .serial_number()
            .to_bn()
            .and_then(|serial| serial.to_hex_str().map(|hex| hex.to_string()))
            .unwrap_or_default();
        CertificateInfo {
            subject: format_name(self.x509.subject_name()),
            issuer: format_name(self.x509.issuer_name()),
            serial,
            thumbprint: self.thumbprint.to_base64url(),
            key_type: self.key_type.to_string(),
            not_before: self.not_before,
            not_after: self.not_after,
        }
    }
}

/// What a register of signatories stores and shows about a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CertificateInfo {
    /// Subject distinguished name, attributes in certificate order, such as
    /// `C=CH, O=Federal Food Safety and Veterinary Office, CN=Anna Muster`.
    pub subject: String,
    /// Issuer distinguished name, in the same form as `subject`.
    pub issuer: String,
    /// Serial number in upper-case hexadecimal.
    pub serial: String,
    /// SHA-256 thumbprint of the DER encoding, unpadded base64url, as in `x5t#S256`.
    pub thumbprint: String,
    /// Key type and size, such as `EC P-256` or `RSA 3072`.
    pub key_type: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

/// Runs the checks for registering a signer certificate, PEM or DER: it must parse as X.509,
/// carry an EC P-256/P-384 or RSA-2048+ key, allow digitalSignature if it has a key usage
/// extension, and be valid at `at`. Returns every problem found, not only the first.
///
/// The issuer chain is not checked, because trust comes from the register, not from a CA.
pub fn check_certificate(
    pem_or_der: &[u8],
    at: DateTime<Utc>,
) -> Result<CertificateInfo, Vec<Problem>> {
    let x509 = if is_pem(pem_or_der) {
        X509::from_pem(pem_or_der)
    } else {
        X509::from_der(pem_or_der)
    };
    let x509 = x509.map_err(|error| {
        vec![Problem::new(
            ErrorCode::CertificateInvalid,
            format!("the certificate is not a parsable X.509 certificate in PEM or DER: {error}"),
        )]
    })?;

    // The key, key usage and validity checks are independent, so all of them run even when
    // the key is rejected.
    let mut problems = Vec::new();
    let certificate = ParsedCertificate::from_x509(x509.clone());
    if let Err(error) = &certificate {
        problems.push(error.to_problem());
    }
    if let Err(error) = check_key_usage(&x509) {
        problems.push(error.to_problem());
    }
    let not_before = asn1_time_to_utc(x509.not_before());
    let not_after = asn1_time_to_utc(x509.not_after());
    match (not_before, not_after) {
        (Ok(not_before), Ok(not_after)) => {
            if let Err(error) = check_validity(not_before, not_after, at) {
                let value = super::rfc3339(&not_after);
                problems.push(error.to_problem().with_value(value));
            }
        }
        (Err(error), _) | (_, Err(error)) => problems.push(error.to_problem()),
    }
    match certificate {
        Ok(certificate) if problems.is_empty() => Ok(certificate.info()),
        _ => Err(problems),
    }
}

fn check_key_usage(x509: &X509Ref) -> Result<(), SignatureError> {
    // OpenSSL reports an extension it cannot decode as an empty set, which fails here too.
    match x509.key_usage() {
        None => Ok(()),
        Some(usage) if usage.contains(X509KeyUsage::DIGITAL_SIGNATURE) => Ok(()),
        Some(_) => Err(SignatureError::KeyUsageInvalid),
    }
}

fn check_validity(
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<(), SignatureError> {
    if at < not_before {
        Err(SignatureError::CertificateNotYetValid {
            not_before,
            not_after,
            at,
        })
    } else if at > not_after {
        Err(SignatureError::CertificateExpired {
            not_before,
            not_after,
            at,
        })
    } else {
        Ok(())
    }
}

/// Classifies a public or private key, rejecting EC curves below P-256, RSA under 2048 bits
/// and every other key type.
pub(super) fn classify_key<T: HasPublic>(key: &PKeyRef<T>) -> Result<KeyType, SignatureError> {
    match key.id() {
        Id::EC => {
            let ec_key = key.ec_key()?;
            let group = ec_key.group();
            let curve = group.curve_name();
            match curve {
                Some(Nid::X9_62_PRIME256V1) => Ok(KeyType::EcP256),
                Some(Nid::SECP384R1) => Ok(KeyType::EcP384),
                _ => {
                    let name = curve
                        .and_then(|nid| nid.short_name().ok())
                        .unwrap_or("explicit parameters");
                    let degree = group.degree();
                    if degree < 256 {
                        Err(SignatureError::KeyTooWeak(format!(
                            "EC key on {name} ({degree} bits); at least P-256 is required"
                        )))
                    } else {
                        Err(SignatureError::KeyUnsupported(format!(
                            "EC curve {name}; use P-256 or P-384"
                        )))
                    }
                }
            }
        }
        Id::RSA => {
            let bits = key.bits();
            if bits < 2048 {
                Err(SignatureError::KeyTooWeak(format!(
                    "RSA key of {bits} bits; at least 2048 bits are required"
                )))
            } else {
                Ok(KeyType::Rsa { bits })
            }
        }
        other => {
            let name = Nid::from_raw(other.as_raw())
                .short_name()
                .unwrap_or("unknown");
            Err(SignatureError::KeyUnsupported(format!(
                "{name} key; use EC P-256, EC P-384 or RSA of at least 2048 bits"
            )))
        }
    }
}

fn is_pem(bytes: &[u8]) -> bool {
    bytes.trim_ascii_start().starts_with(b"-----BEGIN")
}

/// Converts an ASN.1 time to UTC by measuring its distance from the Unix epoch, because the
/// openssl crate offers no direct conversion.
fn asn1_time_to_utc(time: &Asn1TimeRef) -> Result<DateTime<Utc>, SignatureError> {
    let epoch = Asn1Time::from_unix(0)?;
    let diff = epoch.diff(time)?;
    let seconds = i64::from(diff.days) * 86_400 + i64::from(diff.secs);
    DateTime::from_timestamp(seconds, 0).ok_or_else(|| {
        SignatureError::CertificateInvalid(format!("validity time {time} is out of range"))
    })
}

fn format_name(name: &X509NameRef) -> String {
    let mut parts = Vec::new();
    for entry in name.entries() {
        let field = entry.object().nid().short_name().unwrap_or("?");
        let value = entry.data().to_string().unwrap_or_else(|_| "?".to_owned());
        parts.push(format!("{field}={value}"));
    }
    parts.join(", ")
}
