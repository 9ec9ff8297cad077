//! The hub's token keys: one ES256 key that signs, plus older public keys that still
//! verify, so the signing key can be rotated without logging everyone out.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Public};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Seconds of clock difference tolerated when checking `exp`, `nbf` and `iat`.
pub const LEEWAY_SECONDS: u64 = 30;

/// The claims of a hub token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The username.
    pub sub: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    /// The user's Party; absent for the Secretariat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party: Option<String>,
    pub roles: Vec<String>,
    /// The API client that logged in, for client-credentials tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("invalid token signing key: {0}")]
    Signing(String),
    #[error("invalid additional token key: {0}")]
    Verifying(String),
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the token names no key of this hub (kid {0:?})")]
    UnknownKey(Option<String>),
    #[error("the token is invalid: {0}")]
    Invalid(String),
}

struct VerifyingKey {
    decoding: DecodingKey,
    jwk: serde_json::Value,
}

/// The signing key and every key that verifies tokens.
pub struct TokenKeys {
    signing_kid: String,
    encoding: EncodingKey,
    verifying: HashMap<String, VerifyingKey>,
    /// Order of the keys in the JWKS: the signing key first.
    order: Vec<String>,
    issuer: String,
    audience: String,
}

impl TokenKeys {
    /// Loads the signing key (a PEM P-256 private key) and additional public keys (PEM,
    /// several may follow each other). Without a signing key, a new one is generated, which
    /// lives as long as the process.
    pub fn new(
        signing_pem: Option<&str>,
        additional_pem: Option<&str>,
        issuer: &str,
        audience: &str,
    ) -> Result<Self, KeyError> {
        let private = match signing_pem {
            Some(pem) => EcKey::private_key_from_pem(pem.as_bytes())
                .map_err(|e| KeyError::Signing(e.to_string()))?,
            None => {
                let group = p256().map_err(|e| KeyError::Signing(e.to_string()))?;
                EcKey::generate(&group).map_err(|e| KeyError::Signing(e.to_string()))?
            }
        };
        if private.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
            return Err(KeyError::Signing(
                "expected a P-256 (prime256v1) EC key for ES256".to_owned(),
            ));
        }
        let pkcs8 = PKey::from_ec_key(private.clone())
            .and_then(|key| key.private_key_to_pem_pkcs8())
            .map_err(|e| KeyError::Signing(e.to_string()))?;
        let encoding =
            EncodingKey::from_ec_pem(&pkcs8).map_err(|e| KeyError::Signing(e.to_string()))?;
        let public = EcKey::from_public_key(private.group(), private.public_key())
            .map_err(|e| KeyError::Signing(e.to_string()))?;
        let (signing_kid, signing_key) = verifying_key(&public).map_err(KeyError::Signing)?;

        let mut verifying = HashMap::new();
        let mut order = vec![signing_kid.clone()];
        verifying.insert(signing_kid.clone(), signing_key);
        if let Some(pems) = additional_pem {
            for pem in split_pem_blocks(pems) {
                let key = PKey::public_key_from_pem(pem.as_bytes())
                    .and_then(|key| key.ec_key())
                    .map_err(|e| KeyError::Verifying(e.to_string()))?;
                if key.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
                    return Err(KeyError::Verifying(
                        "expected a P-256 public key".to_owned(),
                    ));
                }
                let (kid, verifying_key) = verifying_key(&key).map_err(KeyError::Verifying)?;
                if let std::collections::hash_map::Entry::Vacant(slot) =
                    verifying.entry(kid.clone())
                {
                    order.push(kid);
                    slot.insert(verifying_key);
                }
            }
        }
        Ok(Self {
            signing_kid,
            encoding,
            verifying,
            order,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    pub fn signing_kid(&self) -> &str {
        &self.signing_kid
    }

    /// The public keys as a JWK Set (RFC 7517).
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .order
            .iter()
            .filter_map(|kid| self.verifying.get(kid))
            .map(|key| key.jwk.clone())
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// Signs `claims` with the signing key.
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.signing_kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }

    /// Signs `body` with the signing key as a detached JWS (RFC 7515, ES256), for the
    /// documents the hub publishes, such as the trust list.
    pub fn sign_detached(&self, body: &[u8], document_type: &str) -> Result<String, TokenError> {
        let header =
            serde_json::json!({ "alg": "ES256", "kid": self.signing_kid, "typ": document_type });
        let protected = URL_SAFE_NO_PAD.encode(header.to_string());
        let input = format!("{protected}.{}", URL_SAFE_NO_PAD.encode(body));
        let signature =
            jsonwebtoken::crypto::sign(input.as_bytes(), &self.encoding, Algorithm::ES256)
                .map_err(|e| TokenError::Invalid(e.to_string()))?;
        Ok(format!("{protected}..{signature}"))
    }

    /// Verifies a token: ES256 only, a known `kid`, and `exp`, `nbf`, `iss`, `aud` and
    /// `sub` present and valid, with [`LEEWAY_SECONDS`] of leeway.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::ES256 {
            return Err(TokenError::Invalid(format!(
                "algorithm {:?} is not accepted: expected ES256",
                header.alg
            )));
        }
        let key = header
            .kid
            .as_ref()
            .and_then(|kid| self.verifying.get(kid))
            .ok_or_else(|| TokenError::UnknownKey(header.kid.clone()))?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }
}

fn p256() -> Result<EcGroup, openssl::error::ErrorStack> {
    EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)
}

/// Builds the JWK and decoding key of a P-256 public key; its `kid` is the RFC 7638
/// thumbprint.
fn verifying_key(key: &EcKey<Public>) -> Result<(String, VerifyingKey), String> {
    let group = p256().map_err(|e| e.to_string())?;
    let mut context = BigNumContext::new().map_err(|e| e.to_string())?;
    let mut x = BigNum::new().map_err(|e| e.to_string())?;
    let mut y = BigNum::new().map_err(|e| e.to_string())?;
    key.public_key()
        .affine_coordinates(&group, &mut x, &mut y, &mut context)
        .map_err(|e| e.to_string())?;
    let x = URL_SAFE_NO_PAD.encode(x.to_vec_padded(32).map_err(|e| e.to_string())?);
    let y = URL_SAFE_NO_PAD.encode(y.to_vec_padded(32).map_err(|e| e.to_string())?);
    // RFC 7638: the required members in lexicographic order, no whitespace.
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    let decoding = DecodingKey::from_ec_components(&x, &y).map_err(|e| e.to_string())?;
    let jwk = serde_json::json!({
        "kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256"
    });
    Ok((kid, VerifyingKey { decoding, jwk }))
}

fn split_pem_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.starts_with("-----BEGIN") {
            current.clear();
        }
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END") {
            blocks.push(std::mem::take(&mut current));
        }
    }
    blocks
}

/// Writes a new P-256 private key as PEM (PKCS#8) and its public key as PEM.
pub fn generate_key_pair() -> Result<(String, String), openssl::error::ErrorStack> {
    let group = p256()?;
    let key = EcKey::generate(&group)?;
    let private = PKey::from_ec_key(key)?;
    let private_pem = String::from_utf8_lossy(&private.private_key_to_pem_pkcs8()?).into_owned();
    let public_pem = String::from_utf8_lossy(&private.public_key_to_pem()?).into_owned();
    Ok((private_pem, public_pem))
}

/// Reads the public half of a private-key PEM, for configuring a verifying key.
pub fn public_pem_of(private_pem: &str) -> Result<String, openssl::error::ErrorStack> {
    let key: PKey<openssl::pkey::Private> = PKey::private_key_from_pem(private_pem.as_bytes())?;
    let public: PKey<Public> = PKey::public_key_from_pem(&key.public_key_to_pem()?)?;
    Ok(String::from_utf8_lossy(&public.public_key_to_pem()?).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64) -> Claims {
        Claims {
            iss: "https://hub.example".to_owned(),
            aud: "epix-hub".to_owned(),
            sub: "alice".to_owned(),
            exp: now + 600,
            nbf: now,
            iat: now,
            party: Some("CH".to_owned()),
            roles: vec!["customs".to_owned()],
            client_id: None,
        }
    }

    #[test]
    fn signed_token_verifies() {
        let keys = TokenKeys::new(None, None, "https://hub.example", "epix-hub").expect("keys");
        let now = chrono::Utc::now().timestamp();
        let token = keys.sign(&claims(now)).expect("signs");
        assert_eq!(keys.verify(&token).expect("verifies"), claims(now));
    }

    #[test]
    fn rotated_key_still_verifies() {
        let (old_private, old_public) = generate_key_pair().expect("key pair");
        let old = TokenKeys::new(Some(&old_private), None, "https://hub.example", "epix-hub")
            .expect("old keys");
        let now = chrono::Utc::now().timestamp();
        let token = old.sign(&claims(now)).expect("signs");
        let new = TokenKeys::new(None, Some(&old_public), "https://hub.example", "epix-hub")
            .expect("new keys");
        assert_eq!(new.jwks()["keys"].as_array().map(Vec::len), Some(2));
        assert!(new.verify(&token).is_ok());
        let without_old =
            TokenKeys::new(None, None, "https://hub.example", "epix-hub").expect("keys");
        assert!(matches!(
            without_old.verify(&token),
            Err(TokenError::UnknownKey(_))
        ));
    }

    #[test]
    fn public_pem_matches_private() {
        let (private, public) = generate_key_pair().expect("key pair");
        assert_eq!(public_pem_of(&private).expect("public"), public);
    }
}
