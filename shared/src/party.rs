//! Party codes: ISO 3166-1 alpha-2, as CITES uses them to name Parties.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A Party's two-letter code (ISO 3166-1 alpha-2, upper case), such as `CH` or `DE`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PartyCode([u8; 2]);

/// Returned when a text is not a two-letter upper-case code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid party code {0:?}: expected two upper-case letters (ISO 3166-1 alpha-2), such as CH"
)]
pub struct InvalidPartyCode(pub String);

impl PartyCode {
    pub fn as_str(&self) -> &str {
        // The constructor admits only ASCII upper-case letters, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl FromStr for PartyCode {
    type Err = InvalidPartyCode;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.as_bytes() {
            [a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => Ok(Self([*a, *b])),
            _ => Err(InvalidPartyCode(text.to_owned())),
        }
    }
}

impl TryFrom<String> for PartyCode {
    type Error = InvalidPartyCode;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<PartyCode> for String {
    fn from(code: PartyCode) -> Self {
        code.as_str().to_owned()
    }
}

impl fmt::Display for PartyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for PartyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PartyCode({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn party_code_accepts_two_capitals() {
        let code: PartyCode = "CH".parse().expect("CH is a valid code");
        assert_eq!(code.as_str(), "CH");
    }

    #[test]
    fn party_code_rejects_other_shapes() {
        for bad in ["", "C", "ch", "CHE", "C1", "É"] {
            assert!(
                bad.parse::<PartyCode>().is_err(),
                "{bad:?} must be rejected"
            );
        }
    }
}
