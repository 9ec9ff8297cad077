//! Property tests: any permit the model can hold survives the JSON and the v2 XML round trip
//! unchanged.

use chrono::NaiveDate;
use epix_shared::PartyCode;
use epix_shared::permit::{
    Appendix, DocumentReference, DocumentType, Endorsement, LineItem, Measure, Permit, PurposeCode,
    QuotaUse, Signature, SourceCode, TermCode, Trader, UnitCode, read_document, write_xml_v2,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

/// Generates one line of text without surrounding blanks, with XML's special characters
/// and letters outside ASCII among its characters.
fn word() -> BoxedStrategy<String> {
    "[A-Za-z0-9ÄéÿŁ]([A-Za-z0-9 ÄéÿŁ.,/&<>'\"()-]{0,24}[A-Za-z0-9ÄéÿŁ.)])?".boxed()
}

/// Text of one to three lines.
fn text() -> BoxedStrategy<String> {
    vec(word(), 1..=3)
        .prop_map(|lines| lines.join("\n"))
        .boxed()
}

fn party() -> impl Strategy<Value = PartyCode> {
    "[A-Z]{2}".prop_map(|code| code.parse().expect("two capitals"))
}

fn term() -> impl Strategy<Value = TermCode> {
    "[A-Z]{3}".prop_map(|code| code.parse().expect("three capitals"))
}

fn unit() -> impl Strategy<Value = Option<UnitCode>> {
    option::of("[A-Z]{3}".prop_map(|code| code.parse().expect("three capitals")))
}

fn date() -> impl Strategy<Value = NaiveDate> {
    (0i64..40_000).prop_map(|days| {
        NaiveDate::from_ymd_opt(1975, 7, 1).expect("date") + chrono::Duration::days(days)
    })
}

fn quantity() -> impl Strategy<Value = f64> {
    prop_oneof![(1u32..100_000).prop_map(f64::from), 0.000_001f64..1.0e12,]
}

fn measure() -> BoxedStrategy<Measure> {
    (quantity(), unit())
        .prop_map(|(quantity, unit)| Measure { quantity, unit })
        .boxed()
}

fn trader(country: impl Strategy<Value = PartyCode> + 'static) -> BoxedStrategy<Trader> {
    (
        word(),
        option::of(text()),
        option::of(word()),
        option::of(word()),
        option::of(word()),
        option::of(word()),
        country,
    )
        .prop_map(
            |(name, address, post_office_box, postcode, city, subdivision, country)| Trader {
                name,
                address,
                post_office_box,
                postcode,
                city,
                subdivision,
                country,
            },
        )
        .boxed()
}

fn signature() -> BoxedStrategy<Signature> {
    (word(), option::of(date()))
        .prop_map(|(name, date)| Signature { name, date })
        .boxed()
}

/// Generates a reference with at least one value, because an empty one reads back as absent.
fn reference() -> BoxedStrategy<DocumentReference> {
    (option::of(party()), option::of(word()), option::of(date()))
        .prop_filter("at least one value", |(c, n, d)| {
            c.is_some() || n.is_some() || d.is_some()
        })
        .prop_map(|(country, number, date)| DocumentReference {
            country,
            number,
            date,
        })
        .boxed()
}

fn quota() -> BoxedStrategy<QuotaUse> {
    (option::of(measure()), option::of(measure()))
        .prop_filter("at least one value", |(u, a)| u.is_some() || a.is_some())
        .prop_map(|(used_to_date, annual_quota)| QuotaUse {
            used_to_date,
            annual_quota,
        })
        .boxed()
}

fn endorsement() -> BoxedStrategy<Endorsement> {
    (
        option::of(measure()),
        option::of(word()),
        option::of(date()),
        option::of(word()),
    )
        .prop_filter("at least one value", |(e, p, d, o)| {
            e.is_some() || p.is_some() || d.is_some() || o.is_some()
        })
        .prop_map(|(exported, port, date, officer)| Endorsement {
            exported,
            port,
            date,
            officer,
        })
        .boxed()
}

fn line() -> BoxedStrategy<LineItem> {
    let names = (
        option::of("[A-Z]{1,2}"),
        word(),
        option::of(text()),
        option::of(text()),
        vec(word(), 0..3),
    );
    let codes = (
        term(),
        select(Appendix::ALL),
        select(SourceCode::ALL),
        quantity(),
        unit(),
        option::of("[0-9]{6}"),
    );
    let boxes = (
        option::of(quota()),
        option::of(reference()),
        option::of(reference()),
        option::of(word()),
        option::of(date()),
        option::of(endorsement()),
    );
    (names, codes, boxes)
        .prop_map(
            |(
                (block, scientific_name, common_name, description, marks),
                (term, appendix, source, quantity, unit, hs_code),
                (quota, origin, last_re_export, operation_number, acquisition_date, endorsement),
            )| LineItem {
                block,
                scientific_name,
                common_name,
                description,
                marks,
                term,
                appendix,
                source,
                quantity,
                unit,
                hs_code,
                quota,
                origin,
                last_re_export,
                operation_number,
                acquisition_date,
                export_endorsement: endorsement,
            },
        )
        .boxed()
}

prop_compose! {
    fn permit()(
        document_type in select(DocumentType::ALL.to_vec()),
        other_name in word(),
        permit_number in word(),
        issuing_country in party(),
        copy in any::<bool>(),
        dates in (option::of(date()), date(), date()),
        importer in trader(party()),
        exporter in trader(party()),
        signatures in (option::of(signature()), option::of(signature())),
        special_conditions in option::of(text()),
        purpose in select(PurposeCode::ALL),
        purpose_text in option::of(word()),
        security_stamp in option::of(word()),
        authority in option::of(trader(Just("ZZ".parse::<PartyCode>().expect("code")))),
        lines in vec(line(), 1..4),
        issue_place in option::of(word()),
        transport_document in option::of(word()),
    ) -> Permit {
        let (valid_from, valid_until, issue_date) = dates;
        let (applicant_signature, issued_by) = signatures;
        Permit {
            document_type,
            // The name is carried only for "other"; the writer labels certificates itself.
            other_document_type: (document_type == DocumentType::Other).then_some(other_name),
            permit_number,
            issuing_country,
            copy,
            valid_from,
            valid_until,
            importer,
            exporter,
            applicant_signature,
            special_conditions,
            purpose,
            purpose_text,
            security_stamp,
            // The authority belongs to the issuing country, which XML reads from it.
            management_authority: authority.map(|a| Trader { country: issuing_country, ..a }),
            lines,
            issue_place,
            issue_date,
            issued_by,
            transport_document,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn json_round_trip_keeps_permit(permit in permit()) {
        let json = serde_json::to_vec(&permit).expect("serialises");
        let read = read_document("application/json", &json);
        prop_assert!(read.is_ok(), "{:?}\n{}", read.err(), String::from_utf8_lossy(&json));
        let read = read.expect("checked above");
        prop_assert_eq!(&read.permit, &permit);
        prop_assert!(read.warnings.is_empty(), "{:?}", read.warnings);
        // serde's own Deserialize agrees with the reader.
        let derived: Permit = serde_json::from_slice(&json).expect("serde reads");
        prop_assert_eq!(derived, permit);
    }

    #[test]
    fn xml_round_trip_keeps_permit(permit in permit()) {
        let xml = write_xml_v2(&permit);
        let read = read_document("application/xml", xml.as_bytes());
        prop_assert!(read.is_ok(), "{:?}\n{}", read.err(), xml);
        let read = read.expect("checked above");
        prop_assert_eq!(&read.permit, &permit, "{}", xml);
        prop_assert!(read.warnings.is_empty(), "{:?}", read.warnings);
    }
}
