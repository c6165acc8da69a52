//! How many attributes a block's tags carry, counted without html5ever.
//!
//! html5ever's tokenizer checks each attribute of a tag against every earlier one of the same tag
//! (to drop duplicates), so one tag with tens of thousands of attributes takes time quadratic in
//! its length. And the attributes of every `<html>` start tag are added to the one `<html>`
//! element, each time after a look at all it has: thousands of `<html>` tags, with an attribute
//! each, are quadratic too, and once it has many, each bare `<html>` after costs as many looks.
//! [`super::nesting`] measures with html5ever itself, which would pay
//! those costs too, so this count runs first, by a scan of its own that reads each byte once.
//!
//! Where a tag starts is not knowable without the whole parser (a `<` in a comment, in raw text
//! such as `<style>`'s, or in a quoted attribute value starts none), and guessing wrong one way
//! would hide a tag from the count: a `"` taken for the start of a value in what is really a
//! comment would swallow the real tag after it. So the scan counts for *every* `<` as if a tag
//! started there, following the tokenizer's tag states (tag name, attribute name, quoted and
//! unquoted values, ...) for each at once. Two readings in the same state at the same byte go on
//! alike, so they are merged (keeping the larger count), and there are never more readings than
//! states: the work is in proportion to the length, whatever the HTML. The count is never less
//! than the tokenizer's, and more only for text that is not a tag (a post that shows such text
//! with hundreds of attributes in it is shown as text, which loses nothing).

/// Whether some tag in `html` (or something that might be one) has more than `limit`
/// attributes, or its `<html>` start tags have more than `limit` between them, or so many
/// `<html>` tags follow those that adding theirs looks at more than `limit` squared.
pub fn too_many(html: &str, limit: usize) -> bool {
    let mut readings: Vec<Reading> = Vec::new();
    // The readings after the byte, built in a second buffer (both reused: no allocation a byte).
    let mut next: Vec<Reading> = Vec::new();
    // Attributes of `<html>` start tags, all added to the one `<html>` element.
    let mut on_html = 0usize;
    // The attributes looked at to add them: those the element has, for each `<html>` tag.
    let mut html_looks = 0usize;
    for &byte in html.as_bytes() {
        for reading in readings.drain(..) {
            let step = reading.state.step(byte);
            if reading.state == State::TagName
                && reading.name == Name::Html(4)
                && !matches!(step, Some((State::TagName, _)))
            {
                html_looks = html_looks.saturating_add(on_html);
                if html_looks > limit.saturating_mul(limit) {
                    return true;
                }
            }
            let Some((state, new_attribute)) = step else {
                continue;
            };
            let name = match (reading.state, state) {
                (State::TagOpen, State::TagName) => Name::Html(0).then(byte),
                (State::TagName, State::TagName) => reading.name.then(byte),
                (State::EndTagOpen, State::TagName) => Name::Other,
                _ => reading.name,
            };
            let count = reading.count + usize::from(new_attribute);
            if new_attribute && reading.name == Name::Html(4) {
                on_html += 1;
            }
            if count > limit || on_html > limit {
                return true;
            }
            merge(&mut next, Reading { state, name, count });
        }
        if byte == b'<' {
            merge(
                &mut next,
                Reading {
                    state: State::TagOpen,
                    name: Name::Html(0),
                    count: 0,
                },
            );
        }
        std::mem::swap(&mut readings, &mut next);
    }
    false
}

/// One way of reading the bytes so far: inside a tag, in this state, with this many attributes.
#[derive(Clone, Copy)]
struct Reading {
    state: State,
    name: Name,
    count: usize,
}

/// Adds `reading`, or raises the count of the one already in its state.
fn merge(readings: &mut Vec<Reading>, reading: Reading) {
    match readings
        .iter_mut()
        .find(|r| r.state == reading.state && r.name == reading.name)
    {
        Some(same) => same.count = same.count.max(reading.count),
        None => readings.push(reading),
    }
}

/// The name of a start tag, as far as read: `html` up to this many letters, or something else
/// (an end tag's too: the attributes of `</html>` go nowhere).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Name {
    Html(usize),
    Other,
}

impl Name {
    /// The name with `byte` added to it.
    fn then(self, byte: u8) -> Name {
        match self {
            Name::Html(n) if b"html".get(n) == Some(&byte.to_ascii_lowercase()) => {
                Name::Html(n + 1)
            }
            _ => Name::Other,
        }
    }
}

/// The tokenizer's states inside a tag (html5ever's, which are the HTML standard's).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// Just after `<`.
    TagOpen,
    /// Just after `</`.
    EndTagOpen,
    TagName,
    BeforeAttributeName,
    AttributeName,
    AfterAttributeName,
    BeforeAttributeValue,
    DoubleQuoted,
    SingleQuoted,
    Unquoted,
    AfterQuotedValue,
    /// After a `/` in a tag.
    SelfClosing,
}

/// The tokenizer's whitespace; it reads a carriage return as a line feed.
fn space(byte: u8) -> bool {
    matches!(byte, b'\t' | b'\n' | b'\x0C' | b'\r' | b' ')
}

impl State {
    /// The state after `byte`, and whether `byte` starts an attribute; `None` once the tag has
    /// ended (or was none).
    fn step(self, byte: u8) -> Option<(State, bool)> {
        use State::*;
        let state = match (self, byte) {
            (TagOpen, b'/') => EndTagOpen,
            (TagOpen | EndTagOpen, b) if b.is_ascii_alphabetic() => TagName,
            (TagOpen | EndTagOpen, _) => return None,
            (DoubleQuoted, b'"') | (SingleQuoted, b'\'') => AfterQuotedValue,
            (DoubleQuoted, _) => DoubleQuoted,
            (SingleQuoted, _) => SingleQuoted,
            (_, b'>') => return None,
            (TagName | AttributeName | Unquoted | AfterQuotedValue, b) if space(b) => {
                if self == AttributeName {
                    AfterAttributeName
                } else {
                    BeforeAttributeName
                }
            }
            (BeforeAttributeName | AfterAttributeName | BeforeAttributeValue, b) if space(b) => {
                self
            }
            (SelfClosing, b) if space(b) => BeforeAttributeName,
            (BeforeAttributeValue, b'"') => DoubleQuoted,
            (BeforeAttributeValue, b'\'') => SingleQuoted,
            (BeforeAttributeValue | Unquoted, _) => Unquoted,
            (AttributeName | AfterAttributeName, b'=') => BeforeAttributeValue,
            (_, b'/') => SelfClosing,
            (TagName, _) => TagName,
            (AttributeName, _) => AttributeName,
            // Anything else in these states begins a new attribute (`=` included, as its name).
            (BeforeAttributeName | AfterAttributeName | AfterQuotedValue | SelfClosing, _) => {
                return Some((AttributeName, true));
            }
        };
        Some((state, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tokenizer's count of the attributes of the tags in `html` (the largest), by html5ever.
    fn html5ever_count(html: &str) -> usize {
        use html5ever::tendril::StrTendril;
        use html5ever::tokenizer::{
            BufferQueue, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
        };
        use std::cell::Cell;
        struct Most(Cell<usize>);
        impl TokenSink for Most {
            type Handle = ();
            fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
                if let Token::TagToken(tag) = token {
                    self.0.set(self.0.get().max(tag.attrs.len()));
                }
                TokenSinkResult::Continue
            }
        }
        let tokenizer = Tokenizer::new(Most(Cell::new(0)), TokenizerOpts::default());
        let queue = BufferQueue::default();
        queue.push_back(StrTendril::from_slice(html));
        let _ = tokenizer.feed(&queue);
        tokenizer.end();
        tokenizer.sink.0.get()
    }

    /// The fewest attributes `too_many` finds in `html`'s largest tag.
    fn count(html: &str) -> usize {
        (0..).find(|&limit| !too_many(html, limit)).unwrap()
    }

    #[test]
    fn counts_as_the_tokenizer_does() {
        // The HTML, the scan's count, the tokenizer's.
        for (html, counted, tokenized) in [
            ("<p>", 0, 0),
            ("<p a>", 1, 1),
            ("<p a b=1 c='2' d=\"3\">", 4, 4),
            // No space needed after a quoted value, a `/` separates too, `=` can be a name.
            ("<p a='1'b=\"2\"c/d = e/ =f>", 5, 5),
            ("<P\tA\nB\rC\x0CD>", 4, 4),
            ("</p a b>", 2, 2),
            ("<p a=1>x<br c d e>", 3, 3),
            // A `>` or `<` inside a quoted value ends nothing and starts no tag the tokenizer
            // sees (the scan reads `<' c>` as one, with its 2 attributes).
            ("<p a=\">\" b='<' c>", 3, 3),
            ("<p a=\">\" b='<' c d e f>", 6, 6),
            // The same name twice is one attribute to the tokenizer: the count may be more.
            ("<p a a>", 2, 1),
            // Never closed: the tokenizer still compared them as it went.
            ("<p a b c", 3, 0),
        ] {
            assert_eq!(count(html), counted, "{html}");
            assert_eq!(html5ever_count(html), tokenized, "{html}");
        }
    }

    /// A tag whose `<` is inside a comment, raw text or a quoted value is counted as one too: the
    /// scan cannot know, and must never miss a real tag after a quote it took for a value's.
    #[test]
    fn no_reading_hides_a_tag_from_the_count() {
        let many: String = (0..300).map(|i| format!(" a{i}")).collect();
        // The tokenizer reads this `"` as a comment's, and the tag after it as a tag.
        let trap = format!("<!-- <a b=\" --><p{many}>");
        assert_eq!(html5ever_count(&trap), 300);
        for before in [
            "<!-- <a b=\" -->",
            "<style><a b=\"</style>",
            "<a b=\"",
            "<a b='",
            "<a b=",
            "<!<a b=\">",
            "<a title=\"<x y='\">",
        ] {
            let html = format!("{before}<p{many}>");
            assert!(too_many(&html, 256), "{before}");
            assert!(!too_many(&html, 301), "{before}: counts more than it has");
        }
        // Something that only looks like a tag (inside a value here) counts: over, never under.
        let inside = format!("<a title=\"<p{many}>\">");
        assert_eq!(html5ever_count(&inside), 1);
        assert!(too_many(&inside, 256));
    }

    /// The attributes of `<html>` start tags add up, as on the one element they go to.
    #[test]
    fn html_tags_count_their_attributes_together() {
        // Three on `<html>` tags (an end tag's and `<htmlx>`'s are not), two at most on any one tag.
        let html = "<html a><p b c><HTML d e></html f g><htmlx i j><html>";
        assert!(!too_many(html, 3));
        assert!(too_many(html, 2));
        let tags: String = (0..300).map(|i| format!("<html a{i}>")).collect();
        assert!(too_many(&tags, 256));
        assert!(!too_many(&tags, 300));
    }

    /// Each `<html>` tag costs a look at all the attributes the element has: many bare `<html>`
    /// tags after one with the most allowed cost that many times over (240 KB took 0.4 s).
    #[test]
    fn html_tags_after_many_attributes_on_html_cost_too() {
        let first: String = (0..256).map(|i| format!(" a{i}")).collect();
        let tags = |n: usize| format!("<html{first}>{}", "<html>".repeat(n));
        assert!(!too_many(&tags(256), 256));
        assert!(too_many(&tags(257), 256));
        // Bare `<html>` tags alone cost nothing.
        assert!(!too_many(&"<html>".repeat(10_000), 256));
    }

    #[test]
    fn many_tags_with_few_attributes_each_are_fine() {
        let html = "<p a=1 b='2' c=\"3\">x</p>".repeat(10_000);
        assert!(!too_many(&html, 3));
        assert!(too_many(&html, 2));
    }

    /// The scan itself reads each byte once, however hostile the bytes.
    #[test]
    fn the_scan_is_linear() {
        let fastest = |html: &str| {
            (0..3)
                .map(|_| {
                    let started = crate::blog::thread_cpu_time();
                    too_many(html, 256);
                    crate::blog::thread_cpu_time() - started
                })
                .min()
                .unwrap()
        };
        for unit in ["<a b=\"", "<", "</", "<a b='\"", "<a =<a '<a \"", "<p a=1>"] {
            let small = fastest(&unit.repeat(40_000 / unit.len()));
            let large = fastest(&unit.repeat(400_000 / unit.len()));
            let ratio = large.as_secs_f64() / small.as_secs_f64().max(1e-6);
            assert!(ratio < 40.0, "{unit:?}: 40 KB {small:?}, 400 KB {large:?}");
        }
    }
}
