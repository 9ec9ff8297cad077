//! Password and client-secret hashing with Argon2id.
//!
//! Parameters: 19 MiB of memory, 2 iterations, 1 lane (OWASP's first recommended Argon2id
//! configuration), stored in the PHC string so that older hashes still verify after a change.

use std::sync::LazyLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;

/// Shortest password accepted for a new user.
pub const MIN_PASSWORD_CHARS: usize = 12;

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a secret; runs for tens of milliseconds, so call it off the async threads.
pub fn hash(secret: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(hasher()
        .hash_password(secret.as_bytes(), &salt)?
        .to_string())
}

/// Checks a secret against a stored PHC string; a malformed hash never matches.
pub fn verify(secret: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => hasher().verify_password(secret.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random secret, checked when the user does not exist so that the answer
/// takes as long as for a real user and does not reveal which names exist.
pub static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let secret: String = {
        use rand::Rng;
        rand::rng()
            .sample_iter(&rand::distr::Alphanumeric)
            .take(32)
            .map(char::from)
            .collect()
    };
    hash(&secret).unwrap_or_default()
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_its_secret() {
        let stored = hash("correct horse battery").expect("hashes");
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(verify("correct horse battery", &stored));
        assert!(!verify("correct horse batterz", &stored));
    }

    #[test]
    fn malformed_hash_never_matches() {
        assert!(!verify("anything", "not a hash"));
    }
}
