//! The regular-expression constraints of the STS and IAM models, as small functions.
//!
//! AWS checks each string member against its model's `pattern` (a Java regex, matched
//! against the whole value). The handful the twin needs are written out by hand instead of
//! pulling in a regex engine: each is a character class with a quantifier, or a short
//! sequence of them. The error message quotes [`Pattern::regex`], the model's text.
//!
//! Java's `\w` and `\d` are ASCII (`[a-zA-Z_0-9]`, `[0-9]`) unless `UNICODE_CHARACTER_CLASS` is
//! on, which AWS does not use.

/// A named `pattern` constraint: the model's regex text and a function deciding it.
#[derive(Clone, Copy, Debug)]
pub struct Pattern {
    /// The regex as the botocore model writes it; quoted in `ValidationError` messages.
    pub regex: &'static str,
    /// Whether the whole value matches.
    pub matches: fn(&str) -> bool,
}

impl Pattern {
    /// Whether `value` matches.
    pub fn is_match(&self, value: &str) -> bool {
        (self.matches)(value)
    }
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn name_char(c: char) -> bool {
    is_word(c) || "+=,.@-".contains(c)
}

/// `[\w+=,.@-]*`: RoleSessionName, SourceIdentity, STS user names.
pub const NAME: Pattern = Pattern {
    regex: r"[\w+=,.@-]*",
    matches: |s| s.chars().all(name_char),
};

/// `[\w+=,.@-]+`: IAM entity names (RoleName, PolicyName, UserName, …).
pub const ENTITY_NAME: Pattern = Pattern {
    regex: r"[\w+=,.@-]+",
    matches: |s| !s.is_empty() && s.chars().all(name_char),
};

/// `[\w+=,.@:\/-]*`: ExternalId.
pub const EXTERNAL_ID: Pattern = Pattern {
    regex: r"[\w+=,.@:\/-]*",
    matches: |s| s.chars().all(|c| name_char(c) || c == ':' || c == '/'),
};

/// `[\w+=/:,.@-]*`: SerialNumber (STS).
pub const SERIAL_NUMBER: Pattern = Pattern {
    regex: r"[\w+=/:,.@-]*",
    matches: |s| s.chars().all(|c| name_char(c) || c == ':' || c == '/'),
};

/// `[\d]*`: TokenCode.
pub const DIGITS: Pattern = Pattern {
    regex: r"[\d]*",
    matches: |s| s.bytes().all(|b| b.is_ascii_digit()),
};

/// `[\w]+`: IAM ids (RoleId, AccessKeyId, …).
pub const WORD: Pattern = Pattern {
    regex: r"[\w]+",
    matches: |s| !s.is_empty() && s.chars().all(is_word),
};

fn policy_char(c: char) -> bool {
    matches!(c, '\u{09}' | '\u{0A}' | '\u{0D}' | '\u{20}'..='\u{FF}')
}

/// `[\u0009\u000A\u000D\u0020-\u00FF]+`: policy documents (IAM and STS session policies).
pub const POLICY_DOCUMENT: Pattern = Pattern {
    regex: r"[\u0009\u000A\u000D\u0020-\u00FF]+",
    matches: |s| !s.is_empty() && s.chars().all(policy_char),
};

/// `[\u0009\u000A\u000D\u0020-\u007E\u0085\u00A0-\uD7FF\uE000-\uFFFD\u10000-\u10FFFF]+`: STS's
/// `arnType`. Rust strings cannot hold surrogates, so the class is "no control character
/// except tab, newline and carriage return, and no U+007F–U+009F except U+0085, and not
/// U+FFFE/U+FFFF".
pub const STS_ARN: Pattern = Pattern {
    regex: r"[\u0009\u000A\u000D\u0020-\u007E\u0085\u00A0-\uD7FF\uE000-\uFFFD\u10000-\u10FFFF]+",
    matches: |s| {
        !s.is_empty()
            && s.chars().all(|c| {
                matches!(c,
                    '\u{09}' | '\u{0A}' | '\u{0D}' | '\u{20}'..='\u{7E}' | '\u{85}'
                    | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
            })
    },
};

/// `(\u002F)|(\u002F[\u0021-\u007E]+\u002F)`: IAM paths (`/` or `/a/b/`).
pub const PATH: Pattern = Pattern {
    regex: r"(\u002F)|(\u002F[\u0021-\u007E]+\u002F)",
    matches: |s| {
        s == "/"
            || (s.len() >= 3
                && s.starts_with('/')
                && s.ends_with('/')
                && s.bytes().all(|b| (0x21..=0x7E).contains(&b)))
    },
};

/// `\u002F[\u0021-\u007F]*`: IAM `PathPrefix`.
pub const PATH_PREFIX: Pattern = Pattern {
    regex: r"\u002F[\u0021-\u007F]*",
    matches: |s| s.starts_with('/') && s.bytes().all(|b| (0x21..=0x7F).contains(&b)),
};

/// `((/[A-Za-z0-9\.,\+@=_-]+)*)/`: the path of a managed policy.
pub const POLICY_PATH: Pattern = Pattern {
    regex: r"((/[A-Za-z0-9\.,\+@=_-]+)*)/",
    matches: |s| {
        let Some(inner) = s.strip_suffix('/') else {
            return false;
        };
        // `inner` is zero or more `/segment` with non-empty segments.
        inner.is_empty()
            || (inner.starts_with('/')
                && inner[1..].split('/').all(|seg| {
                    !seg.is_empty()
                        && seg
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || ".,+@=_-".contains(c))
                }))
    },
};

/// Java's `\p{Z}`: space, line and paragraph separators.
fn is_separator(c: char) -> bool {
    matches!(
        c,
        '\u{20}' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}' | '\u{2028}' | '\u{2029}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

/// The tag class `[\p{L}\p{Z}\p{N}_.:/=+\-@]`. `\p{L}` is approximated by Rust's `Alphabetic`
/// property (letters plus letter numbers and a few combining marks), which accepts a few
/// more characters than `\p{L}` alone; `\p{N}` is exactly `char::is_numeric`.
fn tag_char(c: char) -> bool {
    c.is_alphabetic() || c.is_numeric() || is_separator(c) || "_.:/=+-@".contains(c)
}

/// `[\p{L}\p{Z}\p{N}_.:/=+\-@]+`: tag keys.
pub const TAG_KEY: Pattern = Pattern {
    regex: r"[\p{L}\p{Z}\p{N}_.:/=+\-@]+",
    matches: |s| !s.is_empty() && s.chars().all(tag_char),
};

/// `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`: tag values.
pub const TAG_VALUE: Pattern = Pattern {
    regex: r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*",
    matches: |s| s.chars().all(tag_char),
};

/// `[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*`: IAM role descriptions.
pub const DESCRIPTION: Pattern = Pattern {
    regex: r"[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*",
    matches: |s| {
        s.chars()
            .all(|c| matches!(c, '\u{09}' | '\u{0A}' | '\u{0D}' | '\u{20}'..='\u{7E}' | '\u{A1}'..='\u{FF}'))
    },
};

/// `[\u0020-\u00FF]+`: IAM pagination markers.
pub const MARKER: Pattern = Pattern {
    regex: r"[\u0020-\u00FF]+",
    matches: |s| !s.is_empty() && s.chars().all(|c| matches!(c, '\u{20}'..='\u{FF}')),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(NAME.is_match("my-session_1+=,.@"));
        assert!(NAME.is_match(""));
        assert!(!ENTITY_NAME.is_match(""));
        assert!(!NAME.is_match("has space"));
        assert!(!NAME.is_match("slash/"));
        assert!(!NAME.is_match("é"), "\\w is ASCII in Java's default mode");
        assert!(EXTERNAL_ID.is_match("a:b/c"));
        assert!(SERIAL_NUMBER.is_match("arn:aws:iam::123456789012:mfa/user"));
        assert!(DIGITS.is_match("123456") && !DIGITS.is_match("12345a"));
        assert!(WORD.is_match("AROA123") && !WORD.is_match("AROA-1"));
    }

    #[test]
    fn documents_and_arns() {
        assert!(POLICY_DOCUMENT.is_match("{\"a\":\t\"é\"}\r\n"));
        assert!(!POLICY_DOCUMENT.is_match(""));
        assert!(!POLICY_DOCUMENT.is_match("\u{1}"));
        assert!(
            !POLICY_DOCUMENT.is_match("€"),
            "U+20AC is outside U+0000–U+00FF"
        );
        assert!(STS_ARN.is_match("arn:aws:iam::123456789012:role/x€"));
        assert!(!STS_ARN.is_match("arn\u{7F}"));
        assert!(STS_ARN.is_match("arn\u{85}"));
        assert!(!STS_ARN.is_match("arn\u{FFFF}"));
    }

    #[test]
    fn paths() {
        for ok in ["/", "/a/", "/a/b/", "/~!/"] {
            assert!(PATH.is_match(ok), "{ok}");
        }
        for bad in ["", "//", "a/", "/a", "/a b/", "/é/"] {
            assert!(!PATH.is_match(bad), "{bad}");
        }
        assert!(
            PATH_PREFIX.is_match("/") && PATH_PREFIX.is_match("/a") && !PATH_PREFIX.is_match("a")
        );
        for ok in ["/", "/a/", "/a.b/c_d/"] {
            assert!(POLICY_PATH.is_match(ok), "{ok}");
        }
        for bad in ["", "a/", "//", "/a//", "/a~/"] {
            assert!(!POLICY_PATH.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn tags() {
        assert!(TAG_KEY.is_match("team:Name/x=y+z-@_ 1"));
        assert!(TAG_KEY.is_match("ключ٣"));
        assert!(!TAG_KEY.is_match(""));
        assert!(TAG_VALUE.is_match(""));
        assert!(!TAG_VALUE.is_match("a*b"));
        assert!(!TAG_VALUE.is_match("tab\t"));
        assert!(DESCRIPTION.is_match("") && !DESCRIPTION.is_match("\u{A0}"));
        assert!(MARKER.is_match("abc") && !MARKER.is_match("\n"));
    }
}
