//! CITES ePermit XML: reading toolkit v1 (`CBFShip`) and v2 (`CITESEPermit`) messages, bare
//! or in a SOAP envelope, and writing toolkit v2.

mod dom;
mod paths;
mod read;
mod write;

use super::DocumentType;
use super::model::Permit;
use crate::Problem;

pub use dom::{MAX_DEPTH, MAX_ELEMENTS};
pub use paths::xml_path;
pub use read::parse_date;
pub use write::write_xml_v2;

/// Namespace of the toolkit v2 root and its direct children.
pub const V2_NAMESPACE: &str = "urn:un:unece:uncefact:data:standard:CITESEPermit:2";
/// Namespace of the toolkit v1 root and its direct children.
pub const V1_NAMESPACE: &str = "urn:un:unece:uncefact:data:draft:CBFShip:1";
/// Namespace of the UN/CEFACT reusable aggregate business information entities that both
/// toolkit versions use below the root's children.
pub const RAM_NAMESPACE: &str =
    "urn:un:unece:uncefact:data:draft:ReusableAggregateBusinessInformationEntity:1";
const RAM_NAMESPACE_PREFIX: &str =
    "urn:un:unece:uncefact:data:draft:ReusableAggregateBusinessInformationEntity:";
const SOAP_11_NAMESPACE: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const SOAP_12_NAMESPACE: &str = "http://www.w3.org/2003/05/soap-envelope";

/// Version of the CITES electronic permitting toolkit a message follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XmlVersion {
    V1,
    V2,
}

/// A permit read from XML, with warnings about content the model leaves out.
#[derive(Debug, Clone)]
pub struct XmlRead {
    pub permit: Permit,
    pub version: XmlVersion,
    pub warnings: Vec<Problem>,
}

/// Reads a CITES ePermit XML body, v1 or v2, bare or in a SOAP envelope, into the model.
///
/// The error lists every problem found while mapping, or the one problem that made the XML
/// unreadable (malformed, a DTD, an unknown namespace, too deep or too many elements). The
/// caller limits the body size.
pub fn read_xml(body: &[u8]) -> Result<XmlRead, Vec<Problem>> {
    let root = dom::parse(body).map_err(|problem| vec![problem])?;
    let (permit_element, version) = read::locate(&root).map_err(|problem| vec![problem])?;
    let mut mapper = read::Mapper::new(version);
    let permit = mapper.permit(permit_element);
    match permit {
        Some(permit) if mapper.problems.is_empty() => Ok(XmlRead {
            permit,
            version,
            warnings: mapper.warnings,
        }),
        _ => Err(mapper.problems),
    }
}

/// Names written in the header `Name` for certificate types, which share the type code `O`.
const CERTIFICATE_LABELS: &[(DocumentType, &str)] = &[
    (DocumentType::CertificateOfOrigin, "Certificate of origin"),
    (
        DocumentType::IntroductionFromTheSea,
        "Certificate of introduction from the sea",
    ),
    (DocumentType::PreConvention, "Pre-Convention certificate"),
    (
        DocumentType::CaptiveBreeding,
        "Captive-breeding or artificial-propagation certificate",
    ),
    (
        DocumentType::TravellingExhibition,
        "Travelling-exhibition certificate",
    ),
    (DocumentType::Ownership, "Certificate of ownership"),
];

fn certificate_label(document_type: DocumentType) -> Option<&'static str> {
    CERTIFICATE_LABELS
        .iter()
        .find(|(kind, _)| *kind == document_type)
        .map(|(_, label)| *label)
}

/// Recognises a certificate type by its label or its JSON name, in any letter case.
fn certificate_type(name: &str) -> Option<DocumentType> {
    let name = name.trim();
    CERTIFICATE_LABELS
        .iter()
        .find(|(kind, label)| label.eq_ignore_ascii_case(name) || kind.as_str() == name)
        .map(|(kind, _)| *kind)
}
