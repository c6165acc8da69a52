//! Markdown to HTML that is safe to put in a page: pulldown-cmark renders, ammonia sanitises, so
//! no script, event handler or `javascript:` URL survives whatever the author wrote.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd, html};

pub fn render(markdown: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_FOOTNOTES;
    let mut unsafe_html = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut unsafe_html, Parser::new_ext(markdown, options));
    ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(&unsafe_html)
        .to_string()
}

/// The first paragraph's text, shortened, for lists of posts: plain text, which the templates
/// escape (once) like any other text.
pub fn excerpt(markdown: &str, max_chars: usize) -> String {
    // The text of the first paragraph, as the reader sees it: Markdown syntax and raw HTML tags
    // dropped, entities decoded. Plain text; the template escapes it.
    let mut text = String::new();
    let mut in_paragraph = false;
    for event in Parser::new(markdown) {
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
    let cut: String = text.chars().take(max_chars).collect();
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            excerpt("This is **bold** and `code`,\nwrapped.", 100),
            "This is bold and code, wrapped."
        );
    }

    #[test]
    fn markdown_renders() {
        assert!(render("# Title\n\n**bold**").contains("<strong>bold</strong>"));
    }
}
