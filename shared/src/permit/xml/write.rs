//! Writes the model as a bare CITES ePermit toolkit v2 message (`rsm:CITESEPermit`).
//!
//! The element order follows the toolkit v2 tree as the EPIX samples use it. Dates are
//! written as plain `YYYY-MM-DD` dates because the boxes hold calendar days.

use chrono::NaiveDate;
use quick_xml::escape::escape;

use super::read::{ORIGIN_DOCUMENT_CODE, RE_EXPORT_DOCUMENT_CODE};
use super::{RAM_NAMESPACE, V2_NAMESPACE, certificate_label};
use crate::permit::DocumentType;
use crate::permit::model::{
    DocumentReference, Endorsement, LineItem, Measure, Permit, Signature, Trader,
};

/// Writes a permit as CITES ePermit XML, toolkit v2, with an XML declaration.
pub fn write_xml_v2(permit: &Permit) -> String {
    let mut out = Out::default();
    out.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.raw(&format!(
        "<rsm:CITESEPermit xmlns:rsm=\"{V2_NAMESPACE}\" xmlns:ram=\"{RAM_NAMESPACE}\">\n"
    ));
    out.depth = 1;
    context(&mut out);
    header(&mut out, permit);
    consignment(&mut out, permit);
    out.raw("</rsm:CITESEPermit>\n");
    out.text
}

#[derive(Default)]
struct Out {
    text: String,
    depth: usize,
}

impl Out {
    fn raw(&mut self, text: &str) {
        self.text.push_str(text);
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.text.push_str("  ");
        }
    }

    fn open(&mut self, name: &str) {
        self.indent();
        self.text.push('<');
        self.text.push_str(name);
        self.text.push_str(">\n");
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth -= 1;
        self.indent();
        self.text.push_str("</");
        self.text.push_str(name);
        self.text.push_str(">\n");
    }

    fn leaf_with(&mut self, name: &str, attributes: &[(&str, &str)], value: &str) {
        self.indent();
        self.text.push('<');
        self.text.push_str(name);
        for (key, attribute) in attributes {
            self.text.push(' ');
            self.text.push_str(key);
            self.text.push_str("=\"");
            self.text.push_str(&escape(*attribute));
            self.text.push('"');
        }
        self.text.push('>');
        self.text.push_str(&escape(value));
        self.text.push_str("</");
        self.text.push_str(name);
        self.text.push_str(">\n");
    }

    fn leaf(&mut self, name: &str, value: &str) {
        self.leaf_with(name, &[], value);
    }

    fn optional(&mut self, name: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.leaf(name, value);
        }
    }

    fn date(&mut self, name: &str, date: Option<NaiveDate>) {
        if let Some(date) = date {
            self.leaf(name, &date.format("%Y-%m-%d").to_string());
        }
    }

    fn measure(&mut self, name: &str, measure: &Measure) {
        let quantity = measure.quantity.to_string();
        match measure.unit {
            Some(unit) => self.leaf_with(name, &[("unitCode", unit.as_str())], &quantity),
            None => self.leaf(name, &quantity),
        }
    }

    /// Writes multi-line text as one element per line, as the toolkit repeats such elements.
    fn lines(&mut self, name: &str, text: Option<&str>) {
        for line in text.into_iter().flat_map(str::lines) {
            self.leaf(name, line);
        }
    }
}

fn context(out: &mut Out) {
    out.open("rsm:SpecifiedExchangedDocumentContext");
    out.open("ram:BusinessProcessSpecifiedDocumentContextParameter");
    out.leaf("ram:ID", "1");
    out.leaf("ram:Value", "CITES PERMITTING");
    out.close("ram:BusinessProcessSpecifiedDocumentContextParameter");
    out.close("rsm:SpecifiedExchangedDocumentContext");
}

fn header(out: &mut Out, permit: &Permit) {
    out.open("rsm:HeaderExchangedDocument");
    out.leaf("ram:ID", &permit.permit_number);
    let (code, name) = match permit.document_type {
        DocumentType::Export => ("E", None),
        DocumentType::ReExport => ("R", None),
        DocumentType::Import => ("I", None),
        DocumentType::Other => ("O", permit.other_document_type.as_deref()),
        certificate => ("O", certificate_label(certificate)),
    };
    out.optional("ram:Name", name);
    out.leaf_with("ram:TypeCode", &[("listID", "1001")], code);
    out.date("ram:IssueDateTime", Some(permit.issue_date));
    out.leaf(
        "ram:CopyIndicator",
        if permit.copy { "true" } else { "false" },
    );
    out.optional("ram:Purpose", permit.purpose_text.as_deref());
    out.leaf("ram:PurposeCode", permit.purpose.as_str());
    out.lines("ram:Information", permit.special_conditions.as_deref());
    out.open("ram:EffectiveSpecifiedPeriod");
    out.date("ram:StartDateTime", permit.valid_from);
    out.date("ram:EndDateTime", Some(permit.valid_until));
    out.close("ram:EffectiveSpecifiedPeriod");
    if let Some(place) = &permit.issue_place {
        out.open("ram:IssueLogisticsLocation");
        out.leaf("ram:Name", place);
        out.close("ram:IssueLogisticsLocation");
    }

    out.open("ram:FirstSignatoryDocumentAuthentication");
    out.leaf("ram:TypeCode", "A");
    out.optional("ram:ID", permit.security_stamp.as_deref());
    match &permit.management_authority {
        Some(authority) => party(out, "ram:ProviderTradeParty", authority),
        None => {
            // The issuing country is kept even when the authority has no name.
            out.open("ram:ProviderTradeParty");
            out.open("ram:PostalTradeAddress");
            out.leaf("ram:CountryID", permit.issuing_country.as_str());
            out.close("ram:PostalTradeAddress");
            out.close("ram:ProviderTradeParty");
        }
    }
    out.close("ram:FirstSignatoryDocumentAuthentication");
    signatory(
        out,
        "ram:SecondSignatoryDocumentAuthentication",
        "B",
        permit.applicant_signature.as_ref(),
    );
    signatory(
        out,
        "ram:ThirdSignatoryDocumentAuthentication",
        "C",
        permit.issued_by.as_ref(),
    );
    out.close("rsm:HeaderExchangedDocument");
}

fn signatory(out: &mut Out, name: &str, type_code: &str, signature: Option<&Signature>) {
    let Some(signature) = signature else {
        return;
    };
    out.open(name);
    out.leaf("ram:TypeCode", type_code);
    out.date("ram:ActualDateTime", signature.date);
    out.open("ram:ProviderTradeParty");
    out.open("ram:SpecifiedAuthoritativeSignatoryPerson");
    out.leaf("ram:Name", &signature.name);
    out.close("ram:SpecifiedAuthoritativeSignatoryPerson");
    out.close("ram:ProviderTradeParty");
    out.close(name);
}

fn party(out: &mut Out, name: &str, trader: &Trader) {
    out.open(name);
    out.leaf("ram:Name", &trader.name);
    out.open("ram:PostalTradeAddress");
    out.optional("ram:PostcodeCode", trader.postcode.as_deref());
    out.optional("ram:PostOfficeBox", trader.post_office_box.as_deref());
    out.lines("ram:StreetName", trader.address.as_deref());
    out.optional("ram:CityName", trader.city.as_deref());
    out.leaf("ram:CountryID", trader.country.as_str());
    out.optional("ram:CountrySubDivisionName", trader.subdivision.as_deref());
    out.close("ram:PostalTradeAddress");
    out.close(name);
}

fn consignment(out: &mut Out, permit: &Permit) {
    out.open("rsm:SpecifiedSupplyChainConsignment");
    party(out, "ram:ConsignorTradeParty", &permit.exporter);
    party(out, "ram:ConsigneeTradeParty", &permit.importer);
    if let Some(document) = &permit.transport_document {
        out.open("ram:TransportContractReferencedDocument");
        out.leaf("ram:ID", document);
        out.close("ram:TransportContractReferencedDocument");
    }
    for (index, line) in permit.lines.iter().enumerate() {
        item(out, &permit.block_id(index), line);
    }
    out.open("ram:ImportTradeCountry");
    out.leaf("ram:ID", permit.importer.country.as_str());
    out.close("ram:ImportTradeCountry");
    out.close("rsm:SpecifiedSupplyChainConsignment");
}

fn item(out: &mut Out, block: &str, line: &LineItem) {
    out.open("ram:IncludedSupplyChainConsignmentItem");
    if line.block.is_some() {
        out.leaf("ram:ID", block);
    }
    if !line.marks.is_empty() {
        out.open("ram:PhysicalLogisticsShippingMarks");
        for mark in &line.marks {
            out.leaf("ram:Marking", mark);
        }
        out.close("ram:PhysicalLogisticsShippingMarks");
    }
    trade_country(out, "ram:OriginTradeCountry", line.origin.as_ref());
    trade_country(out, "ram:ExportTradeCountry", line.last_re_export.as_ref());
    reference(out, ORIGIN_DOCUMENT_CODE, line.origin.as_ref());
    reference(out, RE_EXPORT_DOCUMENT_CODE, line.last_re_export.as_ref());
    out.open("ram:TransportLogisticsPackage");
    out.measure(
        "ram:ItemQuantity",
        &Measure {
            quantity: line.quantity,
            unit: line.unit,
        },
    );
    out.close("ram:TransportLogisticsPackage");

    out.open("ram:IncludedSupplyChainTradeLineItem");
    out.leaf("ram:TypeCode", line.appendix.as_str());
    out.leaf("ram:TypeExtensionCode", line.source.as_str());
    out.open("ram:SpecifiedTradeProduct");
    out.lines("ram:Description", line.description.as_deref());
    out.leaf("ram:TypeCode", line.term.as_str());
    out.lines("ram:CommonName", line.common_name.as_deref());
    out.leaf("ram:ScientificName", &line.scientific_name);
    if let Some(hs_code) = &line.hs_code {
        // NOTE: the EPIX samples carry no HS code, so this element follows the UN/CEFACT
        // product classification and may be unknown to other readers.
        out.open("ram:DesignatedProductClassification");
        out.leaf_with("ram:ClassCode", &[("listID", "HS")], hs_code);
        out.close("ram:DesignatedProductClassification");
    }
    out.close("ram:SpecifiedTradeProduct");
    out.close("ram:IncludedSupplyChainTradeLineItem");

    if let Some(endorsement) = &line.export_endorsement {
        examination(out, endorsement);
    }
    let has_procedure =
        line.quota.is_some() || line.acquisition_date.is_some() || line.operation_number.is_some();
    if has_procedure {
        out.open("ram:ApplicableCrossBorderRegulatoryProcedure");
        if let Some(quota) = &line.quota {
            if let Some(used) = &quota.used_to_date {
                out.measure("ram:UsedToDateQuotaQuantity", used);
            }
            if let Some(annual) = &quota.annual_quota {
                out.measure("ram:AnnualQuotaQuantity", annual);
            }
        }
        out.date("ram:AcquisitionDateTime", line.acquisition_date);
        if let Some(number) = &line.operation_number {
            out.open("ram:PreviousReferencedDocument");
            out.leaf("ram:ID", number);
            out.close("ram:PreviousReferencedDocument");
        }
        out.close("ram:ApplicableCrossBorderRegulatoryProcedure");
    }
    out.close("ram:IncludedSupplyChainConsignmentItem");
}

fn trade_country(out: &mut Out, name: &str, reference: Option<&DocumentReference>) {
    if let Some(country) = reference.and_then(|r| r.country) {
        out.open(name);
        out.leaf("ram:ID", country.as_str());
        out.close(name);
    }
}

fn reference(out: &mut Out, type_code: &str, reference: Option<&DocumentReference>) {
    let Some(reference) = reference else {
        return;
    };
    if reference.number.is_none() && reference.date.is_none() {
        return;
    }
    out.open("ram:AssociatedReferencedDocument");
    out.date("ram:IssueDateTime", reference.date);
    out.leaf_with("ram:TypeCode", &[("listID", "1001")], type_code);
    out.optional("ram:ID", reference.number.as_deref());
    out.close("ram:AssociatedReferencedDocument");
}

fn examination(out: &mut Out, endorsement: &Endorsement) {
    out.open("ram:ExaminationTransportEvent");
    out.date("ram:ActualOccurrenceDateTime", endorsement.date);
    if let Some(exported) = &endorsement.exported {
        out.measure("ram:UnitQuantity", exported);
    }
    if let Some(port) = &endorsement.port {
        out.open("ram:OccurrenceLogisticsLocation");
        out.leaf("ram:ID", port);
        out.close("ram:OccurrenceLogisticsLocation");
    }
    if let Some(officer) = &endorsement.officer {
        out.open("ram:CertifyingTradeParty");
        out.open("ram:SpecifiedAuthoritativeSignatoryPerson");
        out.leaf("ram:Name", officer);
        out.close("ram:SpecifiedAuthoritativeSignatoryPerson");
        out.close("ram:CertifyingTradeParty");
    }
    out.close("ram:ExaminationTransportEvent");
}
