//! Parameter constraints from the IAM API reference, reported as IAM's `ValidationError`.

use crate::error::{Result, StateError};
use crate::model::Tag;

fn validation(value: &str, member: &str, constraint: &str) -> StateError {
    StateError::Validation(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
    ))
}

fn length(value: &str, member: &str, min: usize, max: usize) -> Result<()> {
    let n = value.chars().count();
    if n < min {
        return Err(validation(
            value,
            member,
            &format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if n > max {
        return Err(validation(
            value,
            member,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// Role, user and policy names: `[\w+=,.@-]+`.
pub(crate) fn entity_name(value: &str, member: &str, max: usize) -> Result<()> {
    length(value, member, 1, max)?;
    let ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if !ok {
        return Err(validation(
            value,
            member,
            r"Member must satisfy regular expression pattern: [\w+=,.@-]+",
        ));
    }
    Ok(())
}

/// Paths and path prefixes: `/` or `/…/`, printable ASCII, at most 512 characters.
pub(crate) fn path(value: &str, member: &str) -> Result<()> {
    length(value, member, 1, 512)?;
    let ok = value.starts_with('/')
        && value.ends_with('/')
        && value.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if !ok {
        return Err(validation(
            value,
            member,
            r"Member must satisfy regular expression pattern: (\u002F)|(\u002F[\u0021-\u007E]+\u002F)",
        ));
    }
    Ok(())
}

/// A path prefix for listings: starts with `/`.
pub(crate) fn path_prefix(value: &str) -> Result<()> {
    length(value, "pathPrefix", 1, 512)?;
    if !value.starts_with('/') || !value.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(validation(
            value,
            "pathPrefix",
            r"Member must satisfy regular expression pattern: \u002F[\u0021-\u007F]*",
        ));
    }
    Ok(())
}

/// Descriptions: at most 1000 characters.
pub(crate) fn description(value: &str) -> Result<()> {
    length(value, "description", 0, 1000)
}

/// `MaxSessionDuration`: 3600 to 43200 seconds.
pub(crate) fn max_session_duration(value: u32) -> Result<()> {
    let s = value.to_string();
    if value < 3600 {
        return Err(validation(
            &s,
            "maxSessionDuration",
            "Member must have value greater than or equal to 3600",
        ));
    }
    if value > 43200 {
        return Err(validation(
            &s,
            "maxSessionDuration",
            "Member must have value less than or equal to 43200",
        ));
    }
    Ok(())
}

/// `MaxItems`: 1 to 1000, default 100.
pub(crate) fn max_items(value: Option<u32>) -> Result<usize> {
    match value {
        None => Ok(100),
        Some(n @ 1..=1000) => Ok(n as usize),
        Some(n) => Err(validation(
            &n.to_string(),
            "maxItems",
            "Member must have value between 1 and 1000",
        )),
    }
}

fn tag_chars_ok(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
}

/// A tag key (1–128) and value (0–256) from IAM's allowed characters.
pub(crate) fn tag(t: &Tag) -> Result<()> {
    length(&t.key, "tags.member.key", 1, 128)?;
    length(&t.value, "tags.member.value", 0, 256)?;
    if !tag_chars_ok(&t.key) {
        return Err(validation(
            &t.key,
            "tags.member.key",
            r"Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]+",
        ));
    }
    if !tag_chars_ok(&t.value) {
        return Err(validation(
            &t.value,
            "tags.member.value",
            r"Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]*",
        ));
    }
    if t.key.to_ascii_lowercase().starts_with("aws:") {
        return Err(StateError::InvalidInput(
            "User-defined tag keys can't start with \"aws:\". This prefix is reserved for AWS internal use".into(),
        ));
    }
    Ok(())
}

/// A 12-digit account id.
pub(crate) fn account_id(value: &str) -> Result<()> {
    if !iam::arn::is_account_id(value) {
        return Err(StateError::InvalidInput(format!(
            "Account id {value} is not 12 digits."
        )));
    }
    Ok(())
}

/// The entity name part of an ARN's resource (`role/a/b/NAME` → (`/a/b/`, `NAME`)).
pub(crate) fn split_path_name(resource_after_type: &str) -> (String, String) {
    match resource_after_type.rfind('/') {
        Some(i) => (
            format!("/{}", &resource_after_type[..=i]),
            resource_after_type[i + 1..].to_string(),
        ),
        None => ("/".to_string(), resource_after_type.to_string()),
    }
}

/// IAM's quota of tags per role and per OIDC provider.
pub(crate) const MAX_TAGS: usize = 50;

pub(crate) fn check_tags(existing: &mut Vec<Tag>, new: &[Tag], quota: &str) -> Result<()> {
    for t in new {
        tag(t)?;
    }
    for t in new {
        // Tag keys are unique regardless of case; a repeated key replaces the value.
        match existing
            .iter_mut()
            .find(|e| e.key.eq_ignore_ascii_case(&t.key))
        {
            Some(e) => *e = t.clone(),
            None => existing.push(t.clone()),
        }
    }
    if existing.len() > MAX_TAGS {
        return Err(StateError::LimitExceeded(format!(
            "Cannot exceed quota for {quota}: {MAX_TAGS}."
        )));
    }
    Ok(())
}

pub(crate) fn policy_size_check(doc: &str, quota: iam::SizeQuota) -> Result<()> {
    quota.check(iam::policy_size(doc))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraints() {
        assert!(entity_name("S3_Pics", "roleName", 64).is_ok());
        assert!(entity_name("a b", "roleName", 64).is_err());
        assert!(entity_name("", "roleName", 64).is_err());
        assert!(entity_name(&"a".repeat(65), "roleName", 64).is_err());
        assert!(path("/", "path").is_ok());
        assert!(path("/a/b/", "path").is_ok());
        assert!(path("/a", "path").is_err());
        assert!(max_session_duration(3599).is_err());
        assert!(max_session_duration(43201).is_err());
        assert_eq!(max_items(None).unwrap(), 100);
        assert!(max_items(Some(0)).is_err());
        assert!(tag(&Tag::new("aws:x", "y")).is_err());
        assert!(tag(&Tag::new("team", "a b")).is_ok());
        assert_eq!(
            split_path_name("a/b/N"),
            ("/a/b/".to_string(), "N".to_string())
        );
        assert_eq!(split_path_name("N"), ("/".to_string(), "N".to_string()));
        let e = entity_name("a b", "roleName", 64).unwrap_err();
        assert_eq!(e.code(), "ValidationError");
        assert!(e.to_string().starts_with("1 validation error detected"));
    }
}
