//! The ePermit XML reader on documents written for these tests: every box in v2 and v1, the
//! quirks of real messages, and rejections.

use chrono::NaiveDate;
use epix_shared::permit::{
    DocumentFormat, DocumentType, Endorsement, Measure, Permit, PurposeCode, QuotaUse, Signature,
    read_document, read_xml, write_xml_v2,
};
use epix_shared::{ErrorCode, PartyCode};

fn party(code: &str) -> PartyCode {
    code.parse().expect("party code")
}

fn date(text: &str) -> NaiveDate {
    text.parse().expect("date")
}

/// A toolkit v2 permit with a value in every box the model holds.
const EVERY_BOX_V2: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rsm:CITESEPermit xmlns:rsm="urn:un:unece:uncefact:data:standard:CITESEPermit:2"
    xmlns:ram="urn:un:unece:uncefact:data:draft:ReusableAggregateBusinessInformationEntity:1">
  <rsm:HeaderExchangedDocument>
    <ram:ID>26CH000123/B</ram:ID>
    <ram:Name>Certificate of origin</ram:Name>
    <ram:TypeCode listID="1001">O</ram:TypeCode>
    <ram:IssueDateTime>2026-12-01T09:00:00+01:00</ram:IssueDateTime>
    <ram:CopyIndicator>true</ram:CopyIndicator>
    <ram:Purpose>Zoo exchange</ram:Purpose>
    <ram:PurposeCode>Z</ram:PurposeCode>
    <ram:Information>Replaces 26CH000100 (lost).</ram:Information>
    <ram:Information>Ship in IATA crates.</ram:Information>
    <ram:EffectiveSpecifiedPeriod>
      <ram:StartDateTime>2026-12-02</ram:StartDateTime>
      <ram:EndDateTime>2027-11-30</ram:EndDateTime>
    </ram:EffectiveSpecifiedPeriod>
    <ram:IssueLogisticsLocation><ram:Name>Bern</ram:Name></ram:IssueLogisticsLocation>
    <ram:FirstSignatoryDocumentAuthentication>
      <ram:TypeCode>A</ram:TypeCode>
      <ram:ID>STAMP-0042</ram:ID>
      <ram:ProviderTradeParty>
        <ram:Name>Federal Food Safety and Veterinary Office</ram:Name>
        <ram:PostalTradeAddress>
          <ram:PostcodeCode>3003</ram:PostcodeCode>
          <ram:StreetName>Schwarzenburgstrasse 155</ram:StreetName>
          <ram:CityName>Bern</ram:CityName>
          <ram:CountryID>CH</ram:CountryID>
        </ram:PostalTradeAddress>
      </ram:ProviderTradeParty>
    </ram:FirstSignatoryDocumentAuthentication>
    <ram:SecondSignatoryDocumentAuthentication>
      <ram:TypeCode>B</ram:TypeCode>
      <ram:ActualDateTime>2026-11-28T10:00:00+01:00</ram:ActualDateTime>
      <ram:ProviderTradeParty>
        <ram:SpecifiedAuthoritativeSignatoryPerson><ram:Name>Anna Applicant</ram:Name></ram:SpecifiedAuthoritativeSignatoryPerson>
      </ram:ProviderTradeParty>
    </ram:SecondSignatoryDocumentAuthentication>
    <ram:ThirdSignatoryDocumentAuthentication>
      <ram:TypeCode>C</ram:TypeCode>
      <ram:ActualDateTime>2026-12-01</ram:ActualDateTime>
      <ram:ProviderTradeParty><ram:Name>Otto Officer</ram:Name></ram:ProviderTradeParty>
    </ram:ThirdSignatoryDocumentAuthentication>
  </rsm:HeaderExchangedDocument>
  <rsm:SpecifiedSupplyChainConsignment>
    <ram:ConsignorTradeParty>
      <ram:Name>Reptilien AG</ram:Name>
      <ram:PostalTradeAddress>
        <ram:PostcodeCode>4051</ram:PostcodeCode>
        <ram:PostOfficeBox>PO 12</ram:PostOfficeBox>
        <ram:StreetName>Hauptstrasse 1</ram:StreetName>
        <ram:StreetName>Hof B</ram:StreetName>
        <ram:CityName>Basel</ram:CityName>
        <ram:CountryID>CH</ram:CountryID>
        <ram:CountrySubDivisionName>Basel-Stadt</ram:CountrySubDivisionName>
      </ram:PostalTradeAddress>
    </ram:ConsignorTradeParty>
    <ram:ConsigneeTradeParty>
      <ram:Name>Zoo Leipzig</ram:Name>
      <ram:PostalTradeAddress><ram:CityName>Leipzig</ram:CityName></ram:PostalTradeAddress>
    </ram:ConsigneeTradeParty>
    <ram:TransportContractReferencedDocument><ram:ID>AWB 724-12345675</ram:ID></ram:TransportContractReferencedDocument>
    <ram:ExaminationTransportEvent>
      <ram:ActualOccurrenceDateTime>2026-12-10T08:00:00+01:00</ram:ActualOccurrenceDateTime>
      <ram:OccurrenceLogisticsLocation><ram:ID>CHZRH</ram:ID></ram:OccurrenceLogisticsLocation>
      <ram:CertifyingTradeParty><ram:SpecifiedAuthoritativeSignatoryPerson><ram:Name>C. Customs</ram:Name></ram:SpecifiedAuthoritativeSignatoryPerson></ram:CertifyingTradeParty>
    </ram:ExaminationTransportEvent>
    <ram:IncludedSupplyChainConsignmentItem>
      <ram:ID>A</ram:ID>
      <ram:PhysicalLogisticsShippingMarks><ram:Marking>Ring 0815</ram:Marking><ram:Marking>Chip 756</ram:Marking></ram:PhysicalLogisticsShippingMarks>
      <ram:OriginTradeCountry><ram:ID>US</ram:ID></ram:OriginTradeCountry>
      <ram:AssociatedReferencedDocument>
        <ram:IssueDateTime>2025-03-01</ram:IssueDateTime>
        <ram:TypeCode>861</ram:TypeCode>
        <ram:ID>25US123456</ram:ID>
      </ram:AssociatedReferencedDocument>
      <ram:TransportLogisticsPackage><ram:ItemQuantity unitCode="?">2</ram:ItemQuantity></ram:TransportLogisticsPackage>
      <ram:IncludedSupplyChainTradeLineItem>
        <ram:TypeCode>II</ram:TypeCode>
        <ram:TypeExtensionCode>C</ram:TypeExtensionCode>
        <ram:SpecifiedTradeProduct>
          <ram:Description>live, 1 male 1 female</ram:Description>
          <ram:TypeCode>LIV</ram:TypeCode>
          <ram:CommonName>American alligator</ram:CommonName>
          <ram:ScientificName>Alligator mississippiensis</ram:ScientificName>
          <ram:DesignatedProductClassification><ram:ClassCode listID="HS">010620</ram:ClassCode></ram:DesignatedProductClassification>
        </ram:SpecifiedTradeProduct>
      </ram:IncludedSupplyChainTradeLineItem>
      <ram:ExaminationTransportEvent>
        <ram:UnitQuantity>2</ram:UnitQuantity>
      </ram:ExaminationTransportEvent>
      <ram:ApplicableCrossBorderRegulatoryProcedure>
        <ram:CategoryCode></ram:CategoryCode>
        <ram:UsedToDateQuotaQuantity unitCode="?">12</ram:UsedToDateQuotaQuantity>
        <ram:AnnualQuotaQuantity>100</ram:AnnualQuotaQuantity>
        <ram:AcquisitionDateTime>2020-05-01</ram:AcquisitionDateTime>
        <ram:PreviousReferencedDocument><ram:ID>A-US-501</ram:ID></ram:PreviousReferencedDocument>
      </ram:ApplicableCrossBorderRegulatoryProcedure>
    </ram:IncludedSupplyChainConsignmentItem>
    <ram:ImportTradeCountry><ram:ID>DE</ram:ID></ram:ImportTradeCountry>
  </rsm:SpecifiedSupplyChainConsignment>
</rsm:CITESEPermit>
"#;

fn read_every_box() -> Permit {
    let read = read_document("application/xml", EVERY_BOX_V2.as_bytes()).expect("reads");
    assert_eq!(read.format, DocumentFormat::XmlV2);
    read.permit
}

#[test]
fn every_box_header_is_read() {
    let permit = read_every_box();
    assert_eq!(permit.document_type, DocumentType::CertificateOfOrigin);
    assert_eq!(permit.other_document_type, None);
    assert_eq!(permit.permit_number, "26CH000123/B");
    assert_eq!(permit.issuing_country, party("CH"));
    assert!(permit.copy);
    assert_eq!(permit.issue_date, date("2026-12-01"));
    assert_eq!(permit.valid_from, Some(date("2026-12-02")));
    assert_eq!(permit.valid_until, date("2027-11-30"));
    assert_eq!(permit.purpose, PurposeCode::Z);
    assert_eq!(permit.purpose_text.as_deref(), Some("Zoo exchange"));
    assert_eq!(
        permit.special_conditions.as_deref(),
        Some("Replaces 26CH000100 (lost).\nShip in IATA crates.")
    );
    assert_eq!(permit.security_stamp.as_deref(), Some("STAMP-0042"));
    let authority = permit.management_authority.as_ref().expect("Box 6");
    assert_eq!(authority.name, "Federal Food Safety and Veterinary Office");
    assert_eq!(authority.city.as_deref(), Some("Bern"));
    assert_eq!(authority.country, party("CH"));
    assert_eq!(
        permit.applicant_signature,
        Some(Signature {
            name: "Anna Applicant".to_owned(),
            date: Some(date("2026-11-28")),
        })
    );
    assert_eq!(
        permit.issued_by,
        Some(Signature {
            name: "Otto Officer".to_owned(),
            date: Some(date("2026-12-01")),
        })
    );
    assert_eq!(permit.issue_place.as_deref(), Some("Bern"));
    assert_eq!(
        permit.transport_document.as_deref(),
        Some("AWB 724-12345675")
    );
}

#[test]
fn every_box_parties_are_read() {
    let permit = read_every_box();
    let exporter = &permit.exporter;
    assert_eq!(exporter.name, "Reptilien AG");
    assert_eq!(exporter.address.as_deref(), Some("Hauptstrasse 1\nHof B"));
    assert_eq!(exporter.post_office_box.as_deref(), Some("PO 12"));
    assert_eq!(exporter.postcode.as_deref(), Some("4051"));
    assert_eq!(exporter.city.as_deref(), Some("Basel"));
    assert_eq!(exporter.subdivision.as_deref(), Some("Basel-Stadt"));
    assert_eq!(exporter.country, party("CH"));
    // The consignee has no CountryID, so the consignment's import country applies.
    assert_eq!(permit.importer.country, party("DE"));
}

#[test]
fn every_box_line_is_read() {
    let permit = read_every_box();
    let line = &permit.lines[0];
    assert_eq!(line.marks, ["Ring 0815", "Chip 756"]);
    assert_eq!(line.description.as_deref(), Some("live, 1 male 1 female"));
    assert_eq!(line.term.as_str(), "LIV");
    assert_eq!(line.quantity, 2.0);
    assert_eq!(line.unit, None, "unitCode=\"?\" is a placeholder");
    assert_eq!(line.hs_code.as_deref(), Some("010620"));
    assert_eq!(
        line.origin.as_ref().and_then(|o| o.number.as_deref()),
        Some("25US123456")
    );
    assert_eq!(
        line.origin.as_ref().and_then(|o| o.country),
        Some(party("US"))
    );
    assert_eq!(line.last_re_export, None);
    assert_eq!(
        line.quota,
        Some(QuotaUse {
            used_to_date: Some(Measure {
                quantity: 12.0,
                unit: None
            }),
            annual_quota: Some(Measure {
                quantity: 100.0,
                unit: None
            }),
        })
    );
    assert_eq!(line.acquisition_date, Some(date("2020-05-01")));
    assert_eq!(line.operation_number.as_deref(), Some("A-US-501"));
    // Port, date and officer come from the consignment's examination event.
    assert_eq!(
        line.export_endorsement,
        Some(Endorsement {
            exported: Some(Measure {
                quantity: 2.0,
                unit: None
            }),
            port: Some("CHZRH".to_owned()),
            date: Some(date("2026-12-10")),
            officer: Some("C. Customs".to_owned()),
        })
    );
}

#[test]
fn every_box_survives_a_round_trip() {
    let permit = read_every_box();
    let again = read_xml(write_xml_v2(&permit).as_bytes()).expect("reads");
    assert_eq!(again.permit, permit);
}

#[test]
fn other_document_type_keeps_its_name() {
    let xml = EVERY_BOX_V2.replace("Certificate of origin", "Scientific exchange label");
    let permit = read_xml(xml.as_bytes()).expect("reads").permit;
    assert_eq!(permit.document_type, DocumentType::Other);
    assert_eq!(
        permit.other_document_type.as_deref(),
        Some("Scientific exchange label")
    );
    let again = read_xml(write_xml_v2(&permit).as_bytes()).expect("reads");
    assert_eq!(again.permit, permit);
}

/// A toolkit v1 message in a SOAP envelope with an unqualified root, as EPIX sends it.
const V1_IN_SOAP: &str = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:v1="urn:CitesDataExchange/v1/" xmlns:urn="urn:un:unece:uncefact:data:draft:CBFShip:1"
    xmlns:urn1="urn:un:unece:uncefact:data:draft:ReusableAggregateBusinessInformationEntity:1">
  <soapenv:Header/>
  <soapenv:Body>
    <v1:GetNonFinalCitesCertificateResponse>
      <CBFShip>
        <urn:HeaderExchangedDocument>
          <urn1:ID>26FR000777</urn1:ID>
          <urn1:TypeCode>E</urn1:TypeCode>
          <urn1:IssueDateTime>2026-12-01T12:00:00.00+01:00</urn1:IssueDateTime>
          <urn1:PurposeCode>T</urn1:PurposeCode>
          <urn1:EffectiveSpecifiedPeriod>
            <urn1:EndDateTime>2027-05-31T12:00:00.000+02:00</urn1:EndDateTime>
          </urn1:EffectiveSpecifiedPeriod>
          <urn1:FirstSignatoryDocumentAuthentication>
            <urn1:TypeCode>A</urn1:TypeCode>
            <urn1:ProviderTradeParty>
              <urn1:Name>Ministere de la Transition ecologique</urn1:Name>
              <urn1:PostalTradeAddress>
                <urn1:CountryIdentificationTradeCountry><urn1:ID>FR</urn1:ID><urn1:Name>France</urn1:Name></urn1:CountryIdentificationTradeCountry>
              </urn1:PostalTradeAddress>
            </urn1:ProviderTradeParty>
          </urn1:FirstSignatoryDocumentAuthentication>
        </urn:HeaderExchangedDocument>
        <urn:SpecifiedSupplyChainConsignment>
          <urn1:ConsignorTradeParty>
            <urn1:Name>Maroquinerie SA</urn1:Name>
            <urn1:PostalTradeAddress>
              <urn1:CityName>Paris</urn1:CityName>
              <urn1:CountryIdentificationTradeCountry>
                <urn1:ID>FR</urn1:ID>
                <urn1:SubordinateTradeCountrySubDivision><urn1:Name>Ile-de-France</urn1:Name></urn1:SubordinateTradeCountrySubDivision>
              </urn1:CountryIdentificationTradeCountry>
            </urn1:PostalTradeAddress>
          </urn1:ConsignorTradeParty>
          <urn1:ConsigneeTradeParty>
            <urn1:Name>Uhren AG</urn1:Name>
            <urn1:PostalTradeAddress>
              <urn1:CountryIdentificationTradeCountry><urn1:ID>CH</urn1:ID></urn1:CountryIdentificationTradeCountry>
            </urn1:PostalTradeAddress>
          </urn1:ConsigneeTradeParty>
          <urn1:IncludedSupplyChainConsignmentItem>
            <urn1:ID>A</urn1:ID>
            <urn1:TransportLogisticsPackage><urn1:ItemQuantity unitCode="PCS">50</urn1:ItemQuantity></urn1:TransportLogisticsPackage>
            <urn1:IncludedSupplyChainTradeLineItem>
              <urn1:TypeCode>II</urn1:TypeCode>
              <urn1:TypeExtensionCode>C</urn1:TypeExtensionCode>
              <urn1:SpecifiedTradeProduct>
                <urn1:TypeCode>LPS</urn1:TypeCode>
                <urn1:ScientificName>Alligator mississippiensis</urn1:ScientificName>
              </urn1:SpecifiedTradeProduct>
            </urn1:IncludedSupplyChainTradeLineItem>
            <urn1:ExaminationTransportEvent>
              <urn1:InspectedUnitQuantity unitCode="PCS">48</urn1:InspectedUnitQuantity>
            </urn1:ExaminationTransportEvent>
            <urn1:ApplicableCrossBorderGovernmentProcedure>
              <urn1:AnnualQuotaQuantity unitCode="PCS">5000</urn1:AnnualQuotaQuantity>
            </urn1:ApplicableCrossBorderGovernmentProcedure>
          </urn1:IncludedSupplyChainConsignmentItem>
        </urn:SpecifiedSupplyChainConsignment>
      </CBFShip>
    </v1:GetNonFinalCitesCertificateResponse>
  </soapenv:Body>
</soapenv:Envelope>"#;

#[test]
fn v1_message_is_read() {
    let read = read_document("application/xml", V1_IN_SOAP.as_bytes()).expect("reads");
    assert_eq!(read.format, DocumentFormat::XmlV1);
    let permit = read.permit;
    assert_eq!(permit.document_type, DocumentType::Export);
    assert_eq!(permit.permit_number, "26FR000777");
    assert_eq!(permit.issuing_country, party("FR"));
    assert_eq!(permit.valid_until, date("2027-05-31"));
    assert_eq!(permit.exporter.country, party("FR"));
    assert_eq!(
        permit.exporter.subdivision.as_deref(),
        Some("Ile-de-France")
    );
    assert_eq!(permit.importer.country, party("CH"));
    let line = &permit.lines[0];
    assert_eq!(line.quantity, 50.0);
    let exported = line
        .export_endorsement
        .as_ref()
        .and_then(|e| e.exported)
        .expect("InspectedUnitQuantity");
    assert_eq!(exported.quantity, 48.0);
    let annual = line.quota.and_then(|q| q.annual_quota).expect("quota");
    assert_eq!(annual.quantity, 5000.0);
}

#[test]
fn v1_converts_to_v2() {
    let permit = read_xml(V1_IN_SOAP.as_bytes()).expect("reads").permit;
    let v2 = read_xml(write_xml_v2(&permit).as_bytes()).expect("reads");
    assert_eq!(v2.permit, permit);
}

#[test]
fn mapping_problems_are_all_listed_with_paths() {
    let xml = EVERY_BOX_V2
        .replace("<ram:ID>26CH000123/B</ram:ID>", "")
        .replace(
            "<ram:PurposeCode>Z</ram:PurposeCode>",
            "<ram:PurposeCode>K</ram:PurposeCode>",
        )
        .replace(
            "<ram:TypeCode>II</ram:TypeCode>",
            "<ram:TypeCode>IV</ram:TypeCode>",
        )
        .replace(">2</ram:ItemQuantity>", ">-2</ram:ItemQuantity>")
        .replace("2027-11-30", "30/11/2027");
    let problems = read_xml(xml.as_bytes()).expect_err("invalid");
    let expected = [
        (
            ErrorCode::FieldMissing,
            "xml:/CITESEPermit/HeaderExchangedDocument/ID",
        ),
        (
            ErrorCode::CodeUnknown,
            "xml:/CITESEPermit/HeaderExchangedDocument/PurposeCode",
        ),
        (
            ErrorCode::DateInvalid,
            "xml:/CITESEPermit/HeaderExchangedDocument/EffectiveSpecifiedPeriod/EndDateTime",
        ),
        (
            ErrorCode::CodeUnknown,
            "xml:/CITESEPermit/SpecifiedSupplyChainConsignment/IncludedSupplyChainConsignmentItem[1]/IncludedSupplyChainTradeLineItem/TypeCode",
        ),
        (
            ErrorCode::QuantityNotPositive,
            "xml:/CITESEPermit/SpecifiedSupplyChainConsignment/IncludedSupplyChainConsignmentItem[1]/TransportLogisticsPackage/ItemQuantity",
        ),
    ];
    for (code, path) in expected {
        assert!(
            problems
                .iter()
                .any(|p| p.code == code && p.pointer.as_deref() == Some(path)),
            "{code} at {path} missing from {problems:#?}"
        );
    }
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
}

#[test]
fn unreadable_documents_get_one_clear_problem() {
    let other_namespace = EVERY_BOX_V2.replace(
        "urn:un:unece:uncefact:data:standard:CITESEPermit:2",
        "urn:example:permit:9",
    );
    let fault = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>CertificateMissing</faultstring></s:Fault></s:Body></s:Envelope>"#;
    let cases: [(&str, &str, ErrorCode); 6] = [
        (
            "unknown namespace",
            &other_namespace,
            ErrorCode::DocumentNamespaceUnknown,
        ),
        (
            "other root",
            "<Invoice/>",
            ErrorCode::DocumentNamespaceUnknown,
        ),
        ("SOAP fault", fault, ErrorCode::DocumentMalformed),
        (
            "truncated",
            &EVERY_BOX_V2[..500],
            ErrorCode::DocumentMalformed,
        ),
        (
            "external entity",
            r#"<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><CITESEPermit>&x;</CITESEPermit>"#,
            ErrorCode::DocumentDtdForbidden,
        ),
        ("empty permit", "<CITESEPermit/>", ErrorCode::FieldMissing),
    ];
    for (case, xml, code) in cases {
        let problems = read_document("application/xml", xml.as_bytes()).expect_err(case);
        assert_eq!(problems[0].code, code, "{case}: {problems:?}");
    }
}

#[test]
fn oversized_xml_is_rejected_before_parsing() {
    let padding = " ".repeat(epix_shared::envelope::MAX_BODY_BYTES);
    let xml = format!("{EVERY_BOX_V2}{padding}");
    let problems = read_document("application/xml", xml.as_bytes()).expect_err("too large");
    assert_eq!(problems[0].code, ErrorCode::BodyTooLarge);
}
