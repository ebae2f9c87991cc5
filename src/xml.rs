//! A small namespace-aware XML tree for protocols whose answer is the request document with
//! values filled in (SPEKE/CPIX: "keep every element and attribute the encryptor sent").
//! Built on quick-xml; pure.
//!
//! Safety (STYLE S5): callers cap the body before parsing; here a DTD is refused outright
//! (so no entity can be declared, let alone expanded), only the five predefined entities
//! and character references are resolved, and depth, node and attribute counts are bounded.
//! Namespace URIs are bounded in length and shared (one allocation per distinct URI), so a
//! long URI used by many elements cannot multiply into memory. Names are
//! matched by namespace URI and local name, never by prefix; the original qualified names
//! and namespace declarations are kept so the document is written back as it came.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use std::sync::Arc;

/// Deepest element nesting accepted.
pub const MAX_DEPTH: usize = 32;
/// Most nodes (elements, attributes and text runs) accepted.
pub const MAX_NODES: usize = 100_000;
/// Most attributes on one element.
pub const MAX_ATTRIBUTES: usize = 64;
/// Longest namespace URI accepted, bytes.
pub const MAX_NAMESPACE_LEN: usize = 1024;
/// Most namespace declarations on one element.
const MAX_DECLARATIONS: usize = 32;

/// Errors of the XML module.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Not well-formed XML (or an unknown entity).
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// A document type declaration.
    #[error("XML with a DOCTYPE is refused")]
    Dtd,
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("XML nested deeper than {MAX_DEPTH} elements")]
    TooDeep,
    /// More than [`MAX_NODES`] nodes, or more than [`MAX_ATTRIBUTES`] on one element.
    #[error("XML with more than {MAX_NODES} nodes or {MAX_ATTRIBUTES} attributes on an element")]
    TooLarge,
    /// Not UTF-8 (the only encoding the protocols use).
    #[error("XML must be UTF-8")]
    Encoding,
}

/// An attribute, with its namespace resolved (`None` for an unprefixed attribute).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    /// Qualified name as written (`xmlns:cpix`, `kid`).
    pub qname: String,
    /// Namespace URI (shared).
    pub ns: Option<Arc<str>>,
    /// Local name.
    pub local: String,
    /// Value, entities resolved.
    pub value: String,
}

/// A child node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// An element.
    Element(Element),
    /// Character data (CDATA included), entities resolved.
    Text(String),
}

/// An element. Equality is structural: the [`Element::span`] is left out.
#[derive(Clone, Debug)]
pub struct Element {
    /// Qualified name as written.
    pub qname: String,
    /// Namespace URI (shared).
    pub ns: Option<Arc<str>>,
    /// Local name.
    pub local: String,
    /// Attributes in document order (namespace declarations included).
    pub attrs: Vec<Attr>,
    /// Children in document order.
    pub children: Vec<Node>,
    /// Where the element was in the parsed bytes, from its `<` to the end of its end tag
    /// (empty for built elements). Signature schemes that sign the bytes as received
    /// (PlayReady's challenge) hash exactly this range, never a re-serialisation.
    pub span: std::ops::Range<usize>,
}

impl PartialEq for Element {
    fn eq(&self, other: &Self) -> bool {
        self.qname == other.qname
            && self.ns == other.ns
            && self.local == other.local
            && self.attrs == other.attrs
            && self.children == other.children
    }
}

impl Eq for Element {}

impl Element {
    /// A new element `prefix:local` in namespace `ns` (`prefix` empty for none).
    pub fn new(prefix: &str, ns: &str, local: &str) -> Self {
        Self {
            qname: if prefix.is_empty() {
                local.to_owned()
            } else {
                format!("{prefix}:{local}")
            },
            ns: Some(Arc::from(ns)),
            local: local.to_owned(),
            attrs: Vec::new(),
            children: Vec::new(),
            span: 0..0,
        }
    }

    /// True when this is `{ns}local`.
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.local == local && self.ns.as_deref() == Some(ns)
    }

    /// An unprefixed attribute's value.
    pub fn attr(&self, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns.is_none() && a.local == local)
            .map(|a| a.value.as_str())
    }

    /// Sets (or adds) an unprefixed attribute.
    pub fn set_attr(&mut self, local: &str, value: impl Into<String>) {
        let value = value.into();
        match self
            .attrs
            .iter_mut()
            .find(|a| a.ns.is_none() && a.local == local)
        {
            Some(a) => a.value = value,
            None => self.attrs.push(Attr {
                qname: local.to_owned(),
                ns: None,
                local: local.to_owned(),
                value,
            }),
        }
    }

    /// Declares `xmlns:prefix="ns"` on this element.
    pub fn declare(&mut self, prefix: &str, ns: &str) {
        self.attrs.push(Attr {
            qname: format!("xmlns:{prefix}"),
            ns: Some(Arc::from("http://www.w3.org/2000/xmlns/")),
            local: prefix.to_owned(),
            value: ns.to_owned(),
        });
    }

    /// The prefix this element declares for `ns` (`Some("")` for the default namespace).
    pub fn declared_prefix(&self, ns: &str) -> Option<&str> {
        self.attrs.iter().find_map(|a| {
            if a.value != ns {
                return None;
            }
            if a.qname == "xmlns" {
                Some("")
            } else {
                a.qname.strip_prefix("xmlns:")
            }
        })
    }

    /// True when this element declares `prefix` (for any namespace).
    pub fn declares(&self, prefix: &str) -> bool {
        self.attrs
            .iter()
            .any(|a| a.qname.strip_prefix("xmlns:") == Some(prefix))
    }

    /// Child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// Child elements, mutably.
    pub fn elements_mut(&mut self) -> impl Iterator<Item = &mut Element> {
        self.children.iter_mut().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// Child elements `{ns}local`.
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        local: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.is(ns, local))
    }

    /// The first child element `{ns}local`.
    pub fn child(&self, ns: &str, local: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(ns, local))
    }

    /// The text content (direct text children, concatenated).
    pub fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }

    /// Replaces the children with one text node.
    pub fn set_text(&mut self, text: impl Into<String>) {
        self.children = vec![Node::Text(text.into())];
    }

    /// Appends a child element and returns it.
    pub fn push(&mut self, child: Element) -> &mut Element {
        self.children.push(Node::Element(child));
        match self.children.last_mut() {
            Some(Node::Element(e)) => e,
            // Just pushed an element.
            _ => unreachable!(),
        }
    }

    /// Removes the child elements for which `drop` is true.
    pub fn remove_elements(&mut self, mut drop: impl FnMut(&Element) -> bool) {
        self.children.retain(|n| match n {
            Node::Element(e) => !drop(e),
            Node::Text(_) => true,
        });
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, Error> {
    std::str::from_utf8(bytes).map_err(|_| Error::Encoding)
}

fn malformed(e: impl std::fmt::Display) -> Error {
    Error::Malformed(e.to_string())
}

/// The distinct namespace URIs of one document, each allocated once.
#[derive(Default)]
struct Namespaces(Vec<Arc<str>>);

impl Namespaces {
    fn get(&mut self, uri: &[u8]) -> Result<Arc<str>, Error> {
        if uri.len() > MAX_NAMESPACE_LEN {
            return Err(Error::Malformed(format!(
                "namespace URI longer than {MAX_NAMESPACE_LEN} bytes"
            )));
        }
        let uri = utf8(uri)?;
        if let Some(known) = self.0.iter().find(|k| &***k == uri) {
            return Ok(known.clone());
        }
        // At most MAX_DECLARATIONS * MAX_DEPTH URIs are in scope at once, and each is at
        // most MAX_NAMESPACE_LEN bytes: the scan stays cheap and the table small.
        let new: Arc<str> = Arc::from(uri);
        self.0.push(new.clone());
        Ok(new)
    }
}

fn ns_of(r: ResolveResult<'_>, table: &mut Namespaces) -> Result<Option<Arc<str>>, Error> {
    match r {
        ResolveResult::Bound(ns) => Ok(Some(table.get(ns.0)?)),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(p) => Err(Error::Malformed(format!(
            "undeclared namespace prefix {:?}",
            String::from_utf8_lossy(&p)
        ))),
    }
}

/// Parses a document (a UTF-8 byte-order mark is skipped) into its root element.
pub fn parse(bytes: &[u8]) -> Result<Element, Error> {
    let stripped = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    // Spans are offsets into `bytes` as given, byte-order mark included.
    let base = bytes.len() - stripped.len();
    let text = utf8(stripped)?;
    let mut reader = NsReader::from_str(text);
    reader
        .resolver_mut()
        .set_max_declarations_per_element(MAX_DECLARATIONS);
    let mut table = Namespaces::default();
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut nodes = 0usize;
    loop {
        let at = base + usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let (ns, event) = reader.read_resolved_event().map_err(malformed)?;
        let ns = match &event {
            Event::Start(_) | Event::Empty(_) => ns_of(ns, &mut table)?,
            _ => None,
        };
        let end = base + usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                nodes += 1;
                if nodes > MAX_NODES {
                    return Err(Error::TooLarge);
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(Error::TooDeep);
                }
                if root.is_some() {
                    return Err(malformed("content after the root element"));
                }
                let mut el = Element {
                    qname: utf8(e.name().as_ref())?.to_owned(),
                    ns,
                    local: utf8(e.local_name().as_ref())?.to_owned(),
                    attrs: Vec::new(),
                    children: Vec::new(),
                    span: at..end,
                };
                for a in e.attributes() {
                    let a = a.map_err(malformed)?;
                    nodes += 1;
                    if nodes > MAX_NODES || el.attrs.len() >= MAX_ATTRIBUTES {
                        return Err(Error::TooLarge);
                    }
                    let (ans, local) = reader.resolver().resolve_attribute(a.key);
                    let value = quick_xml::escape::unescape(utf8(&a.value)?).map_err(malformed)?;
                    el.attrs.push(Attr {
                        qname: utf8(a.key.as_ref())?.to_owned(),
                        ns: ns_of(ans, &mut table)?,
                        local: utf8(local.as_ref())?.to_owned(),
                        value: value.into_owned(),
                    });
                }
                if matches!(event, Event::Start(_)) {
                    stack.push(el);
                } else {
                    close(&mut stack, &mut root, el);
                }
            }
            Event::End(_) => {
                let mut el = stack.pop().ok_or_else(|| malformed("unbalanced end tag"))?;
                el.span.end = end;
                close(&mut stack, &mut root, el);
            }
            Event::Text(t) => push_text(&mut stack, &t.decode().map_err(malformed)?, &mut nodes)?,
            Event::CData(t) => push_text(&mut stack, utf8(&t)?, &mut nodes)?,
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().map_err(malformed)? {
                    Some(c) => c,
                    None => match r.decode().map_err(malformed)?.as_ref() {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => return Err(Error::Malformed(format!("unknown entity &{other};"))),
                    },
                };
                push_text(&mut stack, c.encode_utf8(&mut [0; 4]), &mut nodes)?;
            }
            Event::DocType(_) => return Err(Error::Dtd),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(malformed("unclosed element"));
    }
    root.ok_or_else(|| malformed("no root element"))
}

fn close(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(Node::Element(el)),
        None => *root = Some(el),
    }
}

fn push_text(stack: &mut [Element], text: &str, nodes: &mut usize) -> Result<(), Error> {
    let Some(parent) = stack.last_mut() else {
        // Whitespace around the root is allowed; anything else is not.
        return if text.trim().is_empty() {
            Ok(())
        } else {
            Err(malformed("text outside the root element"))
        };
    };
    // Adjacent runs (text, then a reference, then text) form one text node.
    if let Some(Node::Text(prev)) = parent.children.last_mut() {
        prev.push_str(text);
        return Ok(());
    }
    *nodes += 1;
    if *nodes > MAX_NODES {
        return Err(Error::TooLarge);
    }
    parent.children.push(Node::Text(text.to_owned()));
    Ok(())
}

/// Writes the document (UTF-8, with an XML declaration).
pub fn write(root: &Element) -> String {
    let mut out = String::from(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    write_element(root, &mut out);
    out
}

fn write_element(el: &Element, out: &mut String) {
    out.push('<');
    out.push_str(&el.qname);
    for a in &el.attrs {
        out.push(' ');
        out.push_str(&a.qname);
        out.push_str("=\"");
        out.push_str(&quick_xml::escape::escape(a.value.as_str()));
        out.push('"');
    }
    if el.children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    for c in &el.children {
        match c {
            Node::Element(e) => write_element(e, out),
            Node::Text(t) => out.push_str(&quick_xml::escape::partial_escape(t.as_str())),
        }
    }
    out.push_str("</");
    out.push_str(&el.qname);
    out.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_by_uri_not_prefix() {
        let doc = br#"<?xml version="1.0"?><a:CPIX xmlns:a="urn:x" xmlns:b="urn:y" id="1"><a:K b:kid="k &amp; &#x41;">t&lt;<![CDATA[<raw>]]></a:K><Z xmlns="urn:y"/></a:CPIX>"#;
        let root = parse(doc).unwrap();
        assert!(root.is("urn:x", "CPIX"));
        assert_eq!(root.attr("id"), Some("1"));
        let k = root.child("urn:x", "K").unwrap();
        assert_eq!(k.attrs[0].ns.as_deref(), Some("urn:y"));
        assert_eq!(k.attrs[0].value, "k & A");
        assert_eq!(k.text(), "t<<raw>");
        assert!(root.child("urn:y", "Z").is_some());
        // Spans are the raw bytes of each element.
        assert_eq!(
            &doc[k.span.clone()],
            &br#"<a:K b:kid="k &amp; &#x41;">t&lt;<![CDATA[<raw>]]></a:K>"#[..]
        );
        assert_eq!(
            &doc[root.child("urn:y", "Z").unwrap().span.clone()],
            b"<Z xmlns=\"urn:y\"/>"
        );
        assert_eq!(root.span, 21..doc.len());
        assert_eq!(root.declared_prefix("urn:y"), Some("b"));
        // Round trip keeps names and values.
        let again = parse(write(&root).as_bytes()).unwrap();
        assert_eq!(again, root);
    }

    #[test]
    fn refusals() {
        for (doc, want) in [
            (
                &br#"<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>"#[..],
                Error::Dtd,
            ),
            (b"<a>&x;</a>", Error::Malformed("unknown entity &x;".into())),
            (b"<a><b></a>", Error::Malformed(String::new())),
            (b"<p:a/>", Error::Malformed(String::new())),
            (b"<a/><b/>", Error::Malformed(String::new())),
            (b"<a>\xff</a>", Error::Encoding),
            (b"", Error::Malformed(String::new())),
        ] {
            let got = parse(doc).unwrap_err();
            assert_eq!(
                std::mem::discriminant(&got),
                std::mem::discriminant(&want),
                "{}: {got}",
                String::from_utf8_lossy(doc)
            );
        }
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(deep.as_bytes()).unwrap_err(), Error::TooDeep);
        let wide = format!("<a>{}</a>", "<b/>".repeat(MAX_NODES));
        assert_eq!(parse(wide.as_bytes()).unwrap_err(), Error::TooLarge);
        let attrs: String = (0..=MAX_ATTRIBUTES)
            .map(|i| format!(" a{i}=\"\""))
            .collect();
        assert_eq!(
            parse(format!("<a{attrs}/>").as_bytes()).unwrap_err(),
            Error::TooLarge
        );
        let long = format!(r#"<a xmlns="{}"/>"#, "u".repeat(MAX_NAMESPACE_LEN + 1));
        assert!(matches!(parse(long.as_bytes()), Err(Error::Malformed(_))));
        let decls: String = (0..40)
            .map(|i| format!(r#" xmlns:p{i}="urn:{i}""#))
            .collect();
        assert!(parse(format!("<a{decls}/>").as_bytes()).is_err());
    }

    #[test]
    fn one_namespace_uri_is_shared_by_every_element() {
        let uri = "u".repeat(MAX_NAMESPACE_LEN);
        let doc = format!(r#"<a xmlns="{uri}">{}</a>"#, "<b/>".repeat(1000));
        let root = parse(doc.as_bytes()).unwrap();
        let first = root.elements().next().unwrap().ns.clone().unwrap();
        assert!(
            root.elements()
                .all(|e| Arc::ptr_eq(e.ns.as_ref().unwrap(), &first))
        );
    }
}
