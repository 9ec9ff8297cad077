//! The permit or certificate on the CITES standard form (Res. Conf. 12.3, Annex 2), box by
//! box, in the shape of its JSON form.
//!
//! Serde writes the JSON form. Reading goes through [`super::json`], because serde stops at
//! the first problem and a sender needs all of them at once.

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::DocumentType;
use super::codes::{Appendix, PurposeCode, SourceCode, TermCode, UnitCode};
use crate::PartyCode;

/// A CITES permit or certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Permit {
    /// Box 1: the document type.
    pub document_type: DocumentType,
    /// Box 1: the name of the document when `document_type` is `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_document_type: Option<String>,
    /// Box 1: the permit or certificate number, unique only per issuing Party.
    #[schemars(length(min = 1, max = 70))]
    pub permit_number: String,
    /// The Party whose Management Authority issued the document.
    pub issuing_country: PartyCode,
    /// Whether this is a copy rather than the original.
    #[serde(default, skip_serializing_if = "is_false")]
    pub copy: bool,
    /// Box 2: first day of validity, when the document states one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<NaiveDate>,
    /// Box 2: last day of validity, in the issuing Party's calendar.
    pub valid_until: NaiveDate,
    /// Boxes 3 and 3a: the importer and the country of import.
    pub importer: Trader,
    /// Box 4: the exporter or re-exporter.
    pub exporter: Trader,
    /// Box 4: the applicant's signature, where the issuing Party's form has a place for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applicant_signature: Option<Signature>,
    /// Box 5: special conditions, such as transport conditions or the number of a replaced
    /// document and the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub special_conditions: Option<String>,
    /// Box 5a: the purpose of the transaction.
    pub purpose: PurposeCode,
    /// Box 5a.1: the purpose in words, at most 35 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 35))]
    pub purpose_text: Option<String>,
    /// Box 5b: the number of the security stamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_stamp: Option<String>,
    /// Box 6: the issuing Management Authority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_authority: Option<Trader>,
    /// Boxes 7 to 12b and the Box 14 endorsement, one entry per block (A, B, C, ...).
    #[schemars(length(min = 1))]
    pub lines: Vec<LineItem>,
    /// Box 13: the place of issue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_place: Option<String>,
    /// Box 13: the date of issue.
    pub issue_date: NaiveDate,
    /// Box 13: the official who signed the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_by: Option<Signature>,
    /// Box 15: the bill of lading or air waybill number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport_document: Option<String>,
}

/// A party with its name, postal address and country: importer, exporter or authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Trader {
    pub name: String,
    /// Street and house number; several lines are separated by `\n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_office_box: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// State, province or other subdivision of the country.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdivision: Option<String>,
    pub country: PartyCode,
}

/// A signature on the form: who signed, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Signature {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
}

/// One block of the form (Boxes 7 to 12b) with its export endorsement (Box 14).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LineItem {
    /// The block letter, such as `A`; when absent, blocks are lettered by position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<String>,
    /// Box 7: genus and species.
    pub scientific_name: String,
    /// Box 8: the common name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
    /// Box 9: description of the specimens, including age and sex if live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Box 9: identifying marks or numbers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<String>,
    /// Box 9: the term code of the specimens.
    pub term: TermCode,
    /// Box 10: the Appendix.
    pub appendix: Appendix,
    /// Box 10: the source code.
    pub source: SourceCode,
    /// Box 11: the quantity, in `unit`.
    pub quantity: f64,
    /// Box 11: the unit code; `""` means a number of specimens.
    #[serde(with = "unit_or_empty")]
    #[schemars(with = "UnitText")]
    pub unit: Option<UnitCode>,
    /// Harmonized System code of the goods, for risk-based controls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hs_code: Option<String>,
    /// Box 11a: quantity exported to date against the annual quota, and the quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaUse>,
    /// Box 12: country of origin, its permit number and date (re-exports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<DocumentReference>,
    /// Box 12a: country of last re-export, its certificate number and date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_re_export: Option<DocumentReference>,
    /// Box 12b: number of the registered captive-breeding or nursery operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_number: Option<String>,
    /// Box 12b: date of acquisition (pre-Convention specimens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquisition_date: Option<NaiveDate>,
    /// Box 14: the export endorsement of this block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_endorsement: Option<Endorsement>,
}

/// A quantity with its unit; an absent unit means a number of specimens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Measure {
    pub quantity: f64,
    /// The unit code; `""` or absent means a number of specimens.
    #[serde(default, with = "unit_or_empty")]
    #[schemars(with = "UnitText")]
    pub unit: Option<UnitCode>,
}

/// Box 11a.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct QuotaUse {
    /// Quantity exported so far this year, this document included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_to_date: Option<Measure>,
    /// The annual export quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annual_quota: Option<Measure>,
}

/// A document that a block refers to: the origin permit (Box 12) or the last re-export
/// certificate (Box 12a).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DocumentReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<PartyCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
}

/// Box 14: what the inspecting officer endorsed at export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Endorsement {
    /// Quantity actually exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported: Option<Measure>,
    /// Port of export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    /// Name of the inspecting officer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer: Option<String>,
}

impl Permit {
    /// Returns the block letter of a line: its own, or A, B, C, ... by position.
    pub fn block_id(&self, index: usize) -> String {
        match self.lines.get(index).and_then(|line| line.block.clone()) {
            Some(block) => block,
            None => block_letter(index),
        }
    }
}

/// Letters blocks by position: A to Z, then AA, AB, ...
pub fn block_letter(index: usize) -> String {
    let mut letters = Vec::new();
    let mut n = index + 1;
    while n > 0 {
        let rem = (n - 1) % 26;
        letters.push(char::from(b'A' + rem as u8));
        n = (n - 1) / 26;
    }
    letters.iter().rev().collect()
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Schema of a unit in the JSON form: a code, or `""` for a number of specimens.
struct UnitText;

impl JsonSchema for UnitText {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "UnitText".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^([A-Z]{3})?$",
            "description": "CITES unit code such as KIL, or an empty string for a number of specimens",
        })
    }
}

/// Writes `None` as `""` and reads `""` (or an absent field) as `None`.
mod unit_or_empty {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::UnitCode;

    pub fn serialize<S: Serializer>(unit: &Option<UnitCode>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(unit.as_ref().map_or("", UnitCode::as_str))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<UnitCode>, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_lettered_by_position() {
        let cases = [(0, "A"), (1, "B"), (25, "Z"), (26, "AA"), (27, "AB")];
        for (index, letter) in cases {
            assert_eq!(block_letter(index), letter, "index {index}");
        }
    }
}
