//! Wildcard patterns (`*`, `?`) with optional policy variables (`${aws:username}`).
//!
//! A pattern is compiled once when a policy is parsed and matched many times during evaluation,
//! so matching works on pre-split segments and never re-parses the policy text. Variables are
//! resolved per request; a resolved value is always literal, so a username containing `*` can
//! never widen a grant.

use std::fmt;

/// One piece of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Literal text (already lower-cased when the pattern is case-insensitive).
    Literal(Box<str>),
    /// `*`: any run of characters, including none.
    AnyRun,
    /// `?`: exactly one character.
    AnyChar,
    /// `${key}` or `${key, 'default'}`; `key` is lower-cased because context keys are
    /// case-insensitive.
    Variable {
        /// The context key, lower-cased.
        key: Box<str>,
        /// The value used when the key is absent.
        default: Option<Box<str>>,
    },
}

/// Whether `*` and `?` are wildcards and whether `${...}` are variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syntax {
    /// `*` and `?` are wildcards (the `*Like` operators, actions, resources).
    pub wildcards: bool,
    /// `${...}` is a policy variable (only under `Version: 2012-10-17`).
    pub variables: bool,
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    segments: Vec<Segment>,
    has_variables: bool,
    case_insensitive: bool,
}

/// A variable in a pattern had no value in the request and no default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// The variable's key as written (lower-cased).
    pub key: String,
}

/// Something that can answer a policy variable: the request context.
pub trait VariableSource {
    /// The single value of `key` (lower-case), or `None` when absent or multi-valued.
    fn variable(&self, key: &str) -> Option<&str>;
}

/// Error compiling a pattern: an unterminated or malformed `${...}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PatternError(pub String);

impl Pattern {
    /// Compiles `text` under `syntax`. With `case_insensitive`, literals are lower-cased and the
    /// matched text must be lower-cased by the caller (done once per request, not per pattern).
    pub fn compile(
        text: &str,
        syntax: Syntax,
        case_insensitive: bool,
    ) -> Result<Self, PatternError> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut has_variables = false;
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if syntax.variables && rest.starts_with("${") {
                let close = rest.find('}').ok_or_else(|| {
                    PatternError(format!("Policy variable is not terminated in '{text}'"))
                })?;
                let inner = &rest[2..close];
                rest = &rest[close + 1..];
                match inner.trim() {
                    "*" => literal.push('*'),
                    "?" => literal.push('?'),
                    "$" => literal.push('$'),
                    body => {
                        flush(&mut literal, &mut segments, case_insensitive);
                        segments.push(parse_variable(body, text)?);
                        has_variables = true;
                    }
                }
                continue;
            }
            rest = &rest[c.len_utf8()..];
            match c {
                '*' if syntax.wildcards => {
                    flush(&mut literal, &mut segments, case_insensitive);
                    // Consecutive stars mean the same as one; collapsing keeps matching linear.
                    if segments.last() != Some(&Segment::AnyRun) {
                        segments.push(Segment::AnyRun);
                    }
                }
                '?' if syntax.wildcards => {
                    flush(&mut literal, &mut segments, case_insensitive);
                    segments.push(Segment::AnyChar);
                }
                _ => literal.push(c),
            }
        }
        flush(&mut literal, &mut segments, case_insensitive);
        Ok(Pattern {
            segments,
            has_variables,
            case_insensitive,
        })
    }

    /// A pattern that matches exactly `text`.
    pub fn literal(text: &str) -> Self {
        let segments = if text.is_empty() {
            Vec::new()
        } else {
            vec![Segment::Literal(text.into())]
        };
        Pattern {
            segments,
            has_variables: false,
            case_insensitive: false,
        }
    }

    /// True when the pattern is `*` alone.
    pub fn is_match_all(&self) -> bool {
        self.segments == [Segment::AnyRun]
    }

    /// True when the pattern contains `${...}` variables.
    pub fn has_variables(&self) -> bool {
        self.has_variables
    }

    /// The compiled segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Matches `text` (already lower-cased if the pattern is case-insensitive), resolving
    /// variables from `vars`.
    pub fn matches(&self, text: &str, vars: &dyn VariableSource) -> Result<bool, Unresolved> {
        if !self.has_variables {
            return Ok(match_segments(&self.segments, text));
        }
        let resolved = self.resolve(vars)?;
        Ok(match_segments(&resolved, text))
    }

    /// Replaces variables by their literal values.
    pub fn resolve(&self, vars: &dyn VariableSource) -> Result<Vec<Segment>, Unresolved> {
        let mut out = Vec::with_capacity(self.segments.len());
        for segment in &self.segments {
            match segment {
                Segment::Variable { key, default } => {
                    let value = match (vars.variable(key), default) {
                        (Some(v), _) => v,
                        (None, Some(d)) => d,
                        (None, None) => {
                            return Err(Unresolved {
                                key: key.to_string(),
                            })
                        }
                    };
                    let value = if self.case_insensitive {
                        fold_case(value)
                    } else {
                        value.to_string()
                    };
                    out.push(Segment::Literal(value.into()));
                }
                other => out.push(other.clone()),
            }
        }
        Ok(out)
    }
}

fn flush(literal: &mut String, segments: &mut Vec<Segment>, case_insensitive: bool) {
    if literal.is_empty() {
        return;
    }
    let text = std::mem::take(literal);
    let text = if case_insensitive {
        text.to_lowercase()
    } else {
        text
    };
    segments.push(Segment::Literal(text.into()));
}

/// Lower-cases character by character, so the result does not depend on where a literal was
/// cut by a variable or wildcard (`str::to_lowercase` treats a word-final sigma specially).
pub fn fold_case(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    text.chars().flat_map(char::to_lowercase).collect()
}

/// Parses the inside of `${...}`: `key` or `key, 'default'`.
fn parse_variable(body: &str, whole: &str) -> Result<Segment, PatternError> {
    let (key, default) = match body.split_once(',') {
        None => (body.trim(), None),
        Some((key, default)) => {
            let default = default.trim();
            let quoted = default
                .strip_prefix('\'')
                .and_then(|d| d.strip_suffix('\''))
                .ok_or_else(|| {
                    PatternError(format!(
                        "Policy variable default must be in single quotes in '{whole}'"
                    ))
                })?;
            (key.trim(), Some(quoted.into()))
        }
    };
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(PatternError(format!(
            "Invalid policy variable '${{{body}}}' in '{whole}'"
        )));
    }
    Ok(Segment::Variable {
        key: key.to_ascii_lowercase().into(),
        default,
    })
}

/// Matches `text` against segments that contain no variables.
///
/// Greedy matching with backtracking to the most recent `*`: each `*` only ever advances, so
/// the cost is O(len(text) × len(pattern)) in the worst case and linear in the common case.
pub fn match_segments(segments: &[Segment], text: &str) -> bool {
    let mut seg = 0;
    let mut pos = 0;
    // (segment after the star, text position the star currently stops at)
    let mut backtrack: Option<(usize, usize)> = None;
    loop {
        if seg == segments.len() && pos == text.len() {
            return true;
        }
        let advanced = match segments.get(seg) {
            Some(Segment::Literal(lit)) if text[pos..].starts_with(&**lit) => {
                pos += lit.len();
                seg += 1;
                true
            }
            Some(Segment::AnyChar) => match text[pos..].chars().next() {
                Some(c) => {
                    pos += c.len_utf8();
                    seg += 1;
                    true
                }
                None => false,
            },
            Some(Segment::AnyRun) => {
                seg += 1;
                if seg == segments.len() {
                    return true;
                }
                backtrack = Some((seg, pos));
                true
            }
            // Variables are resolved before matching; an unresolved one never matches.
            Some(Segment::Literal(_)) | Some(Segment::Variable { .. }) | None => false,
        };
        if advanced {
            continue;
        }
        match backtrack {
            Some((after_star, star_pos)) => match text[star_pos..].chars().next() {
                Some(c) => {
                    let next = star_pos + c.len_utf8();
                    backtrack = Some((after_star, next));
                    seg = after_star;
                    pos = next;
                }
                None => return false,
            },
            None => return false,
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => f.write_str(text)?,
                Segment::AnyRun => f.write_str("*")?,
                Segment::AnyChar => f.write_str("?")?,
                Segment::Variable { key, default: None } => write!(f, "${{{key}}}")?,
                Segment::Variable {
                    key,
                    default: Some(d),
                } => write!(f, "${{{key}, '{d}'}}")?,
            }
        }
        Ok(())
    }
}

/// A pattern over an ARN: the six colon-separated parts are matched separately, as IAM does for
/// resources and the `Arn*` condition operators, so `*` in the account part never crosses into
/// the resource part. The last part of the pattern takes the rest of the ARN (resource ids may
/// contain colons).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnPattern {
    parts: Vec<Pattern>,
    source: Box<str>,
}

impl ArnPattern {
    /// Compiles an ARN pattern. Splitting happens after variables are recognised, so
    /// `${aws:username}` is not cut at its colon.
    pub fn compile(text: &str, syntax: Syntax) -> Result<Self, PatternError> {
        let whole = Pattern::compile(text, syntax, false)?;
        let mut parts: Vec<Vec<Segment>> = vec![Vec::new()];
        for segment in whole.segments {
            match segment {
                Segment::Literal(lit) => {
                    let mut pieces = lit.split(':').peekable();
                    while let Some(piece) = pieces.next() {
                        if !piece.is_empty() {
                            push_literal(parts.last_mut(), piece);
                        }
                        if pieces.peek().is_some() {
                            if parts.len() < 6 {
                                parts.push(Vec::new());
                            } else {
                                push_literal(parts.last_mut(), ":");
                            }
                        }
                    }
                }
                other => {
                    if let Some(last) = parts.last_mut() {
                        last.push(other)
                    }
                }
            }
        }
        let parts = parts
            .into_iter()
            .map(|segments| Pattern {
                has_variables: segments
                    .iter()
                    .any(|s| matches!(s, Segment::Variable { .. })),
                segments,
                case_insensitive: false,
            })
            .collect();
        Ok(ArnPattern {
            parts,
            source: text.into(),
        })
    }

    /// The pattern as written in the policy.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the pattern is `*` alone.
    pub fn is_match_all(&self) -> bool {
        self.parts.len() == 1 && self.parts[0].is_match_all()
    }

    /// Matches an ARN (or, for a one-part pattern such as `*`, any string).
    pub fn matches(&self, arn: &str, vars: &dyn VariableSource) -> Result<bool, Unresolved> {
        let last = self.parts.len() - 1;
        let mut rest = arn;
        for (index, part) in self.parts.iter().enumerate() {
            if index == last {
                return part.matches(rest, vars);
            }
            // A byte search: `str::split_once` goes through the general pattern machinery,
            // which dominated evaluation time in the benchmarks.
            let Some(colon) = rest.bytes().position(|b| b == b':') else {
                return Ok(false);
            };
            let (head, tail) = (&rest[..colon], &rest[colon + 1..]);
            if !part.matches(head, vars)? {
                return Ok(false);
            }
            rest = tail;
        }
        Ok(false)
    }
}

fn push_literal(part: Option<&mut Vec<Segment>>, piece: &str) {
    let Some(part) = part else { return };
    if let Some(Segment::Literal(prev)) = part.last_mut() {
        let mut joined = prev.to_string();
        joined.push_str(piece);
        *prev = joined.into();
    } else {
        part.push(Segment::Literal(piece.into()));
    }
}

impl fmt::Display for ArnPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Vars(&'static [(&'static str, &'static str)]);
    impl VariableSource for Vars {
        fn variable(&self, key: &str) -> Option<&str> {
            self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
        }
    }
    const NONE: Vars = Vars(&[]);
    const GLOB: Syntax = Syntax {
        wildcards: true,
        variables: true,
    };

    fn glob(p: &str, t: &str) -> bool {
        Pattern::compile(p, GLOB, false)
            .unwrap()
            .matches(t, &NONE)
            .unwrap()
    }

    #[test]
    fn wildcards() {
        assert!(glob("*", ""));
        assert!(glob("a*c", "abbbc"));
        assert!(glob("a*c", "ac"));
        assert!(!glob("a*c", "ab"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("*a*a*", "banana"));
        assert!(!glob("*x*", "banana"));
        assert!(glob("ü?", "üß"));
    }

    #[test]
    fn escapes_are_literal() {
        assert!(glob("a${*}", "a*"));
        assert!(!glob("a${*}", "ab"));
        assert!(glob("${?}${$}", "?$"));
    }

    #[test]
    fn variables_resolve_literally() {
        let p = Pattern::compile("home/${aws:username}/*", GLOB, false).unwrap();
        let vars = Vars(&[("aws:username", "b*")]);
        assert!(p.matches("home/b*/x", &vars).unwrap());
        assert!(!p.matches("home/bob/x", &vars).unwrap());
        assert_eq!(
            p.matches("home/x", &NONE),
            Err(Unresolved {
                key: "aws:username".into()
            })
        );
        let d = Pattern::compile("${aws:username, 'nobody'}", GLOB, false).unwrap();
        assert!(d.matches("nobody", &NONE).unwrap());
    }

    #[test]
    fn malformed_variables_are_errors() {
        assert!(Pattern::compile("${aws:username", GLOB, false).is_err());
        assert!(Pattern::compile("${a, nope}", GLOB, false).is_err());
        assert!(Pattern::compile("${}", GLOB, false).is_err());
    }

    #[test]
    fn arn_parts_are_matched_separately() {
        let p = ArnPattern::compile("arn:aws:iam::*:role/x", GLOB).unwrap();
        assert!(p
            .matches("arn:aws:iam::111122223333:role/x", &NONE)
            .unwrap());
        assert!(!p.matches("arn:aws:iam::1:2:role/x", &NONE).unwrap());
        let s3 = ArnPattern::compile("arn:aws:s3:::bucket/*", GLOB).unwrap();
        assert!(s3.matches("arn:aws:s3:::bucket/a:b/c", &NONE).unwrap());
        let short = ArnPattern::compile("arn:aws:*", GLOB).unwrap();
        assert!(short.matches("arn:aws:s3:::bucket", &NONE).unwrap());
        let var = ArnPattern::compile("arn:aws:s3:::b/${aws:username}/*", GLOB).unwrap();
        let vars = Vars(&[("aws:username", "al:ice")]);
        assert!(var.matches("arn:aws:s3:::b/al:ice/k", &vars).unwrap());
    }
}
