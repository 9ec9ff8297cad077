//! Stable error codes and the problem record that carries one of them.
//!
//! Spokes, customs systems and the hub's own receipts branch on [`ErrorCode`], never on the
//! message text, so a code, once published, keeps its spelling.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One stable, machine-readable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // Envelope and transport.
    MessageIdMissing,
    MessageIdInvalid,
    MessageTypeMissing,
    MessageTypeUnknown,
    MessageTypeUnsupported,
    ContentTypeUnsupported,
    SenderUnauthenticated,
    SenderUnknown,
    SenderMismatch,
    AddresseeMissing,
    AddresseeUnknown,
    HeaderMismatch,
    BodyTooLarge,
    CorrelationIdMissing,
    CorrelatedMessageUnknown,
    NotAddressee,
    ProcessingFailed,
    DeliveryFailed,
    // Document.
    DocumentMalformed,
    FieldMissing,
    FieldInvalid,
    CodeUnknown,
    QuantityNotPositive,
    DateInvalid,
    ValidityBeforeIssue,
    PermitExpired,
    PermitAlreadyExists,
    PermitUnknown,
    /// A field the model does not know; a warning, the field is ignored.
    FieldUnknown,
    /// A unit that the CITES term/unit pairs do not allow for the term.
    TermUnitNotAllowed,
    /// A validity period longer than the document type allows.
    ValidityExceedsMaximum,
    /// A re-export block that names neither the origin permit nor the last re-export certificate.
    ReExportReferenceMissing,
    /// An issuing country that is not the exporter's (export, re-export) or the importer's (import).
    IssuingCountryMismatch,
    /// An Appendix that differs from the taxon's current listing; a warning, since listings change.
    AppendixMismatch,
    /// A scientific name that is not a listed CITES taxon; a warning.
    TaxonUnknown,
    /// No applicant signature where the issuing Party's form requires one.
    ApplicantSignatureMissing,
    /// An XML document whose root or namespace is not a known CITES ePermit version.
    DocumentNamespaceUnknown,
    /// An XML document with a DTD or an entity reference other than the predefined ones.
    DocumentDtdForbidden,
    /// An XML document over the nesting-depth or element-count limit.
    DocumentTooComplex,
    // Signatures and certificates.
    /// A message that must be signed arrived without a signature.
    SignatureMissing,
    /// A signature that is not a well-formed detached JWS of the EPIX profile.
    SignatureMalformed,
    /// A signature that does not match the body bytes and the signer's certificate.
    SignatureInvalid,
    /// A JWS algorithm outside ES256, ES384, RS256 and PS256, or one that does not fit the key.
    SignatureAlgorithmRejected,
    /// A JWS header the profile does not support, such as an unknown critical parameter.
    SignatureHeaderUnsupported,
    /// A certificate whose SHA-256 thumbprint differs from the JWS `x5t#S256`.
    SignatureCertificateMismatch,
    /// A key below the minimum strength: EC under P-256 or RSA under 2048 bits.
    KeyTooWeak,
    /// A key type or elliptic curve that the signature profile does not support.
    KeyUnsupported,
    /// A private key that cannot be read or does not belong to its certificate.
    KeyInvalid,
    /// A certificate that cannot be parsed as X.509.
    CertificateInvalid,
    /// A certificate whose validity ended before the time in question.
    CertificateExpired,
    /// A certificate whose validity starts after the time in question.
    CertificateNotYetValid,
    /// A certificate whose key usage extension does not allow digitalSignature.
    CertificateKeyUsageInvalid,
    SignatoryUnknown,
    SignatoryOfOtherParty,
    SignatoryNotEmpowered,
    SignatoryRevoked,
    SigningTimeInFuture,
    SigningTimeTooEarly,
    CertificateAlreadyRegistered,
    // HTTP API.
    NotFound,
    /// An HTTP method the requested path does not take.
    MethodNotAllowed,
    BadRequest,
    Unauthorized,
    Forbidden,
    InvalidCredentials,
    TooManyRequests,
    Conflict,
    ServiceUnavailable,
    InternalError,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: &'static [ErrorCode] = &[
        Self::MessageIdMissing,
        Self::MessageIdInvalid,
        Self::MessageTypeMissing,
        Self::MessageTypeUnknown,
        Self::MessageTypeUnsupported,
        Self::ContentTypeUnsupported,
        Self::SenderUnauthenticated,
        Self::SenderUnknown,
        Self::SenderMismatch,
        Self::AddresseeMissing,
        Self::AddresseeUnknown,
        Self::HeaderMismatch,
        Self::BodyTooLarge,
        Self::CorrelationIdMissing,
        Self::CorrelatedMessageUnknown,
        Self::NotAddressee,
        Self::ProcessingFailed,
        Self::DeliveryFailed,
        Self::DocumentMalformed,
        Self::FieldMissing,
        Self::FieldInvalid,
        Self::CodeUnknown,
        Self::QuantityNotPositive,
        Self::DateInvalid,
        Self::ValidityBeforeIssue,
        Self::PermitExpired,
        Self::PermitAlreadyExists,
        Self::PermitUnknown,
        Self::FieldUnknown,
        Self::TermUnitNotAllowed,
        Self::ValidityExceedsMaximum,
        Self::ReExportReferenceMissing,
        Self::IssuingCountryMismatch,
        Self::AppendixMismatch,
        Self::TaxonUnknown,
        Self::ApplicantSignatureMissing,
        Self::DocumentNamespaceUnknown,
        Self::DocumentDtdForbidden,
        Self::DocumentTooComplex,
        Self::SignatureMissing,
        Self::SignatureMalformed,
        Self::SignatureInvalid,
        Self::SignatureAlgorithmRejected,
        Self::SignatureHeaderUnsupported,
        Self::SignatureCertificateMismatch,
        Self::KeyTooWeak,
        Self::KeyUnsupported,
        Self::KeyInvalid,
        Self::CertificateInvalid,
        Self::CertificateExpired,
        Self::CertificateNotYetValid,
        Self::CertificateKeyUsageInvalid,
        Self::SignatoryUnknown,
        Self::SignatoryOfOtherParty,
        Self::SignatoryNotEmpowered,
        Self::SignatoryRevoked,
        Self::SigningTimeInFuture,
        Self::SigningTimeTooEarly,
        Self::CertificateAlreadyRegistered,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::BadRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::InvalidCredentials,
        Self::TooManyRequests,
        Self::Conflict,
        Self::ServiceUnavailable,
        Self::InternalError,
    ];

    /// The code as it appears in JSON, such as `field_missing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MessageIdMissing => "message_id_missing",
            Self::MessageIdInvalid => "message_id_invalid",
            Self::MessageTypeMissing => "message_type_missing",
            Self::MessageTypeUnknown => "message_type_unknown",
            Self::MessageTypeUnsupported => "message_type_unsupported",
            Self::ContentTypeUnsupported => "content_type_unsupported",
            Self::SenderUnauthenticated => "sender_unauthenticated",
            Self::SenderUnknown => "sender_unknown",
            Self::SenderMismatch => "sender_mismatch",
            Self::AddresseeMissing => "addressee_missing",
            Self::AddresseeUnknown => "addressee_unknown",
            Self::HeaderMismatch => "header_mismatch",
            Self::BodyTooLarge => "body_too_large",
            Self::CorrelationIdMissing => "correlation_id_missing",
            Self::CorrelatedMessageUnknown => "correlated_message_unknown",
            Self::NotAddressee => "not_addressee",
            Self::ProcessingFailed => "processing_failed",
            Self::DeliveryFailed => "delivery_failed",
            Self::DocumentMalformed => "document_malformed",
            Self::FieldMissing => "field_missing",
            Self::FieldInvalid => "field_invalid",
            Self::CodeUnknown => "code_unknown",
            Self::QuantityNotPositive => "quantity_not_positive",
            Self::DateInvalid => "date_invalid",
            Self::ValidityBeforeIssue => "validity_before_issue",
            Self::PermitExpired => "permit_expired",
            Self::PermitAlreadyExists => "permit_already_exists",
            Self::PermitUnknown => "permit_unknown",
            Self::FieldUnknown => "field_unknown",
            Self::TermUnitNotAllowed => "term_unit_not_allowed",
            Self::ValidityExceedsMaximum => "validity_exceeds_maximum",
            Self::ReExportReferenceMissing => "re_export_reference_missing",
            Self::IssuingCountryMismatch => "issuing_country_mismatch",
            Self::AppendixMismatch => "appendix_mismatch",
            Self::TaxonUnknown => "taxon_unknown",
            Self::ApplicantSignatureMissing => "applicant_signature_missing",
            Self::DocumentNamespaceUnknown => "document_namespace_unknown",
            Self::DocumentDtdForbidden => "document_dtd_forbidden",
            Self::DocumentTooComplex => "document_too_complex",
            Self::SignatureMissing => "signature_missing",
            Self::SignatureMalformed => "signature_malformed",
            Self::SignatureInvalid => "signature_invalid",
            Self::SignatureAlgorithmRejected => "signature_algorithm_rejected",
            Self::SignatureHeaderUnsupported => "signature_header_unsupported",
            Self::SignatureCertificateMismatch => "signature_certificate_mismatch",
            Self::KeyTooWeak => "key_too_weak",
            Self::KeyUnsupported => "key_unsupported",
            Self::KeyInvalid => "key_invalid",
            Self::CertificateInvalid => "certificate_invalid",
            Self::CertificateExpired => "certificate_expired",
            Self::CertificateNotYetValid => "certificate_not_yet_valid",
            Self::CertificateKeyUsageInvalid => "certificate_key_usage_invalid",
            Self::SignatoryUnknown => "signatory_unknown",
            Self::SignatoryOfOtherParty => "signatory_of_other_party",
            Self::SignatoryNotEmpowered => "signatory_not_empowered",
            Self::SignatoryRevoked => "signatory_revoked",
            Self::SigningTimeInFuture => "signing_time_in_future",
            Self::SigningTimeTooEarly => "signing_time_too_early",
            Self::CertificateAlreadyRegistered => "certificate_already_registered",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::InvalidCredentials => "invalid_credentials",
            Self::TooManyRequests => "too_many_requests",
            Self::Conflict => "conflict",
            Self::ServiceUnavailable => "service_unavailable",
            Self::InternalError => "internal_error",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found in a message or document: what is wrong, where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    pub code: ErrorCode,
    /// JSON pointer (RFC 6901) into the document, or the envelope field such as
    /// `amqp:message_id`; absent when the problem concerns the message as a whole.
    /// For a permit sent as CITES ePermit XML, the `xml:/…` path of the element instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// The offending value as received, cut to 200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// What failed and what is expected instead, in one sentence.
    pub message: String,
}

const MAX_VALUE_CHARS: usize = 200;

impl Problem {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            pointer: None,
            value: None,
            message: message.into(),
        }
    }

    pub fn at(mut self, pointer: impl Into<String>) -> Self {
        self.pointer = Some(pointer.into());
        self
    }

    pub fn with_value(mut self, value: impl AsRef<str>) -> Self {
        let value = value.as_ref();
        let cut: String = value.chars().take(MAX_VALUE_CHARS).collect();
        self.value = Some(cut);
        self
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(pointer) = &self.pointer {
            write!(f, " at {pointer}")?;
        }
        if let Some(value) = &self.value {
            write!(f, " (value {value:?})")?;
        }
        write!(f, ": {}", self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_serde_matches_as_str() {
        for code in [
            ErrorCode::MessageIdMissing,
            ErrorCode::AddresseeUnknown,
            ErrorCode::QuantityNotPositive,
            ErrorCode::PermitAlreadyExists,
        ] {
            let json = serde_json::to_string(&code).expect("codes serialise");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn every_error_code_serde_matches_as_str() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(code).expect("codes serialise");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: ErrorCode = serde_json::from_str(&json).expect("codes deserialise");
            assert_eq!(back, *code);
        }
    }

    #[test]
    fn problem_value_is_cut() {
        let long = "x".repeat(1000);
        let problem = Problem::new(ErrorCode::FieldInvalid, "too long").with_value(&long);
        assert_eq!(problem.value.map(|v| v.len()), Some(MAX_VALUE_CHARS));
    }
}
