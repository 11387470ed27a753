//! Property tests of the wildcard matcher against obviously-correct oracles.
//!
//! * [`Pattern`] with `*` and `?` (case-sensitive and case-insensitive) against a dynamic
//!   programming matcher over chars.
//! * [`ArnPattern`] against an oracle that splits pattern and text on `:` into at most six parts
//!   and matches part by part, the last pattern part taking the rest of the text.
//! * The escapes `${*}`, `${?}` and `${$}` only ever match their literal character.

use iam::pattern::{ArnPattern, Pattern, Syntax, VariableSource};
use proptest::prelude::*;

/// A request with no variables at all.
struct NoVars;

impl VariableSource for NoVars {
    fn variable(&self, _key: &str) -> Option<&str> {
        None
    }
}

const GLOB: Syntax = Syntax {
    wildcards: true,
    variables: false,
};

/// One element of an oracle pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elem {
    /// Any run of characters.
    Star,
    /// Exactly one character.
    One,
    /// This character.
    Char(char),
}

/// Reads `*` and `?` as wildcards, everything else literally.
fn elems(pattern: &str) -> Vec<Elem> {
    pattern
        .chars()
        .map(|c| match c {
            '*' => Elem::Star,
            '?' => Elem::One,
            c => Elem::Char(c),
        })
        .collect()
}

/// The textbook dynamic program: `m[i][j]` is true when the first `i` pattern elements match
/// the first `j` characters of the text.
fn oracle(pattern: &[Elem], text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let mut m = vec![vec![false; text.len() + 1]; pattern.len() + 1];
    m[0][0] = true;
    for i in 1..=pattern.len() {
        for j in 0..=text.len() {
            m[i][j] = match pattern[i - 1] {
                Elem::Star => m[i - 1][j] || (j > 0 && m[i][j - 1]),
                Elem::One => j > 0 && m[i - 1][j - 1],
                Elem::Char(c) => j > 0 && text[j - 1] == c && m[i - 1][j - 1],
            };
        }
    }
    m[pattern.len()][text.len()]
}

fn glob_matches(pattern: &str, text: &str) -> bool {
    Pattern::compile(pattern, GLOB, false)
        .expect("patterns without variables always compile")
        .matches(text, &NoVars)
        .expect("no variables to resolve")
}

/// The ARN oracle: the pattern is cut at its first five colons into at most six parts; the text
/// must have a colon wherever the pattern has one (its first `parts - 1` colons), each part
/// matches on its own, and the last pattern part matches everything after that.
fn arn_oracle(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.splitn(6, ':').collect();
    let texts: Vec<&str> = text.splitn(parts.len(), ':').collect();
    texts.len() == parts.len() && parts.iter().zip(&texts).all(|(p, t)| oracle(&elems(p), t))
}

/// Pattern pieces for the escape property: what is written and what the oracle sees.
fn piece() -> impl Strategy<Value = (&'static str, Elem)> {
    prop_oneof![
        Just(("a", Elem::Char('a'))),
        Just(("b", Elem::Char('b'))),
        Just(("$", Elem::Char('$'))),
        Just(("*", Elem::Star)),
        Just(("?", Elem::One)),
        Just(("${*}", Elem::Char('*'))),
        Just(("${?}", Elem::Char('?'))),
        Just(("${$}", Elem::Char('$'))),
        Just(("${ * }", Elem::Char('*'))),
        Just(("${?  }", Elem::Char('?'))),
    ]
}

/// 2,000 cases per property, or `PROPTEST_CASES` for a longer run.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 2000;
    }
    config
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn glob_agrees_with_oracle(pattern in "[ab*?:/]{0,12}", text in "[ab*?:/]{0,16}") {
        prop_assert_eq!(
            glob_matches(&pattern, &text),
            oracle(&elems(&pattern), &text),
            "pattern {:?} text {:?}", pattern, text
        );
    }

    /// Texts built to match half the time: the pattern with each wildcard replaced by a sample.
    #[test]
    fn glob_agrees_with_oracle_on_near_matches(
        pattern in "[ab*?:/]{0,12}",
        fills in proptest::collection::vec("[ab:/]{0,3}", 12),
        mutate in any::<bool>(),
    ) {
        let mut text = String::new();
        for (c, fill) in pattern.chars().zip(&fills) {
            match c {
                '*' => text.push_str(fill),
                '?' => text.push(fill.chars().next().unwrap_or('a')),
                c => text.push(c),
            }
        }
        if mutate && !text.is_empty() {
            text.remove(text.len() / 2);
        }
        let expected = oracle(&elems(&pattern), &text);
        prop_assert!(mutate || expected, "oracle rejects its own sample");
        prop_assert_eq!(glob_matches(&pattern, &text), expected, "pattern {:?} text {:?}", pattern, text);
    }

    /// Non-ASCII characters: `?` is one character, not one byte.
    #[test]
    fn glob_counts_characters_not_bytes(pattern in "[aé😀*?]{0,8}", text in "[aé😀]{0,10}") {
        prop_assert_eq!(glob_matches(&pattern, &text), oracle(&elems(&pattern), &text));
    }

    /// Case-insensitive mode: the pattern's literals are lower-cased when compiled and the
    /// caller lower-cases the text.
    #[test]
    fn case_insensitive_agrees_with_oracle(pattern in "[aAbBéÉ*?:]{0,12}", text in "[aAbBéÉ*?:]{0,14}") {
        let compiled = Pattern::compile(&pattern, GLOB, true).expect("compiles");
        let got = compiled.matches(&text.to_lowercase(), &NoVars).expect("no variables");
        let expected = oracle(&elems(&pattern.to_lowercase()), &text.to_lowercase());
        prop_assert_eq!(got, expected, "pattern {:?} text {:?}", pattern, text);
    }

    #[test]
    fn arn_pattern_agrees_with_oracle(pattern in "[ab*?:/]{0,20}", text in "[ab:/]{0,24}") {
        let compiled = ArnPattern::compile(&pattern, GLOB).expect("compiles");
        prop_assert_eq!(
            compiled.matches(&text, &NoVars).expect("no variables"),
            arn_oracle(&pattern, &text),
            "pattern {:?} text {:?}", pattern, text
        );
    }

    /// Colon-heavy inputs, so that six parts and the colon-containing remainder are common.
    #[test]
    fn arn_pattern_agrees_with_oracle_on_arn_shapes(
        parts in proptest::collection::vec("[ab*?]{0,3}", 1..9),
        text_parts in proptest::collection::vec("[ab]{0,3}", 1..9),
    ) {
        let pattern = parts.join(":");
        let text = text_parts.join(":");
        let compiled = ArnPattern::compile(&pattern, GLOB).expect("compiles");
        prop_assert_eq!(
            compiled.matches(&text, &NoVars).expect("no variables"),
            arn_oracle(&pattern, &text),
            "pattern {:?} text {:?}", pattern, text
        );
    }

    /// `${*}`, `${?}` and `${$}` are literal characters, with wildcards and variables enabled.
    #[test]
    fn escapes_match_only_their_literal(
        pieces in proptest::collection::vec(piece(), 0..8),
        text in "[ab*?$]{0,10}",
    ) {
        let written: String = pieces.iter().map(|(w, _)| *w).collect();
        let oracle_pattern: Vec<Elem> = pieces.iter().map(|(_, e)| *e).collect();
        let syntax = Syntax { wildcards: true, variables: true };
        let compiled = Pattern::compile(&written, syntax, false).expect("escapes compile");
        prop_assert!(!compiled.has_variables(), "{:?} has no variables", written);
        prop_assert_eq!(
            compiled.matches(&text, &NoVars).expect("nothing to resolve"),
            oracle(&oracle_pattern, &text),
            "pattern {:?} text {:?}", written, text
        );
        // A pattern of escapes and literals alone matches exactly one string.
        if oracle_pattern.iter().all(|e| matches!(e, Elem::Char(_))) {
            let literal: String = oracle_pattern
                .iter()
                .map(|e| match e { Elem::Char(c) => *c, _ => unreachable!() })
                .collect();
            prop_assert!(compiled.matches(&literal, &NoVars).expect("nothing to resolve"));
            prop_assert_eq!(compiled.matches(&text, &NoVars).expect("nothing to resolve"), text == literal);
        }
        // In an ARN pattern too (no colons here, so a single part).
        let arn = ArnPattern::compile(&written, syntax).expect("escapes compile");
        prop_assert_eq!(
            arn.matches(&text, &NoVars).expect("nothing to resolve"),
            oracle(&oracle_pattern, &text)
        );
    }
}

#[test]
fn oracles_sanity() {
    assert!(oracle(&elems("a*b?"), "axxbc"));
    assert!(!oracle(&elems("a*b?"), "axxb"));
    assert!(oracle(&elems("*"), ""));
    assert!(arn_oracle("arn:aws:s3:::b/*", "arn:aws:s3:::b/x:y"));
    assert!(!arn_oracle(
        "arn:aws:iam::*:role/x",
        "arn:aws:iam::1:2:role/x"
    ));
    assert!(arn_oracle("*", "a:b:c"));
}
