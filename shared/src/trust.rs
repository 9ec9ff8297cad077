//! The register of signatories as the hub publishes it (the trust list), the hub's own
//! signature over what it publishes, and the check of a permit's signature against a copy
//! of the register. The hub and every spoke use the same check, so both judge a signature
//! alike.
//!
//! The hub signs each trust list, each set of changes and each `register.*` broadcast with
//! a detached ES256 JWS whose `kid` names a key of its `/.well-known/jwks.json` and whose
//! `typ` names the kind of document, so a signature over one kind is never accepted for
//! another.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Public};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::signature::{ParsedCertificate, ParsedSignature, ecdsa_raw_to_der, feed_signing_input};
use crate::{ErrorCode, PartyCode, Problem};

/// `typ` of the hub's signature over a [`TrustList`].
pub const TYP_TRUST_LIST: &str = "epix-trust-list";
/// `typ` of the hub's signature over a [`TrustListChanges`].
pub const TYP_TRUST_LIST_CHANGES: &str = "epix-trust-list-changes";
/// `typ` of the hub's signature over a `register.signatory-changed` broadcast body.
pub const TYP_SIGNATORY_CHANGE: &str = "epix-signatory-change";
/// `typ` of the hub's signature over a `register.user-revoked` broadcast body.
pub const TYP_USER_REVOCATION: &str = "epix-user-revocation";

/// AMQP header of a `register.signatory-changed` broadcast: its register version.
pub const HEADER_REGISTER_VERSION: &str = "epix-register-version";

/// One signatory's record as the register contains it now, or one change to the register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TrustedSignatory {
    pub signatory_id: Uuid,
    pub party: String,
    pub full_name: String,
    pub title: Option<String>,
    /// base64url SHA-256 of the certificate (the JWS `x5t#S256`).
    pub thumbprint: String,
    /// The certificate, PEM.
    pub certificate: String,
    pub empowered_from: DateTime<Utc>,
    pub empowered_until: Option<DateTime<Utc>>,
    /// The register version this record took; every change takes the next one.
    pub version: Option<i64>,
}

/// The whole register at one version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrustList {
    /// The register version this list shows; 0 for an empty register.
    pub version: i64,
    pub issued_at: DateTime<Utc>,
    pub issuer: String,
    pub signatories: Vec<TrustedSignatory>,
}

/// The changes after one version, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrustListChanges {
    pub since: i64,
    pub version: i64,
    pub issuer: String,
    /// The records that changed the register after `since`, oldest first.
    pub changes: Vec<TrustedSignatory>,
}

/// Body of a `register.user-revoked` broadcast: a user whose API access ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserRevocation {
    pub username: String,
    pub full_name: String,
    pub party: Option<String>,
    pub removed_at: DateTime<Utc>,
    pub reason: Option<String>,
}

/// Reasons to reject the hub's signature over a document, or a change to a copy of the
/// register.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    #[error("the hub's signature is malformed: {0}")]
    Malformed(String),
    #[error(
        "the hub's signature names the key {}, which is not among the hub's keys",
        .0.as_deref().unwrap_or("(no kid)")
    )]
    UnknownKey(Option<String>),
    #[error("the hub's signature is for a {actual:?} document, not a {expected:?} one")]
    WrongType { expected: String, actual: String },
    #[error("the hub's signature does not match the document")]
    Invalid,
    #[error("the hub's key set is unusable: {0}")]
    Keys(String),
    #[error(
        "the register version jumps from {held} to {received}: versions {} to {} are missing",
        held + 1,
        received - 1
    )]
    VersionGap { held: i64, received: i64 },
    #[error("the change has no register version: expected a number in its version field")]
    Unversioned,
    #[error(
        "the changes end at register version {held}, but the hub's register is at {claimed}: the rest are missing"
    )]
    Incomplete { held: i64, claimed: i64 },
    #[error("the certificate of {full_name} cannot be read: {reason}")]
    Certificate { full_name: String, reason: String },
}

/// The hub's public keys, from its JWKS, by `kid`.
#[derive(Clone, Default)]
pub struct HubKeys {
    keys: HashMap<String, PKey<Public>>,
}

impl std::fmt::Debug for HubKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubKeys")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct HubHeader {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
}

impl HubKeys {
    /// Reads a JWKS document; keeps its EC P-256 keys that have a `kid`.
    pub fn from_jwks(json: &[u8]) -> Result<Self, TrustError> {
        let jwks: Jwks = serde_json::from_slice(json)
            .map_err(|error| TrustError::Keys(format!("not a JWKS document: {error}")))?;
        let mut keys = HashMap::new();
        for jwk in jwks.keys {
            let (Some(kid), Some(x), Some(y)) = (jwk.kid, jwk.x, jwk.y) else {
                continue;
            };
            if jwk.kty != "EC" || jwk.crv.as_deref() != Some("P-256") {
                continue;
            }
            let key = ec_public_key(&x, &y)
                .map_err(|reason| TrustError::Keys(format!("key {kid:?}: {reason}")))?;
            keys.insert(kid, key);
        }
        if keys.is_empty() {
            return Err(TrustError::Keys(
                "no EC P-256 key with a kid: expected the hub's /.well-known/jwks.json".to_owned(),
            ));
        }
        Ok(Self { keys })
    }

    /// Returns whether the set contains a key with this `kid`.
    pub fn knows(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// Returns the `kid` that a detached JWS names, without verifying anything.
    pub fn key_id_of(jws: &str) -> Option<String> {
        let header = jws.split('.').next()?;
        let bytes = URL_SAFE_NO_PAD.decode(header).ok()?;
        serde_json::from_slice::<HubHeader>(&bytes).ok()?.kid
    }

    /// Verifies the hub's detached ES256 JWS over `body`, made for a document of kind `typ`.
    pub fn verify(&self, jws: &str, body: &[u8], typ: &str) -> Result<(), TrustError> {
        let parts: Vec<&str> = jws.split('.').collect();
        let [encoded_header, "", encoded_signature] = parts[..] else {
            return Err(TrustError::Malformed(
                "expected a detached compact JWS: header..signature".to_owned(),
            ));
        };
        let header_bytes = URL_SAFE_NO_PAD
            .decode(encoded_header)
            .map_err(|error| TrustError::Malformed(format!("header: {error}")))?;
        let header: HubHeader = serde_json::from_slice(&header_bytes)
            .map_err(|error| TrustError::Malformed(format!("header: {error}")))?;
        if header.alg != "ES256" {
            return Err(TrustError::Malformed(format!(
                "algorithm {:?}: the hub signs with ES256 only",
                header.alg
            )));
        }
        if header.typ.as_deref() != Some(typ) {
            return Err(TrustError::WrongType {
                expected: typ.to_owned(),
                actual: header.typ.unwrap_or_default(),
            });
        }
        let key = header
            .kid
            .as_ref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or_else(|| TrustError::UnknownKey(header.kid.clone()))?;
        let raw = URL_SAFE_NO_PAD
            .decode(encoded_signature)
            .map_err(|error| TrustError::Malformed(format!("signature: {error}")))?;
        if raw.len() != 64 {
            return Err(TrustError::Malformed(format!(
                "the signature has {} bytes: expected 64 (ES256 R and S)",
                raw.len()
            )));
        }
        // The same R || S decoding and chunked signing input as a permit signature.
        let Ok(Some(der)) = ecdsa_raw_to_der(&raw, 32) else {
            return Err(TrustError::Invalid);
        };
        let mut verifier = openssl::sign::Verifier::new(MessageDigest::sha256(), key)
            .map_err(|error| TrustError::Keys(error.to_string()))?;
        let fed = feed_signing_input(encoded_header, body, |chunk| verifier.update(chunk));
        let verified = fed.is_ok() && verifier.verify(&der).unwrap_or(false);
        if verified {
            Ok(())
        } else {
            Err(TrustError::Invalid)
        }
    }
}

fn ec_public_key(x: &str, y: &str) -> Result<PKey<Public>, String> {
    let decode = |name: &str, text: &str| {
        URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|error| format!("{name} is not base64url: {error}"))
            .and_then(|bytes| BigNum::from_slice(&bytes).map_err(|error| error.to_string()))
    };
    let (x, y) = (decode("x", x)?, decode("y", y)?);
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(|e| e.to_string())?;
    let key = EcKey::from_public_key_affine_coordinates(&group, &x, &y)
        .map_err(|error| format!("not a point on P-256: {error}"))?;
    key.check_key().map_err(|error| error.to_string())?;
    PKey::from_ec_key(key).map_err(|error| error.to_string())
}

/// One signatory's current record, with its certificate parsed once.
#[derive(Clone, Debug)]
pub struct RegisterEntry {
    pub signatory_id: Uuid,
    pub party: String,
    pub full_name: String,
    pub empowered_from: DateTime<Utc>,
    pub empowered_until: Option<DateTime<Utc>>,
    pub certificate: ParsedCertificate,
}

/// The signatory a signature was verified against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBy {
    pub signatory_id: Uuid,
    pub full_name: String,
    pub signed_at: DateTime<Utc>,
}

/// Checks a parsed signature over `body` against the register entries that carry its
/// certificate: a signatory of `issuer`, empowered at the signing time, with a certificate
/// valid then and a signature that matches the exact bytes. `pointer` names where the
/// signature travelled, for the problem.
///
/// Checks of the signing time against a receipt time are the caller's.
pub fn check_signatory(
    entries: &[RegisterEntry],
    parsed: &ParsedSignature,
    body: &[u8],
    issuer: PartyCode,
    pointer: &str,
) -> Result<SignedBy, Problem> {
    let signed_at = parsed.signing_time;
    let thumbprint = parsed.thumbprint.to_base64url();
    if entries.is_empty() {
        return Err(Problem::new(
            ErrorCode::SignatoryUnknown,
            "the signing certificate is not on the register of signatories",
        )
        .at(pointer)
        .with_value(thumbprint));
    }
    let Some(entry) = entries.iter().find(|entry| entry.party == issuer.as_str()) else {
        return Err(Problem::new(
            ErrorCode::SignatoryOfOtherParty,
            format!(
                "the signatory belongs to {}, not to the issuing Party {issuer}",
                entries[0].party
            ),
        )
        .at(pointer)
        .with_value(thumbprint));
    };
    if signed_at < entry.empowered_from {
        return Err(Problem::new(
            ErrorCode::SignatoryNotEmpowered,
            format!(
                "{} was not yet empowered to sign at the signing time; empowerment starts {}",
                entry.full_name, entry.empowered_from
            ),
        )
        .at(pointer)
        .with_value(signed_at.to_rfc3339()));
    }
    if let Some(until) = entry.empowered_until
        && signed_at >= until
    {
        return Err(Problem::new(
            ErrorCode::SignatoryRevoked,
            format!(
                "{} was removed from the register at {until}, before the signing time",
                entry.full_name
            ),
        )
        .at(pointer)
        .with_value(signed_at.to_rfc3339()));
    }
    // The signature over the exact bytes, and the certificate's validity at the signing time.
    parsed
        .verify(body, &entry.certificate)
        .map_err(|error| error.to_problem().at(pointer))?;
    Ok(SignedBy {
        signatory_id: entry.signatory_id,
        full_name: entry.full_name.clone(),
        signed_at,
    })
}

/// The effect of applying one change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The change was the next version and is now part of the copy.
    Applied,
    /// The copy already contains this version or a later one.
    AlreadyHeld,
}

/// A spoke's copy of the register: the hub's trust list with every later change applied in
/// version order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrustStore {
    version: i64,
    issuer: String,
    signatories: BTreeMap<Uuid, TrustedSignatory>,
    #[serde(skip)]
    by_thumbprint: HashMap<String, Vec<RegisterEntry>>,
}

impl TrustStore {
    /// Starts a copy from a trust list, after its signature was checked.
    pub fn from_list(list: TrustList) -> Result<Self, TrustError> {
        let mut store = Self {
            version: list.version,
            issuer: list.issuer,
            signatories: list
                .signatories
                .into_iter()
                .map(|signatory| (signatory.signatory_id, signatory))
                .collect(),
            by_thumbprint: HashMap::new(),
        };
        store.index()?;
        Ok(store)
    }

    /// Reads a copy saved with [`TrustStore::to_json`].
    pub fn from_json(json: &[u8]) -> Result<Self, TrustError> {
        let mut store: Self = serde_json::from_slice(json)
            .map_err(|error| TrustError::Malformed(format!("saved trust list: {error}")))?;
        store.index()?;
        Ok(store)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// The register version this copy holds.
    pub fn version(&self) -> i64 {
        self.version
    }

    pub fn signatories(&self) -> impl Iterator<Item = &TrustedSignatory> {
        self.signatories.values()
    }

    /// Applies one change. It must carry the next version; an older one is ignored, and a
    /// later one is refused, because the versions in between are missing.
    pub fn apply(&mut self, change: TrustedSignatory) -> Result<Applied, TrustError> {
        let received = change.version.ok_or(TrustError::Unversioned)?;
        if received <= self.version {
            return Ok(Applied::AlreadyHeld);
        }
        if received != self.version + 1 {
            return Err(TrustError::VersionGap {
                held: self.version,
                received,
            });
        }
        let entry = entry_of(&change)?;
        self.remove_from_index(change.signatory_id);
        self.by_thumbprint
            .entry(change.thumbprint.clone())
            .or_default()
            .push(entry);
        self.signatories.insert(change.signatory_id, change);
        self.version = received;
        Ok(Applied::Applied)
    }

    /// Applies a set of changes; all of them, or none when one is refused.
    pub fn apply_changes(&mut self, changes: TrustListChanges) -> Result<usize, TrustError> {
        let mut next = self.clone();
        let mut applied = 0;
        for change in changes.changes {
            if next.apply(change)? == Applied::Applied {
                applied += 1;
            }
        }
        if next.version < changes.version {
            return Err(TrustError::Incomplete {
                held: next.version,
                claimed: changes.version,
            });
        }
        *self = next;
        Ok(applied)
    }

    /// Checks a permit's detached JWS over `body` against this copy, as the hub does, and
    /// refuses a signing time later than `now` plus `skew`.
    pub fn verify(
        &self,
        jws: &str,
        body: &[u8],
        issuer: PartyCode,
        now: DateTime<Utc>,
        skew: chrono::Duration,
        pointer: &str,
    ) -> Result<SignedBy, Problem> {
        let parsed = crate::signature::parse_detached(jws)
            .map_err(|error| error.to_problem().at(pointer))?;
        if parsed.signing_time > now + skew {
            return Err(Problem::new(
                ErrorCode::SigningTimeInFuture,
                format!(
                    "the signing time is after {now}: expected a time no later than now, within {} minutes of clock difference",
                    skew.num_minutes()
                ),
            )
            .at(pointer)
            .with_value(parsed.signing_time.to_rfc3339()));
        }
        let entries = self
            .by_thumbprint
            .get(&parsed.thumbprint.to_base64url())
            .map(Vec::as_slice)
            .unwrap_or_default();
        check_signatory(entries, &parsed, body, issuer, pointer)
    }

    fn index(&mut self) -> Result<(), TrustError> {
        self.by_thumbprint.clear();
        for signatory in self.signatories.values() {
            let entry = entry_of(signatory)?;
            self.by_thumbprint
                .entry(signatory.thumbprint.clone())
                .or_default()
                .push(entry);
        }
        Ok(())
    }

    fn remove_from_index(&mut self, signatory_id: Uuid) {
        if let Some(old) = self.signatories.get(&signatory_id)
            && let Some(entries) = self.by_thumbprint.get_mut(&old.thumbprint)
        {
            entries.retain(|entry| entry.signatory_id != signatory_id);
        }
    }
}

fn entry_of(signatory: &TrustedSignatory) -> Result<RegisterEntry, TrustError> {
    let certificate =
        ParsedCertificate::from_pem(signatory.certificate.as_bytes()).map_err(|error| {
            TrustError::Certificate {
                full_name: signatory.full_name.clone(),
                reason: error.to_string(),
            }
        })?;
    if certificate.thumbprint().to_base64url() != signatory.thumbprint {
        return Err(TrustError::Certificate {
            full_name: signatory.full_name.clone(),
            reason: "its thumbprint differs from the one listed".to_owned(),
        });
    }
    Ok(RegisterEntry {
        signatory_id: signatory.signatory_id,
        party: signatory.party.clone(),
        full_name: signatory.full_name.clone(),
        empowered_from: signatory.empowered_from,
        empowered_until: signatory.empowered_until,
        certificate,
    })
}

#[cfg(test)]
mod tests {
    use openssl::ecdsa::EcdsaSig;

    use super::*;
    use crate::signature::keygen::{self, KeySpec, SubjectName};
    use crate::signature::{Signer, SigningKey};

    fn signatory(party: &str, version: i64) -> (TrustedSignatory, Signer) {
        let key = keygen::generate_key(KeySpec::EcP256).expect("key");
        let subject = SubjectName {
            common_name: format!("Signer {version}"),
            organization: "Management Authority".to_owned(),
            country: party.to_owned(),
        };
        let certificate = keygen::self_signed_certificate(&key, &subject, 30).expect("cert");
        let pem = keygen::certificate_pem(&certificate).expect("pem");
        let key_pem = keygen::private_key_pem(&key).expect("key pem");
        let signing_key = SigningKey::from_pem(&key_pem, &pem).expect("signing key");
        let thumbprint = signing_key.certificate().thumbprint().to_base64url();
        let record = TrustedSignatory {
            signatory_id: Uuid::new_v4(),
            party: party.to_owned(),
            full_name: format!("Signer {version}"),
            title: None,
            thumbprint,
            certificate: String::from_utf8(pem).expect("utf-8"),
            empowered_from: Utc::now() - chrono::Duration::days(1),
            empowered_until: None,
            version: Some(version),
        };
        (record, Signer::new(signing_key))
    }

    fn empty() -> TrustStore {
        TrustStore::from_list(TrustList {
            version: 0,
            issued_at: Utc::now(),
            issuer: "test".to_owned(),
            signatories: Vec::new(),
        })
        .expect("empty list")
    }

    #[test]
    fn applies_changes_in_order_and_refuses_a_gap() {
        let mut store = empty();
        let (first, _) = signatory("CH", 1);
        let (third, _) = signatory("CH", 3);
        assert_eq!(store.apply(first.clone()), Ok(Applied::Applied));
        assert_eq!(store.apply(first), Ok(Applied::AlreadyHeld));
        assert_eq!(
            store.apply(third),
            Err(TrustError::VersionGap {
                held: 1,
                received: 3
            })
        );
        assert_eq!(store.version(), 1);
    }

    #[test]
    fn verifies_a_permit_and_a_removal() {
        let mut store = empty();
        let (mut record, signer) = signatory("CH", 1);
        store.apply(record.clone()).expect("applied");
        let body = br#"{"permit":1}"#;
        let now = Utc::now();
        let jws = signer.sign(body, now).expect("signed");
        let ch: PartyCode = "CH".parse().expect("code");
        let skew = chrono::Duration::minutes(5);
        let signed = store.verify(&jws, body, ch, now, skew, "h").expect("valid");
        assert_eq!(signed.full_name, "Signer 1");

        let other = store.verify(&jws, b"{\"permit\":2}", ch, now, skew, "h");
        assert_eq!(
            other.expect_err("changed body").code,
            ErrorCode::SignatureInvalid
        );
        let de: PartyCode = "DE".parse().expect("code");
        let wrong_party = store.verify(&jws, body, de, now, skew, "h");
        assert_eq!(
            wrong_party.expect_err("other party").code,
            ErrorCode::SignatoryOfOtherParty
        );

        record.empowered_until = Some(now - chrono::Duration::seconds(1));
        record.version = Some(2);
        store.apply(record).expect("removal applied");
        let removed = store.verify(&jws, body, ch, now, skew, "h");
        assert_eq!(
            removed.expect_err("removed").code,
            ErrorCode::SignatoryRevoked
        );

        let saved = TrustStore::from_json(&store.to_json()).expect("reads back");
        assert_eq!(saved.version(), 2);
        let again = saved.verify(&jws, body, ch, now, skew, "h");
        assert_eq!(
            again.expect_err("removed").code,
            ErrorCode::SignatoryRevoked
        );
    }

    #[test]
    fn apply_rejects_wrong_thumbprint() {
        let (mut record, _) = signatory("CH", 1);
        let (other, _) = signatory("CH", 2);
        record.thumbprint = other.thumbprint;
        assert!(matches!(
            empty().apply(record),
            Err(TrustError::Certificate { .. })
        ));
    }

    #[test]
    fn hub_signature_checks_key_type_and_bytes() {
        let key = keygen::generate_key(KeySpec::EcP256).expect("key");
        let ec = key.ec_key().expect("ec");
        let mut context = openssl::bn::BigNumContext::new().expect("ctx");
        let (mut x, mut y) = (BigNum::new().expect("x"), BigNum::new().expect("y"));
        ec.public_key()
            .affine_coordinates(ec.group(), &mut x, &mut y, &mut context)
            .expect("coordinates");
        let encode = |n: &BigNum| URL_SAFE_NO_PAD.encode(n.to_vec_padded(32).expect("pad"));
        let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1",
            "x": encode(&x), "y": encode(&y)}]});
        let keys = HubKeys::from_jwks(jwks.to_string().as_bytes()).expect("jwks");

        let sign = |typ: &str, kid: &str, body: &[u8]| {
            let header = serde_json::json!({"alg": "ES256", "kid": kid, "typ": typ});
            let protected = URL_SAFE_NO_PAD.encode(header.to_string());
            let input = format!("{protected}.{}", URL_SAFE_NO_PAD.encode(body));
            let mut signer =
                openssl::sign::Signer::new(MessageDigest::sha256(), &key).expect("signer");
            signer.update(input.as_bytes()).expect("update");
            let der = signer.sign_to_vec().expect("sign");
            let signature = EcdsaSig::from_der(&der).expect("der");
            let mut raw = signature.r().to_vec_padded(32).expect("r");
            raw.extend(signature.s().to_vec_padded(32).expect("s"));
            format!("{protected}..{}", URL_SAFE_NO_PAD.encode(raw))
        };
        let body = b"{\"version\":3}";
        let jws = sign(TYP_TRUST_LIST, "k1", body);
        assert_eq!(keys.verify(&jws, body, TYP_TRUST_LIST), Ok(()));
        assert_eq!(
            keys.verify(&jws, b"{\"version\":4}", TYP_TRUST_LIST),
            Err(TrustError::Invalid)
        );
        assert!(matches!(
            keys.verify(&jws, body, TYP_SIGNATORY_CHANGE),
            Err(TrustError::WrongType { .. })
        ));
        let unknown = sign(TYP_TRUST_LIST, "k2", body);
        assert!(matches!(
            keys.verify(&unknown, body, TYP_TRUST_LIST),
            Err(TrustError::UnknownKey(_))
        ));

        // Other algorithms, with the signature part of a genuine JWS.
        let signature_part = jws.rsplit('.').next().expect("three parts");
        for alg in ["none", "HS256", "RS256", "es256"] {
            let header = serde_json::json!({"alg": alg, "kid": "k1", "typ": TYP_TRUST_LIST});
            let forged = format!(
                "{}..{signature_part}",
                URL_SAFE_NO_PAD.encode(header.to_string())
            );
            assert!(
                matches!(
                    keys.verify(&forged, body, TYP_TRUST_LIST),
                    Err(TrustError::Malformed(_))
                ),
                "alg {alg} is refused"
            );
        }
        let (head, signature) = jws.split_once("..").expect("detached");
        let raw = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
        let short = format!("{head}..{}", URL_SAFE_NO_PAD.encode(&raw[..63]));
        assert!(matches!(
            keys.verify(&short, body, TYP_TRUST_LIST),
            Err(TrustError::Malformed(_))
        ));
        let attached = format!("{head}.{}.{signature}", URL_SAFE_NO_PAD.encode(body));
        assert!(matches!(
            keys.verify(&attached, body, TYP_TRUST_LIST),
            Err(TrustError::Malformed(_))
        ));
    }
}
