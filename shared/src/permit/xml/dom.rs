//! A small element tree built from quick-xml events, with the limits that keep hostile input
//! cheap: no DTD, no entities beyond the five predefined ones and character references, a
//! nesting-depth limit and an element-count limit. The body size is limited before this runs.

use std::collections::HashMap;
use std::rc::Rc;

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

use crate::{ErrorCode, Problem};

/// Deepest element nesting accepted. The ePermit tree with a SOAP envelope is about 12 deep.
pub const MAX_DEPTH: usize = 64;
/// Most elements accepted in one document. The 44 KB EPIX sample has 341.
pub const MAX_ELEMENTS: usize = 20_000;

/// One XML element with its namespace, attributes, text and children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Namespace URI, or `None` for an unqualified element.
    pub namespace: Option<Rc<str>>,
    /// Local name.
    pub name: Rc<str>,
    /// Values of the attributes the reader uses ([`KEPT_ATTRIBUTES`]), by local name.
    pub attributes: Vec<(Rc<str>, String)>,
    /// Text content of this element alone, character data included. Blank text before the
    /// first non-blank text is left out, since every value is trimmed.
    pub text: String,
    pub children: Vec<Element>,
}

/// Attributes kept in the tree; the others are checked for entities and dropped.
const KEPT_ATTRIBUTES: &[&str] = &["unitCode", "listID"];

impl Element {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| *child.name == *name)
    }

    /// Returns the children with this local name.
    pub fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children
            .iter()
            .filter(move |child| *child.name == *name)
    }

    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| **key == *name)
            .map(|(_, value)| value.as_str())
    }
}

/// Shares one allocation per distinct name or namespace, since a message repeats a few
/// dozen of them hundreds of times.
#[derive(Default)]
struct Interner(HashMap<Box<[u8]>, Rc<str>>);

impl Interner {
    fn intern(&mut self, bytes: &[u8]) -> Rc<str> {
        if let Some(shared) = self.0.get(bytes) {
            return Rc::clone(shared);
        }
        let shared: Rc<str> = Rc::from(String::from_utf8_lossy(bytes).as_ref());
        self.0.insert(bytes.into(), Rc::clone(&shared));
        shared
    }
}

fn malformed(message: String, position: u64) -> Problem {
    Problem::new(
        ErrorCode::DocumentMalformed,
        format!("body is not well-formed XML at byte {position}: {message}"),
    )
}

/// Parses a body into its root element, or returns the one problem that stopped it.
pub fn parse(body: &[u8]) -> Result<Element, Problem> {
    let text = std::str::from_utf8(body).map_err(|error| {
        Problem::new(
            ErrorCode::DocumentMalformed,
            format!(
                "body is not UTF-8 at byte {}: expected UTF-8 XML",
                error.valid_up_to()
            ),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = NsReader::from_str(text);
    let config = reader.config_mut();
    config.expand_empty_elements = true;
    config.check_end_names = true;

    let mut interner = Interner::default();
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    loop {
        let position = reader.buffer_position();
        let (namespace, event) = reader
            .read_resolved_event()
            .map_err(|error| malformed(error.to_string(), position))?;
        let namespace = match namespace {
            ResolveResult::Bound(ns) => Some(interner.intern(ns.as_ref())),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(prefix) => {
                return Err(malformed(
                    format!(
                        "namespace prefix {:?} is not declared",
                        String::from_utf8_lossy(&prefix)
                    ),
                    position,
                ));
            }
        };
        match event {
            Event::Start(start) => {
                elements += 1;
                if elements > MAX_ELEMENTS || stack.len() >= MAX_DEPTH {
                    return Err(Problem::new(
                        ErrorCode::DocumentTooComplex,
                        format!(
                            "document is nested deeper than {MAX_DEPTH} or has more than {MAX_ELEMENTS} elements: expected a single CITES ePermit message"
                        ),
                    ));
                }
                if root.is_some() {
                    return Err(malformed(
                        "content after the root element".to_owned(),
                        position,
                    ));
                }
                stack.push(element(
                    &reader,
                    &mut interner,
                    &start,
                    namespace,
                    position,
                )?);
            }
            Event::End(_) => {
                let Some(done) = stack.pop() else {
                    return Err(malformed("unexpected end tag".to_owned(), position));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Text(text) => {
                let decoded = text
                    .xml_content()
                    .map_err(|error| malformed(error.to_string(), position))?;
                push_text(&mut stack, &decoded, position)?;
            }
            Event::CData(data) => {
                let decoded = data
                    .decode()
                    .map_err(|error| malformed(error.to_string(), position))?;
                push_text(&mut stack, &decoded, position)?;
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name = reference
                            .decode()
                            .map_err(|error| malformed(error.to_string(), position))?;
                        match quick_xml::escape::resolve_predefined_entity(&name) {
                            Some(text) => text.to_owned(),
                            None => return Err(entity_forbidden(&name)),
                        }
                    }
                    Err(error) => return Err(malformed(error.to_string(), position)),
                };
                push_text(&mut stack, &resolved, position)?;
            }
            Event::DocType(_) => {
                return Err(Problem::new(
                    ErrorCode::DocumentDtdForbidden,
                    "document has a DTD: expected XML without <!DOCTYPE>, as SOAP and the ePermit schema require",
                ));
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            Event::Empty(_) => {
                // expand_empty_elements turns these into Start and End events.
            }
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(malformed(
            "document ends inside an element".to_owned(),
            reader.buffer_position(),
        ));
    }
    root.ok_or_else(|| malformed("no root element".to_owned(), reader.buffer_position()))
}

fn entity_forbidden(name: &str) -> Problem {
    Problem::new(
        ErrorCode::DocumentDtdForbidden,
        "entity reference is not allowed: expected only &lt; &gt; &amp; &apos; &quot; or character references",
    )
    .with_value(format!("&{name};"))
}

fn push_text(stack: &mut [Element], text: &str, position: u64) -> Result<(), Problem> {
    match stack.last_mut() {
        Some(element) => {
            let leading_blank = element.text.is_empty() && text.trim().is_empty();
            if !leading_blank {
                element.text.push_str(text);
            }
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(malformed(
            "text outside the root element".to_owned(),
            position,
        )),
    }
}

fn element(
    reader: &NsReader<&[u8]>,
    interner: &mut Interner,
    start: &BytesStart,
    namespace: Option<Rc<str>>,
    position: u64,
) -> Result<Element, Problem> {
    let name = interner.intern(start.local_name().as_ref());
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|error| malformed(error.to_string(), position))?;
        let key = attribute.key;
        let is_declaration =
            key.as_ref() == b"xmlns" || key.prefix().is_some_and(|p| p.as_ref() == b"xmlns");
        let local = key.local_name();
        let is_kept = KEPT_ATTRIBUTES
            .iter()
            .any(|kept| kept.as_bytes() == local.as_ref());
        // An unused value is still unescaped when it has a reference, to reject entities.
        if is_declaration || (!is_kept && !attribute.value.contains(&b'&')) {
            continue;
        }
        let value = attribute
            .decode_and_unescape_value(reader.decoder())
            .map_err(|error| match error {
                quick_xml::Error::Escape(escape) => Problem::new(
                    ErrorCode::DocumentDtdForbidden,
                    format!("attribute value has an entity that is not allowed: {escape}"),
                ),
                other => malformed(other.to_string(), position),
            })?;
        if is_kept {
            attributes.push((interner.intern(local.as_ref()), value.into_owned()));
        }
    }
    Ok(Element {
        namespace,
        name,
        attributes,
        text: String::new(),
        children: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_builds_tree_with_namespaces() {
        let root = parse(br#"<?xml version="1.0"?><a:r xmlns:a="urn:a"><b unitCode="1&amp;2" x="y">t&lt;<![CDATA[&c]]>&#x41;</b><!-- c --></a:r>"#)
            .expect("well-formed");
        assert_eq!(root.namespace.as_deref(), Some("urn:a"));
        assert_eq!(root.name(), "r");
        let child = root.child("b").expect("child b");
        assert_eq!(child.namespace, None);
        assert_eq!(child.text, "t<&cA");
        assert_eq!(child.attribute("unitCode"), Some("1&2"));
        assert_eq!(
            child.attribute("x"),
            None,
            "attributes the reader does not use are dropped"
        );
    }

    #[test]
    fn hostile_documents_are_rejected() {
        let deep = format!(
            "{}{}",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        let wide = format!("<r>{}</r>", "<a/>".repeat(MAX_ELEMENTS + 1));
        let cases: [(&str, &[u8], ErrorCode); 9] = [
            (
                "billion laughs",
                br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><lolz>&lol2;</lolz>"#,
                ErrorCode::DocumentDtdForbidden,
            ),
            (
                "external entity",
                br#"<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><r>&xxe;</r>"#,
                ErrorCode::DocumentDtdForbidden,
            ),
            ("undeclared entity", b"<r>&xxe;</r>", ErrorCode::DocumentDtdForbidden),
            ("entity in attribute", br#"<r a="&xxe;"/>"#, ErrorCode::DocumentDtdForbidden),
            ("deep", deep.as_bytes(), ErrorCode::DocumentTooComplex),
            ("wide", wide.as_bytes(), ErrorCode::DocumentTooComplex),
            ("unclosed", b"<r><a></r>", ErrorCode::DocumentMalformed),
            ("unknown prefix", b"<x:r/>", ErrorCode::DocumentMalformed),
            ("not UTF-8", b"<r>\xff</r>", ErrorCode::DocumentMalformed),
        ];
        for (case, body, code) in cases {
            let problem = parse(body).expect_err(case);
            assert_eq!(problem.code, code, "{case}: {problem}");
        }
    }

    #[test]
    fn empty_and_trailing_content_is_rejected() {
        for body in [&b""[..], b"   ", b"<a/><b/>", b"<a/>text"] {
            let problem = parse(body).expect_err("malformed");
            assert_eq!(problem.code, ErrorCode::DocumentMalformed, "{body:?}");
        }
    }
}
