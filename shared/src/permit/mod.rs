//! The CITES permit and certificate model, its code lists, its validation, and its JSON
//! and CITES ePermit XML forms.
//!
//! [`check_document`] is the hub's entry point: it reads a body as received, returns the
//! summary the hub routes and indexes on, and lists every problem at once rather than
//! stopping at the first. [`read_document`] gives the full [`Permit`], [`validate`] checks
//! one, and [`write_xml_v2`] writes one as toolkit v2 XML.

mod check;
pub mod code_lists;
pub mod codes;
mod json;
pub mod model;
mod schema;
mod validate;
#[cfg(test)]
mod validate_tests;
pub mod xml;

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{PartyCode, Problem};

pub use check::{DocumentFormat, ReadDocument, check_document, check_document_with, read_document};
pub use codes::{Appendix, PurposeCode, SourceCode, TermCode, UnitCode};
pub use json::read_json;
pub use model::{
    DocumentReference, Endorsement, LineItem, Measure, Permit, QuotaUse, Signature, Trader,
};
pub use schema::permit_json_schema;
pub use validate::{
    PartyProfile, Rules, Validation, default_utc_offset, max_validity_months, validate,
};
pub use xml::{XmlVersion, read_xml, write_xml_v2};

/// The document types of the CITES standard form (Box 1) and the certificates issued on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocumentType {
    Export,
    ReExport,
    Import,
    CertificateOfOrigin,
    IntroductionFromTheSea,
    PreConvention,
    CaptiveBreeding,
    TravellingExhibition,
    Ownership,
    Other,
}

impl DocumentType {
    pub const ALL: [DocumentType; 10] = [
        Self::Export,
        Self::ReExport,
        Self::Import,
        Self::CertificateOfOrigin,
        Self::IntroductionFromTheSea,
        Self::PreConvention,
        Self::CaptiveBreeding,
        Self::TravellingExhibition,
        Self::Ownership,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Export => "export",
            Self::ReExport => "re_export",
            Self::Import => "import",
            Self::CertificateOfOrigin => "certificate_of_origin",
            Self::IntroductionFromTheSea => "introduction_from_the_sea",
            Self::PreConvention => "pre_convention",
            Self::CaptiveBreeding => "captive_breeding",
            Self::TravellingExhibition => "travelling_exhibition",
            Self::Ownership => "ownership",
            Self::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// What the hub stores and indexes about a permit, read from a checked document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermitSummary {
    pub issuing_country: PartyCode,
    pub permit_number: String,
    pub document_type: DocumentType,
    pub issue_date: Option<NaiveDate>,
    /// Last day of validity (Box 2), in the issuing Party's calendar.
    pub valid_until: NaiveDate,
    pub importer_country: PartyCode,
    pub exporter_country: PartyCode,
}

/// A document that passed every error check; warnings travel with the receipt.
#[derive(Debug, Clone)]
pub struct CheckedDocument {
    pub summary: PermitSummary,
    pub warnings: Vec<Problem>,
    /// JSON, or the ePermit XML toolkit version the body follows.
    pub format: DocumentFormat,
}
