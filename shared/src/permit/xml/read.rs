//! Maps a CITES ePermit element tree, toolkit v1 or v2, onto the model.
//!
//! The reader accepts what real messages do: a SOAP envelope around the permit, a root
//! element without a namespace, `?` placeholders and empty elements for absent values, and a
//! `listID` that does not match its codes. Problems carry paths such as
//! `xml:/CITESEPermit/HeaderExchangedDocument/ID`.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime};

use super::dom::Element;
use super::{
    RAM_NAMESPACE_PREFIX, SOAP_11_NAMESPACE, SOAP_12_NAMESPACE, V1_NAMESPACE, V2_NAMESPACE,
    XmlVersion, certificate_type,
};
use crate::permit::DocumentType;
use crate::permit::codes::{Appendix, PurposeCode, SourceCode, TermCode, UnitCode};
use crate::permit::model::{
    DocumentReference, Endorsement, LineItem, Measure, Permit, QuotaUse, Signature, Trader,
};
use crate::{ErrorCode, PartyCode, Problem};

/// UN/CEFACT 1001 code of a referenced origin document (Box 12), as EPIX uses it.
pub const ORIGIN_DOCUMENT_CODE: &str = "861";
/// UN/CEFACT 1001 code of a referenced re-export document (Box 12a), as EPIX uses it.
pub const RE_EXPORT_DOCUMENT_CODE: &str = "811";

/// Finds the permit element in a document, inside a SOAP envelope or at the root, and
/// returns it with its toolkit version.
pub fn locate(root: &Element) -> Result<(&Element, XmlVersion), Problem> {
    let permit = if root.name() == "Envelope"
        && matches!(
            root.namespace.as_deref(),
            Some(SOAP_11_NAMESPACE | SOAP_12_NAMESPACE)
        ) {
        let body = root.child("Body").ok_or_else(|| {
            Problem::new(
                ErrorCode::FieldMissing,
                "SOAP envelope has no Body: expected a Body with a CITES ePermit",
            )
            .at("xml:/Envelope/Body")
        })?;
        if let Some(fault) = body.child("Fault") {
            let reason = fault
                .child("faultstring")
                .or_else(|| fault.child("Reason"))
                .map(|r| r.text.trim().to_owned())
                .unwrap_or_default();
            return Err(Problem::new(
                ErrorCode::DocumentMalformed,
                format!("SOAP message is a fault, not a permit: {reason}"),
            )
            .at("xml:/Envelope/Body/Fault"));
        }
        find_permit(body, 3).ok_or_else(|| {
            Problem::new(
                ErrorCode::DocumentNamespaceUnknown,
                "SOAP body holds no CITESEPermit or CBFShip element: expected a CITES ePermit",
            )
            .at("xml:/Envelope/Body")
        })?
    } else {
        root
    };
    let version = version_of(permit)?;
    Ok((permit, version))
}

fn find_permit(element: &Element, depth: usize) -> Option<&Element> {
    for child in &element.children {
        if child.name() == "CITESEPermit" || child.name() == "CBFShip" {
            return Some(child);
        }
    }
    if depth == 0 {
        return None;
    }
    element
        .children
        .iter()
        .find_map(|child| find_permit(child, depth - 1))
}

/// Detects the toolkit version by the root's namespace or, for an unqualified root as in the
/// EPIX samples, by its children's namespace.
fn version_of(permit: &Element) -> Result<XmlVersion, Problem> {
    let unknown = |namespace: &str| {
        Problem::new(
            ErrorCode::DocumentNamespaceUnknown,
            format!(
                "{} is in namespace {namespace:?}: expected {V2_NAMESPACE} (toolkit v2) or {V1_NAMESPACE} (toolkit v1)",
                permit.name()
            ),
        )
        .at(format!("xml:/{}", permit.name()))
        .with_value(namespace)
    };
    let by_namespace = |namespace: &str| match namespace {
        V2_NAMESPACE => Some(XmlVersion::V2),
        V1_NAMESPACE => Some(XmlVersion::V1),
        _ => None,
    };
    if permit.name() != "CITESEPermit" && permit.name() != "CBFShip" {
        return Err(Problem::new(
            ErrorCode::DocumentNamespaceUnknown,
            format!(
                "root element {} is not a CITES ePermit: expected CITESEPermit (toolkit v2) or CBFShip (toolkit v1)",
                permit.name()
            ),
        )
        .at(format!("xml:/{}", permit.name()))
        .with_value(permit.name()));
    }
    if let Some(namespace) = &permit.namespace {
        return by_namespace(namespace).ok_or_else(|| unknown(namespace));
    }
    let child_namespace = permit
        .children
        .iter()
        .find_map(|child| child.namespace.as_deref());
    match child_namespace {
        Some(namespace) if namespace.starts_with(RAM_NAMESPACE_PREFIX) => Ok(by_name(permit)),
        Some(namespace) => by_namespace(namespace).ok_or_else(|| unknown(namespace)),
        None => Ok(by_name(permit)),
    }
}

fn by_name(permit: &Element) -> XmlVersion {
    if permit.name() == "CBFShip" {
        XmlVersion::V1
    } else {
        XmlVersion::V2
    }
}

/// Returns the value of an element: its trimmed text, or `None` when it is empty or the
/// SoapUI placeholder `?`.
fn value(element: Option<&Element>) -> Option<&str> {
    let text = element?.text.trim();
    (!text.is_empty() && text != "?").then_some(text)
}

fn attribute<'a>(element: &'a Element, name: &str) -> Option<&'a str> {
    let text = element.attribute(name)?.trim();
    (!text.is_empty() && text != "?").then_some(text)
}

/// Parses an XML date or date-time and keeps the calendar date as written, in the sender's
/// offset.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.date_naive());
    }
    if let Ok(time) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(time.date());
    }
    let date_part = text.get(..10).unwrap_or(text);
    let offset_or_end = text.get(10..).unwrap_or("");
    let plain_date = offset_or_end.is_empty()
        || offset_or_end == "Z"
        || offset_or_end.starts_with('+')
        || offset_or_end.starts_with('-');
    if plain_date {
        return NaiveDate::parse_from_str(date_part, "%Y-%m-%d").ok();
    }
    None
}

/// One element being read, with its path.
#[derive(Clone, Copy)]
struct Node<'a> {
    element: Option<&'a Element>,
    path: &'a str,
}

pub struct Mapper {
    pub problems: Vec<Problem>,
    pub warnings: Vec<Problem>,
    version: XmlVersion,
}

impl Mapper {
    pub fn new(version: XmlVersion) -> Self {
        Self {
            problems: Vec::new(),
            warnings: Vec::new(),
            version,
        }
    }

    fn missing(&mut self, path: String, expected: &str) {
        self.problems.push(
            Problem::new(
                ErrorCode::FieldMissing,
                format!("required element is missing or empty: expected {expected}"),
            )
            .at(path),
        );
    }

    fn invalid(&mut self, code: ErrorCode, path: String, value: &str, expected: &str) {
        self.problems.push(
            Problem::new(code, format!("invalid value: expected {expected}"))
                .at(path)
                .with_value(value),
        );
    }

    fn text(&self, parent: Option<&Element>, name: &str) -> Option<String> {
        value(parent?.child(name)).map(str::to_owned)
    }

    fn required_text(&mut self, parent: Node, name: &str, expected: &str) -> Option<String> {
        let found = self.text(parent.element, name);
        if found.is_none() {
            self.missing(format!("{}/{name}", parent.path), expected);
        }
        found
    }

    fn parsed<T: FromStr>(
        &mut self,
        parent: Node,
        name: &str,
        code: ErrorCode,
        expected: &str,
    ) -> Option<Option<T>> {
        let Some(text) = self.text(parent.element, name) else {
            return Some(None);
        };
        match text.parse::<T>() {
            Ok(parsed) => Some(Some(parsed)),
            Err(_) => {
                self.invalid(code, format!("{}/{name}", parent.path), &text, expected);
                None
            }
        }
    }

    fn date(&mut self, parent: Node, name: &str) -> Option<Option<NaiveDate>> {
        let Some(text) = self.text(parent.element, name) else {
            return Some(None);
        };
        match parse_date(&text) {
            Some(date) => Some(Some(date)),
            None => {
                self.invalid(
                    ErrorCode::DateInvalid,
                    format!("{}/{name}", parent.path),
                    &text,
                    "an XML date or date-time such as 2014-01-06T12:03:52+01:00",
                );
                None
            }
        }
    }

    fn required_date(&mut self, parent: Node, name: &str) -> Option<NaiveDate> {
        let date = self.date(parent, name)?;
        if date.is_none() {
            self.missing(format!("{}/{name}", parent.path), "a date");
        }
        date
    }

    /// Reads a quantity element with its `unitCode`; the outer `None` means invalid.
    fn measure(&mut self, parent: Node, name: &str, positive: bool) -> Option<Option<Measure>> {
        let path = format!("{}/{name}", parent.path);
        let Some(element) = parent.element.and_then(|p| p.child(name)) else {
            return Some(None);
        };
        let Some(text) = value(Some(element)) else {
            return Some(None);
        };
        let quantity = match text.parse::<f64>() {
            Ok(quantity) if quantity.is_finite() => quantity,
            _ => {
                self.invalid(ErrorCode::FieldInvalid, path, text, "a decimal number");
                return None;
            }
        };
        if positive && quantity <= 0.0 {
            self.invalid(
                ErrorCode::QuantityNotPositive,
                path,
                text,
                "a number greater than zero",
            );
            return None;
        }
        let unit = match attribute(element, "unitCode") {
            None => None,
            Some(code) => match code.parse::<UnitCode>() {
                Ok(unit) => Some(unit),
                Err(_) => {
                    self.invalid(
                        ErrorCode::CodeUnknown,
                        format!("{path}/@unitCode"),
                        code,
                        "a three-letter CITES unit code such as KIL or PCS",
                    );
                    return None;
                }
            },
        };
        Some(Some(Measure { quantity, unit }))
    }

    fn country(&mut self, parent: Node, name: &str) -> Option<Option<PartyCode>> {
        self.parsed(
            parent,
            name,
            ErrorCode::CodeUnknown,
            "an ISO 3166-1 alpha-2 country code such as CH",
        )
    }

    pub fn permit(&mut self, root: &Element) -> Option<Permit> {
        let root_path = format!("xml:/{}", root.name());
        let header_path = format!("{root_path}/HeaderExchangedDocument");
        let header = Node {
            element: root.child("HeaderExchangedDocument"),
            path: &header_path,
        };
        let consignment_path = format!("{root_path}/SpecifiedSupplyChainConsignment");
        let consignment = Node {
            element: root.child("SpecifiedSupplyChainConsignment"),
            path: &consignment_path,
        };
        if header.element.is_none() {
            self.missing(header_path.clone(), "the document header");
        }
        if consignment.element.is_none() {
            self.missing(consignment_path.clone(), "the consignment");
        }
        let (header_element, consignment_element) = (header.element?, consignment.element?);

        let permit_number = self.required_text(header, "ID", "the permit number");
        let (document_type, other_document_type) = self.document_type(header);
        let issue_date = self.required_date(header, "IssueDateTime");
        let copy = self
            .text(Some(header_element), "CopyIndicator")
            .is_some_and(|text| text == "true" || text == "1");
        let purpose_text = self.text(Some(header_element), "Purpose");
        let purpose = self.purpose(header);
        let special_conditions = join(header_element.children("Information"));
        let period_path = format!("{header_path}/EffectiveSpecifiedPeriod");
        let period = Node {
            element: header_element.child("EffectiveSpecifiedPeriod"),
            path: &period_path,
        };
        let valid_from = self.date(period, "StartDateTime");
        let valid_until = self.required_date(period, "EndDateTime");
        let issue_place = header_element
            .child("IssueLogisticsLocation")
            .and_then(|location| {
                value(location.child("Name")).or_else(|| value(location.child("ID")))
            })
            .map(str::to_owned);

        let authority_path = format!("{header_path}/FirstSignatoryDocumentAuthentication");
        let authority = Node {
            element: header_element.child("FirstSignatoryDocumentAuthentication"),
            path: &authority_path,
        };
        let security_stamp = self.text(authority.element, "ID");
        let authority_party = self.optional_trader(authority, "ProviderTradeParty");
        let applicant_signature = self.signature(header, "SecondSignatoryDocumentAuthentication");
        let issued_by = self.signature(header, "ThirdSignatoryDocumentAuthentication");

        let importer = self.trader(consignment, "ConsigneeTradeParty", "ImportTradeCountry");
        let exporter = self.trader(consignment, "ConsignorTradeParty", "ExportTradeCountry");
        let transport_document = consignment_element
            .child("TransportContractReferencedDocument")
            .and_then(|document| value(document.child("ID")))
            .map(str::to_owned);
        let shared_endorsement = self.endorsement(consignment, "ExaminationTransportEvent");
        let lines = self.lines(
            consignment_element,
            &consignment_path,
            shared_endorsement.flatten(),
        );

        let (importer, exporter, document_type) = (importer?, exporter?, document_type?);
        let authority_party = authority_party?;
        let issuing_country = authority_party
            .as_ref()
            .and_then(|party| party.0)
            .unwrap_or(match document_type {
                DocumentType::Import => importer.country,
                _ => exporter.country,
            });
        let management_authority = authority_party.and_then(|(country, text)| {
            text.map(|text| text.into_trader(country.unwrap_or(issuing_country)))
        });
        Some(Permit {
            document_type,
            other_document_type,
            permit_number: permit_number?,
            issuing_country,
            copy,
            valid_from: valid_from?,
            valid_until: valid_until?,
            importer,
            exporter,
            applicant_signature: applicant_signature?,
            special_conditions,
            purpose: purpose?,
            purpose_text,
            security_stamp,
            management_authority,
            lines: lines?,
            issue_place,
            issue_date: issue_date?,
            issued_by: issued_by?,
            transport_document,
        })
    }

    fn document_type(&mut self, header: Node) -> (Option<DocumentType>, Option<String>) {
        const EXPECTED: &str = "E (export), R (re-export), I (import) or O (other)";
        let Some(code) = self.required_text(header, "TypeCode", EXPECTED) else {
            return (None, None);
        };
        let name = self.text(header.element, "Name");
        let document_type = match code.to_ascii_uppercase().as_str() {
            "E" => DocumentType::Export,
            "R" => DocumentType::ReExport,
            "I" => DocumentType::Import,
            "O" => match name.as_deref().and_then(certificate_type) {
                Some(certificate) => return (Some(certificate), None),
                None => return (Some(DocumentType::Other), name),
            },
            _ => {
                self.invalid(
                    ErrorCode::CodeUnknown,
                    format!("{}/TypeCode", header.path),
                    &code,
                    EXPECTED,
                );
                return (None, None);
            }
        };
        (Some(document_type), None)
    }

    fn purpose(&mut self, header: Node) -> Option<PurposeCode> {
        const EXPECTED: &str = "a CITES purpose code such as T or S";
        let text = self.required_text(header, "PurposeCode", EXPECTED)?;
        let purpose = PurposeCode::parse(&text);
        if purpose.is_none() {
            self.invalid(
                ErrorCode::CodeUnknown,
                format!("{}/PurposeCode", header.path),
                &text,
                EXPECTED,
            );
        }
        purpose
    }

    /// Reads a party's postal address; the country comes from `CountryID` (v2) or
    /// `CountryIdentificationTradeCountry/ID` (v1).
    fn address(&mut self, party: Node) -> Option<(PartyText, Option<PartyCode>)> {
        let element = party.element?;
        let address_path = format!("{}/PostalTradeAddress", party.path);
        let address = element.child("PostalTradeAddress");
        let v1_country = address.and_then(|a| a.child("CountryIdentificationTradeCountry"));
        let country = match v1_country {
            Some(v1) => self.country(
                Node {
                    element: Some(v1),
                    path: &format!("{address_path}/CountryIdentificationTradeCountry"),
                },
                "ID",
            ),
            None => self.country(
                Node {
                    element: address,
                    path: &address_path,
                },
                "CountryID",
            ),
        };
        let subdivision = self.text(address, "CountrySubDivisionName").or_else(|| {
            let division = v1_country?.child("SubordinateTradeCountrySubDivision");
            self.text(division, "Name")
        });
        let text = PartyText {
            name: self.text(Some(element), "Name").unwrap_or_default(),
            address: address.and_then(|a| join(a.children("StreetName"))),
            post_office_box: self.text(address, "PostOfficeBox"),
            postcode: self.text(address, "PostcodeCode"),
            city: self.text(address, "CityName"),
            subdivision,
        };
        Some((text, country?))
    }

    /// Reads the importer or exporter, taking the country from the consignment's import or
    /// export country when the address has none.
    fn trader(&mut self, consignment: Node, name: &str, fallback: &str) -> Option<Trader> {
        let path = format!("{}/{name}", consignment.path);
        let party = Node {
            element: consignment.element.and_then(|c| c.child(name)),
            path: &path,
        };
        if party.element.is_none() {
            self.missing(path.clone(), "the party's name, address and country");
            return None;
        }
        let (text, country) = self.address(party)?;
        let fallback_path = format!("{}/{fallback}", consignment.path);
        let fallback_country = self.country(
            Node {
                element: consignment.element.and_then(|c| c.child(fallback)),
                path: &fallback_path,
            },
            "ID",
        )?;
        if text.name.is_empty() {
            self.missing(format!("{path}/Name"), "the party's name");
        }
        let Some(country) = country.or(fallback_country) else {
            self.missing(
                format!("{path}/PostalTradeAddress/CountryID"),
                "the party's country",
            );
            return None;
        };
        (!text.name.is_empty()).then(|| text.into_trader(country))
    }

    /// Reads the Management Authority. The outer `None` means invalid, and the inner pair
    /// contains its country and, when it has a name, the party.
    #[allow(clippy::type_complexity)]
    fn optional_trader(
        &mut self,
        signatory: Node,
        name: &str,
    ) -> Option<Option<(Option<PartyCode>, Option<PartyText>)>> {
        let path = format!("{}/{name}", signatory.path);
        let party = Node {
            element: signatory.element.and_then(|s| s.child(name)),
            path: &path,
        };
        if party.element.is_none() {
            return Some(None);
        }
        let (text, country) = self.address(party)?;
        let text = (!text.name.is_empty()).then_some(text);
        Some(Some((country, text)))
    }

    fn signature(&mut self, header: Node, name: &str) -> Option<Option<Signature>> {
        let Some(signatory) = header.element.and_then(|h| h.child(name)) else {
            return Some(None);
        };
        let path = format!("{}/{name}", header.path);
        let party = signatory.child("ProviderTradeParty");
        let signer = party
            .and_then(|p| p.child("SpecifiedAuthoritativeSignatoryPerson"))
            .and_then(|person| value(person.child("Name")))
            .or_else(|| value(party.and_then(|p| p.child("Name"))));
        let date = self.date(
            Node {
                element: Some(signatory),
                path: &path,
            },
            "ActualDateTime",
        )?;
        Some(signer.map(|name| Signature {
            name: name.to_owned(),
            date,
        }))
    }

    fn endorsement(&mut self, parent: Node, name: &str) -> Option<Option<Endorsement>> {
        let path = format!("{}/{name}", parent.path);
        let Some(event) = parent.element.and_then(|p| p.child(name)) else {
            return Some(None);
        };
        let node = Node {
            element: Some(event),
            path: &path,
        };
        let quantity_name = match self.version {
            XmlVersion::V1 => "InspectedUnitQuantity",
            XmlVersion::V2 => "UnitQuantity",
        };

        let exported = self.measure(node, quantity_name, true);
        let date = self.date(node, "ActualOccurrenceDateTime");
        let port = event
            .child("OccurrenceLogisticsLocation")
            .and_then(|location| {
                value(location.child("ID")).or_else(|| value(location.child("Name")))
            })
            .map(str::to_owned);
        let certifier = event.child("CertifyingTradeParty");
        let officer = certifier
            .and_then(|c| c.child("SpecifiedAuthoritativeSignatoryPerson"))
            .and_then(|person| value(person.child("Name")))
            .or_else(|| value(certifier.and_then(|c| c.child("Name"))))
            .map(str::to_owned);

        let endorsement = Endorsement {
            exported: exported?,
            port,
            date: date?,
            officer,
        };
        let empty = endorsement.exported.is_none()
            && endorsement.port.is_none()
            && endorsement.date.is_none()
            && endorsement.officer.is_none();
        Some((!empty).then_some(endorsement))
    }

    fn lines(
        &mut self,
        consignment: &Element,
        consignment_path: &str,
        shared_endorsement: Option<Endorsement>,
    ) -> Option<Vec<LineItem>> {
        let items: Vec<&Element> = consignment
            .children("IncludedSupplyChainConsignmentItem")
            .collect();
        if items.is_empty() {
            self.missing(
                format!("{consignment_path}/IncludedSupplyChainConsignmentItem"),
                "at least one consignment item (block)",
            );
            return None;
        }
        let mut lines = Vec::with_capacity(items.len());
        let mut all_read = true;
        for (index, item) in items.into_iter().enumerate() {
            let path = format!(
                "{consignment_path}/IncludedSupplyChainConsignmentItem[{}]",
                index + 1
            );
            match self.line(item, &path, shared_endorsement.as_ref()) {
                Some(line) => lines.push(line),
                None => all_read = false,
            }
        }
        all_read.then_some(lines)
    }

    fn line(
        &mut self,
        item: &Element,
        path: &str,
        shared_endorsement: Option<&Endorsement>,
    ) -> Option<LineItem> {
        let node = Node {
            element: Some(item),
            path,
        };
        let trade_path = format!("{path}/IncludedSupplyChainTradeLineItem");
        let trade = Node {
            element: item.child("IncludedSupplyChainTradeLineItem"),
            path: &trade_path,
        };
        let product_path = format!("{trade_path}/SpecifiedTradeProduct");
        let product = Node {
            element: trade.element.and_then(|t| t.child("SpecifiedTradeProduct")),
            path: &product_path,
        };
        let scientific_name =
            self.required_text(product, "ScientificName", "the taxon's scientific name");
        let term = self.required_code::<TermCode>(
            product,
            "TypeCode",
            "a three-letter CITES term code such as LIV or LPS",
            |text| text.parse().ok(),
        );
        let appendix =
            self.required_code(trade, "TypeCode", "appendix I, II or III", Appendix::parse);
        let source = self.required_code(
            trade,
            "TypeExtensionCode",
            "a CITES source code such as W or C",
            SourceCode::parse,
        );
        let package_path = format!("{path}/TransportLogisticsPackage");
        let package = Node {
            element: item.child("TransportLogisticsPackage"),
            path: &package_path,
        };
        let measure = self.measure(package, "ItemQuantity", true);
        if matches!(measure, Some(None)) {
            self.missing(
                format!("{package_path}/ItemQuantity"),
                "the quantity (Box 11)",
            );
        }
        let hs_code = product
            .element
            .and_then(|p| p.child("DesignatedProductClassification"))
            .and_then(|classification| value(classification.child("ClassCode")))
            .map(str::to_owned);
        let (origin, last_re_export) = self.references(node);
        let procedure_name = match self.version {
            XmlVersion::V1 => "ApplicableCrossBorderGovernmentProcedure",
            XmlVersion::V2 => "ApplicableCrossBorderRegulatoryProcedure",
        };
        let procedure_path = format!("{path}/{procedure_name}");
        let procedure = Node {
            element: item.child(procedure_name),
            path: &procedure_path,
        };
        let used_to_date = self.measure(procedure, "UsedToDateQuotaQuantity", false);
        let annual_quota = self.measure(procedure, "AnnualQuotaQuantity", false);
        let acquisition_date = self.date(procedure, "AcquisitionDateTime");
        let operation_number = procedure
            .element
            .and_then(|p| p.child("PreviousReferencedDocument"))
            .and_then(|document| value(document.child("ID")))
            .map(str::to_owned);
        let endorsement = self.endorsement(node, "ExaminationTransportEvent");

        let quota = match (used_to_date?, annual_quota?) {
            (None, None) => None,
            (used_to_date, annual_quota) => Some(QuotaUse {
                used_to_date,
                annual_quota,
            }),
        };
        let export_endorsement = match (endorsement?, shared_endorsement) {
            (Some(own), Some(shared)) => Some(Endorsement {
                exported: own.exported,
                port: own.port.or_else(|| shared.port.clone()),
                date: own.date.or(shared.date),
                officer: own.officer.or_else(|| shared.officer.clone()),
            }),
            (own, shared) => own.or_else(|| shared.cloned()),
        };
        let measure = measure??;
        Some(LineItem {
            block: self.text(Some(item), "ID"),
            scientific_name: scientific_name?,
            common_name: product.element.and_then(|p| join(p.children("CommonName"))),
            description: product
                .element
                .and_then(|p| join(p.children("Description"))),
            marks: item
                .children("PhysicalLogisticsShippingMarks")
                .flat_map(|marks| marks.children("Marking"))
                .filter_map(|marking| value(Some(marking)).map(str::to_owned))
                .collect(),
            term: term?,
            appendix: appendix?,
            source: source?,
            quantity: measure.quantity,
            unit: measure.unit,
            hs_code,
            quota,
            origin: origin?,
            last_re_export: last_re_export?,
            operation_number,
            acquisition_date: acquisition_date?,
            export_endorsement,
        })
    }

    fn required_code<T>(
        &mut self,
        parent: Node,
        name: &str,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let text = self.required_text(parent, name, expected)?;
        let code = parse(&text);
        if code.is_none() {
            self.invalid(
                ErrorCode::CodeUnknown,
                format!("{}/{name}", parent.path),
                &text,
                expected,
            );
        }
        code
    }

    /// Reads Boxes 12 and 12a: countries from `OriginTradeCountry` and `ExportTradeCountry`,
    /// documents from `AssociatedReferencedDocument` by their type code.
    #[allow(clippy::type_complexity)]
    fn references(
        &mut self,
        item: Node,
    ) -> (
        Option<Option<DocumentReference>>,
        Option<Option<DocumentReference>>,
    ) {
        let element = item.element;
        let country_of = |mapper: &mut Self, name: &str| {
            let path = format!("{}/{name}", item.path);
            mapper.country(
                Node {
                    element: element.and_then(|e| e.child(name)),
                    path: &path,
                },
                "ID",
            )
        };
        let origin_country = country_of(self, "OriginTradeCountry");
        let re_export_country = country_of(self, "ExportTradeCountry");
        let mut origin_document = Some((None, None));
        let mut re_export_document = Some((None, None));
        let documents = element
            .map(|e| {
                e.children("AssociatedReferencedDocument")
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        for (index, document) in documents.into_iter().enumerate() {
            let path = format!("{}/AssociatedReferencedDocument[{}]", item.path, index + 1);
            let node = Node {
                element: Some(document),
                path: &path,
            };
            let number = value(document.child("ID")).map(str::to_owned);
            let date = self.date(node, "IssueDateTime");
            let type_code = value(document.child("TypeCode")).unwrap_or("");
            let read = date.map(|date| (number, date));
            match type_code {
                ORIGIN_DOCUMENT_CODE => origin_document = read,
                RE_EXPORT_DOCUMENT_CODE => re_export_document = read,
                other => {
                    let empty = matches!(read, Some((None, None)));
                    if !empty {
                        self.warnings.push(
                            Problem::new(
                                ErrorCode::FieldUnknown,
                                format!(
                                    "referenced document is ignored: expected type code {ORIGIN_DOCUMENT_CODE} (origin) or {RE_EXPORT_DOCUMENT_CODE} (last re-export)"
                                ),
                            )
                            .at(format!("{path}/TypeCode"))
                            .with_value(other),
                        );
                    }
                }
            }
        }
        let combine =
            |country: Option<Option<PartyCode>>,
             document: Option<(Option<String>, Option<NaiveDate>)>| {
                let (country, (number, date)) = (country?, document?);
                let empty = country.is_none() && number.is_none() && date.is_none();
                Some((!empty).then_some(DocumentReference {
                    country,
                    number,
                    date,
                }))
            };
        (
            combine(origin_country, origin_document),
            combine(re_export_country, re_export_document),
        )
    }
}

/// Name and postal address of a party, before its country is settled.
struct PartyText {
    name: String,
    address: Option<String>,
    post_office_box: Option<String>,
    postcode: Option<String>,
    city: Option<String>,
    subdivision: Option<String>,
}

impl PartyText {
    fn into_trader(self, country: PartyCode) -> Trader {
        Trader {
            name: self.name,
            address: self.address,
            post_office_box: self.post_office_box,
            postcode: self.postcode,
            city: self.city,
            subdivision: self.subdivision,
            country,
        }
    }
}

/// Joins the values of repeated elements with line breaks; `None` when all are empty.
fn join<'a>(elements: impl Iterator<Item = &'a Element>) -> Option<String> {
    let parts: Vec<&str> = elements.filter_map(|e| value(Some(e))).collect();
    (!parts.is_empty()).then(|| parts.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_keep_the_senders_calendar_day() {
        let cases = [
            ("2014-01-06T12:03:52.00+01:00", Some("2014-01-06")),
            ("2014-07-05T23:30:00-05:00", Some("2014-07-05")),
            ("2014-07-05T12:03:52", Some("2014-07-05")),
            ("2014-07-05", Some("2014-07-05")),
            ("2014-07-05Z", Some("2014-07-05")),
            ("2014-07-05+02:00", Some("2014-07-05")),
            ("05/07/2014", None),
            ("2014-13-01", None),
            ("", None),
        ];
        for (text, expected) in cases {
            let expected = expected.map(|d| d.parse::<NaiveDate>().expect("date"));
            assert_eq!(parse_date(text), expected, "{text:?}");
        }
    }
}
