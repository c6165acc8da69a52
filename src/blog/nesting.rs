//! How deeply a block of HTML nests, as the sanitiser's parser builds it.
//!
//! html5ever (the parser ammonia sanitises with) does work in proportion to the depth of its open
//! elements for each element it opens, so HTML nested thousands deep takes time quadratic in its
//! length. Counting tags to find such HTML cannot be right: the parser ignores a `/` on `<div/>`
//! and an end tag with nothing of its name open, skips comments and raw text, closes and reopens
//! elements (the adoption agency), and each rule missed is a way to nest deeper than the count.
//! So the depth is measured by the same parser, with a tree that keeps only each node's parent,
//! fed a little at a time and stopped as soon as the depth passes the limit: the work is in
//! proportion to the length times the limit, whatever the HTML. It also counts the siblings
//! ammonia's tree scans to move nodes out of tables (foster parenting), the other way found to
//! make the sanitiser quadratic. And it counts the attributes the parser compares to open a
//! formatting element (`<b>`, `<a>`, `<font>`...): each is compared, attribute list against
//! sorted attribute list, with every one of its name in the list of active formatting elements
//! (the "Noah's Ark" clause), so a few dozen open `<b>` with hundreds of attributes, then
//! thousands of bare `<b></b>`, cost the one times the other.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use html5ever::interface::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::{Attribute, ExpandedName, LocalName, ParseOpts, QualName, local_name, ns};

/// Bytes fed to the parser between two looks at the depth.
const CHUNK: usize = 1024;

/// Attributes the parser may compare (or copy) to open formatting elements, per byte of HTML. An
/// attribute compared (copied, and sorted with its list) cost about 40 ns in each of the two
/// parses (this one and the sanitiser's) in the tests' build, dependencies optimised: a 512 KiB
/// block just under this rate rendered in about 90 ms there, 18 ms of it the text's own, and less
/// in a release build. Ordinary HTML (formatting elements with a few attributes, rarely nested
/// in one of their own name) comes nowhere near.
const COMPARED_PER_BYTE: usize = 1;

/// Bytes of an attribute's name that cost as much to compare as the attribute itself.
const NAME_BYTES_PER_ATTRIBUTE: usize = 16;

/// What comparing (or copying) an attribute costs, in attributes: Noah's Ark sorts copies of the
/// lists, comparing names by their text (up to a few dozen times each, for the short lists that
/// are sorted by insertion), so a dozen names of 20 KB each on one open `<b>` made each bare
/// `<b>` after it cost a compare of megabytes while counting as 12 attributes. The values are
/// compared only where the names are equal, after both lists are sorted, no further than the
/// shorter, which is the new tag's own bytes, once for each open element of its name.
fn weight(attribute: &Attribute) -> usize {
    1 + attribute.name.local.len() / NAME_BYTES_PER_ATTRIBUTE
}

/// The elements html5ever keeps in its list of active formatting elements.
fn formatting(name: &QualName) -> bool {
    name.ns == ns!(html)
        && matches!(
            name.local,
            local_name!("a")
                | local_name!("b")
                | local_name!("big")
                | local_name!("code")
                | local_name!("em")
                | local_name!("font")
                | local_name!("i")
                | local_name!("nobr")
                | local_name!("s")
                | local_name!("small")
                | local_name!("strike")
                | local_name!("strong")
                | local_name!("tt")
                | local_name!("u")
        )
}

/// Whether sanitising `html` would cost more than `limit` steps of its parser per byte: its
/// elements nest deeper than `limit` when parsed as ammonia parses it (a fragment in a `<div>`),
/// or it moves so many nodes out of tables (foster parenting, each placed by a scan of the
/// siblings in ammonia's tree) that the scans add up to more, or it opens formatting elements
/// that the parser compares with open ones of their name by more than [`COMPARED_PER_BYTE`]
/// attributes per byte (weighed by their names' length: [`weight`]). Stops as soon as it knows.
pub fn too_costly(html: &str, limit: usize) -> bool {
    let deepest = Rc::new(Cell::new(0));
    let scanned = Rc::new(Cell::new(0));
    let compared = Rc::new(Cell::new(0));
    let sink = DepthSink::new(limit, deepest.clone(), scanned.clone(), compared.clone());
    let mut parser = html5ever::parse_fragment(
        sink,
        ParseOpts::default(),
        QualName::new(None, ns!(html), local_name!("div")),
        vec![],
        false,
    );
    let over = |fed: usize| {
        deepest.get() > limit
            || scanned.get() > limit.saturating_mul(fed)
            || compared.get() > COMPARED_PER_BYTE.saturating_mul(fed)
    };
    let mut fed = 0;
    while fed < html.len() {
        let mut end = html.len().min(fed + CHUNK);
        while !html.is_char_boundary(end) {
            end += 1;
        }
        parser.process(StrTendril::from_slice(&html[fed..end]));
        fed = end;
        if over(fed) {
            return true;
        }
    }
    parser.finish();
    over(html.len().max(1))
}

/// How deeply the elements of `html` nest, or some number past `limit` once deeper.
#[cfg(test)]
fn depth(html: &str, limit: usize) -> usize {
    let deepest = Rc::new(Cell::new(0));
    let sink = DepthSink::new(
        limit,
        deepest.clone(),
        Rc::new(Cell::new(0)),
        Rc::new(Cell::new(0)),
    );
    html5ever::parse_fragment(
        sink,
        ParseOpts::default(),
        QualName::new(None, ns!(html), local_name!("div")),
        vec![],
        false,
    )
    .one(StrTendril::from_slice(html));
    deepest.get()
}

/// A node: its name if an element (a placeholder otherwise: the parser asks only elements'),
/// whether it is one (comments are not counted), and whether it is a MathML `annotation-xml` that HTML may go in, which the parser asks too.
pub struct Node {
    id: usize,
    name: QualName,
    element: bool,
    integration_point: bool,
}

/// A tree of parents only, recording the deepest element appended. The fragment's elements sit
/// under the document and its `<html>`, so an element of the fragment's top level is at depth 1.
struct DepthSink {
    parents: RefCell<Vec<Option<usize>>>,
    children: RefCell<Vec<Vec<usize>>>,
    templates: RefCell<HashMap<usize, Rc<Node>>>,
    document: Rc<Node>,
    limit: usize,
    deepest: Rc<Cell<usize>>,
    /// Siblings ammonia's tree would scan to put a node before another or take one out.
    scanned: Rc<Cell<usize>>,
    /// Each formatting element's name and its attributes' [`weight`], by id (`None` for other
    /// nodes).
    formatting: RefCell<Vec<Option<(LocalName, usize)>>>,
    /// Attributes the parser compared or copied to open formatting elements.
    compared: Rc<Cell<usize>>,
}

impl DepthSink {
    fn new(
        limit: usize,
        deepest: Rc<Cell<usize>>,
        scanned: Rc<Cell<usize>>,
        compared: Rc<Cell<usize>>,
    ) -> Self {
        let sink = DepthSink {
            parents: RefCell::new(Vec::new()),
            children: RefCell::new(Vec::new()),
            templates: RefCell::new(HashMap::new()),
            document: Rc::new(Node {
                id: 0,
                name: placeholder(),
                element: false,
                integration_point: false,
            }),
            limit,
            deepest,
            scanned,
            formatting: RefCell::new(Vec::new()),
            compared,
        };
        sink.parents.borrow_mut().push(None);
        sink.formatting.borrow_mut().push(None);
        sink.children.borrow_mut().push(Vec::new());
        sink
    }

    fn node(&self, name: Option<QualName>, integration_point: bool, attributes: usize) -> Rc<Node> {
        let mut parents = self.parents.borrow_mut();
        let id = parents.len();
        parents.push(None);
        self.children.borrow_mut().push(Vec::new());
        let formatting = name
            .as_ref()
            .filter(|name| formatting(name))
            .map(|name| (name.local.clone(), attributes));
        self.formatting.borrow_mut().push(formatting);
        Rc::new(Node {
            id,
            element: name.is_some(),
            name: name.unwrap_or_else(placeholder),
            integration_point,
        })
    }

    fn detach(&self, child: usize) {
        if let Some(parent) = self.parents.borrow_mut()[child].take() {
            let mut children = self.children.borrow_mut();
            self.scan(children[parent].len());
            children[parent].retain(|&c| c != child);
        }
    }

    fn scan(&self, siblings: usize) {
        self.scanned
            .set(self.scanned.get().saturating_add(siblings));
    }

    fn attach(&self, parent: usize, child: &Node) {
        self.detach(child.id);
        self.parents.borrow_mut()[child.id] = Some(parent);
        self.children.borrow_mut()[parent].push(child.id);
        if child.element {
            self.record(child.id);
            self.compare(child.id);
        }
    }

    /// Counts the attributes the parser compared to open `id`, if a formatting element, with the
    /// open ones of its name: those among its ancestors, each by both attribute lists, whether
    /// the parser opened it for a tag or to reopen one (which copies its attributes). The
    /// ancestors are the parser's own, as it placed the element (moved out of a table, or after
    /// an end tag that closed nothing); an element it keeps in the list after closing it is
    /// reopened (as an ancestor) before the next formatting tag, when it is the last of the list.
    /// Ancestors past a marker (`<td>`, `<template>`...), which the parser does not compare, are
    /// counted all the same: a few attributes too many, for ordinary HTML.
    fn compare(&self, id: usize) {
        let formatting = self.formatting.borrow();
        let Some((name, attributes)) = &formatting[id] else {
            return;
        };
        let parents = self.parents.borrow();
        let mut compared = *attributes;
        for parent in ancestors(&parents, id).take(self.limit + 2) {
            if let Some((other, theirs)) = &formatting[parent]
                && other == name
            {
                compared = compared.saturating_add(attributes + theirs);
            }
        }
        self.compared
            .set(self.compared.get().saturating_add(compared));
    }

    /// Counts `id`'s ancestors (less the document and `<html>`), no further than past the limit.
    fn record(&self, id: usize) {
        let parents = self.parents.borrow();
        let depth = ancestors(&parents, id).take(self.limit + 3).count();
        let depth = depth.saturating_sub(1);
        if depth > self.deepest.get() {
            self.deepest.set(depth);
        }
    }
}

/// The ancestors of `id`, nearest first, by `parents` (each node's parent, if any).
fn ancestors(parents: &[Option<usize>], id: usize) -> impl Iterator<Item = usize> + '_ {
    std::iter::successors(parents[id], move |&at| parents[at])
}

fn placeholder() -> QualName {
    QualName::new(None, ns!(), local_name!(""))
}

impl TreeSink for DepthSink {
    type Handle = Rc<Node>;
    type Output = ();
    type ElemName<'a> = ExpandedName<'a>;

    fn finish(self) {}

    fn parse_error(&self, _msg: Cow<'static, str>) {}

    fn get_document(&self) -> Rc<Node> {
        self.document.clone()
    }

    fn elem_name<'a>(&'a self, target: &'a Rc<Node>) -> ExpandedName<'a> {
        target.name.expanded()
    }

    fn create_element(
        &self,
        name: QualName,
        attrs: Vec<Attribute>,
        flags: ElementFlags,
    ) -> Rc<Node> {
        self.node(
            Some(name),
            flags.mathml_annotation_xml_integration_point,
            attrs.iter().map(weight).sum(),
        )
    }

    fn create_comment(&self, _text: StrTendril) -> Rc<Node> {
        self.node(None, false, 0)
    }

    fn create_pi(&self, _target: StrTendril, _data: StrTendril) -> Rc<Node> {
        self.node(None, false, 0)
    }

    fn append(&self, parent: &Rc<Node>, child: NodeOrText<Rc<Node>>) {
        if let NodeOrText::AppendNode(child) = child {
            self.attach(parent.id, &child);
        }
    }

    fn append_based_on_parent_node(
        &self,
        element: &Rc<Node>,
        prev_element: &Rc<Node>,
        child: NodeOrText<Rc<Node>>,
    ) {
        if self.parents.borrow()[element.id].is_some() {
            self.append_before_sibling(element, child);
        } else {
            self.append(prev_element, child);
        }
    }

    fn append_doctype_to_document(&self, _: StrTendril, _: StrTendril, _: StrTendril) {}

    fn get_template_contents(&self, target: &Rc<Node>) -> Rc<Node> {
        if let Some(contents) = self.templates.borrow().get(&target.id) {
            return contents.clone();
        }
        // The contents are a fragment of their own, but the parser nests in them as in the
        // template: they count as its child (without being one for moves).
        let contents = self.node(None, false, 0);
        self.parents.borrow_mut()[contents.id] = Some(target.id);
        self.templates
            .borrow_mut()
            .insert(target.id, contents.clone());
        contents
    }

    fn same_node(&self, x: &Rc<Node>, y: &Rc<Node>) -> bool {
        x.id == y.id
    }

    fn set_quirks_mode(&self, _mode: QuirksMode) {}

    fn append_before_sibling(&self, sibling: &Rc<Node>, new_node: NodeOrText<Rc<Node>>) {
        let Some(parent) = self.parents.borrow()[sibling.id] else {
            return;
        };
        self.scan(self.children.borrow()[parent].len());
        if let NodeOrText::AppendNode(child) = new_node {
            self.attach(parent, &child);
        }
    }

    fn add_attrs_if_missing(&self, _target: &Rc<Node>, _attrs: Vec<Attribute>) {}

    fn remove_from_parent(&self, target: &Rc<Node>) {
        self.detach(target.id);
    }

    fn reparent_children(&self, node: &Rc<Node>, new_parent: &Rc<Node>) {
        let moved = std::mem::take(&mut self.children.borrow_mut()[node.id]);
        let mut parents = self.parents.borrow_mut();
        for &child in &moved {
            parents[child] = Some(new_parent.id);
        }
        drop(parents);
        self.children.borrow_mut()[new_parent.id].extend(&moved);
        for child in moved {
            self.record(child);
        }
    }

    fn is_mathml_annotation_xml_integration_point(&self, handle: &Rc<Node>) -> bool {
        handle.integration_point
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_the_parsers() {
        assert_eq!(depth("<p>a <b>b</b></p>", 100), 2);
        assert_eq!(depth("<div><div></div></div><br>", 100), 2);
        // A "/" on a div is ignored, and so is an end tag with nothing of its name open.
        assert_eq!(depth(&"<div/>".repeat(50), 100), 50);
        assert_eq!(depth(&"<div></x>".repeat(50), 100), 50);
        // A comment holds no elements.
        assert_eq!(depth(&"<div><!-- x></div> -->".repeat(50), 100), 50);
        assert_eq!(depth("<!-- <div><div> -->", 100), 0);
        assert!(depth(&"<div>".repeat(1_000), 100) > 100);
    }

    #[test]
    fn too_deep_or_too_many_moves_out_of_tables_cost_too_much() {
        assert!(too_costly(&"<div>".repeat(100_000), 100));
        assert!(!too_costly(&"<div>".repeat(100), 100));
        assert!(too_costly(&"<a><table>".repeat(40_000), 100));
        // A table with a few stray nodes, and a long flat list, are fine.
        let table = format!(
            "<table>x<b>y</b>{}</table>",
            "<tr><td>cell</td></tr>".repeat(5_000)
        );
        assert!(!too_costly(&table, 100));
        assert!(!too_costly(
            &format!("<ul>{}</ul>", "<li>item</li>".repeat(20_000)),
            100
        ));
        // Whatever the chunk boundaries cut.
        let text = format!("{}<div>é</div>", "é".repeat(CHUNK));
        assert!(!too_costly(&text, 100));
        assert!(!too_costly("", 100));
    }

    /// `n` formatting tags of `names` (in turn), each with `attributes` different attributes, left
    /// open (after `before`), then `bytes` of closed bare ones of the same names.
    fn ark(before: &str, names: &[&str], n: usize, attributes: usize, bytes: usize) -> String {
        let open: String = (0..n)
            .map(|k| {
                let attributes: String = (0..attributes).map(|i| format!(" a{i:03}={k}")).collect();
                format!("<{}{attributes}>", names[k % names.len()])
            })
            .collect();
        let bare: String = names
            .iter()
            .map(|name| format!("<{name}></{name}>"))
            .collect();
        let bare = bare.repeat(bytes / bare.len());
        format!("{before}{open}{bare}")
    }

    /// Each formatting start tag is compared with every open one of its name, attribute list
    /// against attribute list (html5ever's Noah's Ark clause): open ones with many attributes,
    /// then many bare ones, are too costly, whatever the name, the attributes' number, the names'
    /// mix, or a table the tags are moved out of.
    #[test]
    fn formatting_tags_compared_with_open_ones_of_many_attributes_cost_too_much() {
        for (before, names, attributes) in [
            ("", &["b"][..], 256),
            ("", &["font"][..], 256),
            ("", &["b"][..], 50),
            ("", &["b", "i", "font", "a", "em"][..], 256),
            ("<table>", &["b"][..], 256),
            ("<table><tr>", &["font"][..], 50),
            ("<table>", &["b", "s", "nobr"][..], 256),
        ] {
            let html = ark(before, names, 40, attributes, 100_000);
            assert!(too_costly(&html, 100), "{before} {names:?} {attributes}");
        }
        // A `</b>` in a table does not close a `<b>` open outside it: the bare ones are still
        // compared with it.
        let open: String = (0..256).map(|i| format!(" a{i:03}")).collect();
        let html = format!("<b{open}><table>{}", "</b><b>".repeat(100_000 / 7));
        assert!(too_costly(&html, 100));
    }

    /// Attribute names are compared by their text (when Noah's Ark sorts the lists): an open
    /// `<b>` with a dozen names of many bytes each, then many bare `<b>`, is too costly too, though
    /// it compares fewer attributes than bytes.
    #[test]
    fn formatting_tags_compared_with_open_ones_of_long_attribute_names_cost_too_much() {
        let long = "a".repeat(250_000 / 12);
        let open: String = (0..12).rev().map(|i| format!(" {long}{i:02}")).collect();
        let html = format!("<b{open}>{}", "<b></b>".repeat(250_000 / 7));
        assert!(too_costly(&html, 100));
    }

    /// Ordinary formatting is not: many closed links, bold and emphasis with a few attributes,
    /// some nested.
    #[test]
    fn ordinary_formatting_is_not_too_costly() {
        let links = r#"<a href="https://example.com/page">a link</a> and "#.repeat(3_000);
        assert!(!too_costly(&links, 100));
        let bold = "<b>bold</b> <em>em</em> <i class=x>i</i> ".repeat(5_000);
        assert!(!too_costly(&bold, 100));
        let nested =
            r#"<b class="x" id="y"><i class=z><b title="t">x</b> <b>y</b></i></b> "#.repeat(2_000);
        assert!(!too_costly(&nested, 100));
        let cells = format!(
            r#"<font color="red" face="serif" size="2"><table>{}</table></font>"#,
            r#"<tr><td><font color="blue">x</font></td></tr>"#.repeat(3_000)
        );
        assert!(!too_costly(&cells, 100));
    }
}
