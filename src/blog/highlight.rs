//! Server-side syntax highlighting of fenced code, as token spans with CSS classes (`hl-keyword`,
//! `hl-string`, ...) that `static/style.css` colours for light and dark schemes. Classes, not
//! inline styles: the Content-Security-Policy forbids `style="..."`.
//!
//! syntect with only its bundled syntax definitions and the pure-Rust regex engine: no themes,
//! no Oniguruma C build. The definitions load once, on first use.

use std::sync::LazyLock;

use syntect::html::{ClassStyle, ClassedHTMLGenerator};
use syntect::parsing::SyntaxSet;
use syntect::util::LinesWithEndings;

/// Prefix of every token class, so the highlighter's classes cannot collide with the site's.
pub const CLASS_PREFIX: &str = "hl-";

/// Code longer than this is shown plain: highlighting costs time on every view of the page.
const MAX_HIGHLIGHTED_BYTES: usize = 64 * 1024;

static SYNTAXES: LazyLock<SyntaxSet> = LazyLock::new(SyntaxSet::load_defaults_newlines);

/// A fenced block as `<pre class="highlight"><code class="language-x">` with token spans.
/// `lang` is the fence's info string; unknown languages and oversized code are escaped only.
pub fn code_block(code: &str, lang: &str) -> String {
    let lang: String = lang
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '#'))
        .collect();
    let class = if lang.is_empty() {
        String::new()
    } else {
        format!(r#" class="language-{lang}""#)
    };
    let tokens = highlighted(code, &lang).unwrap_or_else(|| escape(code));
    format!(r#"<pre class="highlight"><code{class}>{tokens}</code></pre>"#)
}

fn highlighted(code: &str, lang: &str) -> Option<String> {
    if lang.is_empty() || code.len() > MAX_HIGHLIGHTED_BYTES {
        return None;
    }
    let syntaxes = &*SYNTAXES;
    let syntax = syntaxes.find_syntax_by_token(lang)?;
    let mut html = ClassedHTMLGenerator::new_with_class_style(
        syntax,
        syntaxes,
        ClassStyle::SpacedPrefixed {
            prefix: CLASS_PREFIX,
        },
    );
    for line in LinesWithEndings::from(code) {
        html.parse_html_for_line_which_includes_newline(line).ok()?;
    }
    Some(html.finalize())
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_languages_get_token_spans() {
        let html = code_block("fn main() { let x = \"hi\"; }\n", "rust");
        assert!(html.starts_with(r#"<pre class="highlight"><code class="language-rust">"#));
        assert!(
            html.contains(r#"<span class="hl-storage hl-type hl-function hl-rust">fn</span>"#),
            "{html}"
        );
        assert!(html.contains("hl-string"), "{html}");
    }

    #[test]
    fn unknown_languages_and_text_are_escaped() {
        let html = code_block("<script>x</script>", "nonsense\" onclick=x");
        assert_eq!(
            html,
            r#"<pre class="highlight"><code class="language-nonsense">&lt;script&gt;x&lt;/script&gt;</code></pre>"#
        );
    }
}
