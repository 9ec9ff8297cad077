//! The permit document in its JSON form, and the checks the hub and spokes run on it.
//!
//! [`check_document`] is the one entry point: it reads a body as received, returns the
//! summary the hub routes and indexes on, and lists every problem at once rather than
//! stopping at the first.

mod check;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{PartyCode, Problem};

pub use check::check_document;

/// The document types of the CITES standard form (Box 1) and the certificates issued on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
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
}
