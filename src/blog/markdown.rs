//! Markdown to HTML that is safe to put in a page: pulldown-cmark renders, ammonia sanitises, so
//! no script, event handler or `javascript:` URL survives whatever the author wrote.

use pulldown_cmark::{Options, Parser, html};

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
    let text: String = markdown
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty() || l.starts_with('#'))
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    // With no tags allowed, ammonia leaves text whose only markup is its escaping of `&`, `<`,
    // `>` and no-break spaces; undone here, or the template's own escaping would double it.
    let plain = ammonia::Builder::empty()
        .clean(&text)
        .to_string()
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&");
    if plain.chars().count() <= max_chars {
        return plain;
    }
    let cut: String = plain.chars().take(max_chars).collect();
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
    }

    #[test]
    fn markdown_renders() {
        assert!(render("# Title\n\n**bold**").contains("<strong>bold</strong>"));
    }
}
