//! Reading a body as received into the model, and checking it.

use chrono::{DateTime, Utc};

use super::validate::{Rules, validate};
use super::xml::{self, XmlVersion};
use super::{CheckedDocument, Permit, PermitSummary, json};
use crate::envelope::MAX_BODY_BYTES;
use crate::{ErrorCode, Problem};

/// The form a document arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentFormat {
    Json,
    /// CITES ePermit XML, toolkit v1 (`CBFShip`).
    XmlV1,
    /// CITES ePermit XML, toolkit v2 (`CITESEPermit`).
    XmlV2,
}

/// A permit read from a body, before validation.
#[derive(Debug, Clone)]
pub struct ReadDocument {
    pub permit: Permit,
    pub format: DocumentFormat,
    /// Problems that do not stop reading, such as unknown JSON fields.
    pub warnings: Vec<Problem>,
}

/// Reads a body into the model according to its content type: `application/json` for the
/// JSON form, `application/xml` (or `text/xml`) for CITES ePermit XML, toolkit v1 or v2.
///
/// The error lists every problem found while reading; validation rules are not applied.
pub fn read_document(content_type: &str, body: &[u8]) -> Result<ReadDocument, Vec<Problem>> {
    if body.len() > MAX_BODY_BYTES {
        return Err(vec![
            Problem::new(
                ErrorCode::BodyTooLarge,
                format!(
                    "body has {} bytes: expected at most {MAX_BODY_BYTES}",
                    body.len()
                ),
            )
            .with_value(body.len().to_string()),
        ]);
    }
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        "application/json" => json::read_json(body).map(|read| ReadDocument {
            permit: read.permit,
            format: DocumentFormat::Json,
            warnings: read.warnings,
        }),
        "application/xml" | "text/xml" => xml::read_xml(body).map(|read| ReadDocument {
            permit: read.permit,
            format: match read.version {
                XmlVersion::V1 => DocumentFormat::XmlV1,
                XmlVersion::V2 => DocumentFormat::XmlV2,
            },
            warnings: read.warnings,
        }),
        _ => Err(vec![
            Problem::new(
                ErrorCode::ContentTypeUnsupported,
                "content type is not supported: expected application/json or application/xml",
            )
            .at("amqp:content_type")
            .with_value(content_type),
        ]),
    }
}

/// Checks a document body as received with the default [`Rules`] (no Party profiles, no
/// test countries) and returns its summary, or every problem found.
///
/// `as_of` is the time validity is judged at: the hub's receipt time for a submission.
pub fn check_document(
    content_type: &str,
    body: &[u8],
    as_of: DateTime<Utc>,
) -> Result<CheckedDocument, Vec<Problem>> {
    check_document_with(content_type, body, as_of, &Rules::default())
}

/// Checks a document body as received with the given rules; see [`check_document`].
pub fn check_document_with(
    content_type: &str,
    body: &[u8],
    as_of: DateTime<Utc>,
    rules: &Rules,
) -> Result<CheckedDocument, Vec<Problem>> {
    let read = read_document(content_type, body)?;
    let mut validation = validate(&read.permit, as_of, rules);
    let version = match read.format {
        DocumentFormat::Json => None,
        DocumentFormat::XmlV1 => Some(XmlVersion::V1),
        DocumentFormat::XmlV2 => Some(XmlVersion::V2),
    };
    if let Some(version) = version {
        // Point at the element the sender wrote; a pointer without one stays a JSON pointer.
        let problems = validation.errors.iter_mut().chain(&mut validation.warnings);
        for problem in problems {
            let path = problem
                .pointer
                .as_deref()
                .and_then(|p| xml::xml_path(p, version));
            if path.is_some() {
                problem.pointer = path;
            }
        }
    }
    if !validation.is_valid() {
        return Err(validation.errors);
    }
    let permit = read.permit;
    let mut warnings = read.warnings;
    warnings.extend(validation.warnings);
    Ok(CheckedDocument {
        summary: PermitSummary {
            issuing_country: permit.issuing_country,
            permit_number: permit.permit_number.clone(),
            document_type: permit.document_type,
            issue_date: Some(permit.issue_date),
            valid_until: permit.valid_until,
            importer_country: permit.importer.country,
            exporter_country: permit.exporter.country,
        },
        warnings,
        format: read.format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    use crate::permit::DocumentType;

    fn as_of() -> DateTime<Utc> {
        "2026-12-04T12:00:00Z".parse().expect("valid time")
    }

    fn valid() -> Value {
        json!({
            "document_type": "export",
            "permit_number": "26CH000123/A",
            "issuing_country": "CH",
            "issue_date": "2026-12-01",
            "valid_until": "2027-05-31",
            "purpose": "T",
            "importer": {"name": "Zoo Leipzig", "country": "DE"},
            "exporter": {"name": "Reptilien AG", "country": "CH"},
            "lines": [{
                "scientific_name": "Alligator mississippiensis",
                "appendix": "II", "source": "W", "term": "LPS", "quantity": 5, "unit": ""
            }]
        })
    }

    fn problems(document: &Value) -> Vec<Problem> {
        let body = serde_json::to_vec(document).expect("serialises");
        match check_document("application/json", &body, as_of()) {
            Ok(_) => Vec::new(),
            Err(problems) => problems,
        }
    }

    #[test]
    fn valid_document_gives_summary() {
        let body = serde_json::to_vec(&valid()).expect("serialises");
        let checked = check_document("application/json", &body, as_of()).expect("valid");
        assert_eq!(checked.summary.permit_number, "26CH000123/A");
        assert_eq!(checked.summary.issuing_country.as_str(), "CH");
        assert_eq!(checked.summary.importer_country.as_str(), "DE");
        assert_eq!(checked.summary.exporter_country.as_str(), "CH");
        assert_eq!(checked.summary.document_type, DocumentType::Export);
        assert_eq!(checked.summary.issue_date, "2026-12-01".parse().ok());
        assert_eq!(checked.format, DocumentFormat::Json);
        assert!(checked.warnings.is_empty(), "{:?}", checked.warnings);
    }

    #[test]
    fn content_type_parameters_are_ignored() {
        let body = serde_json::to_vec(&valid()).expect("serialises");
        let checked = check_document("Application/JSON; charset=utf-8", &body, as_of());
        assert!(checked.is_ok(), "{checked:?}");
    }

    #[test]
    fn each_bad_field_gets_its_problem() {
        let cases: [(&str, Value, ErrorCode); 11] = [
            ("/issuing_country", json!("ch"), ErrorCode::CodeUnknown),
            ("/permit_number", json!(""), ErrorCode::FieldInvalid),
            ("/document_type", json!("permit"), ErrorCode::CodeUnknown),
            ("/valid_until", json!("31/05/2027"), ErrorCode::DateInvalid),
            (
                "/valid_until",
                json!("2026-01-01"),
                ErrorCode::ValidityBeforeIssue,
            ),
            ("/lines", json!([]), ErrorCode::FieldInvalid),
            ("/importer", json!(null), ErrorCode::FieldMissing),
            (
                "/exporter",
                json!({"name": "X", "country": 7}),
                ErrorCode::FieldInvalid,
            ),
            ("/issue_date", json!("yesterday"), ErrorCode::DateInvalid),
            ("/purpose", json!("K"), ErrorCode::CodeUnknown),
            ("/purpose", json!(null), ErrorCode::FieldMissing),
        ];
        for (pointer, value, code) in cases {
            let mut document = valid();
            document[&pointer[1..]] = value;
            let found = problems(&document);
            assert!(
                found.iter().any(|p| p.code == code),
                "{pointer}: expected {code}, got {found:?}"
            );
        }
    }

    #[test]
    fn line_problems_are_all_listed() {
        let mut document = valid();
        document["lines"][0] = json!({"appendix": "IV", "source": "Q", "term": "x", "quantity": 0, "unit": "kilograms"});
        let found = problems(&document);
        let pointers: Vec<_> = found.iter().filter_map(|p| p.pointer.as_deref()).collect();
        for pointer in [
            "/lines/0/scientific_name",
            "/lines/0/appendix",
            "/lines/0/source",
            "/lines/0/term",
            "/lines/0/quantity",
            "/lines/0/unit",
        ] {
            assert!(
                pointers.contains(&pointer),
                "no problem at {pointer}: {found:?}"
            );
        }
    }

    #[test]
    fn expired_document_is_rejected() {
        let mut document = valid();
        document["issue_date"] = json!("2026-01-01");
        document["valid_until"] = json!("2026-06-30");
        let found = problems(&document);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].code, ErrorCode::PermitExpired);
    }

    #[test]
    fn unknown_field_is_a_warning() {
        let mut document = valid();
        document["colour"] = json!("green");
        let body = serde_json::to_vec(&document).expect("serialises");
        let checked = check_document("application/json", &body, as_of()).expect("valid");
        assert_eq!(checked.warnings.len(), 1, "{:?}", checked.warnings);
        assert_eq!(checked.warnings[0].code, ErrorCode::FieldUnknown);
        assert_eq!(checked.warnings[0].pointer.as_deref(), Some("/colour"));
    }

    #[test]
    fn non_json_body_is_malformed() {
        let found = check_document("application/json", b"<xml/>", as_of()).expect_err("not JSON");
        assert_eq!(found[0].code, ErrorCode::DocumentMalformed);
    }

    #[test]
    fn other_content_type_is_unsupported() {
        let found = check_document("text/plain", b"{}", as_of()).expect_err("wrong type");
        assert_eq!(found[0].code, ErrorCode::ContentTypeUnsupported);
    }

    #[test]
    fn oversized_body_is_rejected() {
        let body = vec![b' '; MAX_BODY_BYTES + 1];
        let found = check_document("application/json", &body, as_of()).expect_err("too large");
        assert_eq!(found[0].code, ErrorCode::BodyTooLarge);
    }
}
