//! Translates JSON pointers of validation problems into the XML paths of the document a
//! Party sent, so that a problem in an XML permit points at the element to fix.

use super::XmlVersion;

const HEADER: &str = "HeaderExchangedDocument";
const CONSIGNMENT: &str = "SpecifiedSupplyChainConsignment";
const AUTHORITY: &str =
    "HeaderExchangedDocument/FirstSignatoryDocumentAuthentication/ProviderTradeParty";

/// Returns the `xml:/…` path for a JSON pointer into a permit read from XML of this version,
/// or `None` for a pointer with no single element.
pub fn xml_path(pointer: &str, version: XmlVersion) -> Option<String> {
    let (root, country) = match version {
        XmlVersion::V2 => ("CITESEPermit", "PostalTradeAddress/CountryID"),
        XmlVersion::V1 => (
            "CBFShip",
            "PostalTradeAddress/CountryIdentificationTradeCountry/ID",
        ),
    };
    let relative = match pointer {
        "/permit_number" => format!("{HEADER}/ID"),
        "/document_type" => format!("{HEADER}/TypeCode"),
        "/other_document_type" => format!("{HEADER}/Name"),
        "/issue_date" => format!("{HEADER}/IssueDateTime"),
        "/valid_from" => format!("{HEADER}/EffectiveSpecifiedPeriod/StartDateTime"),
        "/valid_until" => format!("{HEADER}/EffectiveSpecifiedPeriod/EndDateTime"),
        "/purpose_text" => format!("{HEADER}/Purpose"),
        "/applicant_signature" => format!("{HEADER}/SecondSignatoryDocumentAuthentication"),
        "/issuing_country" | "/management_authority/country" => format!("{AUTHORITY}/{country}"),
        "/importer/country" => format!("{CONSIGNMENT}/ConsigneeTradeParty/{country}"),
        "/exporter/country" => format!("{CONSIGNMENT}/ConsignorTradeParty/{country}"),
        other => line_path(other, version)?,
    };
    Some(format!("xml:/{root}/{relative}"))
}

fn line_path(pointer: &str, version: XmlVersion) -> Option<String> {
    let rest = pointer.strip_prefix("/lines/")?;
    let (index, field) = match rest.split_once('/') {
        Some((index, field)) => (index, Some(field)),
        None => (rest, None),
    };
    let position = index.parse::<usize>().ok()? + 1;
    let item = format!("{CONSIGNMENT}/IncludedSupplyChainConsignmentItem[{position}]");
    let (examined, procedure) = match version {
        XmlVersion::V2 => ("UnitQuantity", "ApplicableCrossBorderRegulatoryProcedure"),
        XmlVersion::V1 => (
            "InspectedUnitQuantity",
            "ApplicableCrossBorderGovernmentProcedure",
        ),
    };
    let element = match field {
        None => return Some(item),
        Some("block") => "ID".to_owned(),
        Some("scientific_name") => {
            "IncludedSupplyChainTradeLineItem/SpecifiedTradeProduct/ScientificName".to_owned()
        }
        Some("term") => {
            "IncludedSupplyChainTradeLineItem/SpecifiedTradeProduct/TypeCode".to_owned()
        }
        Some("appendix") => "IncludedSupplyChainTradeLineItem/TypeCode".to_owned(),
        Some("source") => "IncludedSupplyChainTradeLineItem/TypeExtensionCode".to_owned(),
        Some("quantity") => "TransportLogisticsPackage/ItemQuantity".to_owned(),
        Some("unit") => "TransportLogisticsPackage/ItemQuantity/@unitCode".to_owned(),
        Some("origin/country") => "OriginTradeCountry/ID".to_owned(),
        Some("last_re_export/country") => "ExportTradeCountry/ID".to_owned(),
        Some("export_endorsement/exported/quantity") => {
            format!("ExaminationTransportEvent/{examined}")
        }
        Some("export_endorsement/exported/unit") => {
            format!("ExaminationTransportEvent/{examined}/@unitCode")
        }
        Some("quota/used_to_date/quantity") => format!("{procedure}/UsedToDateQuotaQuantity"),
        Some("quota/used_to_date/unit") => {
            format!("{procedure}/UsedToDateQuotaQuantity/@unitCode")
        }
        Some("quota/annual_quota/quantity") => format!("{procedure}/AnnualQuotaQuantity"),
        Some("quota/annual_quota/unit") => format!("{procedure}/AnnualQuotaQuantity/@unitCode"),
        Some(_) => return None,
    };
    Some(format!("{item}/{element}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_map_to_element_paths() {
        let cases = [
            (
                "/valid_until",
                XmlVersion::V2,
                Some(
                    "xml:/CITESEPermit/HeaderExchangedDocument/EffectiveSpecifiedPeriod/EndDateTime",
                ),
            ),
            (
                "/importer/country",
                XmlVersion::V1,
                Some(
                    "xml:/CBFShip/SpecifiedSupplyChainConsignment/ConsigneeTradeParty/PostalTradeAddress/CountryIdentificationTradeCountry/ID",
                ),
            ),
            (
                "/lines/1/unit",
                XmlVersion::V2,
                Some(
                    "xml:/CITESEPermit/SpecifiedSupplyChainConsignment/IncludedSupplyChainConsignmentItem[2]/TransportLogisticsPackage/ItemQuantity/@unitCode",
                ),
            ),
            (
                "/lines/0",
                XmlVersion::V2,
                Some(
                    "xml:/CITESEPermit/SpecifiedSupplyChainConsignment/IncludedSupplyChainConsignmentItem[1]",
                ),
            ),
            ("/lines/x/unit", XmlVersion::V2, None),
            ("/colour", XmlVersion::V2, None),
        ];
        for (pointer, version, expected) in cases {
            assert_eq!(xml_path(pointer, version).as_deref(), expected, "{pointer}");
        }
    }
}
