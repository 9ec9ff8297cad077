//! One table per rule of [`super::validate`], each case with the code it must give.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

use super::DocumentType;
use super::codes::{Appendix, PurposeCode, SourceCode};
use super::model::{DocumentReference, Endorsement, LineItem, Measure, Permit, Signature, Trader};
use super::validate::{PartyProfile, Rules, validate};
use crate::{ErrorCode, PartyCode};

fn party(code: &str) -> PartyCode {
    code.parse().expect("party code")
}

fn date(text: &str) -> NaiveDate {
    text.parse().expect("date")
}

fn as_of() -> DateTime<Utc> {
    "2026-12-04T12:00:00Z".parse().expect("time")
}

fn trader(name: &str, country: &str) -> Trader {
    Trader {
        name: name.to_owned(),
        address: None,
        post_office_box: None,
        postcode: None,
        city: None,
        subdivision: None,
        country: party(country),
    }
}

fn line() -> LineItem {
    LineItem {
        block: None,
        scientific_name: "Alligator mississippiensis".to_owned(),
        common_name: None,
        description: None,
        marks: Vec::new(),
        term: "LPS".parse().expect("term"),
        appendix: Appendix::II,
        source: SourceCode::W,
        quantity: 5.0,
        unit: None,
        hs_code: None,
        quota: None,
        origin: None,
        last_re_export: None,
        operation_number: None,
        acquisition_date: None,
        export_endorsement: None,
    }
}

fn permit() -> Permit {
    Permit {
        document_type: DocumentType::Export,
        other_document_type: None,
        permit_number: "26CH000123".to_owned(),
        issuing_country: party("CH"),
        copy: false,
        valid_from: None,
        valid_until: date("2027-05-31"),
        importer: trader("Zoo Leipzig", "DE"),
        exporter: trader("Reptilien AG", "CH"),
        applicant_signature: None,
        special_conditions: None,
        purpose: PurposeCode::T,
        purpose_text: None,
        security_stamp: None,
        management_authority: None,
        lines: vec![line()],
        issue_place: None,
        issue_date: date("2026-12-01"),
        issued_by: None,
        transport_document: None,
    }
}

/// Asserts that a permit gives exactly one error, with this code and pointer.
fn assert_error(case: &str, permit: &Permit, rules: &Rules, code: ErrorCode, pointer: &str) {
    let result = validate(permit, as_of(), rules);
    assert_eq!(result.errors.len(), 1, "{case}: {:?}", result.errors);
    assert_eq!(result.errors[0].code, code, "{case}");
    assert_eq!(result.errors[0].pointer.as_deref(), Some(pointer), "{case}");
}

fn assert_valid(case: &str, permit: &Permit, rules: &Rules) {
    let result = validate(permit, as_of(), rules);
    assert!(result.errors.is_empty(), "{case}: {:?}", result.errors);
}

#[test]
fn valid_permit_has_no_problems() {
    let result = validate(&permit(), as_of(), &Rules::default());
    assert!(result.errors.is_empty(), "{:?}", result.errors);
    assert!(result.warnings.is_empty(), "{:?}", result.warnings);
}

#[test]
fn unknown_codes_are_errors() {
    type Edit = fn(&mut Permit);
    let cases: [(&str, Edit, &str); 7] = [
        (
            "term",
            |p| p.lines[0].term = "ZZZ".parse().expect("shape"),
            "/lines/0/term",
        ),
        (
            "unit",
            |p| p.lines[0].unit = Some("ZZZ".parse().expect("shape")),
            "/lines/0/unit",
        ),
        (
            "importer",
            |p| p.importer.country = party("QQ"),
            "/importer/country",
        ),
        (
            "exporter aggregate",
            |p| {
                p.exporter.country = party("XX");
                p.issuing_country = party("XX");
            },
            "/exporter/country",
        ),
        (
            "origin",
            |p| {
                p.lines[0].origin = Some(DocumentReference {
                    country: Some(party("QQ")),
                    number: None,
                    date: None,
                });
            },
            "/lines/0/origin/country",
        ),
        (
            "quota unit",
            |p| {
                p.lines[0].quota = Some(super::model::QuotaUse {
                    used_to_date: Some(Measure {
                        quantity: 1.0,
                        unit: Some("QQQ".parse().expect("shape")),
                    }),
                    annual_quota: None,
                });
            },
            "/lines/0/quota/used_to_date/unit",
        ),
        (
            "test country without rules",
            |p| p.importer.country = party("XB"),
            "/importer/country",
        ),
    ];
    for (case, edit, pointer) in cases {
        let mut permit = permit();
        edit(&mut permit);
        let result = validate(&permit, as_of(), &Rules::default());
        assert!(
            result
                .errors
                .iter()
                .any(|e| e.code == ErrorCode::CodeUnknown && e.pointer.as_deref() == Some(pointer)),
            "{case}: {:?}",
            result.errors
        );
    }
}

#[test]
fn test_countries_are_accepted_when_configured() {
    let mut permit = permit();
    permit.importer.country = party("XB");
    let rules = Rules::default().with_test_countries([party("XB")]);
    assert_valid("XB as test country", &permit, &rules);
}

#[test]
fn term_unit_pairs_are_enforced() {
    let cases = [
        ("LPS", "", true),
        ("LPS", "PCS", true),
        ("LIV", "", true),
        ("LIV", "LTR", false),
        ("CAV", "KIL", true),
        ("CAV", "TON", true),
        ("SKI", "CUM", false),
    ];
    for (term, unit, allowed) in cases {
        let mut permit = permit();
        permit.lines[0].term = term.parse().expect("term");
        permit.lines[0].unit = if unit.is_empty() {
            None
        } else {
            Some(unit.parse().expect("unit"))
        };
        let case = format!("{term}/{unit}");
        if allowed {
            assert_valid(&case, &permit, &Rules::default());
        } else {
            assert_error(
                &case,
                &permit,
                &Rules::default(),
                ErrorCode::TermUnitNotAllowed,
                "/lines/0/unit",
            );
        }
    }
}

#[test]
fn quantities_must_be_positive() {
    let cases = [
        (5.0, true),
        (0.001, true),
        (0.0, false),
        (-1.0, false),
        (f64::NAN, false),
    ];
    for (quantity, valid) in cases {
        let mut permit = permit();
        permit.lines[0].quantity = quantity;
        let case = format!("quantity {quantity}");
        if valid {
            assert_valid(&case, &permit, &Rules::default());
        } else {
            assert_error(
                &case,
                &permit,
                &Rules::default(),
                ErrorCode::QuantityNotPositive,
                "/lines/0/quantity",
            );
        }
    }
    let mut endorsed = permit();
    endorsed.lines[0].export_endorsement = Some(Endorsement {
        exported: Some(Measure {
            quantity: 0.0,
            unit: None,
        }),
        port: None,
        date: None,
        officer: None,
    });
    assert_error(
        "endorsed zero",
        &endorsed,
        &Rules::default(),
        ErrorCode::QuantityNotPositive,
        "/lines/0/export_endorsement/exported/quantity",
    );
}

#[test]
fn validity_follows_document_type() {
    // (type, issue date, valid until, expected error)
    let cases: [(DocumentType, &str, &str, Option<ErrorCode>); 12] = [
        (DocumentType::Export, "2026-12-01", "2027-06-01", None),
        (
            DocumentType::Export,
            "2026-12-01",
            "2027-06-02",
            Some(ErrorCode::ValidityExceedsMaximum),
        ),
        (DocumentType::ReExport, "2026-08-31", "2027-02-28", None),
        (
            DocumentType::ReExport,
            "2026-08-31",
            "2027-03-01",
            Some(ErrorCode::ValidityExceedsMaximum),
        ),
        (DocumentType::Import, "2026-12-01", "2027-12-01", None),
        (
            DocumentType::Import,
            "2026-12-01",
            "2027-12-02",
            Some(ErrorCode::ValidityExceedsMaximum),
        ),
        (
            DocumentType::CertificateOfOrigin,
            "2026-12-01",
            "2027-12-01",
            None,
        ),
        (
            DocumentType::IntroductionFromTheSea,
            "2026-12-01",
            "2027-12-02",
            Some(ErrorCode::ValidityExceedsMaximum),
        ),
        (
            DocumentType::TravellingExhibition,
            "2026-12-01",
            "2029-12-01",
            None,
        ),
        (
            DocumentType::Ownership,
            "2026-12-01",
            "2029-12-02",
            Some(ErrorCode::ValidityExceedsMaximum),
        ),
        (
            DocumentType::PreConvention,
            "2026-12-01",
            "2027-06-02",
            Some(ErrorCode::ValidityExceedsMaximum),
        ),
        (
            DocumentType::Export,
            "2026-12-01",
            "2026-11-30",
            Some(ErrorCode::ValidityBeforeIssue),
        ),
    ];
    for (kind, issued, until, expected) in cases {
        let mut permit = permit();
        permit.document_type = kind;
        permit.issue_date = date(issued);
        permit.valid_until = date(until);
        if kind == DocumentType::Import {
            permit.issuing_country = party("DE");
        }
        if kind == DocumentType::ReExport {
            permit.lines[0].last_re_export = Some(DocumentReference {
                country: Some(party("FR")),
                number: Some("FR1202501030-R".to_owned()),
                date: None,
            });
        }
        let case = format!("{} {issued}..{until}", kind.as_str());
        let result = validate(&permit, as_of(), &Rules::default());
        let codes: Vec<ErrorCode> = result.errors.iter().map(|e| e.code).collect();
        match expected {
            None => assert!(codes.is_empty(), "{case}: {:?}", result.errors),
            Some(code) => assert!(codes.contains(&code), "{case}: {:?}", result.errors),
        }
    }
}

#[test]
fn expiry_at_end_of_party_day() {
    let plus_one = FixedOffset::east_opt(3600).expect("offset");
    let rules = Rules::default().with_party(
        party("CH"),
        PartyProfile {
            requires_applicant_signature: false,
            utc_offset: Some(plus_one),
        },
    );
    // Valid until 2026-12-04 in UTC+01:00 ends at 2026-12-04T23:00:00Z.
    let cases = [
        ("2026-12-04T22:59:59Z", &rules, true),
        ("2026-12-04T23:00:00Z", &rules, false),
        // Without a configured offset, UTC−12:00 applies: the day ends at 12:00 UTC next day.
        ("2026-12-05T11:59:59Z", &Rules::default(), true),
        ("2026-12-05T12:00:00Z", &Rules::default(), false),
    ];
    for (time, rules, valid) in cases {
        let mut permit = permit();
        permit.issue_date = date("2026-11-01");
        permit.valid_until = date("2026-12-04");
        let as_of: DateTime<Utc> = time.parse().expect("time");
        let result = validate(&permit, as_of, rules);
        let expired = result
            .errors
            .iter()
            .any(|e| e.code == ErrorCode::PermitExpired);
        assert_eq!(!expired, valid, "{time}: {:?}", result.errors);
    }
}

#[test]
fn re_export_needs_a_reference() {
    let numbered = |country: &str, number: &str| {
        Some(DocumentReference {
            country: Some(party(country)),
            number: Some(number.to_owned()),
            date: None,
        })
    };
    type Case = (
        &'static str,
        Option<DocumentReference>,
        Option<DocumentReference>,
        Option<(ErrorCode, &'static str)>,
    );
    let cases: [Case; 5] = [
        ("origin", numbered("TH", "TH123"), None, None),
        (
            "last re-export",
            None,
            numbered("FR", "FR1202501030-R"),
            None,
        ),
        (
            "neither",
            None,
            None,
            Some((ErrorCode::ReExportReferenceMissing, "/lines/0")),
        ),
        (
            "origin without number",
            Some(DocumentReference {
                country: Some(party("TH")),
                number: None,
                date: Some(date("2007-07-09")),
            }),
            None,
            Some((ErrorCode::ReExportReferenceMissing, "/lines/0")),
        ),
        (
            "number without country",
            Some(DocumentReference {
                country: None,
                number: Some("TH123".to_owned()),
                date: None,
            }),
            None,
            Some((ErrorCode::FieldMissing, "/lines/0/origin/country")),
        ),
    ];
    for (case, origin, last, expected) in cases {
        let mut permit = permit();
        permit.document_type = DocumentType::ReExport;
        permit.lines[0].origin = origin;
        permit.lines[0].last_re_export = last;
        match expected {
            None => assert_valid(case, &permit, &Rules::default()),
            Some((code, pointer)) => assert_error(case, &permit, &Rules::default(), code, pointer),
        }
    }
}

#[test]
fn issuing_country_matches_the_trader() {
    let cases: [(DocumentType, &str, bool); 5] = [
        (DocumentType::Export, "CH", true),
        (DocumentType::Export, "DE", false),
        (DocumentType::Import, "DE", true),
        (DocumentType::Import, "CH", false),
        (DocumentType::CertificateOfOrigin, "FR", true),
    ];
    for (kind, issuer, valid) in cases {
        let mut permit = permit();
        permit.document_type = kind;
        permit.issuing_country = party(issuer);
        let case = format!("{} issued by {issuer}", kind.as_str());
        if valid {
            assert_valid(&case, &permit, &Rules::default());
        } else {
            assert_error(
                &case,
                &permit,
                &Rules::default(),
                ErrorCode::IssuingCountryMismatch,
                "/issuing_country",
            );
        }
    }
    let mut permit = permit();
    permit.management_authority = Some(trader("Federal Food Safety Office", "FR"));
    assert_error(
        "authority abroad",
        &permit,
        &Rules::default(),
        ErrorCode::IssuingCountryMismatch,
        "/management_authority/country",
    );
}

#[test]
fn appendix_disagreeing_with_listing_is_a_warning() {
    let cases = [
        ("Alligator mississippiensis", Appendix::II, None),
        (
            "Alligator mississippiensis",
            Appendix::I,
            Some(ErrorCode::AppendixMismatch),
        ),
        ("Crocodylus siamensis", Appendix::I, None),
        ("Crocodylus spp.", Appendix::II, None),
        (
            "Nonexistens fictus",
            Appendix::II,
            Some(ErrorCode::TaxonUnknown),
        ),
    ];
    for (name, appendix, warning) in cases {
        let mut permit = permit();
        permit.lines[0].scientific_name = name.to_owned();
        permit.lines[0].appendix = appendix;
        let result = validate(&permit, as_of(), &Rules::default());
        assert!(result.errors.is_empty(), "{name}: {:?}", result.errors);
        let codes: Vec<ErrorCode> = result.warnings.iter().map(|w| w.code).collect();
        assert_eq!(
            codes,
            warning.into_iter().collect::<Vec<_>>(),
            "{name} in {appendix}"
        );
    }
}

#[test]
fn applicant_signature_follows_party_profile() {
    let strict = Rules::default().with_party(
        party("CH"),
        PartyProfile {
            requires_applicant_signature: true,
            utc_offset: None,
        },
    );
    let signed = Some(Signature {
        name: "A. Applicant".to_owned(),
        date: Some(date("2026-11-30")),
    });
    let cases = [
        ("not required", Rules::default(), None, true),
        ("required, missing", strict.clone(), None, false),
        ("required, given", strict, signed, true),
    ];
    for (case, rules, signature, valid) in cases {
        let mut permit = permit();
        permit.applicant_signature = signature;
        if valid {
            assert_valid(case, &permit, &rules);
        } else {
            assert_error(
                case,
                &permit,
                &rules,
                ErrorCode::ApplicantSignatureMissing,
                "/applicant_signature",
            );
        }
    }
}

#[test]
fn header_fields_are_checked() {
    type Edit = fn(&mut Permit);
    let cases: [(&str, Edit, ErrorCode, &str); 5] = [
        (
            "other without name",
            |p| p.document_type = DocumentType::Other,
            ErrorCode::FieldMissing,
            "/other_document_type",
        ),
        (
            "name without other",
            |p| p.other_document_type = Some("Hunting licence".to_owned()),
            ErrorCode::FieldInvalid,
            "/other_document_type",
        ),
        (
            "long purpose text",
            |p| p.purpose_text = Some("x".repeat(36)),
            ErrorCode::FieldInvalid,
            "/purpose_text",
        ),
        (
            "long permit number",
            |p| p.permit_number = "9".repeat(71),
            ErrorCode::FieldInvalid,
            "/permit_number",
        ),
        (
            "duplicate block",
            |p| {
                let mut second = p.lines[0].clone();
                second.block = Some("A".to_owned());
                p.lines.push(second);
            },
            ErrorCode::FieldInvalid,
            "/lines/1/block",
        ),
    ];
    for (case, edit, code, pointer) in cases {
        let mut permit = permit();
        edit(&mut permit);
        assert_error(case, &permit, &Rules::default(), code, pointer);
    }
}

#[test]
fn every_problem_is_listed_at_once() {
    let mut permit = permit();
    permit.issuing_country = party("DE");
    permit.lines[0].quantity = 0.0;
    permit.lines[0].term = "ZZZ".parse().expect("shape");
    permit.valid_until = date("2028-01-01");
    let result = validate(&permit, as_of(), &Rules::default());
    let codes: Vec<ErrorCode> = result.errors.iter().map(|e| e.code).collect();
    for code in [
        ErrorCode::IssuingCountryMismatch,
        ErrorCode::QuantityNotPositive,
        ErrorCode::CodeUnknown,
        ErrorCode::ValidityExceedsMaximum,
    ] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
}
