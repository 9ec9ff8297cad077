//! Shape checks of a JSON permit document.
//!
//! The checks walk a `serde_json::Value` rather than deserialising into structs, because
//! serde stops at the first error and a sender needs every problem in one receipt.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use super::{CheckedDocument, DocumentType, PermitSummary};
use crate::{ErrorCode, PartyCode, Problem};

const APPENDICES: [&str; 3] = ["I", "II", "III"];
/// Source codes of Box 10 (Res. Conf. 12.3): wild, ranched, registered captive-bred,
/// artificially propagated, captive-bred, born in captivity, confiscated, pre-Convention,
/// unknown, introduction from the sea, and assisted production.
const SOURCES: [&str; 11] = ["W", "R", "D", "A", "C", "F", "I", "O", "U", "X", "Y"];
const MAX_PERMIT_NUMBER_CHARS: usize = 70;

/// Checks a document body as received and returns its summary, or every problem found.
///
/// `as_of` is the time validity is judged at: the hub's receipt time for a submission.
pub fn check_document(
    content_type: &str,
    body: &[u8],
    as_of: DateTime<Utc>,
) -> Result<CheckedDocument, Vec<Problem>> {
    if content_type != "application/json" {
        return Err(vec![
            Problem::new(
                ErrorCode::ContentTypeUnsupported,
                "content type is not supported: expected application/json",
            )
            .at("amqp:content_type")
            .with_value(content_type),
        ]);
    }
    let document: Value = serde_json::from_slice(body).map_err(|error| {
        vec![Problem::new(
            ErrorCode::DocumentMalformed,
            format!("body is not valid JSON: {error}"),
        )]
    })?;
    let Some(root) = document.as_object() else {
        return Err(vec![
            Problem::new(ErrorCode::DocumentMalformed, "body must be a JSON object").at(""),
        ]);
    };

    let mut checker = Checker::default();
    let issuing_country = checker.party(root.get("issuing_country"), "/issuing_country");
    let permit_number = checker.permit_number(root.get("permit_number"));
    let document_type = checker.document_type(root.get("document_type"));
    let issue_date = match root.get("issue_date") {
        None | Some(Value::Null) => None,
        value => checker.date(value, "/issue_date"),
    };
    let valid_until = checker.date(root.get("valid_until"), "/valid_until");
    let importer_country = checker.party_of(root.get("importer"), "/importer");
    let exporter_country = checker.party_of(root.get("exporter"), "/exporter");
    checker.lines(root.get("lines"));

    if let (Some(issued), Some(until)) = (issue_date, valid_until) {
        if until < issued {
            checker.push(
                Problem::new(
                    ErrorCode::ValidityBeforeIssue,
                    format!("valid_until is before issue_date {issued}: expected a later date"),
                )
                .at("/valid_until")
                .with_value(until.to_string()),
            );
        }
    }
    if let Some(until) = valid_until {
        // NOTE: judged on the UTC calendar day; the issuing Party's time zone is not yet known.
        if until < as_of.date_naive() {
            checker.push(
                Problem::new(
                    ErrorCode::PermitExpired,
                    format!(
                        "document expired before {}: expected valid_until on or after that day",
                        as_of.date_naive()
                    ),
                )
                .at("/valid_until")
                .with_value(until.to_string()),
            );
        }
    }

    match (
        issuing_country,
        permit_number,
        document_type,
        valid_until,
        importer_country,
        exporter_country,
    ) {
        (Some(issuing), Some(number), Some(kind), Some(until), Some(importer), Some(exporter))
            if checker.problems.is_empty() =>
        {
            Ok(CheckedDocument {
                summary: PermitSummary {
                    issuing_country: issuing,
                    permit_number: number,
                    document_type: kind,
                    issue_date,
                    valid_until: until,
                    importer_country: importer,
                    exporter_country: exporter,
                },
                warnings: Vec::new(),
            })
        }
        _ => Err(checker.problems),
    }
}

#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn push(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    fn missing(&mut self, pointer: &str, expected: &str) {
        self.push(
            Problem::new(
                ErrorCode::FieldMissing,
                format!("required field is missing: expected {expected}"),
            )
            .at(pointer),
        );
    }

    fn invalid(&mut self, code: ErrorCode, pointer: &str, value: &Value, expected: &str) {
        let shown = match value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        self.push(
            Problem::new(code, format!("invalid value: expected {expected}"))
                .at(pointer)
                .with_value(shown),
        );
    }

    fn string<'a>(
        &mut self,
        value: Option<&'a Value>,
        pointer: &str,
        expected: &str,
    ) -> Option<&'a str> {
        match value {
            None | Some(Value::Null) => {
                self.missing(pointer, expected);
                None
            }
            Some(Value::String(text)) if text.trim().is_empty() => {
                self.invalid(
                    ErrorCode::FieldInvalid,
                    pointer,
                    &Value::String(text.clone()),
                    expected,
                );
                None
            }
            Some(Value::String(text)) => Some(text),
            Some(other) => {
                self.invalid(ErrorCode::FieldInvalid, pointer, other, expected);
                None
            }
        }
    }

    fn party(&mut self, value: Option<&Value>, pointer: &str) -> Option<PartyCode> {
        const EXPECTED: &str = "an ISO 3166-1 alpha-2 country code such as CH";
        let text = self.string(value, pointer, EXPECTED)?;
        match text.parse() {
            Ok(code) => Some(code),
            Err(_) => {
                self.invalid(
                    ErrorCode::CodeUnknown,
                    pointer,
                    &Value::String(text.to_owned()),
                    EXPECTED,
                );
                None
            }
        }
    }

    /// Reads the `country` of a trader object such as `/importer`.
    fn party_of(&mut self, value: Option<&Value>, pointer: &str) -> Option<PartyCode> {
        match value {
            None | Some(Value::Null) => {
                self.missing(pointer, "an object with name, address and country");
                None
            }
            Some(Value::Object(trader)) => {
                self.string(
                    trader.get("name"),
                    &format!("{pointer}/name"),
                    "the trader's name",
                );
                self.party(trader.get("country"), &format!("{pointer}/country"))
            }
            Some(other) => {
                self.invalid(
                    ErrorCode::FieldInvalid,
                    pointer,
                    other,
                    "an object with name, address and country",
                );
                None
            }
        }
    }

    fn permit_number(&mut self, value: Option<&Value>) -> Option<String> {
        const EXPECTED: &str = "the permit number as issued, 1 to 70 characters";
        let text = self.string(value, "/permit_number", EXPECTED)?;
        if text.chars().count() > MAX_PERMIT_NUMBER_CHARS || text.chars().any(char::is_control) {
            self.invalid(
                ErrorCode::FieldInvalid,
                "/permit_number",
                &Value::String(text.to_owned()),
                EXPECTED,
            );
            return None;
        }
        Some(text.to_owned())
    }

    fn document_type(&mut self, value: Option<&Value>) -> Option<DocumentType> {
        let expected = format!(
            "one of {}",
            DocumentType::ALL.map(DocumentType::as_str).join(", ")
        );
        let text = self.string(value, "/document_type", &expected)?;
        let parsed = DocumentType::parse(text);
        if parsed.is_none() {
            self.invalid(
                ErrorCode::CodeUnknown,
                "/document_type",
                &Value::String(text.to_owned()),
                &expected,
            );
        }
        parsed
    }

    fn date(&mut self, value: Option<&Value>, pointer: &str) -> Option<NaiveDate> {
        const EXPECTED: &str = "a date as YYYY-MM-DD";
        let text = self.string(value, pointer, EXPECTED)?;
        match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(date) => Some(date),
            Err(_) => {
                self.invalid(
                    ErrorCode::DateInvalid,
                    pointer,
                    &Value::String(text.to_owned()),
                    EXPECTED,
                );
                None
            }
        }
    }

    fn lines(&mut self, value: Option<&Value>) {
        let lines = match value {
            None | Some(Value::Null) => {
                self.missing("/lines", "at least one line item");
                return;
            }
            Some(Value::Array(lines)) if lines.is_empty() => {
                self.invalid(
                    ErrorCode::FieldInvalid,
                    "/lines",
                    &Value::Array(Vec::new()),
                    "at least one line item",
                );
                return;
            }
            Some(Value::Array(lines)) => lines,
            Some(other) => {
                self.invalid(
                    ErrorCode::FieldInvalid,
                    "/lines",
                    other,
                    "an array of line items",
                );
                return;
            }
        };
        for (index, line) in lines.iter().enumerate() {
            let base = format!("/lines/{index}");
            let Some(line) = line.as_object() else {
                self.invalid(ErrorCode::FieldInvalid, &base, line, "a line item object");
                continue;
            };
            self.string(
                line.get("scientific_name"),
                &format!("{base}/scientific_name"),
                "the taxon's scientific name",
            );
            self.code(
                line.get("appendix"),
                &format!("{base}/appendix"),
                &APPENDICES,
                "appendix I, II or III",
            );
            self.code(
                line.get("source"),
                &format!("{base}/source"),
                &SOURCES,
                "a CITES source code such as W or C",
            );
            self.term(line.get("term"), &format!("{base}/term"));
            self.quantity(line.get("quantity"), &format!("{base}/quantity"));
            self.unit(line.get("unit"), &format!("{base}/unit"));
        }
    }

    fn code(&mut self, value: Option<&Value>, pointer: &str, allowed: &[&str], expected: &str) {
        if let Some(text) = self.string(value, pointer, expected) {
            if !allowed.contains(&text) {
                self.invalid(
                    ErrorCode::CodeUnknown,
                    pointer,
                    &Value::String(text.to_owned()),
                    expected,
                );
            }
        }
    }

    fn term(&mut self, value: Option<&Value>, pointer: &str) {
        const EXPECTED: &str = "a three-letter CITES term code such as LIV or SKI";
        if let Some(text) = self.string(value, pointer, EXPECTED) {
            if text.len() != 3 || !text.bytes().all(|b| b.is_ascii_uppercase()) {
                self.invalid(
                    ErrorCode::CodeUnknown,
                    pointer,
                    &Value::String(text.to_owned()),
                    EXPECTED,
                );
            }
        }
    }

    fn unit(&mut self, value: Option<&Value>, pointer: &str) {
        const EXPECTED: &str =
            "a CITES unit code such as KIL, or an empty string for a number of specimens";
        match value {
            None | Some(Value::Null) => self.missing(pointer, EXPECTED),
            Some(Value::String(text)) if text.is_empty() => {}
            Some(Value::String(text))
                if (2..=3).contains(&text.len())
                    && text.bytes().all(|b| b.is_ascii_uppercase()) => {}
            Some(other) => self.invalid(ErrorCode::CodeUnknown, pointer, other, EXPECTED),
        }
    }

    fn quantity(&mut self, value: Option<&Value>, pointer: &str) {
        const EXPECTED: &str = "a number greater than zero";
        match value {
            None | Some(Value::Null) => self.missing(pointer, EXPECTED),
            Some(Value::Number(number)) => match number.as_f64() {
                Some(q) if q > 0.0 && q.is_finite() => {}
                _ => self.invalid(
                    ErrorCode::QuantityNotPositive,
                    pointer,
                    &Value::Number(number.clone()),
                    EXPECTED,
                ),
            },
            Some(other) => self.invalid(ErrorCode::FieldInvalid, pointer, other, EXPECTED),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        assert_eq!(checked.summary.document_type, DocumentType::Export);
    }

    #[test]
    fn each_bad_field_gets_its_problem() {
        let cases: [(&str, Value, ErrorCode); 9] = [
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
    fn non_json_body_is_malformed() {
        let found = check_document("application/json", b"<xml/>", as_of()).expect_err("not JSON");
        assert_eq!(found[0].code, ErrorCode::DocumentMalformed);
    }

    #[test]
    fn other_content_type_is_unsupported() {
        let found = check_document("text/plain", b"{}", as_of()).expect_err("wrong type");
        assert_eq!(found[0].code, ErrorCode::ContentTypeUnsupported);
    }
}
