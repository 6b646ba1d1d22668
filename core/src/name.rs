//! Text that people type and other people read as-is: display names,
//! presence notes, file names. Two jobs, one per direction.
//!
//! - **Comparing names** ([`pin_key`]): two names that render alike must
//!   compare equal, or an impostor pins `Bоb` (Cyrillic `о`) or `Bob` plus
//!   a zero-width space next to the real Bob and is shown without a
//!   fingerprint. The key is Unicode's confusable *skeleton* (UTS #39
//!   §4, from the `unicode-security` tables, which also drop
//!   default-ignorable characters) of the case-folded name, so `Bob`,
//!   `BOB`, `Bоb`, `B\u{200B}ob` and the other look-alikes the tables know
//!   share one pin.
//! - **Showing text** ([`shown`]) and **accepting one's own name**
//!   ([`check`]): bidirectional overrides and isolates reorder what follows
//!   them (`photo\u{202E}gpj.exe` reads as `photoexe.jpg`), and invisible
//!   characters make two different strings look the same. Text from peers
//!   is neutralised (those characters dropped, control characters made
//!   visible); a name typed at `init` or rename is refused with the
//!   offending code point. Scripts are never restricted: Cyrillic, Greek,
//!   CJK and mixed-script names are all fine; the characters that join or
//!   select glyphs (ZWJ, ZWNJ, variation selectors, emoji tags) are kept,
//!   because Persian, Indic scripts and emoji need them and the skeleton
//!   ignores them anyway.
//! - **Display names** ([`validate_name`]): [`check`] plus the length
//!   limit, one rule for every name a device shows or accepts — its own
//!   name at `init` and rename, device labels, names peers announce and
//!   the names the relay accepts at registration — so the node and the
//!   relay cannot drift apart on what a valid name is.

use unicode_security::skeleton;

/// Longest display name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Why a display name typed by the user was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Nothing visible is left once whitespace is trimmed.
    #[error("the name is empty")]
    Empty,
    /// A control character (newline, tab, escape...).
    #[error("the name contains a control character (U+{0:04X})")]
    Control(u32),
    /// A character that changes the direction of the text around it.
    #[error("the name contains a text-direction control (U+{0:04X})")]
    Bidi(u32),
    /// A character that renders as nothing.
    #[error("the name contains an invisible character (U+{0:04X})")]
    Invisible(u32),
    /// More than [`MAX_NAME_CHARS`] characters ([`validate_name`] only).
    #[error("the name is longer than {MAX_NAME_CHARS} characters")]
    TooLong,
}

/// The key a display name is pinned and looked up under: the UTS #39
/// skeleton of the lower-cased name, lower-cased again (a prototype may be
/// upper case, `0` → `O`), with runs of whitespace collapsed to one space
/// and trimmed. Empty for a name with nothing visible in it.
///
/// Repeated until nothing changes, so that the key of a key is the key
/// itself (stored pins are re-read through this function): lower-casing a
/// prototype can yield a letter with a prototype of its own (N'Ko `ߡ` →
/// `δ` → `ẟ`). Every code point settles within two rounds; the bound only
/// guards against a future table that would not.
pub fn pin_key(name: &str) -> String {
    let mut key = pin_round(name);
    for _ in 0..8 {
        let next = pin_round(&key);
        if next == key {
            break;
        }
        key = next;
    }
    key
}

/// One round of [`pin_key`].
fn pin_round(name: &str) -> String {
    let folded = name.to_lowercase();
    let skeleton: String = skeleton(&folded).collect();
    skeleton
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `c` is a bidirectional formatting character (marks, embeddings,
/// overrides, isolates; Unicode's Bidi_Control property).
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Whether `c` renders as nothing and carries no meaning a script needs:
/// a default-ignorable code point (zero-width space, word joiner, BOM,
/// soft hyphen, Hangul fillers, ...) other than the joiners and selectors
/// that shape the visible characters next to them. Bidi controls count
/// as invisible too.
pub fn is_invisible(c: char) -> bool {
    let shapes_neighbours = matches!(
        c,
        '\u{200C}' | '\u{200D}' | '\u{FE00}'..='\u{FE0F}' | '\u{E0020}'..='\u{E007F}' | '\u{E0100}'..='\u{E01EF}'
    );
    // The skeleton drops exactly the default-ignorable code points, so a
    // character with an empty skeleton is one (the crate keeps its table
    // private).
    !shapes_neighbours && skeleton(c.encode_utf8(&mut [0; 4])).next().is_none()
}

/// Checks a display name the user typed (`init`, rename): trimmed, not
/// empty, no control, bidi or invisible characters. Any script, any mix
/// of scripts. Returns the trimmed name; length limits are the caller's.
pub fn check(name: &str) -> Result<&str, NameError> {
    let name = name.trim();
    for c in name.chars() {
        if c.is_control() {
            return Err(NameError::Control(c.into()));
        }
        if is_bidi_control(c) {
            return Err(NameError::Bidi(c.into()));
        }
        if is_invisible(c) || matches!(c, '\u{2028}' | '\u{2029}') {
            return Err(NameError::Invisible(c.into()));
        }
    }
    if pin_key(name).is_empty() {
        return Err(NameError::Empty);
    }
    Ok(name)
}

/// Checks and normalises a display name (own names at `init` and rename,
/// device labels, and every name a peer announces): trimmed, 1 to
/// [`MAX_NAME_CHARS`] characters of any script, no control, bidi or
/// invisible characters ([`check`]), so a name cannot hide or reorder
/// text where it is shown. Returns the trimmed name.
pub fn validate_name(name: &str) -> Result<String, NameError> {
    let name = check(name)?;
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(NameError::TooLong);
    }
    Ok(name.to_string())
}

/// `text` from a peer made safe to show on one line: bidi controls and
/// invisible characters are dropped, control characters and line or
/// paragraph separators become U+FFFD (visible, so nothing is hidden after
/// them), and the result is trimmed.
pub fn shown(text: &str) -> String {
    let kept: String = text
        .chars()
        .filter(|c| !is_bidi_control(*c) && !is_invisible(*c))
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                char::REPLACEMENT_CHARACTER
            } else {
                c
            }
        })
        .collect();
    kept.trim().to_string()
}

/// Whether `text` is already what [`shown`] would show (nothing to drop or
/// replace, nothing to trim).
pub fn is_shown_as_is(text: &str) -> bool {
    shown(text) == text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alikes_share_a_key() {
        let bob = pin_key("Bob");
        for alike in [
            "bob",
            " BOB ",
            "B\u{043E}b",          // Cyrillic small o
            "B\u{200B}ob",         // zero-width space
            "\u{202E}Bob\u{202C}", // right-to-left override
            "Bo\u{00AD}b",         // soft hyphen
        ] {
            assert_eq!(pin_key(alike), bob, "{alike:?}");
        }
        assert_eq!(pin_key("Ann  Lee"), pin_key("ann lee"));
        assert_eq!(pin_key("ÄRZTE"), pin_key("Ärzte"));
        assert_eq!(pin_key("paypa1"), pin_key("PayPal"));
        assert_ne!(pin_key("Bob"), pin_key("Rob"));
        assert_ne!(pin_key("Анна"), pin_key("Алла"));
        assert_eq!(pin_key("\u{200B} \u{2060}"), "");
    }

    #[test]
    fn a_key_is_its_own_key() {
        // Stored pins are keys and are read back through pin_key: a key
        // that moved again would lose its pin after a restart.
        for name in [
            "Bob",
            "a\u{07E1}b",
            "\u{1260}\u{14A5}",
            "Ирина",
            "Ärzte",
            "王",
        ] {
            let key = pin_key(name);
            assert_eq!(pin_key(&key), key, "{name:?}");
        }
        for cp in (0..0x3_0000).step_by(7) {
            if let Some(c) = char::from_u32(cp) {
                let key = pin_key(&format!("a{c}b"));
                assert_eq!(pin_key(&key), key, "U+{cp:04X}");
            }
        }
    }

    #[test]
    fn names_in_any_script_are_accepted() {
        for name in [
            "Bob",
            "Ирина Петрова",
            "Νίκος",
            "王秀英",
            "山田 太郎",
            "Zoë O'Brien",
            "Ana María 李",                             // mixed scripts
            "\u{0646}\u{06CC}\u{200C}\u{0645}\u{0627}", // Persian with ZWNJ
            "Sam 👩\u{200D}💻",
        ] {
            assert_eq!(check(name), Ok(name), "{name:?}");
        }
        assert_eq!(check("  Bob "), Ok("Bob"));
    }

    #[test]
    fn names_hiding_characters_are_refused() {
        assert_eq!(check("Bob\u{200B}"), Err(NameError::Invisible(0x200B)));
        assert_eq!(check("\u{2060}Bob"), Err(NameError::Invisible(0x2060)));
        assert_eq!(check("Bob\u{3164}"), Err(NameError::Invisible(0x3164)));
        assert_eq!(check("Bob\u{202E}"), Err(NameError::Bidi(0x202E)));
        assert_eq!(check("\u{2067}Bob"), Err(NameError::Bidi(0x2067)));
        assert_eq!(check("Bob\u{200F}"), Err(NameError::Bidi(0x200F)));
        assert_eq!(check("Bob\nAdmin"), Err(NameError::Control(0x0A)));
        assert_eq!(check("Bob\u{2028}x"), Err(NameError::Invisible(0x2028)));
        assert_eq!(check("   "), Err(NameError::Empty));
        assert_eq!(
            check("Bob\u{202E}").unwrap_err().to_string(),
            "the name contains a text-direction control (U+202E)"
        );
    }

    #[test]
    fn display_names_are_checked_and_trimmed() {
        assert_eq!(validate_name("  "), Err(NameError::Empty));
        assert_eq!(validate_name(&"x".repeat(65)), Err(NameError::TooLong));
        assert_eq!(validate_name(&"x".repeat(64)), Ok("x".repeat(64)));
        // Characters, not bytes: 64 Cyrillic letters are 128 bytes.
        assert_eq!(validate_name(&"ж".repeat(64)), Ok("ж".repeat(64)));
        assert_eq!(validate_name(" Bob ").expect("ok"), "Bob");
        // Any script, mixed scripts too; nothing invisible or reordering.
        for name in ["Ирина", "Νίκος Παππάς", "王秀英", "Ana 李 Ирина"] {
            assert_eq!(validate_name(name).expect(name), name);
        }
        for (bad, why) in [
            ("Bob\u{200B}", "invisible character (U+200B)"),
            ("\u{202E}boB", "text-direction control (U+202E)"),
            ("Bob\u{2066}", "text-direction control (U+2066)"),
            ("Bob\u{7}", "control character (U+0007)"),
        ] {
            let err = validate_name(bad).expect_err(bad).to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        assert_eq!(
            NameError::TooLong.to_string(),
            "the name is longer than 64 characters"
        );
    }

    #[test]
    fn shown_text_drops_what_reorders_or_hides() {
        assert_eq!(shown("photo\u{202E}gpj.exe"), "photogpj.exe");
        assert_eq!(shown("\u{2066}Bob\u{2069}\u{200B}"), "Bob");
        assert_eq!(
            shown("note\nsecond line\u{1B}[2J"),
            "note\u{FFFD}second line\u{FFFD}[2J"
        );
        // Scripts and joiners are left alone.
        assert_eq!(shown("Ирина 王 👩\u{200D}💻"), "Ирина 王 👩\u{200D}💻");
        assert!(is_shown_as_is("photo.jpg"));
        assert!(!is_shown_as_is("photo\u{202E}gpj.exe"));
        assert!(!is_shown_as_is(" padded"));
    }
}
