//! Key generation for signatories: a new key pair, and either a self-signed certificate or a
//! certificate signing request (CSR) to register it.

use std::io::Write;
use std::path::Path;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, PKeyRef, Private};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use openssl::x509::{X509, X509Name, X509Req};

/// The kind of key to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeySpec {
    /// ECDSA on P-256, signed with ES256.
    #[default]
    EcP256,
    /// RSA with a 3072-bit modulus, signed with PS256 (or RS256).
    Rsa3072,
}

/// Subject of a signatory's certificate or CSR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectName {
    /// The signatory's full name.
    pub common_name: String,
    /// The Management Authority.
    pub organization: String,
    /// ISO 3166-1 alpha-2 code of the Party, such as `CH`.
    pub country: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    #[error("invalid certificate subject: {0}")]
    InvalidSubject(String),
    #[error("validity of {0} days is out of range; use 1 to 3650")]
    InvalidValidity(u32),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("OpenSSL failed: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
}

/// Longest validity [`self_signed_certificate`] accepts, in days (about ten years).
pub const MAX_VALIDITY_DAYS: u32 = 3650;

/// How far the start of a self-signed certificate's validity lies before its creation, in
/// seconds. Without it, a signing time from a clock a little behind the one that made the
/// certificate falls before `not_before`, and the signature is rejected.
pub const NOT_BEFORE_BACKDATE_SECONDS: i64 = 300;

/// Generates a new private key.
pub fn generate_key(spec: KeySpec) -> Result<PKey<Private>, KeygenError> {
    let key = match spec {
        KeySpec::EcP256 => {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
            PKey::from_ec_key(EcKey::generate(&group)?)?
        }
        KeySpec::Rsa3072 => PKey::from_rsa(Rsa::generate(3072)?)?,
    };
    Ok(key)
}

/// Makes a self-signed X.509 v3 certificate for `key`, valid for `validity_days` days from
/// [`NOT_BEFORE_BACKDATE_SECONDS`] before now. It has a random 127-bit serial number,
/// basicConstraints CA:FALSE and a critical key usage of digitalSignature and
/// nonRepudiation, and is signed with SHA-256.
pub fn self_signed_certificate(
    key: &PKeyRef<Private>,
    subject: &SubjectName,
    validity_days: u32,
) -> Result<X509, KeygenError> {
    if validity_days == 0 || validity_days > MAX_VALIDITY_DAYS {
        return Err(KeygenError::InvalidValidity(validity_days));
    }
    let name = build_name(subject)?;

    let mut builder = X509::builder()?;
    // Version 3 is encoded as 2.
    builder.set_version(2)?;
    let serial = random_serial()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(&name)?;
    builder.set_pubkey(key)?;
    let now = chrono::Utc::now().timestamp();
    let not_before = Asn1Time::from_unix(now - NOT_BEFORE_BACKDATE_SECONDS)?;
    let not_after =
        Asn1Time::from_unix(now - NOT_BEFORE_BACKDATE_SECONDS + i64::from(validity_days) * 86_400)?;
    builder.set_not_before(&not_before)?;
    builder.set_not_after(&not_after)?;
    builder.append_extension(BasicConstraints::new().critical().build()?)?;
    builder.append_extension(signer_key_usage()?)?;
    let subject_key_id = SubjectKeyIdentifier::new().build(&builder.x509v3_context(None, None))?;
    builder.append_extension(subject_key_id)?;
    builder.sign(key, MessageDigest::sha256())?;
    Ok(builder.build())
}

/// Makes a PKCS#10 certificate signing request for `key` that asks for the same key usage
/// as [`self_signed_certificate`]. Signed with SHA-256.
pub fn certificate_request(
    key: &PKeyRef<Private>,
    subject: &SubjectName,
) -> Result<X509Req, KeygenError> {
    let mut builder = X509Req::builder()?;
    builder.set_version(0)?;
    let name = build_name(subject)?;
    builder.set_subject_name(&name)?;
    builder.set_pubkey(key)?;
    let mut extensions = Stack::new()?;
    extensions.push(signer_key_usage()?)?;
    builder.add_extensions(&extensions)?;
    builder.sign(key, MessageDigest::sha256())?;
    Ok(builder.build())
}

/// Encodes a private key as unencrypted PKCS#8 PEM.
pub fn private_key_pem(key: &PKeyRef<Private>) -> Result<Vec<u8>, KeygenError> {
    Ok(key.private_key_to_pem_pkcs8()?)
}

pub fn certificate_pem(certificate: &X509) -> Result<Vec<u8>, KeygenError> {
    Ok(certificate.to_pem()?)
}

pub fn certificate_request_pem(request: &X509Req) -> Result<Vec<u8>, KeygenError> {
    Ok(request.to_pem()?)
}

/// Writes a private key as PKCS#8 PEM to a new file that only its owner can read (mode
/// 0600 on Unix). Fails if the file exists, so an existing key is never overwritten.
pub fn write_private_key_pem(path: &Path, key: &PKeyRef<Private>) -> Result<(), KeygenError> {
    let pem = private_key_pem(key)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let write_error = |source| KeygenError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut file = options.open(path).map_err(write_error)?;
    file.write_all(&pem).map_err(write_error)?;
    file.sync_all().map_err(write_error)
}

/// Writes a certificate or CSR PEM to a new file; fails if the file exists.
pub fn write_public_pem(path: &Path, pem: &[u8]) -> Result<(), KeygenError> {
    let write_error = |source| KeygenError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(write_error)?;
    file.write_all(pem).map_err(write_error)
}

fn signer_key_usage() -> Result<openssl::x509::X509Extension, KeygenError> {
    Ok(KeyUsage::new()
        .critical()
        .digital_signature()
        .non_repudiation()
        .build()?)
}

fn random_serial() -> Result<Asn1Integer, KeygenError> {
    let mut serial = BigNum::new()?;
    // 127 random bits with the top bit clear keep the DER INTEGER positive and within the
    // 20 octets RFC 5280 allows.
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    Ok(serial.to_asn1_integer()?)
}

fn build_name(subject: &SubjectName) -> Result<X509Name, KeygenError> {
    let country = subject.country.as_str();
    if country.len() != 2 || !country.bytes().all(|byte| byte.is_ascii_uppercase()) {
        return Err(KeygenError::InvalidSubject(format!(
            "country {country:?} is not a two-letter upper-case ISO 3166 code"
        )));
    }
    for (field, value) in [
        ("common name", &subject.common_name),
        ("organization", &subject.organization),
    ] {
        let length = value.chars().count();
        if value.trim().is_empty() || length > 64 {
            return Err(KeygenError::InvalidSubject(format!(
                "{field} {value:?} must have 1 to 64 characters (RFC 5280 upper bound)"
            )));
        }
    }
    let mut name = X509Name::builder()?;
    name.append_entry_by_nid(Nid::COUNTRYNAME, country)?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, &subject.organization)?;
    name.append_entry_by_nid(Nid::COMMONNAME, &subject.common_name)?;
    Ok(name.build())
}
