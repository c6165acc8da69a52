//! Markdown to HTML that is safe to put in a page: pulldown-cmark renders, ammonia sanitises, so
//! no script, event handler or `javascript:` URL survives whatever the author wrote.
//!
//! Raw HTML in a post can be broken or hostile, so two rules keep it from eating the rest of the
//! post (the sanitiser drops `<script>` and `<style>` *with their content*, and an unclosed one
//! would otherwise contain everything after it):
//! - each top-level block (paragraph, list, raw HTML block, ...) is sanitised on its own, so
//!   nothing one block opens reaches into the next;
//! - a raw HTML block that starts with `<script`, `<style`, `<textarea` or `<pre` and never closes
//!   (Markdown would make the whole rest of the post part of it) is shown as text instead.
//!
//! A block that would cost the sanitiser's parser time out of proportion to its length (nested
//! more than `MAX_NESTING` deep, or a tag with more than `MAX_ATTRIBUTES` attributes, or
//! `<html>` tags with more between them, or formatting tags the parser compares with open ones
//! of their name by too many attributes, see [`nesting`]) is shown as text too.
//!
//! Fenced code is highlighted here (see [`super::highlight`]) before sanitising; the sanitiser
//! keeps only the classes the highlighter and the footnotes use. Footnotes are numbered in order
//! of first appearance and linked both ways; their ids get the sanitiser's `post-` prefix, like
//! every id an author writes, so a post cannot clobber the page's own ids.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::LazyLock;

use pulldown_cmark::{CodeBlockKind, CowStr, Event, Options, Parser, Tag, TagEnd, html};

use super::{attributes, highlight, nesting};

/// Prefix the sanitiser puts on every `id`; links to footnotes must carry it too.
const ID_PREFIX: &str = "post-";

/// Raw HTML blocks that, unclosed, run to the end of the post.
const RAW_TEXT_OPENERS: [&str; 4] = ["script", "style", "textarea", "pre"];

fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_FOOTNOTES
}

static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder
        .link_rel(Some("noopener noreferrer nofollow"))
        .add_generic_attributes(["id", "class"])
        .id_prefix(Some(ID_PREFIX))
        .attribute_filter(|element, attribute, value| {
            if attribute != "class" {
                return Some(value.into());
            }
            let kept: Vec<&str> = value
                .split_whitespace()
                .filter(|class| allowed_class(element, class))
                .collect();
            (!kept.is_empty()).then(|| kept.join(" ").into())
        });
    builder
});

/// The classes that survive sanitising: the highlighter's and the footnotes'.
fn allowed_class(element: &str, class: &str) -> bool {
    match element {
        "span" => class.starts_with(highlight::CLASS_PREFIX),
        "code" => class.starts_with("language-"),
        "pre" => class == "highlight",
        "sup" => matches!(class, "footnote-reference" | "footnote-definition-label"),
        "div" => class == "footnote-definition",
        "a" => class == "footnote-backref",
        _ => false,
    }
}

/// `markdown` without a byte-order mark (U+FEFF) at its start, which some editors write at the
/// start of a file and a paste of it keeps: Markdown would take it for text, and a first line
/// `# Hello` for a paragraph. Bodies are stored without one ([`PostInput`]); a body stored with
/// one before renders as if it had none. A mark anywhere else is the author's text.
///
/// [`PostInput`]: super::input::PostInput
pub fn without_bom(markdown: &str) -> &str {
    markdown.strip_prefix('\u{feff}').unwrap_or(markdown)
}

/// The post's HTML, sanitised.
pub fn render(markdown: &str) -> String {
    let markdown = show_unclosed_raw_text_blocks(without_bom(markdown));
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    let mut footnotes = Footnotes::default();
    let mut block: Vec<Event> = Vec::new();
    // What the author wrote, by its place in `block`, for the events made here from it
    // (highlighted code, footnote markup): shown instead of them if the block is shown as text.
    let mut written: HashMap<usize, String> = HashMap::new();
    let mut depth = 0usize;
    let mut code: Option<(String, String)> = None;
    for event in Parser::new_ext(&markdown, options()) {
        let event = match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                let lang = match kind {
                    CodeBlockKind::Fenced(info) => info.to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                code = Some((lang, String::new()));
                depth += 1;
                continue;
            }
            Event::Text(text) if code.is_some() => {
                code.as_mut()
                    .expect("inside a code block")
                    .1
                    .push_str(&text);
                continue;
            }
            Event::End(TagEnd::CodeBlock) => {
                let (lang, text) = code.take().unwrap_or_default();
                depth -= 1;
                let highlighted = highlight::code_block(&text, &lang);
                written.insert(block.len(), text);
                Event::Html(highlighted.into())
            }
            Event::FootnoteReference(name) => {
                written.insert(block.len(), format!("[^{name}]"));
                Event::InlineHtml(footnotes.reference(&name).into())
            }
            Event::Start(Tag::FootnoteDefinition(name)) => {
                depth += 1;
                written.insert(block.len(), format!("[^{name}]: "));
                block.push(Event::Html(footnotes.definition_start(&name).into()));
                continue;
            }
            Event::End(TagEnd::FootnoteDefinition) => {
                depth -= 1;
                written.insert(block.len(), String::new());
                Event::Html(footnotes.definition_end().into())
            }
            Event::Start(tag) => {
                depth += 1;
                Event::Start(tag)
            }
            Event::End(tag) => {
                depth -= 1;
                Event::End(tag)
            }
            other => other,
        };
        block.push(event);
        if depth == 0 {
            let mut unsafe_html = String::new();
            html::push_html(&mut unsafe_html, block.iter().cloned());
            // The attributes first: html5ever, which `too_costly` runs, is what they slow down.
            if attributes::too_many(&unsafe_html, MAX_ATTRIBUTES)
                || nesting::too_costly(&unsafe_html, MAX_NESTING)
            {
                out.push_str(&as_text(&block, &written));
            } else {
                out.push_str(&SANITIZER.clean(&unsafe_html).to_string());
            }
            block.clear();
            written.clear();
        }
    }
    out
}

/// How deep a block's elements may nest before it is shown as text instead. The sanitiser's HTML
/// parser does work in proportion to the depth for each element it opens, so a body of 40 KB of
/// `>` or `<div>` (nested 40,000 deep) took seconds on every view, quadratic in its length; no
/// real post nests a hundred deep. The depth is the parser's own (see [`nesting`]): counting
/// tags missed `<div/>` and `<div></x>`, which nest as deep as `<div>`. A block whose nodes moved
/// out of tables add up to as much work is shown as text too.
const MAX_NESTING: usize = 100;

/// How many attributes a tag may have before its block is shown as text instead. The
/// sanitiser's parser checks each attribute of a tag against every earlier one, so one tag of
/// 200 KB of attributes took over a second on every view, quadratic in its length; no real post
/// gives a tag hundreds. The attributes of all the `<html>` start tags of a block count together:
/// they all go to the one `<html>` element, and each `<html>` tag after them costs a look at all
/// of them: past 256 × 256 looks, the block is shown as text too. The count is a scan of its own (see [`attributes`]),
/// before any parse.
const MAX_ATTRIBUTES: usize = 256;

/// A block too costly to render (nested too deeply, or with too many attributes), as a paragraph of its text: Markdown's structure
/// dropped, raw HTML, code and footnotes shown as written (`written`: what the author wrote for
/// the events made here, by their place in `block`, instead of their markup).
fn as_text(block: &[Event], written: &HashMap<usize, String>) -> String {
    let mut text = String::new();
    for (at, event) in block.iter().enumerate() {
        if let Some(as_written) = written.get(&at) {
            text.push_str(as_written);
            continue;
        }
        match event {
            Event::Text(t) | Event::Code(t) | Event::Html(t) | Event::InlineHtml(t) => {
                text.push_str(t)
            }
            Event::SoftBreak | Event::HardBreak => text.push('\n'),
            // Items and paragraphs stay apart.
            Event::End(TagEnd::Paragraph | TagEnd::Item | TagEnd::Heading(_)) => text.push('\n'),
            _ => {}
        }
    }
    format!("<p>{}</p>", ammonia::clean_text(text.trim()))
}

/// Footnote numbers, in order of first appearance (reference or definition).
#[derive(Default)]
struct Footnotes {
    numbers: HashMap<String, usize>,
    /// Notes already referenced once: only the first reference gets the id the note links back to.
    referenced: HashSet<usize>,
    /// The note being defined.
    open: Option<usize>,
}

impl Footnotes {
    fn number(&mut self, name: &str) -> usize {
        let next = self.numbers.len() + 1;
        *self.numbers.entry(name.to_owned()).or_insert(next)
    }

    fn reference(&mut self, name: &CowStr) -> String {
        let n = self.number(name);
        let id = if self.referenced.insert(n) {
            format!(r#" id="fn-ref-{n}""#)
        } else {
            String::new()
        };
        format!(
            r##"<sup class="footnote-reference"><a href="#{ID_PREFIX}fn-note-{n}"{id}>{n}</a></sup>"##
        )
    }

    fn definition_start(&mut self, name: &CowStr) -> String {
        let n = self.number(name);
        self.open = Some(n);
        format!(
            r#"<div class="footnote-definition" id="fn-note-{n}"><sup class="footnote-definition-label">{n}</sup>"#
        )
    }

    fn definition_end(&mut self) -> String {
        match self.open.take() {
            Some(n) if self.referenced.contains(&n) => format!(
                r##"<a class="footnote-backref" href="#{ID_PREFIX}fn-ref-{n}" title="Back to the text">↩</a></div>"##
            ),
            _ => "</div>".to_owned(),
        }
    }
}

/// Rewrites the `<` of every raw HTML block that opens a raw-text element (`<style>`, ...) and
/// never closes it, so that block renders as text and the Markdown after it as Markdown.
///
/// Each one found means parsing the post again (what it swallowed is Markdown again, and may hold
/// another), so a post of thousands of them took minutes: after [`MAX_UNCLOSED_PASSES`], every
/// raw-text opener left is shown as text at once.
fn show_unclosed_raw_text_blocks(markdown: &str) -> String {
    let mut markdown = markdown.to_owned();
    for _ in 0..MAX_UNCLOSED_PASSES {
        match unclosed_raw_text_block(&markdown) {
            Some(start) => markdown.replace_range(start..start + 1, "&lt;"),
            None => return markdown,
        }
    }
    if unclosed_raw_text_block(&markdown).is_some() {
        return show_every_raw_text_opener(&markdown);
    }
    markdown
}

/// Parses of a post spent on finding its unclosed raw-text blocks one at a time.
const MAX_UNCLOSED_PASSES: usize = 8;

/// Rewrites the `<` of every raw-text opener (`<script`, `<style`, `<textarea`, `<pre`, in any
/// case, followed by `>`, `/` or a space), wherever it is: for a post with more unclosed ones than
/// are worth finding one by one.
fn show_every_raw_text_opener(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len() + 64);
    let mut rest = markdown;
    while let Some(at) = rest.find('<') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let opener = RAW_TEXT_OPENERS.into_iter().any(|name| {
            after.len() > name.len()
                && after.as_bytes()[..name.len()].eq_ignore_ascii_case(name.as_bytes())
                && matches!(
                    after.as_bytes()[name.len()],
                    b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r'
                )
        });
        out.push_str(if opener { "&lt;" } else { "<" });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Where the first unclosed raw-text HTML block starts (the offset of its `<`).
fn unclosed_raw_text_block(markdown: &str) -> Option<usize> {
    let mut blocks = Parser::new_ext(markdown, options())
        .into_offset_iter()
        .filter_map(|(event, range): (Event, Range<usize>)| {
            matches!(event, Event::Start(Tag::HtmlBlock)).then_some(range)
        });
    blocks.find_map(|range| {
        let text = &markdown[range.clone()];
        let lead = text.len() - text.trim_start().len();
        let lower = text.trim_start().to_ascii_lowercase();
        let name = RAW_TEXT_OPENERS.into_iter().find(|name| {
            lower.strip_prefix('<').is_some_and(|rest| {
                rest.starts_with(name)
                    && rest[name.len()..].starts_with(|c: char| c == '>' || c.is_whitespace())
            })
        })?;
        (!lower.contains(&format!("</{name}"))).then_some(range.start + lead)
    })
}

/// `markdown` without its first line if that is an ATX heading of level 1 whose text is `title`
/// (`# Title`, `# Title #`), or its first two if they are a setext heading of level 1 whose text
/// is `title` (`Title` over `=====`), which the page shows above the body already: a body written
/// with its title at the top shows it once. The post keeps its body as written; any other first
/// heading stays, one in another case too (the author may mean it).
pub fn without_title<'a>(markdown: &'a str, title: &str) -> &'a str {
    let markdown = without_bom(markdown);
    let start = markdown.len() - markdown.trim_start_matches(['\n', '\r', ' ', '\t']).len();
    // Back to the start of the first line that is not blank (its indentation counts).
    let start = markdown[..start].rfind('\n').map_or(0, |at| at + 1);
    let rest = &markdown[start..];
    let (line, after) = rest.split_once('\n').unwrap_or((rest, ""));
    let line = line.trim_end_matches('\r');
    let indent = line.len() - line.trim_start_matches(' ').len();
    let Some(text) = line[indent..].strip_prefix('#') else {
        return setext_title(line, after, title).unwrap_or(markdown);
    };
    if indent > 3 || !(text.is_empty() || text.starts_with([' ', '\t'])) {
        // No ATX heading of level 1 (`#1 tip`, `##a`, `## Two`, indented code): the two lines may
        // still be a setext heading of level 1 (`#1 tip` over `======`).
        return setext_title(line, after, title).unwrap_or(markdown);
    }
    // A closing sequence of `#`s goes if a space comes before it (CommonMark).
    let text = text.trim();
    let unclosed = text.trim_end_matches('#');
    let text = if unclosed.is_empty() || unclosed.ends_with([' ', '\t']) {
        unclosed.trim_end()
    } else {
        text
    };
    // Compared in NFC: the title is stored so, the body as typed (it may be decomposed).
    use unicode_normalization::UnicodeNormalization;
    if text.nfc().eq(title.trim().nfc()) {
        after
    } else {
        markdown
    }
}

/// What follows a setext heading of level 1 (`line`, then a line of `=`s, the first of
/// `after`) whose text is `title` (compared in NFC, as the ATX heading's is); `None` if the two
/// lines are not that heading (`Hello` under a list's `- `, a quote's `> `, as code...: Markdown
/// says which, from these two lines alone) or its text is another.
fn setext_title<'a>(line: &str, after: &'a str, title: &str) -> Option<&'a str> {
    use pulldown_cmark::HeadingLevel;
    use unicode_normalization::UnicodeNormalization;
    let (underline, rest) = after.split_once('\n').unwrap_or((after, ""));
    let underline = underline.trim_end_matches('\r');
    let indent = underline.len() - underline.trim_start_matches(' ').len();
    let marks = underline[indent..].trim_end_matches([' ', '\t']);
    if indent > 3 || marks.is_empty() || !marks.bytes().all(|b| b == b'=') {
        return None;
    }
    let two_lines = format!("{line}\n{underline}");
    let events: Vec<Event> = Parser::new_ext(&two_lines, options()).collect();
    let heading = matches!(
        events.first(),
        Some(Event::Start(Tag::Heading {
            level: HeadingLevel::H1,
            ..
        }))
    ) && matches!(
        events.last(),
        Some(Event::End(TagEnd::Heading(HeadingLevel::H1)))
    ) && events
        .iter()
        .filter(|e| matches!(e, Event::Start(Tag::Heading { .. })))
        .count()
        == 1;
    (heading && line.trim().nfc().eq(title.trim().nfc())).then_some(rest)
}

/// The first paragraph's text, shortened, for lists of posts: plain text, which the templates
/// escape (once) like any other text.
pub fn excerpt(markdown: &str, max_chars: usize) -> String {
    // The text of the first paragraph, as the reader sees it: Markdown syntax and raw HTML tags
    // dropped, entities decoded. Plain text; the template escapes it.
    let mut text = String::new();
    let mut in_paragraph = false;
    // Footnotes enabled as in `render`, so a reference is an event (skipped), not text.
    for event in Parser::new_ext(without_bom(markdown), options()) {
        match event {
            Event::Start(Tag::Paragraph) => in_paragraph = true,
            Event::End(TagEnd::Paragraph) if in_paragraph => break,
            Event::Text(t) | Event::Code(t) if in_paragraph => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak if in_paragraph => text.push(' '),
            _ => {}
        }
    }
    let text = text.trim();
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    // Cut at the last space that fits (looking one character further, in case the cut falls
    // just before a space), so no word is shown in half; a single overlong word is cut anyway.
    let fitting: String = text.chars().take(max_chars + 1).collect();
    let cut = match fitting.rfind(char::is_whitespace) {
        Some(space) if space > 0 => fitting[..space].to_owned(),
        _ => text.chars().take(max_chars).collect(),
    };
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_heading_that_is_the_title_is_left_out() {
        for (body, rest) in [
            ("# Hello\n\nText", "\nText"),
            ("\n\n  # Hello  \r\nText", "Text"),
            ("# Hello ##\nText", "Text"),
            ("# Hello", ""),
            // A setext heading of level 1 too.
            ("Hello\n=====\nText", "Text"),
            ("\n  Hello  \r\n  ==  \r\n\nText", "\nText"),
            ("Hello\n=", ""),
            ("\u{feff}Hello\n===\nText", "Text"),
            ("He\u{301}llo\n===\nText", "Text"),
        ] {
            let title = if body.contains('\u{301}') {
                "H\u{e9}llo"
            } else {
                "Hello"
            };
            assert_eq!(without_title(body, title), rest, "{body:?}");
        }
        for kept in [
            "## Hello\nText",
            "#Hello\nText",
            "    # Hello\nText",
            "# Hello#\nText",
            "# Hello world\nText",
            "Text\n# Hello",
            "",
            // Another case is another heading: the author may mean it.
            "# hello\nText",
            "hello\n=====\nText",
            "HELLO\n=====",
            // Not a setext heading of level 1, or not of the title alone.
            "Hello\n-----\nText",
            "Hello\nworld\n=====",
            "Hello world\n=====",
            "- Hello\n=====",
            "> Hello\n=====",
            "    Hello\n=====",
            "Hello\n    =====",
            "Hello\n= =",
            "Hello\n===x",
            "Hello\n\n=====",
        ] {
            assert_eq!(without_title(kept, "Hello"), kept, "{kept:?}");
        }
    }

    /// A byte-order mark (U+FEFF) at the start of a body, as some editors save a file, is no
    /// text: the first line is Markdown as it would be without it.
    #[test]
    fn a_leading_byte_order_mark_is_not_text() {
        assert_eq!(render("\u{feff}# Hello\n\nText"), render("# Hello\n\nText"));
        assert_eq!(without_title("\u{feff}# Hello\n\nText", "Hello"), "\nText");
        assert_eq!(without_title("\u{feff}Text", "Hello"), "Text");
        assert_eq!(excerpt("\u{feff}First words.", 100), "First words.");
        // Only a leading one: elsewhere it is the author's text.
        assert!(render("a\u{feff}b").contains("a\u{feff}b"));
    }

    /// The fastest of `runs` renders of `body`: ratios of these, within one run, say how the
    /// time grows with the length, whatever the machine's speed.
    /// The fastest render of each of two bodies (of `runs` each), and how many times longer the
    /// second took: a render linear in the body's length takes about as many times longer as the
    /// body is.
    fn growth(
        runs: usize,
        small: &str,
        large: &str,
    ) -> (std::time::Duration, std::time::Duration, f64) {
        let small = fastest_render(small, runs);
        let large = fastest_render(large, runs);
        (
            small,
            large,
            large.as_secs_f64() / small.as_secs_f64().max(1e-6),
        )
    }

    fn fastest_render(body: &str, runs: usize) -> std::time::Duration {
        (0..runs)
            .map(|_| {
                let started = crate::blog::thread_cpu_time();
                render(body);
                crate::blog::thread_cpu_time() - started
            })
            .min()
            .unwrap()
    }

    #[test]
    fn scripts_and_handlers_are_stripped() {
        let html = render(
            "hi <script>alert(1)</script> <img src=x onerror=alert(2)> [x](javascript:alert(3))",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("onerror"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
    }

    #[test]
    fn excerpts_are_plain_text() {
        assert_eq!(
            excerpt("# Head\n\nTom & Jerry <b>say</b> 1 < 2 &lt;\n\nmore", 100),
            "Tom & Jerry say 1 < 2 <"
        );
        assert_eq!(excerpt("a & b c", 3), "a &…");
        assert_eq!(excerpt("LiteFS replicates SQLite", 12), "LiteFS…");
        assert_eq!(excerpt("Claim[^n].\n\n[^n]: Note.", 100), "Claim.");
        assert_eq!(excerpt("Supercalifragilistic", 5), "Super…");
        assert_eq!(
            excerpt("This is **bold** and `code`,\nwrapped.", 100),
            "This is bold and code, wrapped."
        );
    }

    /// Finding 17: raw HTML that the sanitiser drops with its content (here a `<style>` that
    /// html5ever puts in the MathML namespace, where it swallows everything after it) must not
    /// take the rest of the post with it.
    #[test]
    fn an_unclosed_element_never_swallows_the_rest_of_a_post() {
        for opener in [
            "<math><mtext><table><mglyph><style>",
            "<style>",
            "<script>",
            "<svg><style>",
        ] {
            let html = render(&format!("Before.\n\n{opener}\n\nAfter, **still here**.\n"));
            assert!(html.contains("Before."), "{opener}: {html}");
            assert!(
                html.contains("After, <strong>still here</strong>."),
                "{opener} swallowed the rest: {html}"
            );
        }
    }

    /// Footnote references link to their notes, and the notes link back, with ids that carry the
    /// sanitiser's prefix so they cannot clobber the page's own.
    #[test]
    fn footnotes_link_both_ways() {
        let html = render("Claim[^src].\n\n[^src]: The source.\n");
        for part in [
            r##"href="#post-fn-note-1""##,
            r#"id="post-fn-ref-1""#,
            r#"id="post-fn-note-1""#,
            r##"href="#post-fn-ref-1""##,
        ] {
            assert!(html.contains(part), "no {part} in {html}");
        }
        assert!(html.contains("The source."), "{html}");
    }

    #[test]
    fn highlighted_code_keeps_its_token_classes_through_the_sanitiser() {
        let html = render("- item\n\n  ```rust\n  let x = 1;\n  ```\n");
        assert!(html.contains(r#"<code class="language-rust">"#), "{html}");
        assert!(
            html.contains(r#"<span class="hl-storage hl-type hl-rust">let</span>"#),
            "{html}"
        );
        let forged = render(r#"<span class="flash evil hl-ok">x</span>"#);
        assert!(
            forged.contains(r#"<span class="hl-ok">x</span>"#),
            "{forged}"
        );
    }

    #[test]
    fn markdown_renders() {
        assert!(render("# Title\n\n**bold**").contains("<strong>bold</strong>"));
    }

    /// A body nested thousands deep (Markdown quotes or lists, raw `<div>`s) is shown as text: the
    /// sanitiser's parser takes time in proportion to the depth for each element.
    #[test]
    fn a_block_nested_too_deeply_is_shown_as_text() {
        for (unit, text) in [(">", "x"), ("- ", "x"), ("<div>", "&lt;div&gt;")] {
            let html = render(&format!("{} x\n\nafter", unit.repeat(2_000)));
            assert!(html.starts_with("<p>"), "{unit}: {}", &html[..80]);
            assert!(html.contains(text), "{unit}: {}", &html[..80]);
            assert!(
                html.ends_with("<p>after</p>\n"),
                "{unit}: the next block renders"
            );
        }
        // Nesting within the bound renders as Markdown.
        let html = render(&format!("{} x", ">".repeat(50)));
        assert_eq!(html.matches("<blockquote>").count(), 50);
    }

    /// A tag with as many attributes as allowed renders (the sanitiser drops the unknown ones);
    /// one more, and its block is shown as text, escaped, and the next block renders.
    #[test]
    fn a_tag_with_too_many_attributes_is_shown_as_text() {
        let tag = |n: usize| {
            let attributes: String = (0..n).map(|i| format!(" a{i}=\"{i}\"")).collect();
            format!("<p{attributes}>x</p>\n\n*after*\n")
        };
        assert_eq!(
            render(&tag(MAX_ATTRIBUTES)),
            "<p>x</p>\n<p><em>after</em></p>\n"
        );
        let html = render(&tag(MAX_ATTRIBUTES + 1));
        assert!(
            html.starts_with("<p>&lt;p&#32;a0&#61;&quot;0&quot;&#32;a1"),
            "{}",
            &html[..80]
        );
        assert!(!html.contains("<p a0"), "{}", &html[..80]);
        assert!(
            html.ends_with("<p><em>after</em></p>\n"),
            "the next block renders"
        );
    }

    /// A block shown as text shows the code in it as the author wrote it, not the highlighter's
    /// markup around it (escaped twice, `"` became `&quot;` on the page).
    #[test]
    fn a_block_shown_as_text_shows_its_code_as_written() {
        let attributes: String = (0..=MAX_ATTRIBUTES).map(|i| format!(" a{i}")).collect();
        let body = format!(
            "- item\n\n  ```rust\n  let x = \"<y>\";\n  ```\n\n  <span{attributes}>z</span>\n"
        );
        let html = render(&body);
        assert!(html.starts_with("<p>item"), "not shown as text: {html}");
        let code = ammonia::clean_text(r#"let x = "<y>";"#);
        assert!(html.contains(&code), "no {code} in {html}");
        assert!(!html.contains("hl-"), "highlighter markup shown: {html}");
    }

    /// Footnotes in a block shown as text show as written, not as the markup made for them.
    #[test]
    fn a_block_shown_as_text_shows_its_footnotes_as_written() {
        let attributes: String = (0..=MAX_ATTRIBUTES).map(|i| format!(" a{i}")).collect();
        let html = render(&format!(
            "Claim[^n] <i{attributes}>.\n\n[^n]: Note <i{attributes}>.\n"
        ));
        for written in ["Claim[^n]", "[^n]:&#32;Note"] {
            assert!(html.contains(written), "no {written} in {html}");
        }
        assert!(!html.contains("footnote"), "footnote markup shown: {html}");
    }

    /// More unclosed `<script>` blocks than are worth finding one by one: each is shown as text,
    /// and the Markdown after them renders.
    #[test]
    fn many_unclosed_raw_text_blocks_are_all_shown_as_text() {
        let body = format!("{}*after*", "<script>\n\n".repeat(50));
        let html = render(&body);
        assert_eq!(html.matches("&lt;script&gt;").count(), 50, "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("<em>after</em>"), "{html}");
    }

    /// Pathological bodies take time in proportion to their length: ten times longer is well
    /// under a hundred times slower (quadratic, they were: 40 KB of nested `>` took seconds, and
    /// 20 KB of unclosed `<script>` blocks almost one). Compared within this run (the fastest of
    /// three each), not against a clock.
    #[test]
    fn pathological_bodies_render_in_linear_time() {
        let runs = 3;
        // Raw HTML that nests deeper than its tags say: a self-closing `<div/>` opens a div, and
        // an end tag with nothing of its name open is ignored.
        for unit in [
            ">",
            "- ",
            "<div>",
            "<script>\n\n",
            "- <script>\n",
            "<div/>",
            "<div></x>",
            "<div></p>",
        ] {
            let (small, large, ratio) = growth(
                runs,
                &format!("{} x\n", unit.repeat(4_000 / unit.len())),
                &format!("{} x\n", unit.repeat(40_000 / unit.len())),
            );
            println!("{unit:?}: 4 KB {small:?}, 40 KB {large:?}: {ratio:.1}x");
            assert!(ratio < 40.0, "{unit:?}: 4 KB {small:?}, 40 KB {large:?}");
        }
    }

    /// Raw HTML the parser moves out of a table ("foster parenting") is inserted before the
    /// table, and the sanitiser's tree finds the table among its siblings one by one: a body of
    /// `<a><table>` makes thousands of siblings, quadratic in its length without nesting deep.
    #[test]
    fn foster_parented_html_renders_in_linear_time() {
        let runs = 2;
        for unit in ["<a><table>", "<table><a>", "<table>x"] {
            let (small, large, ratio) = growth(
                runs,
                &format!("{} x\n", unit.repeat(20_000 / unit.len())),
                &format!("{} x\n", unit.repeat(400_000 / unit.len())),
            );
            println!("{unit:?}: 20 KB {small:?}, 400 KB {large:?}: {ratio:.1}x");
            assert!(ratio < 80.0, "{unit:?}: 20 KB {small:?}, 400 KB {large:?}");
        }
    }

    /// One raw HTML tag with thousands of different attributes: the parser's tokenizer checks
    /// each attribute against every one before it on the tag (to drop duplicates), so the time
    /// is quadratic in the tag's length, however shallow the HTML.
    #[test]
    fn a_tag_with_many_attributes_renders_in_linear_time() {
        let runs = 2;
        let tag = |bytes: usize| {
            let attributes: String = (0..bytes / 7).map(|i| format!("a{i:04}=1 ")).collect();
            format!("<p {attributes}>x</p>\n")
        };
        let (small, large, ratio) = growth(runs, &tag(20_000), &tag(200_000));
        println!("20 KB {small:?}, 200 KB {large:?}: {ratio:.1}x");
        assert!(
            ratio < 40.0,
            "20 KB {small:?}, 200 KB {large:?}: {ratio:.1}x"
        );
    }

    /// The attributes of every `<html>` start tag are added to the one `<html>` element the
    /// sanitiser parses a block in, each time after a look at all it has already: thousands of
    /// `<html a00001>`, `<html a00002>`... are quadratic in their length, with one attribute a tag.
    #[test]
    fn many_html_tags_with_attributes_render_in_linear_time() {
        let runs = 2;
        let tags = |bytes: usize| {
            let tags: String = (0..bytes / 13).map(|i| format!("<html a{i:05}>")).collect();
            format!("{tags}\n")
        };
        let (small, large, ratio) = growth(runs, &tags(20_000), &tags(200_000));
        println!("20 KB {small:?}, 200 KB {large:?}: {ratio:.1}x");
        assert!(
            ratio < 40.0,
            "20 KB {small:?}, 200 KB {large:?}: {ratio:.1}x"
        );
    }

    /// Each formatting start tag (`<b>`, `<i>`, `<a>`...) is compared with every formatting
    /// element open since the last marker, by a sorted copy of both attribute lists (the Noah's
    /// Ark clause): a few dozen open `<b>` with 256 attributes each, then thousands of bare
    /// `<b></b>`, cost the size of the one times the number of the other, quadratic in the length
    /// with no tag over the attribute limit and nothing nested past 100 (500 KB took minutes).
    #[test]
    fn formatting_tags_after_many_attributes_on_open_ones_render_in_linear_time() {
        let runs = 2;
        let body = |bytes: usize| {
            // All different: the clause keeps no more than three equal ones.
            let open: String = (0..(bytes / 2 / 1_800).max(1))
                .map(|n| {
                    let attributes: String = (0..256).map(|i| format!(" a{i:03}={n}")).collect();
                    format!("<b{attributes}>")
                })
                .collect();
            let bare = "<b></b>".repeat((bytes - open.len()) / 7);
            format!("{open}{bare}\n")
        };
        let (small, large, ratio) = growth(runs, &body(4_000), &body(40_000));
        println!("4 KB {small:?}, 40 KB {large:?}: {ratio:.1}x");
        assert!(ratio < 40.0, "4 KB {small:?}, 40 KB {large:?}: {ratio:.1}x");
    }

    /// Noah's Ark compares attribute lists by sorting copies of them, and attribute names by
    /// their text: a few names of thousands of bytes (alike but for their end, in reverse order)
    /// on one open `<b>` cost a comparison of those bytes for each bare `<b>` after it, quadratic
    /// in the length with few attributes compared per byte.
    #[test]
    fn formatting_tags_after_long_attribute_names_on_open_ones_render_in_linear_time() {
        let runs = 2;
        let body = |bytes: usize| {
            let long = "a".repeat(bytes / 2 / 12);
            let open: String = (0..12).rev().map(|i| format!(" {long}{i:02}")).collect();
            format!("<b{open}>{}\n", "<b></b>".repeat(bytes / 2 / 7))
        };
        let (small, large, ratio) = growth(runs, &body(50_000), &body(500_000));
        println!("50 KB {small:?}, 500 KB {large:?}: {ratio:.1}x");
        // Linear bodies measure 10-13x here.
        assert!(
            ratio < 25.0,
            "50 KB {small:?}, 500 KB {large:?}: {ratio:.1}x"
        );
    }

    /// Ordinary formatting renders as HTML, however much of it: thousands of closed links, and
    /// bold and emphasis with no or few attributes, some nested.
    #[test]
    fn many_ordinary_formatting_tags_render_as_html() {
        let links = r#"<a href="https://example.com/page">a link</a> and "#.repeat(3_000);
        let html = render(&format!("{links}end\n"));
        assert_eq!(html.matches("<a href=").count(), 3_000, "{}", &html[..200]);
        let bold = r#"<b>bold</b> <em>em</em> <b class="x"><i title="t">i <b>b</b></i></b> "#
            .repeat(3_000);
        let html = render(&format!("{bold}end\n"));
        assert_eq!(html.matches("<b>b</b>").count(), 3_000, "{}", &html[..200]);
        assert_eq!(
            html.matches("<em>em</em>").count(),
            3_000,
            "{}",
            &html[..200]
        );
        let markdown = "**bold** *em* [link](https://example.com) ".repeat(3_000);
        let html = render(&markdown);
        assert_eq!(html.matches("<strong>bold</strong>").count(), 3_000);
        assert_eq!(html.matches("<a href=").count(), 3_000);
    }

    /// The first tag in `html` that could run script once a browser builds it: a `script`,
    /// `style`, `iframe`, `object` or `embed` tag, an event handler attribute (`on...`), or an
    /// attribute whose value is a `javascript:` URL as a browser's URL parser reads it (spaces
    /// and controls around it, tabs and line breaks in it, character references and case do not
    /// hide it; any attribute counts, not only those that hold URLs).
    ///
    /// The tags are read by html5ever's tokenizer, the way a browser reads them: a quoted
    /// attribute value is one value whatever it holds (a link title of `<img src=x onerror=y>` is
    /// text), and attributes need no space between them (`a="x"onclick=y`). Without the tree
    /// builder, the content of `<textarea>` and other raw-text elements is read as tags too,
    /// which can only find more.
    fn script_in(html: &str) -> Option<String> {
        use html5ever::TokenizerResult;
        use html5ever::tendril::StrTendril;
        use html5ever::tokenizer::{
            BufferQueue, EndTag, Tag, Token, TokenSink, TokenSinkResult, Tokenizer,
        };
        use std::cell::RefCell;

        struct Tags(RefCell<Vec<Tag>>);
        impl TokenSink for Tags {
            type Handle = ();
            fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
                if let Token::TagToken(tag) = token {
                    self.0.borrow_mut().push(tag);
                }
                TokenSinkResult::Continue
            }
        }

        fn script_url(value: &str) -> bool {
            let url: String = value
                .trim_matches(|c: char| c <= ' ')
                .chars()
                .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
                .collect();
            url.get(..11)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("javascript:"))
        }

        let input = BufferQueue::default();
        input.push_back(StrTendril::from_slice(html));
        let tokenizer = Tokenizer::new(Tags(RefCell::new(Vec::new())), Default::default());
        while !matches!(tokenizer.feed(&input), TokenizerResult::Done) {}
        tokenizer.end();
        let tags = tokenizer.sink.0.take();
        tags.into_iter()
            .find(|tag| {
                matches!(
                    &*tag.name,
                    "script" | "style" | "iframe" | "object" | "embed"
                ) || tag.attrs.iter().any(|attribute| {
                    attribute.name.local.starts_with("on") || script_url(&attribute.value)
                })
            })
            .map(|tag| {
                let attributes: String = tag
                    .attrs
                    .iter()
                    .map(|at| format!(" {}={:?}", &*at.name.local, &*at.value))
                    .collect();
                let slash = if tag.kind == EndTag { "/" } else { "" };
                format!("<{slash}{}{attributes}>", &*tag.name)
            })
    }

    /// The generated bodies' check reads tags as a browser does: what a quoted attribute value
    /// holds is text (a link title made of the pieces `"<img src=x onerror=y> a="` failed the
    /// check once, read word by word), and every real script, handler or `javascript:` URL is
    /// still found, however it is written.
    #[test]
    fn the_script_check_reads_tags_as_a_browser_does() {
        let body = "[a](> [a](<div>\"<img src=x onerror=y> a=\")";
        let html = render(body);
        assert!(
            html.contains(r#"title="&lt;img src=x onerror=y&gt; a=""#),
            "{html}"
        );
        assert_eq!(script_in(&html), None, "{html}");
        for harmless in [
            r#"<a href="x" title="a onclick=y b">a</a>"#,
            r#"<a href="x" title="<script>">a</a>"#,
            r#"<a href="x/javascript:y">a</a>"#,
            "<p>onerror=y &lt;script&gt; javascript:z()</p>",
            "<!-- <script> -->",
        ] {
            assert_eq!(script_in(harmless), None, "{harmless}");
        }
        for script in [
            "<script>x</script>",
            "<svg><script>x</script></svg>",
            "</script>",
            "<STYLE>",
            "<iframe src=x>",
            "<object data=x>",
            "<embed src=x>",
            "<img src=x onerror=y>",
            "<IMG SRC=x ONERROR=y>",
            r#"<a title="a b" onclick="y">"#,
            r#"<b a="x"onerror=y>"#,
            "<b\nonmouseover=y>",
            "<b/onfocus=y>",
            r#"<a href="javascript:z()">"#,
            "<a href=\" JaVa\tScript:z()\">",
            "<a href=\"\u{1}java\nscript:z()\">",
            r#"<a href="&#106;avascript:z()">"#,
            r#"<a href='javascript&colon;z()'>"#,
            "<a href=javascript:z()>",
        ] {
            assert!(script_in(script).is_some(), "{script}");
        }
    }

    /// Generated bodies, from pieces of Markdown and of HTML (good, broken and hostile, nested
    /// and not): rendering never panics (a panic is a 500 on every view of the post), and what
    /// it gives has no script, no event handler and no `javascript:` URL.
    #[test]
    fn generated_bodies_render_without_panic_or_script() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        const PIECES: &[&str] = &[
            "> ",
            "- ",
            "1. ",
            "    ",
            "\n",
            "\n\n",
            "# ",
            "*",
            "_",
            "`",
            "```rust\n",
            "```\n",
            "[a](",
            ")",
            "[^n]",
            "[^n]: ",
            "| a | b |\n|---|---|\n",
            "<div>",
            "</div>",
            "<div/>",
            "<p>",
            "</p>",
            "<table>",
            "<tr><td>",
            "</td></tr>",
            "</table>",
            "<a href=\"x\">",
            "</a>",
            "<script>",
            "</script>",
            "<style>",
            "<pre>",
            "</pre>",
            "<textarea>",
            "<!--",
            "-->",
            "<svg><script>",
            "<math><mi>",
            "<template>",
            "<img src=x onerror=y>",
            "<a href=\"javascript:z()\">",
            "<b",
            " a=\"",
            "\"",
            "&lt;",
            "&#0;",
            "\u{c}",
            "\0",
            "é",
            "👍",
            "x",
            "<",
            ">",
            "/",
            "]",
            "[",
        ];
        let piece = proptest::sample::select(PIECES);
        let body = proptest::collection::vec(piece, 0..400).prop_map(|pieces| pieces.concat());
        let mut runner = TestRunner::new(Config {
            cases: 1500,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&body, |body| {
                let html = render(&body);
                let script = script_in(&html);
                prop_assert!(script.is_none(), "{body:?} gave {script:?} in {html}");
                Ok(())
            })
            .unwrap();
    }
}
