//! Typed codes of the standard form: appendix, source and purpose as closed enums, term and
//! unit as three-letter codes whose membership is checked against the embedded code lists.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Defines a closed enum of one-or-more-letter codes whose variant names are the codes.
macro_rules! letter_code {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            JsonSchema,
        )]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($variant)),+
                }
            }

            /// Parses the code as written on the form, such as `W`.
            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|code| code.as_str() == text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

letter_code! {
    /// CITES Appendix of a line item (Box 10).
    #[allow(clippy::upper_case_acronyms)]
    Appendix {
        I,
        II,
        III,
    }
}

letter_code! {
    /// Source of the specimens (Box 10), Res. Conf. 12.3 and the annual-report guidelines.
    SourceCode {
        /// Taken from the wild.
        W,
        /// Ranched.
        R,
        /// Appendix I animals bred in captivity in registered operations, or Appendix I plants
        /// artificially propagated for commercial purposes.
        D,
        /// Artificially propagated plants.
        A,
        /// Animals bred in captivity.
        C,
        /// Animals born in captivity (F1 or later) that do not meet "bred in captivity".
        F,
        /// Confiscated or seized.
        I,
        /// Pre-Convention.
        O,
        /// Unknown.
        U,
        /// Taken in the marine environment outside any State's jurisdiction.
        X,
        /// Assisted production (plants).
        Y,
    }
}

letter_code! {
    /// Purpose of the transaction (Box 5a).
    PurposeCode {
        /// Breeding in captivity or artificial propagation.
        B,
        /// Educational.
        E,
        /// Botanical garden.
        G,
        /// Hunting trophy.
        H,
        /// Law enforcement, judicial or forensic.
        L,
        /// Medical, including biomedical research.
        M,
        /// Reintroduction or introduction into the wild.
        N,
        /// Personal.
        P,
        /// Circus or travelling exhibition.
        Q,
        /// Scientific.
        S,
        /// Commercial.
        T,
        /// Zoo.
        Z,
    }
}

/// Returned when a text does not have the shape of a code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {text:?}: expected three upper-case letters such as {example}")]
pub struct InvalidCode {
    pub kind: &'static str,
    pub example: &'static str,
    pub text: String,
}

/// Defines a three-letter code type; whether the code is on its list is a validation rule.
macro_rules! three_letter_code {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $example:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name([u8; 3]);

        impl $name {
            pub fn as_str(&self) -> &str {
                // The constructor admits only ASCII upper-case letters.
                std::str::from_utf8(&self.0).unwrap_or("???")
            }
        }

        impl FromStr for $name {
            type Err = InvalidCode;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text.as_bytes() {
                    [a, b, c] if [a, b, c].iter().all(|byte| byte.is_ascii_uppercase()) => {
                        Ok(Self([*a, *b, *c]))
                    }
                    _ => Err(InvalidCode {
                        kind: $kind,
                        example: $example,
                        text: text.to_owned(),
                    }),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidCode;

            fn try_from(text: String) -> Result<Self, Self::Error> {
                text.parse()
            }
        }

        impl From<$name> for String {
            fn from(code: $name) -> Self {
                code.as_str().to_owned()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.as_str())
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "pattern": "^[A-Z]{3}$",
                    "description": concat!("CITES ", $kind, ", such as ", $example),
                })
            }
        }
    };
}

three_letter_code!(
    /// Term code describing the specimens (Box 9), such as `LIV` or `LPS`.
    TermCode,
    "term code",
    "LIV"
);

three_letter_code!(
    /// Unit code of a quantity (Box 11), such as `KIL` or `PCS`.
    UnitCode,
    "unit code",
    "KIL"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letter_codes_round_trip_through_text() {
        for code in SourceCode::ALL {
            assert_eq!(SourceCode::parse(code.as_str()), Some(*code));
        }
        assert_eq!(Appendix::parse("II"), Some(Appendix::II));
        assert_eq!(Appendix::parse("IV"), None);
        assert_eq!(PurposeCode::parse("t"), None);
    }

    #[test]
    fn three_letter_codes_check_shape() {
        assert_eq!(
            "LPS".parse::<TermCode>().map(|t| t.to_string()).as_deref(),
            Ok("LPS")
        );
        for bad in ["", "LP", "LPSX", "lps", "L1S", "ÉÉÉ"] {
            assert!(bad.parse::<TermCode>().is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn codes_serialise_as_text() {
        let json =
            serde_json::to_string(&(Appendix::III, SourceCode::W, "KIL".parse::<UnitCode>().ok()))
                .expect("serialises");
        assert_eq!(json, r#"["III","W","KIL"]"#);
    }
}
