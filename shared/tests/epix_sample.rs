//! The EPIX Connect toolkit v2 sample (a re-export certificate with blocks A and B), read
//! field by field, validated and written back.

use chrono::{DateTime, NaiveDate, Utc};
use epix_shared::permit::{
    Appendix, DocumentFormat, DocumentReference, DocumentType, PurposeCode, Rules, SourceCode,
    Trader, XmlVersion, check_document_with, read_document, read_xml, validate, write_xml_v2,
};
use epix_shared::{ErrorCode, PartyCode};

const SAMPLE: &[u8] = include_bytes!("fixtures/citesepermit-v2-reexport.xml");

fn party(code: &str) -> PartyCode {
    code.parse().expect("party code")
}

fn date(text: &str) -> NaiveDate {
    text.parse().expect("date")
}

/// Rules that accept the sample's made-up countries XA, XB and XC.
fn sample_rules() -> Rules {
    Rules::default().with_test_countries([party("XA"), party("XB"), party("XC")])
}

fn sample_trader(name: &str, country: &str) -> Trader {
    Trader {
        name: name.to_owned(),
        address: Some("Street".to_owned()),
        post_office_box: None,
        postcode: Some("00000".to_owned()),
        city: Some("City".to_owned()),
        subdivision: None,
        country: party(country),
    }
}

#[test]
fn sample_header_reads_field_by_field() {
    let read = read_document("application/xml", SAMPLE).expect("sample reads");
    assert_eq!(read.format, DocumentFormat::XmlV2);
    assert!(read.warnings.is_empty(), "{:?}", read.warnings);
    let permit = read.permit;
    assert_eq!(permit.document_type, DocumentType::ReExport);
    assert_eq!(permit.other_document_type, None);
    assert_eq!(permit.permit_number, "XA000000");
    assert_eq!(permit.issuing_country, party("XA"));
    assert!(!permit.copy);
    assert_eq!(permit.valid_from, Some(date("2014-01-06")));
    assert_eq!(permit.valid_until, date("2014-07-05"));
    assert_eq!(permit.issue_date, date("2014-01-06"));
    assert_eq!(permit.purpose, PurposeCode::T);
    assert_eq!(permit.purpose_text, None);
    let conditions = permit.special_conditions.as_deref().expect("Box 5");
    assert!(conditions.starts_with("For live animals, this permit is only valid"));
    assert!(conditions.ends_with("the IATA Live Animals Regulations"));
    assert_eq!(conditions.lines().count(), 3);
    assert_eq!(permit.security_stamp, None);
    assert_eq!(
        permit.management_authority,
        Some(sample_trader("Authority name", "XA"))
    );
    assert_eq!(permit.exporter, sample_trader("Consignor name", "XA"));
    assert_eq!(permit.importer, sample_trader("Consignee name", "XB"));
    assert_eq!(permit.applicant_signature, None);
    assert_eq!(permit.issued_by, None);
    assert_eq!(permit.issue_place, None);
    assert_eq!(permit.transport_document, None);
    assert_eq!(permit.lines.len(), 2);
}

#[test]
fn sample_block_a_reads_field_by_field() {
    let permit = read_xml(SAMPLE).expect("sample reads").permit;
    let a = &permit.lines[0];
    assert_eq!(a.block.as_deref(), Some("A"));
    assert_eq!(a.scientific_name, "Alligator mississippiensis");
    assert_eq!(a.common_name.as_deref(), Some("American Alligator"));
    assert_eq!(a.description.as_deref(), Some("watchstraps"));
    assert_eq!(a.marks, ["XXX"]);
    assert_eq!(a.term.as_str(), "LPS");
    assert_eq!(a.appendix, Appendix::II);
    assert_eq!(a.source, SourceCode::W);
    assert_eq!(a.quantity, 5.0);
    assert_eq!(a.unit.map(|u| u.to_string()).as_deref(), Some("PCS"));
    assert_eq!(a.hs_code, None);
    assert_eq!(a.quota, None);
    assert_eq!(
        a.origin,
        Some(DocumentReference {
            country: Some(party("XC")),
            number: Some("XC12345".to_owned()),
            date: Some(date("2007-07-09")),
        })
    );
    assert_eq!(
        a.last_re_export,
        Some(DocumentReference {
            country: Some(party("XA")),
            number: Some("XA12345".to_owned()),
            date: Some(date("2012-02-23")),
        })
    );
    assert_eq!(a.operation_number, None);
    assert_eq!(a.acquisition_date, None);
    assert_eq!(a.export_endorsement, None);
}

#[test]
fn sample_block_b_reads_field_by_field() {
    let permit = read_xml(SAMPLE).expect("sample reads").permit;
    let b = &permit.lines[1];
    assert_eq!(b.block.as_deref(), Some("B"));
    assert_eq!(b.scientific_name, "Crocodylus siamensis");
    assert_eq!(b.common_name.as_deref(), Some("Siamese Crocodile"));
    assert_eq!(b.description.as_deref(), Some("watchstraps"));
    assert_eq!(b.term.as_str(), "LPS");
    assert_eq!(b.appendix, Appendix::I);
    assert_eq!(b.source, SourceCode::D);
    assert_eq!(b.quantity, 10.0);
    // The origin permit number is empty in the sample: the country and date remain.
    assert_eq!(
        b.origin,
        Some(DocumentReference {
            country: Some(party("TH")),
            number: None,
            date: Some(date("2007-07-09")),
        })
    );
    assert_eq!(
        b.last_re_export.as_ref().and_then(|r| r.number.as_deref()),
        Some("FR1202501030-R")
    );
    assert_eq!(
        b.last_re_export.as_ref().and_then(|r| r.country),
        Some(party("FR"))
    );
}

#[test]
fn sample_is_valid_as_of_its_issue_date() {
    let as_of: DateTime<Utc> = "2014-01-06T12:00:00Z".parse().expect("time");
    let checked = check_document_with("application/xml", SAMPLE, as_of, &sample_rules())
        .expect("sample is valid on its issue date");
    assert!(checked.warnings.is_empty(), "{:?}", checked.warnings);
    assert_eq!(checked.format, DocumentFormat::XmlV2);
    assert_eq!(checked.summary.permit_number, "XA000000");
    assert_eq!(checked.summary.document_type, DocumentType::ReExport);
    assert_eq!(checked.summary.exporter_country, party("XA"));
    assert_eq!(checked.summary.importer_country, party("XB"));
}

#[test]
fn sample_is_expired_today() {
    let found = check_document_with("application/xml", SAMPLE, Utc::now(), &sample_rules())
        .expect_err("expired");
    let codes: Vec<ErrorCode> = found.iter().map(|p| p.code).collect();
    assert_eq!(codes, [ErrorCode::PermitExpired]);
    assert_eq!(
        found[0].pointer.as_deref(),
        Some("xml:/CITESEPermit/HeaderExchangedDocument/EffectiveSpecifiedPeriod/EndDateTime")
    );
}

#[test]
fn sample_countries_need_test_rules() {
    let as_of: DateTime<Utc> = "2014-01-06T12:00:00Z".parse().expect("time");
    let permit = read_xml(SAMPLE).expect("sample reads").permit;
    let result = validate(&permit, as_of, &Rules::default());
    let pointers: Vec<&str> = result
        .errors
        .iter()
        .filter_map(|p| p.pointer.as_deref())
        .collect();
    // XA is French Antilles in the CITES trade data; XB is on no list.
    assert_eq!(pointers, ["/importer/country"], "{:?}", result.errors);
}

#[test]
fn sample_round_trips_through_v2() {
    let permit = read_xml(SAMPLE).expect("sample reads").permit;
    let written = write_xml_v2(&permit);
    let again = read_xml(written.as_bytes()).expect("written XML reads");
    assert_eq!(again.version, XmlVersion::V2);
    assert_eq!(again.permit, permit);
    assert_eq!(write_xml_v2(&again.permit), written);
}

#[test]
fn sample_round_trips_through_json() {
    let permit = read_xml(SAMPLE).expect("sample reads").permit;
    let json = serde_json::to_vec(&permit).expect("serialises");
    let again = read_document("application/json", &json).expect("JSON reads");
    assert_eq!(again.permit, permit);
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);
}
