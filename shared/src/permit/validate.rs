//! The rules that decide whether a permit is well formed, judged as of a given time.
//!
//! Every rule runs on every permit, so a sender gets all problems in one receipt. Errors
//! reject the document; warnings travel with the receipt.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, FixedOffset, Months, NaiveDate, Offset, TimeZone, Utc};

use super::DocumentType;
use super::code_lists::{CodeLists, CountryKind, code_lists};
use super::codes::UnitCode;
use super::model::{LineItem, Measure, Permit};
use crate::{ErrorCode, PartyCode, Problem};

/// Maximum length of a permit number: the UN/EDIFACT identification field (an..70).
pub const MAX_PERMIT_NUMBER_CHARS: usize = 70;
/// Maximum length of the purpose in words (Box 5a.1).
pub const MAX_PURPOSE_TEXT_CHARS: usize = 35;

/// Returns the offset used for a Party whose time zone is not configured: UTC−12:00, the
/// last zone in which a day ends, so that no document is rejected while its last day lasts
/// anywhere.
pub fn default_utc_offset() -> FixedOffset {
    FixedOffset::west_opt(12 * 3600).unwrap_or_else(|| Utc.fix())
}

/// Settings of a Party's own permit form and calendar.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartyProfile {
    /// The Party's form has a place for the applicant's signature (Box 4), so a document
    /// without it is invalid.
    pub requires_applicant_signature: bool,
    /// The offset in which the Party's documents end their last day of validity; `None`
    /// uses [`default_utc_offset`].
    pub utc_offset: Option<FixedOffset>,
}

/// Settings the rules depend on: per-Party profiles and the country codes tests may use.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub parties: HashMap<PartyCode, PartyProfile>,
    /// Codes accepted as countries in test and demo traffic, such as `XB`, kept apart from
    /// the real list so that production rules never admit them.
    pub test_countries: BTreeSet<PartyCode>,
}

impl Rules {
    /// Returns these rules with the given codes accepted as test countries.
    pub fn with_test_countries<I: IntoIterator<Item = PartyCode>>(mut self, codes: I) -> Self {
        self.test_countries.extend(codes);
        self
    }

    /// Returns these rules with a profile for one Party.
    pub fn with_party(mut self, party: PartyCode, profile: PartyProfile) -> Self {
        self.parties.insert(party, profile);
        self
    }

    fn profile(&self, party: PartyCode) -> Option<&PartyProfile> {
        self.parties.get(&party)
    }

    /// Returns the first instant at which a document of this Party valid until `day` is no
    /// longer valid: midnight at the end of that day in the Party's offset.
    pub fn end_of_validity(&self, party: PartyCode, day: NaiveDate) -> DateTime<Utc> {
        let offset = self
            .profile(party)
            .and_then(|profile| profile.utc_offset)
            .unwrap_or_else(default_utc_offset);
        let next_day = day.succ_opt().unwrap_or(day);
        let local_midnight = next_day.and_hms_opt(0, 0, 0).unwrap_or_default();
        match offset.from_local_datetime(&local_midnight).single() {
            Some(end) => end.with_timezone(&Utc),
            None => local_midnight.and_utc(),
        }
    }
}

/// Maximum validity of a document type, in calendar months from the issue date.
///
/// Export permits and re-export certificates: 6 months (Convention Art. VI.2). Import
/// permits, certificates of origin and of introduction from the sea: 12 months. Travelling-
/// exhibition and ownership certificates: 3 years. Pre-Convention and captive-breeding
/// certificates follow the export rule.
pub fn max_validity_months(document_type: DocumentType) -> u32 {
    match document_type {
        DocumentType::Export
        | DocumentType::ReExport
        | DocumentType::PreConvention
        | DocumentType::CaptiveBreeding => 6,
        DocumentType::Import
        | DocumentType::CertificateOfOrigin
        | DocumentType::IntroductionFromTheSea => 12,
        // NOTE: "other" documents get the longest CITES validity, 3 years, as a ceiling.
        DocumentType::TravellingExhibition | DocumentType::Ownership | DocumentType::Other => 36,
    }
}

/// Problems found in a permit: errors reject it, warnings travel with the receipt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validation {
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

impl Validation {
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Checks a permit against every rule as of `as_of`, with pointers into its JSON form.
pub fn validate(permit: &Permit, as_of: DateTime<Utc>, rules: &Rules) -> Validation {
    let mut check = Check {
        lists: code_lists(),
        rules,
        out: Validation::default(),
    };
    check.header(permit);
    check.countries(permit);
    check.validity(permit, as_of);
    check.issuer(permit);
    let mut blocks = HashSet::new();
    for (index, line) in permit.lines.iter().enumerate() {
        let block = permit.block_id(index);
        if !blocks.insert(block.clone()) {
            check.error(
                ErrorCode::FieldInvalid,
                &format!("/lines/{index}/block"),
                &block,
                "block is used twice: expected a letter unique in the document",
            );
        }
        check.line(permit, index, line);
    }
    check.out
}

struct Check<'a> {
    lists: &'a CodeLists,
    rules: &'a Rules,
    out: Validation,
}

impl Check<'_> {
    fn error(&mut self, code: ErrorCode, pointer: &str, value: &str, message: &str) {
        self.out
            .errors
            .push(Problem::new(code, message).at(pointer).with_value(value));
    }

    fn warning(&mut self, code: ErrorCode, pointer: &str, value: &str, message: &str) {
        self.out
            .warnings
            .push(Problem::new(code, message).at(pointer).with_value(value));
    }

    fn header(&mut self, permit: &Permit) {
        let number = &permit.permit_number;
        if number.trim().is_empty()
            || number.chars().count() > MAX_PERMIT_NUMBER_CHARS
            || number.chars().any(char::is_control)
        {
            self.error(
                ErrorCode::FieldInvalid,
                "/permit_number",
                number,
                "invalid permit number: expected 1 to 70 characters without control characters",
            );
        }
        match (&permit.document_type, &permit.other_document_type) {
            (DocumentType::Other, None) => self.out.errors.push(
                Problem::new(
                    ErrorCode::FieldMissing,
                    "document type other needs its name: expected other_document_type",
                )
                .at("/other_document_type"),
            ),
            (DocumentType::Other, Some(_)) | (_, None) => {}
            (kind, Some(text)) => self.error(
                ErrorCode::FieldInvalid,
                "/other_document_type",
                text,
                &format!(
                    "other_document_type is only for document type other, not {}: expected no value",
                    kind.as_str()
                ),
            ),
        }
        if let Some(text) = &permit.purpose_text
            && text.chars().count() > MAX_PURPOSE_TEXT_CHARS
        {
            self.error(
                ErrorCode::FieldInvalid,
                "/purpose_text",
                text,
                "purpose text is too long: expected at most 35 characters",
            );
        }
        let requires_signature = self
            .rules
            .profile(permit.issuing_country)
            .is_some_and(|profile| profile.requires_applicant_signature);
        if requires_signature && permit.applicant_signature.is_none() {
            self.out.errors.push(
                Problem::new(
                    ErrorCode::ApplicantSignatureMissing,
                    format!(
                        "the form of {} requires the applicant's signature: expected applicant_signature",
                        permit.issuing_country
                    ),
                )
                .at("/applicant_signature"),
            );
        }
    }

    /// Checks that a country code is known; aggregates such as `XX` only where allowed.
    fn country(&mut self, code: PartyCode, pointer: &str, aggregate_allowed: bool) {
        if self.rules.test_countries.contains(&code) {
            return;
        }
        match self.lists.country(code) {
            Some(country) if country.kind == CountryKind::Entity || aggregate_allowed => {}
            Some(country) => self.error(
                ErrorCode::CodeUnknown,
                pointer,
                code.as_str(),
                &format!(
                    "{code} ({}) names no single country: expected the ISO 3166-1 code of a country or territory",
                    country.name
                ),
            ),
            None => self.error(
                ErrorCode::CodeUnknown,
                pointer,
                code.as_str(),
                "unknown country code: expected an ISO 3166-1 alpha-2 code used by CITES",
            ),
        }
    }

    fn countries(&mut self, permit: &Permit) {
        self.country(permit.issuing_country, "/issuing_country", false);
        self.country(permit.importer.country, "/importer/country", false);
        self.country(permit.exporter.country, "/exporter/country", false);
        if let Some(authority) = &permit.management_authority {
            self.country(authority.country, "/management_authority/country", false);
            if authority.country != permit.issuing_country {
                self.error(
                    ErrorCode::IssuingCountryMismatch,
                    "/management_authority/country",
                    authority.country.as_str(),
                    &format!(
                        "the Management Authority is not of the issuing country: expected {}",
                        permit.issuing_country
                    ),
                );
            }
        }
    }

    fn validity(&mut self, permit: &Permit, as_of: DateTime<Utc>) {
        let issued = permit.issue_date;
        let until = permit.valid_until;
        if until < issued {
            self.error(
                ErrorCode::ValidityBeforeIssue,
                "/valid_until",
                &until.to_string(),
                &format!("valid_until is before issue_date {issued}: expected a later date"),
            );
        }
        if let Some(from) = permit.valid_from
            && from > until
        {
            self.error(
                ErrorCode::DateInvalid,
                "/valid_from",
                &from.to_string(),
                &format!("valid_from is after valid_until {until}: expected an earlier date"),
            );
        }
        let months = max_validity_months(permit.document_type);
        let latest = issued.checked_add_months(Months::new(months));
        if let Some(latest) = latest.filter(|latest| until > *latest) {
            self.error(
                ErrorCode::ValidityExceedsMaximum,
                "/valid_until",
                &until.to_string(),
                &format!(
                    "a {} document is valid for at most {months} months from its issue date {issued}: expected {latest} or earlier",
                    permit.document_type.as_str()
                ),
            );
        }
        let end = self.rules.end_of_validity(permit.issuing_country, until);
        if as_of >= end {
            self.error(
                ErrorCode::PermitExpired,
                "/valid_until",
                &until.to_string(),
                &format!(
                    "document expired at {end} and is checked as of {as_of}: expected a valid_until on or after the day of the check"
                ),
            );
        }
    }

    fn issuer(&mut self, permit: &Permit) {
        let (party, role) = match permit.document_type {
            DocumentType::Export | DocumentType::ReExport => (permit.exporter.country, "exporter"),
            DocumentType::Import => (permit.importer.country, "importer"),
            _ => return,
        };
        if permit.issuing_country != party {
            self.error(
                ErrorCode::IssuingCountryMismatch,
                "/issuing_country",
                permit.issuing_country.as_str(),
                &format!(
                    "a {} document is issued by the {role}'s country: expected {party}",
                    permit.document_type.as_str()
                ),
            );
        }
    }

    fn unit(&mut self, unit: Option<UnitCode>, pointer: &str) {
        if let Some(unit) = unit
            && self.lists.unit(unit).is_none()
        {
            self.error(
                    ErrorCode::CodeUnknown,
                    pointer,
                    unit.as_str(),
                    "unknown unit code: expected a CITES unit code such as KIL, or an empty string for a number of specimens",
                );
        }
    }

    fn measure(&mut self, measure: &Measure, pointer: &str, zero_allowed: bool) {
        let quantity = measure.quantity;
        let positive =
            quantity.is_finite() && (quantity > 0.0 || (zero_allowed && quantity == 0.0));
        if !positive {
            let expected = if zero_allowed {
                "a number of zero or more"
            } else {
                "a number greater than zero"
            };
            self.error(
                ErrorCode::QuantityNotPositive,
                &format!("{pointer}/quantity"),
                &quantity.to_string(),
                &format!("invalid quantity: expected {expected}"),
            );
        }
        self.unit(measure.unit, &format!("{pointer}/unit"));
    }

    fn line(&mut self, permit: &Permit, index: usize, line: &LineItem) {
        let base = format!("/lines/{index}");
        let term_known = self.lists.term(line.term).is_some();
        if !term_known {
            self.error(
                ErrorCode::CodeUnknown,
                &format!("{base}/term"),
                line.term.as_str(),
                "unknown term code: expected a CITES term code such as LIV or SKI",
            );
        }
        self.measure(
            &Measure {
                quantity: line.quantity,
                unit: line.unit,
            },
            &base,
            false,
        );
        let unit_known = line.unit.is_none_or(|unit| self.lists.unit(unit).is_some());
        if term_known && unit_known && !self.lists.term_unit_allowed(line.term, line.unit) {
            let allowed = self
                .lists
                .units_for_term(line.term)
                .iter()
                .map(|unit| {
                    if unit.is_empty() {
                        "\"\" (specimens)".to_owned()
                    } else {
                        unit.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            let unit = line.unit.map(|unit| unit.to_string()).unwrap_or_default();
            self.error(
                ErrorCode::TermUnitNotAllowed,
                &format!("{base}/unit"),
                &unit,
                &format!(
                    "term {} is not counted in this unit: expected one of {allowed}",
                    line.term
                ),
            );
        }
        if let Some(block) = &line.block {
            let valid = !block.is_empty()
                && block.len() <= 8
                && block.chars().all(|c| c.is_ascii_alphanumeric());
            if !valid {
                self.error(
                    ErrorCode::FieldInvalid,
                    &format!("{base}/block"),
                    block,
                    "invalid block: expected a letter such as A, at most 8 letters or digits",
                );
            }
        }
        if let Some(quota) = &line.quota {
            if let Some(used) = &quota.used_to_date {
                self.measure(used, &format!("{base}/quota/used_to_date"), true);
            }
            if let Some(annual) = &quota.annual_quota {
                self.measure(annual, &format!("{base}/quota/annual_quota"), true);
            }
        }
        if let Some(endorsement) = &line.export_endorsement
            && let Some(exported) = &endorsement.exported
        {
            self.measure(
                exported,
                &format!("{base}/export_endorsement/exported"),
                false,
            );
        }
        self.references(permit, &base, line);
        self.listing(&base, line);
    }

    fn references(&mut self, permit: &Permit, base: &str, line: &LineItem) {
        for (key, reference) in [
            ("origin", &line.origin),
            ("last_re_export", &line.last_re_export),
        ] {
            if let Some(country) = reference.as_ref().and_then(|r| r.country) {
                self.country(country, &format!("{base}/{key}/country"), true);
            }
        }
        if permit.document_type != DocumentType::ReExport {
            return;
        }
        let numbered = |reference: &Option<super::model::DocumentReference>| {
            reference.as_ref().is_some_and(|r| r.number.is_some())
        };
        if !numbered(&line.origin) && !numbered(&line.last_re_export) {
            self.out.errors.push(
                Problem::new(
                    ErrorCode::ReExportReferenceMissing,
                    "a re-exported block must name the origin permit (Box 12) or the last re-export certificate (Box 12a): expected origin.number or last_re_export.number",
                )
                .at(base),
            );
        }
        for (key, reference) in [
            ("origin", &line.origin),
            ("last_re_export", &line.last_re_export),
        ] {
            if let Some(reference) = reference
                && reference.number.is_some()
                && reference.country.is_none()
            {
                self.out.errors.push(
                    Problem::new(
                        ErrorCode::FieldMissing,
                        "a referenced document needs the country that issued it: expected country",
                    )
                    .at(format!("{base}/{key}/country")),
                );
            }
        }
    }

    fn listing(&mut self, base: &str, line: &LineItem) {
        let pointer = format!("{base}/scientific_name");
        match self.lists.taxa().listing(&line.scientific_name) {
            None => self.warning(
                ErrorCode::TaxonUnknown,
                &pointer,
                &line.scientific_name,
                "not a CITES-listed taxon in the embedded Species+ list: expected the accepted scientific name",
            ),
            Some(listing) if listing.listings.is_empty() => self.warning(
                ErrorCode::TaxonUnknown,
                &pointer,
                &line.scientific_name,
                "taxon has no current listing in the embedded Species+ list: expected a listed taxon",
            ),
            Some(listing) => {
                let appendices = listing.appendices();
                if !appendices.contains(&line.appendix) {
                    let listed = appendices
                        .iter()
                        .map(|a| a.as_str())
                        .collect::<Vec<_>>()
                        .join(" or ");
                    self.warning(
                        ErrorCode::AppendixMismatch,
                        &format!("{base}/appendix"),
                        line.appendix.as_str(),
                        &format!(
                            "{} is listed in Appendix {listed} (as {}): expected {listed}",
                            line.scientific_name, listing.listed_taxon
                        ),
                    );
                }
            }
        }
    }
}
