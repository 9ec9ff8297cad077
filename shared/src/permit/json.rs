//! Reads the JSON form of a permit into the model, listing every problem with its JSON
//! pointer instead of stopping at the first as serde does.

use std::str::FromStr;

use chrono::NaiveDate;
use serde_json::{Map, Value};

use super::DocumentType;
use super::codes::{Appendix, PurposeCode, SourceCode, TermCode, UnitCode};
use super::model::{
    DocumentReference, Endorsement, LineItem, Measure, Permit, QuotaUse, Signature, Trader,
};
use crate::{ErrorCode, PartyCode, Problem};

/// A permit read from JSON, with warnings about fields the model does not know.
#[derive(Debug, Clone)]
pub struct JsonRead {
    pub permit: Permit,
    pub warnings: Vec<Problem>,
}

/// Reads a JSON body into the model; the error lists every problem found.
pub fn read_json(body: &[u8]) -> Result<JsonRead, Vec<Problem>> {
    let document: Value = serde_json::from_slice(body).map_err(|error| {
        vec![Problem::new(
            ErrorCode::DocumentMalformed,
            format!("body is not valid JSON: {error}"),
        )]
    })?;
    let mut reader = Reader::default();
    let permit = reader.permit(&document);
    match permit {
        Some(permit) if reader.problems.is_empty() => Ok(JsonRead {
            permit,
            warnings: reader.warnings,
        }),
        _ => Err(reader.problems),
    }
}

#[derive(Default)]
struct Reader {
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// One JSON object being read, with its pointer.
struct Object<'a> {
    map: &'a Map<String, Value>,
    pointer: String,
}

impl<'a> Object<'a> {
    fn at(&self, key: &str) -> String {
        format!("{}/{key}", self.pointer)
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(value) => Some(value),
        }
    }
}

impl Reader {
    fn invalid(&mut self, code: ErrorCode, pointer: &str, value: &Value, expected: &str) {
        self.problems.push(
            Problem::new(code, format!("invalid value: expected {expected}"))
                .at(pointer)
                .with_value(shown(value)),
        );
    }

    fn missing(&mut self, pointer: &str, expected: &str) {
        self.problems.push(
            Problem::new(
                ErrorCode::FieldMissing,
                format!("required field is missing: expected {expected}"),
            )
            .at(pointer),
        );
    }

    /// Opens an object; `known` lists its fields, and any other field gets a warning.
    fn object<'a>(
        &mut self,
        value: &'a Value,
        pointer: &str,
        expected: &str,
        known: &[&str],
    ) -> Option<Object<'a>> {
        let Value::Object(map) = value else {
            self.invalid(ErrorCode::FieldInvalid, pointer, value, expected);
            return None;
        };
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                self.warnings.push(
                    Problem::new(
                        ErrorCode::FieldUnknown,
                        format!(
                            "unknown field is ignored: expected one of {}",
                            known.join(", ")
                        ),
                    )
                    .at(format!("{pointer}/{}", escape_pointer(key))),
                );
            }
        }
        Some(Object {
            map,
            pointer: pointer.to_owned(),
        })
    }

    fn required<'a>(
        &mut self,
        object: &Object<'a>,
        key: &str,
        expected: &str,
    ) -> Option<&'a Value> {
        let value = object.get(key);
        if value.is_none() {
            self.missing(&object.at(key), expected);
        }
        value
    }

    /// Reads a required, non-blank string.
    fn text(&mut self, object: &Object, key: &str, expected: &str) -> Option<String> {
        let value = self.required(object, key, expected)?;
        self.text_value(value, &object.at(key), expected)
    }

    fn text_value(&mut self, value: &Value, pointer: &str, expected: &str) -> Option<String> {
        match value {
            Value::String(text) if !text.trim().is_empty() => Some(text.clone()),
            other => {
                self.invalid(ErrorCode::FieldInvalid, pointer, other, expected);
                None
            }
        }
    }

    /// Reads an optional string; blank is the same as absent. The outer `None` means the
    /// value was invalid.
    fn optional_text(&mut self, object: &Object, key: &str) -> Option<Option<String>> {
        match object.get(key) {
            None => Some(None),
            Some(Value::String(text)) if text.trim().is_empty() => Some(None),
            Some(Value::String(text)) => Some(Some(text.clone())),
            Some(other) => {
                self.invalid(ErrorCode::FieldInvalid, &object.at(key), other, "a string");
                None
            }
        }
    }

    /// Reads a required value parsed from a string, such as a code or a country.
    fn parsed<T: FromStr>(
        &mut self,
        object: &Object,
        key: &str,
        code: ErrorCode,
        expected: &str,
    ) -> Option<T> {
        let value = self.required(object, key, expected)?;
        self.parse_value(value, &object.at(key), code, expected)
    }

    fn parse_value<T: FromStr>(
        &mut self,
        value: &Value,
        pointer: &str,
        code: ErrorCode,
        expected: &str,
    ) -> Option<T> {
        let parsed = match value {
            Value::String(text) => text.parse::<T>().ok(),
            _ => None,
        };
        if parsed.is_none() {
            let code = if value.is_string() {
                code
            } else {
                ErrorCode::FieldInvalid
            };
            self.invalid(code, pointer, value, expected);
        }
        parsed
    }

    fn optional_parsed<T: FromStr>(
        &mut self,
        object: &Object,
        key: &str,
        code: ErrorCode,
        expected: &str,
    ) -> Option<Option<T>> {
        match object.get(key) {
            None => Some(None),
            Some(Value::String(text)) if text.is_empty() => Some(None),
            Some(value) => self
                .parse_value(value, &object.at(key), code, expected)
                .map(Some),
        }
    }

    fn date(&mut self, object: &Object, key: &str) -> Option<NaiveDate> {
        let value = self.required(object, key, DATE)?;
        self.date_value(value, &object.at(key))
    }

    fn optional_date(&mut self, object: &Object, key: &str) -> Option<Option<NaiveDate>> {
        match object.get(key) {
            None => Some(None),
            Some(value) => self.date_value(value, &object.at(key)).map(Some),
        }
    }

    fn date_value(&mut self, value: &Value, pointer: &str) -> Option<NaiveDate> {
        let parsed = value
            .as_str()
            .and_then(|text| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok());
        if parsed.is_none() {
            self.invalid(ErrorCode::DateInvalid, pointer, value, DATE);
        }
        parsed
    }

    fn number(&mut self, value: &Value, pointer: &str) -> Option<f64> {
        match value.as_f64() {
            Some(number) => Some(number),
            None => {
                self.invalid(ErrorCode::FieldInvalid, pointer, value, "a number");
                None
            }
        }
    }

    /// Reads a quantity that must be greater than zero. Checked while reading, so that a
    /// document with other reading errors still gets this one listed.
    fn positive(&mut self, value: &Value, pointer: &str) -> Option<f64> {
        let number = self.number(value, pointer)?;
        if number > 0.0 && number.is_finite() {
            return Some(number);
        }
        self.invalid(
            ErrorCode::QuantityNotPositive,
            pointer,
            value,
            "a number greater than zero",
        );
        None
    }

    fn unit_value(&mut self, value: Option<&Value>, pointer: &str) -> Option<Option<UnitCode>> {
        match value {
            None => Some(None),
            Some(Value::String(text)) if text.is_empty() => Some(None),
            Some(value) => self
                .parse_value(value, pointer, ErrorCode::CodeUnknown, UNIT)
                .map(Some),
        }
    }

    fn permit(&mut self, document: &Value) -> Option<Permit> {
        let root = self.object(document, "", "a JSON object", PERMIT_FIELDS)?;
        let document_types = DocumentType::ALL.map(DocumentType::as_str).join(", ");
        let document_type_expected = format!("one of {document_types}");
        let document_type = self.document_type(&root, &document_type_expected);
        let other_document_type = self.optional_text(&root, "other_document_type");
        let permit_number = self.text(&root, "permit_number", "the permit number as issued");
        let issuing_country =
            self.parsed::<PartyCode>(&root, "issuing_country", ErrorCode::CodeUnknown, COUNTRY);
        let copy = match root.get("copy") {
            None => Some(false),
            Some(Value::Bool(copy)) => Some(*copy),
            Some(other) => {
                self.invalid(ErrorCode::FieldInvalid, "/copy", other, "true or false");
                None
            }
        };
        let valid_from = self.optional_date(&root, "valid_from");
        let valid_until = self.date(&root, "valid_until");
        let importer = self.required_trader(&root, "importer");
        let exporter = self.required_trader(&root, "exporter");
        let applicant_signature = self.optional_signature(&root, "applicant_signature");
        let special_conditions = self.optional_text(&root, "special_conditions");
        let purpose = self.parsed::<Letter<PurposeCode>>(
            &root,
            "purpose",
            ErrorCode::CodeUnknown,
            "a CITES purpose code such as T or S",
        );
        let purpose_text = self.optional_text(&root, "purpose_text");
        let security_stamp = self.optional_text(&root, "security_stamp");
        let management_authority = match root.get("management_authority") {
            None => Some(None),
            Some(value) => self
                .trader(value, &root.at("management_authority"))
                .map(Some),
        };
        let lines = self.lines(&root);
        let issue_place = self.optional_text(&root, "issue_place");
        let issue_date = self.date(&root, "issue_date");
        let issued_by = self.optional_signature(&root, "issued_by");
        let transport_document = self.optional_text(&root, "transport_document");

        Some(Permit {
            document_type: document_type?,
            other_document_type: other_document_type?,
            permit_number: permit_number?,
            issuing_country: issuing_country?,
            copy: copy?,
            valid_from: valid_from?,
            valid_until: valid_until?,
            importer: importer?,
            exporter: exporter?,
            applicant_signature: applicant_signature?,
            special_conditions: special_conditions?,
            purpose: purpose?.0,
            purpose_text: purpose_text?,
            security_stamp: security_stamp?,
            management_authority: management_authority?,
            lines: lines?,
            issue_place: issue_place?,
            issue_date: issue_date?,
            issued_by: issued_by?,
            transport_document: transport_document?,
        })
    }

    fn document_type(&mut self, root: &Object, expected: &str) -> Option<DocumentType> {
        let value = self.required(root, "document_type", expected)?;
        let parsed = value.as_str().and_then(DocumentType::parse);
        if parsed.is_none() {
            let code = if value.is_string() {
                ErrorCode::CodeUnknown
            } else {
                ErrorCode::FieldInvalid
            };
            self.invalid(code, "/document_type", value, expected);
        }
        parsed
    }

    fn required_trader(&mut self, root: &Object, key: &str) -> Option<Trader> {
        let value = self.required(root, key, TRADER)?;
        self.trader(value, &root.at(key))
    }

    fn trader(&mut self, value: &Value, pointer: &str) -> Option<Trader> {
        let object = self.object(value, pointer, TRADER, TRADER_FIELDS)?;
        let name = self.text(&object, "name", "the name");
        let address = self.optional_text(&object, "address");
        let post_office_box = self.optional_text(&object, "post_office_box");
        let postcode = self.optional_text(&object, "postcode");
        let city = self.optional_text(&object, "city");
        let subdivision = self.optional_text(&object, "subdivision");
        let country = self.parsed::<PartyCode>(&object, "country", ErrorCode::CodeUnknown, COUNTRY);
        Some(Trader {
            name: name?,
            address: address?,
            post_office_box: post_office_box?,
            postcode: postcode?,
            city: city?,
            subdivision: subdivision?,
            country: country?,
        })
    }

    fn optional_signature(&mut self, root: &Object, key: &str) -> Option<Option<Signature>> {
        let Some(value) = root.get(key) else {
            return Some(None);
        };
        let object = self.object(
            value,
            &root.at(key),
            "an object with name and date",
            &["name", "date"],
        )?;
        let name = self.text(&object, "name", "the signatory's name");
        let date = self.optional_date(&object, "date");
        Some(Some(Signature {
            name: name?,
            date: date?,
        }))
    }

    fn lines(&mut self, root: &Object) -> Option<Vec<LineItem>> {
        const EXPECTED: &str = "an array of at least one line item";
        let value = self.required(root, "lines", EXPECTED)?;
        let items = match value {
            Value::Array(items) if !items.is_empty() => items,
            other => {
                self.invalid(ErrorCode::FieldInvalid, "/lines", other, EXPECTED);
                return None;
            }
        };
        let mut lines = Vec::with_capacity(items.len());
        let mut all_read = true;
        for (index, item) in items.iter().enumerate() {
            match self.line(item, &format!("/lines/{index}")) {
                Some(line) => lines.push(line),
                None => all_read = false,
            }
        }
        all_read.then_some(lines)
    }

    fn line(&mut self, value: &Value, pointer: &str) -> Option<LineItem> {
        let object = self.object(value, pointer, "a line item object", LINE_FIELDS)?;
        let block = self.optional_text(&object, "block");
        let scientific_name = self.text(&object, "scientific_name", "the taxon's scientific name");
        let common_name = self.optional_text(&object, "common_name");
        let description = self.optional_text(&object, "description");
        let marks = self.marks(&object);
        let term = self.parsed::<TermCode>(&object, "term", ErrorCode::CodeUnknown, TERM);
        let appendix = self.parsed::<Letter<Appendix>>(
            &object,
            "appendix",
            ErrorCode::CodeUnknown,
            "appendix I, II or III",
        );
        let source = self.parsed::<Letter<SourceCode>>(
            &object,
            "source",
            ErrorCode::CodeUnknown,
            "a CITES source code such as W or C",
        );
        let quantity = self
            .required(&object, "quantity", "a number greater than zero")
            .and_then(|value| self.positive(value, &object.at("quantity")));
        let unit = match object.get("unit") {
            None => {
                self.missing(&object.at("unit"), UNIT);
                None
            }
            value => self.unit_value(value, &object.at("unit")).map(Some),
        };

        let hs_code = self.optional_text(&object, "hs_code");
        let quota = self.quota(&object);
        let origin = self.reference(&object, "origin");
        let last_re_export = self.reference(&object, "last_re_export");
        let operation_number = self.optional_text(&object, "operation_number");
        let acquisition_date = self.optional_date(&object, "acquisition_date");
        let export_endorsement = self.endorsement(&object);

        Some(LineItem {
            block: block?,
            scientific_name: scientific_name?,
            common_name: common_name?,
            description: description?,
            marks: marks?,
            term: term?,
            appendix: appendix?.0,
            source: source?.0,
            quantity: quantity?,
            unit: unit??,
            hs_code: hs_code?,
            quota: quota?,
            origin: origin?,
            last_re_export: last_re_export?,
            operation_number: operation_number?,
            acquisition_date: acquisition_date?,
            export_endorsement: export_endorsement?,
        })
    }

    fn marks(&mut self, object: &Object) -> Option<Vec<String>> {
        const EXPECTED: &str = "an array of strings";
        match object.get("marks") {
            None => Some(Vec::new()),
            Some(Value::Array(items)) => {
                let mut marks = Vec::with_capacity(items.len());
                let mut all_read = true;
                for (index, item) in items.iter().enumerate() {
                    let pointer = format!("{}/{index}", object.at("marks"));
                    match self.text_value(item, &pointer, "a non-blank string") {
                        Some(mark) => marks.push(mark),
                        None => all_read = false,
                    }
                }
                all_read.then_some(marks)
            }
            Some(other) => {
                self.invalid(
                    ErrorCode::FieldInvalid,
                    &object.at("marks"),
                    other,
                    EXPECTED,
                );
                None
            }
        }
    }

    fn measure(&mut self, value: &Value, pointer: &str) -> Option<Measure> {
        let object = self.object(
            value,
            pointer,
            "an object with quantity and unit",
            &["quantity", "unit"],
        )?;
        let quantity = self
            .required(&object, "quantity", "a number")
            .and_then(|value| self.number(value, &object.at("quantity")));
        let unit = self.unit_value(object.get("unit"), &object.at("unit"));
        Some(Measure {
            quantity: quantity?,
            unit: unit?,
        })
    }

    fn optional_measure(&mut self, object: &Object, key: &str) -> Option<Option<Measure>> {
        match object.get(key) {
            None => Some(None),
            Some(value) => self.measure(value, &object.at(key)).map(Some),
        }
    }

    fn quota(&mut self, line: &Object) -> Option<Option<QuotaUse>> {
        let Some(value) = line.get("quota") else {
            return Some(None);
        };
        let object = self.object(
            value,
            &line.at("quota"),
            "an object with used_to_date and annual_quota",
            &["used_to_date", "annual_quota"],
        )?;
        let used_to_date = self.optional_measure(&object, "used_to_date");
        let annual_quota = self.optional_measure(&object, "annual_quota");
        Some(Some(QuotaUse {
            used_to_date: used_to_date?,
            annual_quota: annual_quota?,
        }))
    }

    fn reference(&mut self, line: &Object, key: &str) -> Option<Option<DocumentReference>> {
        let Some(value) = line.get(key) else {
            return Some(None);
        };
        let object = self.object(
            value,
            &line.at(key),
            "an object with country, number and date",
            &["country", "number", "date"],
        )?;
        let country =
            self.optional_parsed::<PartyCode>(&object, "country", ErrorCode::CodeUnknown, COUNTRY);
        let number = self.optional_text(&object, "number");
        let date = self.optional_date(&object, "date");
        Some(Some(DocumentReference {
            country: country?,
            number: number?,
            date: date?,
        }))
    }

    fn endorsement(&mut self, line: &Object) -> Option<Option<Endorsement>> {
        let Some(value) = line.get("export_endorsement") else {
            return Some(None);
        };
        let object = self.object(
            value,
            &line.at("export_endorsement"),
            "an object with exported, port, date and officer",
            &["exported", "port", "date", "officer"],
        )?;
        let exported = self.optional_measure(&object, "exported");
        let port = self.optional_text(&object, "port");
        let date = self.optional_date(&object, "date");
        let officer = self.optional_text(&object, "officer");
        Some(Some(Endorsement {
            exported: exported?,
            port: port?,
            date: date?,
            officer: officer?,
        }))
    }
}

/// Adapts the letter-code enums to `FromStr` for [`Reader::parsed`].
struct Letter<T>(T);

macro_rules! letter_from_str {
    ($($code:ty),+) => {
        $(impl FromStr for Letter<$code> {
            type Err = ();

            fn from_str(text: &str) -> Result<Self, ()> {
                <$code>::parse(text).map(Letter).ok_or(())
            }
        })+
    };
}

letter_from_str!(Appendix, SourceCode, PurposeCode);

/// Escapes a key for a JSON pointer (RFC 6901).
fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

const DATE: &str = "a date as YYYY-MM-DD";
const COUNTRY: &str = "an ISO 3166-1 alpha-2 country code such as CH";
const TERM: &str = "a three-letter CITES term code such as LIV or SKI";
const UNIT: &str = "a CITES unit code such as KIL, or an empty string for a number of specimens";
const TRADER: &str = "an object with name, address and country";

const PERMIT_FIELDS: &[&str] = &[
    "document_type",
    "other_document_type",
    "permit_number",
    "issuing_country",
    "copy",
    "valid_from",
    "valid_until",
    "importer",
    "exporter",
    "applicant_signature",
    "special_conditions",
    "purpose",
    "purpose_text",
    "security_stamp",
    "management_authority",
    "lines",
    "issue_place",
    "issue_date",
    "issued_by",
    "transport_document",
];

const TRADER_FIELDS: &[&str] = &[
    "name",
    "address",
    "post_office_box",
    "postcode",
    "city",
    "subdivision",
    "country",
];

const LINE_FIELDS: &[&str] = &[
    "block",
    "scientific_name",
    "common_name",
    "description",
    "marks",
    "term",
    "appendix",
    "source",
    "quantity",
    "unit",
    "hs_code",
    "quota",
    "origin",
    "last_re_export",
    "operation_number",
    "acquisition_date",
    "export_endorsement",
];
