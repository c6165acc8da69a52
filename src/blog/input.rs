//! Inputs validated once, so operations hold checked values.
//!
//! Text is normalized to Unicode NFC (so "café" typed two ways is one tag), and characters a
//! reader cannot see or that reorder text (controls, format characters such as zero-width spaces,
//! bidi overrides and BOMs, line and paragraph separators) are refused in labels and titles.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

use super::{BlogError, FieldErrors};

/// A tag's label, as stored, has at most this many characters.
pub const MAX_LABEL_CHARS: usize = 40;
/// A label as typed may have this many characters at most: an existing tag's label typed in
/// another case can be longer than its label (`İ` lowercases to two characters; `J̌` is two where
/// `ǰ` is one), and names that tag, whose label is kept. A label that is stored (a new tag, a
/// rename) is held to [`MAX_LABEL_CHARS`] then ([`TagLabel::check_length`]).
pub const MAX_TYPED_LABEL_CHARS: usize = 4 * MAX_LABEL_CHARS;
/// Tags on one post at most.
pub const MAX_TAGS_PER_POST: usize = 20;
pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_SLUG_CHARS: usize = 100;
pub const MAX_BODY_BYTES: usize = 512 * 1024;

/// Whether `c` is a control, format (zero-width, bidi, BOM), line/paragraph separator,
/// private-use, surrogate or unassigned character: invisible or misleading in a label or title.
fn is_hidden(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::PrivateUse
            | GeneralCategory::Surrogate
            | GeneralCategory::Unassigned
    )
}

/// Zero-width non-joiner and joiner (U+200C, U+200D): invisible, but part of how Persian, the
/// scripts of India and emoji sequences are written, so a title may have them (a tag label may
/// not: it names a tag, and two labels should not differ invisibly).
fn is_joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
}

/// NFC, trimmed.
fn normalized(raw: &str) -> String {
    raw.nfc().collect::<String>().trim().to_owned()
}

/// A tag label: NFC, trimmed, 1 to 160 characters ([`MAX_TYPED_LABEL_CHARS`]; a label stored is
/// held to 40, see [`TagLabel::check_length`]), no `/` (labels appear in URLs), no `,` (the post
/// form separates tags with commas, see [`split_tag_list`]), no hidden characters (see
/// [`is_hidden`]), and not `.` or `..` (which URLs cannot name).
///
/// These are the rules for a label that comes in; a tag saved before a rule was added (a comma
/// was allowed until then) keeps its label and its page: look tags up by [`lookup_label`].
/// Serializable for write procedures; deserializing parses again, so no invalid label is made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct TagLabel(String);

impl From<TagLabel> for String {
    fn from(label: TagLabel) -> String {
        label.0
    }
}

impl TryFrom<String> for TagLabel {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        TagLabel::parse(&raw)
    }
}

impl TagLabel {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let label = normalized(raw);
        if label.is_empty() {
            return Err("a label is required".into());
        }
        if label.chars().count() > MAX_TYPED_LABEL_CHARS {
            return Err(too_long());
        }
        if label.contains('/') || label.chars().any(is_hidden) {
            return Err("no slashes, control, invisible or direction characters".into());
        }
        if label.contains(',') {
            return Err("no commas: the post form separates tags with commas".into());
        }
        if label.chars().all(|c| c == '.') {
            return Err("a label needs more than dots".into());
        }
        Ok(TagLabel(label))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the label may be stored as a tag's label (a new tag, a rename): at most
    /// [`MAX_LABEL_CHARS`] characters. A longer label may still name an existing tag in another
    /// case (see [`MAX_TYPED_LABEL_CHARS`]).
    pub fn check_length(&self) -> Result<(), String> {
        if self.0.chars().count() > MAX_LABEL_CHARS {
            return Err(too_long());
        }
        Ok(())
    }

    /// The tag's key: labels with the same key are one tag (see [`label_key`]).
    pub fn key(&self) -> String {
        label_key(&self.0)
    }
}

fn too_long() -> String {
    format!("at most {MAX_LABEL_CHARS} characters")
}

/// The key of a tag's label (`tags.label_key`): the label case-folded, Unicode's way of comparing
/// without regard to case (its canonical caseless match: NFD, full folding with `caseless`, then
/// NFC here; folded without the NFD first, "ῷδε" and its title case "ῼ͂δε" would be two tags). So "Rust", "rust" and "RUST" are
/// one tag, "Über" and "über" too, "ΟΔΟΣ", "οδος" and "οδοσ" (Σ, σ and ς fold alike), "µs" and
/// "μs" (the micro sign and mu), "Straße" and "STRASSE"; and "J̌" and "ǰ" (folding an NFC label
/// need not give NFC: `J̌` has no precomposed capital and folds to `j` + U+030C, whose NFC is
/// `ǰ`). Lowercasing (`str::to_lowercase`) would keep the first pairs apart.
/// The migration that added the key wrote it with the same rule
/// (`migration/src/m20261129_000001_tag_label_keys.rs`): change one, change both, with a
/// migration that computes the keys again.
pub fn label_key(label: &str) -> String {
    let decomposed: String = label.nfd().collect();
    caseless::default_case_fold_str(&decomposed).nfc().collect()
}

/// A label as given to look a tag up (a URL): normalized as labels are, without the rules for
/// new labels, so a tag saved before a rule was added is still found.
pub fn lookup_label(raw: &str) -> String {
    normalized(raw)
}

/// A URL slug: lowercase letters (of any script), digits and single dashes, NFC, at most
/// [`MAX_SLUG_CHARS`] characters. A combining mark may follow a letter of a script other than
/// Latin ("हिन्दी", "ά" typed decomposed): [`Slug::from_title`] strips Latin letters' accents, so it
/// never makes one after an ASCII letter, but a typed slug such as "café" keeps its accent.
/// Slugs that are ASCII (every slug before Unicode slugs) are unchanged by these rules.
/// Serializable for write procedures; deserializing parses again, so no invalid slug is made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Slug(String);

impl From<Slug> for String {
    fn from(slug: Slug) -> String {
        slug.0
    }
}

impl TryFrom<String> for Slug {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Slug::parse(&raw)
    }
}

/// The error of a title [`Slug::from_title`] cannot make a slug of.
pub const NO_SLUG_IN_TITLE: &str =
    "the title has no letters or digits to make a slug from: give one";

/// Whether `c` is lowercase as it is: its lowercase is itself (letters without case included).
fn is_lowercase_as_is(c: char) -> bool {
    let mut lower = c.to_lowercase();
    lower.next() == Some(c) && lower.next().is_none()
}

fn is_mark(c: char) -> bool {
    c.general_category_group() == GeneralCategoryGroup::Mark
}

/// Latin letters (lowercase) with no decomposition into an ASCII letter and accents, written the
/// usual way in ASCII.
fn latin_in_ascii(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' => "ss",
        'æ' => "ae",
        'œ' => "oe",
        'ø' => "o",
        'ł' => "l",
        'đ' => "d",
        'ð' => "d",
        'þ' => "th",
        'ı' => "i",
        'ħ' => "h",
        'ŧ' => "t",
        'ŀ' => "l",
        'ŉ' => "n",
        'ƒ' => "f",
        _ => return None,
    })
}

/// Appends `c` (a lowercase letter or digit) as ASCII letters or digits to `out`, if it is one with accents or a compatibility form
/// of one ("é" → "e", "ǆ" → "dz", "ｆ" → "f", "²" → "2") or in [`latin_in_ascii`].
fn in_ascii(c: char, out: &mut String) -> bool {
    if let Some(ascii) = latin_in_ascii(c) {
        out.push_str(ascii);
        return true;
    }
    let mut letters = String::new();
    for d in std::iter::once(c).nfkd() {
        if d.is_ascii_alphanumeric() {
            letters.push(d.to_ascii_lowercase());
        } else if !is_mark(d) {
            return false;
        }
    }
    if letters.is_empty() {
        return false;
    }
    out.push_str(&letters);
    true
}

/// `c` (a lowercase letter or digit kept in a slug, after `previous`) in its NFKC form if that
/// is lowercase letters, digits and marks that may follow (halfwidth "ｶ" as "カ", "ﾞ" as the
/// combining mark U+3099 after a letter not in ASCII); `None` if it is not ("½", whose form
/// `1⁄2` is no slug).
fn folded(c: char, mut previous: Option<char>) -> Option<String> {
    let folded: String = std::iter::once(c).nfkc().collect();
    let fits = folded.chars().all(|f| {
        let fits = if is_mark(f) {
            // As [`Slug::from_title`] keeps marks: on a letter kept as it is, not an ASCII one.
            previous.is_some_and(|p| !p.is_ascii())
        } else {
            f.is_alphanumeric() && is_lowercase_as_is(f)
        };
        previous = Some(f);
        fits
    });
    fits.then_some(folded)
}

/// `title` lowercased word by word, a word being what a slug keeps between two dashes (a run of
/// letters, digits and marks: anything else separates words, see [`Slug::from_title`]). Each
/// word is lowercased as a whole, not character by character, so a capital sigma that ends a
/// word becomes the final form ς ("ΟΔΟΣ" gives `οδος`, as "Οδος" does); and by the slug's own
/// words, not the whole title's, so a full stop, colon or apostrophe joined to the next word ends
/// the word as the slug's dash does ("ΚΟΣΜΟΣ.GR" gives `κοσμος-gr`, as "Κοσμος.gr" does, where
/// Unicode's lowercasing of the whole would see one word). Otherwise the same as lowercasing the
/// whole title (the final sigma is the one letter whose lowercase depends on its neighbours).
fn lowercase_words(title: &str) -> String {
    let mut lower = String::with_capacity(title.len());
    let mut rest = title;
    while !rest.is_empty() {
        let in_word = |c: char| c.is_alphanumeric() || is_mark(c);
        let word_end = rest.find(|c: char| !in_word(c)).unwrap_or(rest.len());
        lower.push_str(&rest[..word_end].to_lowercase());
        rest = &rest[word_end..];
        let gap_end = rest.find(in_word).unwrap_or(rest.len());
        lower.push_str(&rest[..gap_end].to_lowercase());
        rest = &rest[gap_end..];
    }
    lower
}

impl Slug {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let slug = normalized(raw);
        if slug.is_empty() {
            return Err("a slug is required".into());
        }
        if slug.chars().count() > MAX_SLUG_CHARS {
            return Err(format!("at most {MAX_SLUG_CHARS} characters"));
        }
        let mut previous: Option<char> = None;
        for c in slug.chars() {
            let fits = match c {
                '-' => previous.is_some_and(|p| p != '-'),
                c if is_mark(c) => previous.is_some_and(|p| p != '-'),
                c => c.is_alphanumeric() && is_lowercase_as_is(c),
            };
            if !fits {
                return Err(
                    "use lowercase letters, digits and single dashes (no dash first or last)"
                        .into(),
                );
            }
            previous = Some(c);
        }
        if slug.ends_with('-') {
            return Err(
                "use lowercase letters, digits and single dashes (no dash first or last)".into(),
            );
        }
        Ok(Slug(slug))
    }

    /// A slug as a person types it: each character folded with NFKC (compatibility) first where
    /// that gives letters, digits or a mark that may follow ([`folded`]), so fullwidth
    /// letters are the letters a title would give (`ｆｏｏ` is `foo`, `ｶﾀｶﾅ` is `カタカナ`); a
    /// character whose folding is none of these is checked as typed (`½` folds to `1⁄2`: `½`
    /// stays, as the slug of the title "½" is `½`). Accents typed stay: `café` is `café` (the
    /// title "Café" gives `cafe`). The folded slug is taken only if it is itself a valid slug:
    /// folding can lengthen one (`ﬃ` is `ffi`, `ⅻ` is `xii`) past [`MAX_SLUG_CHARS`], and then
    /// the slug is checked as typed. So anything [`Slug::parse`] accepts is accepted, maybe
    /// folded, and a slug typed is typed again to itself.
    pub fn typed(raw: &str) -> Result<Self, String> {
        // Character by character, as [`Slug::from_title`] folds the letters it keeps, so a slug
        // made of a title is that slug typed.
        let raw = normalized(raw);
        let mut folded = String::new();
        for c in raw.chars() {
            match self::folded(c, folded.chars().next_back()) {
                Some(f) => folded.push_str(&f),
                None => folded.push(c),
            }
        }
        // When neither is a slug, the error is the one of the slug as typed: the one the person
        // can see in what they typed.
        Slug::parse(&folded).or_else(|_| Slug::parse(&raw))
    }

    /// The slug `stored` (a post's, as in the database) if `sent` is it, exactly or in NFC, and
    /// it is a valid slug ([`Slug::parse`]): kept as stored, not folded as a typed slug is.
    /// `None` if `sent` is another slug, or the stored one is no valid slug (one written in SQL):
    /// then `sent` is checked as typed.
    pub fn unchanged(sent: &str, stored: &str) -> Option<Self> {
        let same = sent == stored || sent.nfc().eq(stored.nfc());
        same.then(|| Slug::parse(stored).ok()).flatten()
    }

    /// Derives a slug from a title: "Hello, World!" becomes "hello-world", "Été à Paris"
    /// "ete-a-paris" (Latin letters lose their accents, see [`in_ascii`]), "日本語のポスト" stays
    /// "日本語のポスト" (letters of other scripts are kept, lowercased as the title is by
    /// `str::to_lowercase`, so "ΟΔΟΣ" gives "οδος"). Anything else separates
    /// words with one dash. `None` when the title has no letters or digits.
    pub fn from_title(title: &str) -> Option<Self> {
        let mut slug = String::new();
        let title = lowercase_words(&title.nfc().collect::<String>());
        for c in title.chars() {
            if c.is_ascii_alphanumeric() {
                slug.push(c);
            } else if is_mark(c) {
                // An accent on a letter kept as it is (not on one made ASCII, nor on a dash).
                if slug.chars().next_back().is_some_and(|p| !p.is_ascii()) {
                    slug.push(c);
                }
            } else if c.is_alphanumeric() && in_ascii(c, &mut slug) {
                // Written in ASCII: "é" as "e", "ß" as "ss".
            } else if c.is_alphanumeric() && is_lowercase_as_is(c) {
                // In its compatibility form if that is letters too ("ｶ" as "カ"), as a typed
                // slug is folded ([`Slug::typed`]); Latin letters of that form in ASCII as
                // above ("𐞢" as "ø", so "o").
                match folded(c, slug.chars().next_back()) {
                    Some(f) => {
                        for f in f.chars() {
                            if is_mark(f) {
                                if slug.chars().next_back().is_some_and(|p| !p.is_ascii()) {
                                    slug.push(f);
                                }
                            } else if !in_ascii(f, &mut slug) {
                                slug.push(f);
                            }
                        }
                    }
                    None => slug.push(c),
                }
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
            if slug.chars().count() > MAX_SLUG_CHARS {
                break;
            }
        }
        let slug: String = slug.nfc().take(MAX_SLUG_CHARS).collect();
        Slug::parse(slug.trim_end_matches('-')).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a person sends to create or edit a post, before validation. Unknown fields are refused.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostDraft {
    pub title: String,
    #[serde(default)]
    pub slug: Option<String>,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub published: bool,
}

/// A partial edit of a post (the API's PATCH): the fields given replace the post's, the others
/// keep their values. Unknown fields are refused. It is merged with the post and validated inside
/// the write's transaction ([`PatchPost`](super::posts::PatchPost)), so two patches of different
/// fields at once both stay.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostPatch {
    pub title: Option<String>,
    pub slug: Option<String>,
    pub body: Option<String>,
    pub tags: Option<Vec<String>>,
    pub published: Option<bool>,
}

/// A post that passed validation (serializable: it is the argument of the post procedures).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PostInput {
    pub title: String,
    pub slug: Slug,
    pub body: String,
    pub tags: Vec<TagLabel>,
    pub published: bool,
}

impl PostInput {
    /// A new post, or any post whose slug is not known: a slug given is typed
    /// ([`Slug::typed`]), none is made from the title.
    pub fn parse(draft: &PostDraft) -> Result<Self, BlogError> {
        Self::parse_edit(draft, None)
    }

    /// `draft` as an edit of the post whose slug is `stored` as it is in the database: a slug
    /// given that is the stored one, exactly or in NFC, is unchanged, and the post keeps it as
    /// stored ([`Slug::unchanged`]), not folded as a typed slug is (an edit form sends the slug
    /// field back as it showed it; a slug stored before typed slugs were folded, `ｗｉｄｅ`, is no
    /// rename, nor a conflict with a post at `wide`, when only the body was edited). Any other
    /// slug is typed, as [`PostInput::parse`] takes it.
    pub fn parse_edit(draft: &PostDraft, stored: Option<&str>) -> Result<Self, BlogError> {
        let mut errors = FieldErrors::new();
        let title = normalized(&draft.title);
        let title = title.as_str();
        if title.chars().all(is_joiner) {
            // Empty, or joiners alone, which show nothing.
            errors.insert("title", "a title is required".into());
        } else if title.chars().count() > MAX_TITLE_CHARS {
            errors.insert("title", format!("at most {MAX_TITLE_CHARS} characters"));
        } else if title.chars().any(|c| is_hidden(c) && !is_joiner(c)) {
            errors.insert(
                "title",
                "no control, invisible or direction characters".into(),
            );
        }
        let slug = match draft
            .slug
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(raw) => match stored.and_then(|stored| Slug::unchanged(raw, stored)) {
                Some(kept) => Some(kept),
                None => Slug::typed(raw).map_err(|e| errors.insert("slug", e)).ok(),
            },
            None if title.is_empty() => None,
            None => Slug::from_title(title).or_else(|| {
                errors.insert("slug", NO_SLUG_IN_TITLE.into());
                None
            }),
        };
        // A leading byte-order mark is no part of the body (it is dropped): not counted. The
        // body is kept in NFC, as the title is and as search reads what is typed, so a word
        // written decomposed (macOS writes "ガ" as カ and a mark) is found as typed; NFC only
        // chooses between forms that show the same text.
        let sent = super::markdown::without_bom(&draft.body);
        // The limit is on the body as sent: NFC can lengthen it (U+0958 is two characters), and
        // a body within the limit, or one an edit of the title leaves as stored, is not refused
        // for that.
        let body: String = sent.nfc().collect();
        if sent.len() > MAX_BODY_BYTES {
            errors.insert("body", format!("at most {} KiB", MAX_BODY_BYTES / 1024));
        }
        // One tag per key, spelled as first given. The limit counts tags, so a label given again
        // (in any case) is not one more; a list far longer than the limit is refused unread.
        let mut tags: Vec<TagLabel> = Vec::new();
        let given: Vec<&String> = draft.tags.iter().filter(|t| !t.trim().is_empty()).collect();
        let too_many = |errors: &mut FieldErrors| {
            errors.insert("tags", format!("at most {MAX_TAGS_PER_POST} tags"));
        };
        if given.len() > MAX_TAGS_PER_POST * 4 {
            too_many(&mut errors);
        } else {
            for raw in given {
                match TagLabel::parse(raw) {
                    Ok(label) if !tags.iter().any(|t| t.key() == label.key()) => tags.push(label),
                    Ok(_) => {}
                    Err(e) => {
                        errors.insert("tags", format!("tag \"{}\": {e}", raw.trim()));
                    }
                }
            }
            if tags.len() > MAX_TAGS_PER_POST {
                too_many(&mut errors);
            }
        }
        match slug {
            Some(slug) if errors.is_empty() => Ok(PostInput {
                title: title.to_owned(),
                slug,
                body,
                tags,
                published: draft.published,
            }),
            _ => Err(BlogError::Validation(errors)),
        }
    }
}

/// Splits "rust, litefs ,sqlite" into labels, as typed in the post form (which is why a label
/// may not hold a comma).
pub fn split_tag_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_from_title() {
        assert_eq!(
            Slug::from_title("Hello, World!").unwrap().as_str(),
            "hello-world"
        );
        assert_eq!(
            Slug::from_title("  LiteFS & Rust -- 2026 ")
                .unwrap()
                .as_str(),
            "litefs-rust-2026"
        );
        assert!(Slug::from_title("!!!").is_none());
    }

    /// The newcomer's review: titles in other languages than English gave mangled slugs
    /// ("Été à Paris" gave `t-paris`) or none ("日本語のポスト" was refused).
    #[test]
    fn slugs_of_titles_in_other_languages() {
        for (title, slug) in [
            ("Été à Paris", "ete-a-paris"),
            ("Über uns", "uber-uns"),
            ("Crème brûlée für Straße", "creme-brulee-fur-strasse"),
            (
                "Łódź, Đakovo, Æsir, Øre, Œuvre",
                "lodz-dakovo-aesir-ore-oeuvre",
            ),
            ("İstanbul", "istanbul"),
            ("ǅemal ﬁne Ⅻ ²", "dzemal-fine-xii-2"),
            ("日本語のポスト", "日本語のポスト"),
            ("Привет, Мир", "привет-мир"),
            ("Ελληνικά ΚΑΙ", "ελληνικά-και"),
            ("한국어 글", "한국어-글"),
            ("हिन्दी में", "हिन्दी-में"),
            ("Rust™ & 日本", "rust-日本"),
        ] {
            assert_eq!(
                Slug::from_title(title).map(|s| s.0),
                Some(slug.to_owned()),
                "{title}"
            );
        }
        assert!(Slug::from_title("!!! ™ ©").is_none());
        let draft = PostDraft {
            title: "!!!".into(),
            ..Default::default()
        };
        let BlogError::Validation(errors) = PostInput::parse(&draft).unwrap_err() else {
            panic!()
        };
        assert_eq!(
            errors["slug"],
            "the title has no letters or digits to make a slug from: give one"
        );
    }

    /// A capital sigma that ends a word lowercases to the final form ς, as `str::to_lowercase`
    /// lowercases the word: "ΟΔΟΣ" gave `οδοσ`, where "Οδος" gives `οδος`.
    #[test]
    fn a_final_capital_sigma_gives_a_final_sigma() {
        for (title, slug) in [
            ("ΟΔΟΣ", "οδος"),
            ("Οδος", "οδος"),
            ("ΟΔΟΣ ΚΑΙ ΣΟΦΙΑ", "οδος-και-σοφια"),
            ("ΟΔΟΣ-ΚΑΙ", "οδος-και"),
            ("ΟΔΟΣ, ΝΕΟΣ!", "οδος-νεος"),
            ("ΣΟΦΟΣ", "σοφος"),
            ("Σ", "σ"),
        ] {
            assert_eq!(
                Slug::from_title(title).map(|s| s.0),
                Some(slug.to_owned()),
                "{title}"
            );
            assert_eq!(
                title
                    .to_lowercase()
                    .split([' ', '-', ',', '!'])
                    .filter(|w| !w.is_empty())
                    .collect::<Vec<_>>()
                    .join("-"),
                slug,
                "{title}"
            );
        }
    }

    /// Punctuation the slug splits on (a full stop, a colon, an apostrophe) ends a word for the
    /// final sigma too, though Unicode's lowercasing of the whole title sees one word across it
    /// when it is joined to the next: "ΚΟΣΜΟΣ.GR" gave `κοσμοσ-gr`, where "Κοσμος.gr" gives
    /// `κοσμος-gr`.
    #[test]
    fn a_final_sigma_ends_the_slug_s_words() {
        for (title, slug) in [
            ("ΚΟΣΜΟΣ.GR", "κοσμος-gr"),
            ("Κοσμος.gr", "κοσμος-gr"),
            ("ΟΔΟΣ:ΚΑΙ", "οδος-και"),
            ("ΟΔΟΣ'Σ", "οδος-σ"),
            ("ΟΔΟΣ\u{301}.Α", "οδος\u{301}-α"),
            ("Σ.Σ", "σ-σ"),
        ] {
            assert_eq!(
                Slug::from_title(title).map(|s| s.0),
                Some(slug.to_owned()),
                "{title}"
            );
        }
    }

    #[test]
    fn typed_unicode_slugs_in_lowercase_are_accepted() {
        for ok in ["日本語", "привет-мир", "café", "cafe\u{301}-2", "ελληνικά"]
        {
            let slug = Slug::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(slug.as_str(), normalized(ok), "kept in NFC");
        }
        for bad in [
            "Привет",
            "Café",
            "日本語 ポスト",
            "a_b",
            "\u{301}a",
            "a-\u{301}",
            "a/b",
        ] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
        assert!(Slug::parse(&"語".repeat(MAX_SLUG_CHARS)).is_ok());
        assert!(Slug::parse(&"語".repeat(MAX_SLUG_CHARS + 1)).is_err());
    }

    /// A typed slug is folded with NFKC (compatibility) before it is checked, when that gives a
    /// slug: fullwidth letters are the letters a title would give (`ｆｏｏ` is `foo`); an accent
    /// typed stays (`café`, where the title "Café" gives `cafe`); a character whose folding is no
    /// slug (`½` is `1⁄2`) is checked as typed.
    #[test]
    fn typed_slugs_are_folded_with_nfkc() {
        for (typed, slug) in [
            ("ｆｏｏ", "foo"),
            ("ｆｏｏ-２０２６", "foo-2026"),
            ("ﬁne", "fine"),
            ("ｶﾀｶﾅ", "カタカナ"),
            ("café", "café"),
            ("cafe\u{301}", "café"),
            ("½", "½"),
            ("foo", "foo"),
        ] {
            assert_eq!(
                Slug::typed(typed).map(|s| s.0),
                Ok(slug.to_owned()),
                "{typed}"
            );
        }
        assert!(Slug::typed("ＦＯＯ").is_err());
        let draft = PostDraft {
            title: "T".into(),
            slug: Some("ｆｏｏ".into()),
            ..Default::default()
        };
        assert_eq!(PostInput::parse(&draft).unwrap().slug.as_str(), "foo");
        // A title in halfwidth katakana gives the slug its typed form gives.
        assert_eq!(
            Slug::from_title("ｶﾀｶﾅ ｶﾞ").map(|s| s.0),
            Some("カタカナ-ガ".to_owned())
        );
    }

    /// An edit that sends the post's slug back as stored keeps it as stored, unfolded (exactly or
    /// in NFC); another slug is typed; a stored slug that is no valid slug is checked as typed.
    #[test]
    fn a_stored_slug_sent_back_is_kept_as_stored() {
        let draft = |slug: &str| PostDraft {
            title: "T".into(),
            slug: Some(slug.into()),
            ..Default::default()
        };
        let slug_of = |slug: &str, stored: Option<&str>| {
            PostInput::parse_edit(&draft(slug), stored).map(|input| input.slug.0)
        };
        assert_eq!(slug_of("ｗｉｄｅ", Some("ｗｉｄｅ")).unwrap(), "ｗｉｄｅ");
        assert_eq!(slug_of("ｗｉｄｅ", None).unwrap(), "wide");
        assert_eq!(slug_of(" ｗｉｄｅ ", Some("ｗｉｄｅ")).unwrap(), "ｗｉｄｅ");
        let stored = "ｃａｆ\u{e9}";
        assert_eq!(
            slug_of("ｃａｆe\u{301}", Some(stored)).unwrap(),
            "ｃａｆ\u{e9}"
        );
        let ligatures = "ﬃ".repeat(40);
        assert_eq!(slug_of(&ligatures, Some(&ligatures)).unwrap(), ligatures);
        assert_eq!(slug_of("ｆｏｏ", Some("ｗｉｄｅ")).unwrap(), "foo");
        assert!(slug_of("a//b", Some("a//b")).is_err());
        assert_eq!(slug_of("ｗｉｄｅ", Some("Ｗｉｄｅ")).unwrap(), "wide");
    }

    /// Any title gives a valid slug or the clear error, a slug made of a title is its own slug,
    /// and a title already in ASCII gives the slug it gave before Unicode slugs.
    #[test]
    fn any_title_gives_a_valid_slug_that_is_its_own_slug() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        let mut runner = TestRunner::new(Config {
            cases: 2000,
            failure_persistence: None,
            ..Config::default()
        });
        let piece = prop_oneof![
            any::<char>().prop_map(String::from),
            proptest::sample::select(vec![
                "é", "E\u{301}", "ß", "ẞ", "İ", "ǅ", "日本", "ー", "-", " ", "--", "Ω", "\u{301}",
                "\u{94d}", "ह", "ﬁ", "½", "Ⅻ", "\u{958}", "ά", "Σ", "ΟΔΟΣ", "ｆ", "ｶﾞ", "ﾞ", "㍿",
                "ŉ", "™", "\u{200b}",
            ])
            .prop_map(String::from),
            "[A-Za-z0-9 ,!-]{1,5}",
        ];
        let title = proptest::collection::vec(piece, 0..60).prop_map(|p| p.concat());
        let is_a_mark = |c: char| {
            use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};
            c.general_category_group() == GeneralCategoryGroup::Mark
        };
        runner
            .run(&title, |title| {
                let Some(slug) = Slug::from_title(&title) else {
                    prop_assert!(
                        !title.chars().any(|c| c.is_alphanumeric() && !is_a_mark(c)),
                        "{title:?} has letters but no slug"
                    );
                    return Ok(());
                };
                prop_assert_eq!(Slug::parse(slug.as_str()), Ok(slug.clone()));
                // Typed, a slug made of a title is that slug (folding it changes nothing).
                prop_assert_eq!(Slug::typed(slug.as_str()), Ok(slug.clone()));
                prop_assert!(slug.as_str().chars().count() <= MAX_SLUG_CHARS);
                prop_assert_eq!(
                    Slug::from_title(slug.as_str()).map(|s| s.0),
                    Some(slug.0.clone()),
                    "from {:?}",
                    title
                );
                if title.is_ascii() {
                    prop_assert_eq!(slug.0, ascii_slug_of_before(&title));
                }
                Ok(())
            })
            .unwrap();
    }

    /// `Slug::from_title` of before Unicode slugs, for ASCII titles.
    fn ascii_slug_of_before(title: &str) -> String {
        let mut slug = String::new();
        for c in title.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() {
                slug.push(c);
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
            if slug.len() >= MAX_SLUG_CHARS {
                break;
            }
        }
        slug.trim_end_matches('-').to_owned()
    }

    #[test]
    fn slug_rules() {
        assert!(Slug::parse("ok-slug-1").is_ok());
        assert!(Slug::parse("Bad").is_err());
        assert!(Slug::parse("a--b").is_err());
        assert!(Slug::parse("-a").is_err());
    }

    #[test]
    fn label_rules() {
        assert_eq!(TagLabel::parse("  rust ").unwrap().as_str(), "rust");
        assert!(TagLabel::parse("").is_err());
        assert!(TagLabel::parse("a/b").is_err());
        // 41 characters may name an existing tag in another case; they cannot be stored.
        let long = TagLabel::parse(&"x".repeat(41)).unwrap();
        assert_eq!(long.check_length().unwrap_err(), "at most 40 characters");
        assert!(
            TagLabel::parse(&"x".repeat(40))
                .unwrap()
                .check_length()
                .is_ok()
        );
        assert!(TagLabel::parse(&"x".repeat(MAX_TYPED_LABEL_CHARS)).is_ok());
        assert!(TagLabel::parse(&"x".repeat(MAX_TYPED_LABEL_CHARS + 1)).is_err());
        assert_eq!(
            TagLabel::parse("cafe\u{301}").unwrap(),
            TagLabel::parse("caf\u{e9}").unwrap()
        );
        for hidden in ["\u{200b}", "a\u{202e}b", "\u{feff}", "\u{2028}", ".", ".."] {
            assert!(TagLabel::parse(hidden).is_err(), "{hidden:?}");
        }
        assert!(TagLabel::parse("v1.2").is_ok());
        let comma = TagLabel::parse("x,y").unwrap_err();
        assert!(comma.contains("no commas"), "{comma}");
        assert_eq!(lookup_label(" cafe\u{301},x "), "caf\u{e9},x");
    }

    #[test]
    fn tags_that_differ_only_in_case_are_one_tag_as_first_written() {
        let draft = PostDraft {
            title: "T".into(),
            tags: ["Rust", "rust", " RUST ", "Über", "über", "ÜBER", "go"]
                .map(String::from)
                .to_vec(),
            ..Default::default()
        };
        let input = PostInput::parse(&draft).unwrap();
        let tags: Vec<&str> = input.tags.iter().map(TagLabel::as_str).collect();
        assert_eq!(tags, ["Rust", "Über", "go"]);
    }

    /// The keys the migration wrote (`migration/tests/tag_label_keys.rs` checks these too).
    #[test]
    fn a_key_is_the_label_lowercased_unicode_s_way() {
        for (label, key) in [
            ("RUST", "rust"),
            ("Über", "über"),
            ("ǅx", "ǆx"),
            ("go", "go"),
            ("J\u{30C}", "\u{1F0}"),
            ("\u{1F0}", "\u{1F0}"),
            ("\u{399}\u{308}\u{301}", "\u{390}"),
            ("İ", "i\u{307}"),
        ] {
            assert_eq!(TagLabel::parse(label).unwrap().key(), key, "{label}");
            assert_eq!(label_key(label), key, "{label}");
        }
    }

    /// A body that starts with a byte-order mark (an editor's, kept by a paste) is stored
    /// without it; one inside the body stays.
    #[test]
    fn a_leading_byte_order_mark_is_dropped_from_a_body() {
        for (body, stored) in [
            ("\u{feff}# Hello", "# Hello"),
            ("\u{feff}", ""),
            ("a\u{feff}b", "a\u{feff}b"),
            ("# Hello", "# Hello"),
        ] {
            let draft = PostDraft {
                title: "T".into(),
                body: body.into(),
                ..Default::default()
            };
            assert_eq!(PostInput::parse(&draft).unwrap().body, stored, "{body:?}");
        }
        // The mark dropped is not counted in the body's size.
        let sized = |bytes: usize| PostDraft {
            title: "T".into(),
            body: format!("\u{feff}{}", "a".repeat(bytes)),
            ..Default::default()
        };
        assert!(PostInput::parse(&sized(MAX_BODY_BYTES)).is_ok());
        assert!(PostInput::parse(&sized(MAX_BODY_BYTES + 1)).is_err());
    }

    #[test]
    fn post_errors_are_per_field() {
        let draft = PostDraft {
            title: "".into(),
            tags: vec!["a/b".into()],
            ..Default::default()
        };
        let BlogError::Validation(errors) = PostInput::parse(&draft).unwrap_err() else {
            panic!()
        };
        assert!(errors.contains_key("title"));
        assert!(errors.contains_key("tags"));
    }
}
