//! Session tags of a new session: those passed, those a calling session hands on as
//! transitive, and how the request's `Tags` and `TransitiveTagKeys` are read.

use awswire::{rules, AwsError, Path, Required, Validator};
use iam::RequestContext;
use twin_state::{Session, Tag};

use super::StsConfig;

/// Session tags of the new session: passed ones and the caller's transitive ones.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionTags {
    /// Tags passed with the request (or from the token's tags claim), in order.
    pub(crate) passed: Vec<Tag>,
    /// Keys of passed tags to make transitive.
    pub(crate) transitive_keys: Vec<String>,
    /// Transitive tags inherited from the calling session.
    pub(crate) inherited: Vec<Tag>,
}

impl SessionTags {
    /// Whether any tag is set on the new session (then `sts:TagSession` must be allowed).
    pub(crate) fn any(&self) -> bool {
        !self.passed.is_empty() || !self.transitive_keys.is_empty()
    }

    /// Checks duplicates, transitive keys, inherited conflicts and the quota.
    pub(crate) fn check(&self, config: &StsConfig) -> Result<(), AwsError> {
        if awswire::has_duplicate_keys(self.passed.iter().map(|t| t.key.as_str())) {
            return Err(AwsError::invalid_parameter_value(
                awswire::DUPLICATE_TAG_KEYS,
            ));
        }
        for key in &self.transitive_keys {
            if !self.passed.iter().any(|t| t.key.eq_ignore_ascii_case(key)) {
                return Err(AwsError::invalid_parameter_value(format!(
                    "The specified transitive tag key {key} must be included in the requested tags."
                )));
            }
        }
        for t in &self.passed {
            if self
                .inherited
                .iter()
                .any(|o| o.key.eq_ignore_ascii_case(&t.key))
            {
                return Err(AwsError::invalid_parameter_value(format!(
                    "One or more of the specified session tags conflict with transitive tags set by the calling session: {}.",
                    t.key
                )));
            }
        }
        let total = self.passed.len() + self.inherited.len();
        if total > config.max_session_tags {
            return Err(AwsError::invalid_parameter_value(format!(
                "The number of session tags ({total}) exceeds the maximum of {}.",
                config.max_session_tags
            )));
        }
        Ok(())
    }

    /// The new session's tags (inherited first) and transitive keys (inherited ones stay
    /// transitive).
    pub(crate) fn for_session(&self) -> (Vec<Tag>, Vec<String>) {
        let mut tags = self.inherited.clone();
        tags.extend(self.passed.iter().cloned());
        let mut keys: Vec<String> = self.inherited.iter().map(|t| t.key.clone()).collect();
        keys.extend(self.transitive_keys.iter().cloned());
        (tags, keys)
    }

    /// `aws:RequestTag/K` and `aws:TagKeys` for the tags of the request, and
    /// `sts:TransitiveTagKeys`.
    pub(crate) fn context(&self, ctx: &mut RequestContext) {
        if self.passed.is_empty() && self.transitive_keys.is_empty() {
            return;
        }
        for t in &self.passed {
            ctx.set(&format!("aws:RequestTag/{}", t.key), &t.value);
        }
        ctx.set_multi("aws:TagKeys", self.passed.iter().map(|t| t.key.as_str()));
        if !self.transitive_keys.is_empty() {
            ctx.set_multi(
                "sts:TransitiveTagKeys",
                self.transitive_keys.iter().map(String::as_str),
            );
        }
    }
}

/// The transitive tags of a calling session.
pub(crate) fn inherited_tags(session: Option<&Session>) -> Vec<Tag> {
    let Some(session) = session else {
        return Vec::new();
    };
    session
        .session_tags
        .iter()
        .filter(|t| {
            session
                .transitive_tag_keys
                .iter()
                .any(|k| k.eq_ignore_ascii_case(&t.key))
        })
        .cloned()
        .collect()
}

/// Reads `Tags` (Key, Value) and `TransitiveTagKeys`.
pub(crate) fn read_tags(v: &mut Validator<'_>) -> (Required<Vec<Tag>>, Vec<String>) {
    let members: Vec<Path> = v.struct_list("Tags", &rules::TAG_LIST);
    let tags = members
        .iter()
        .map(|m| {
            let key = v.required_str(m.member("Key"), &rules::TAG_KEY);
            key.zip(v.required_str(m.member("Value"), &rules::TAG_VALUE))
                .map(|(k, value)| Tag::new(k, value))
        })
        .collect();
    let keys = v.str_list("TransitiveTagKeys", &rules::TAG_LIST, &rules::TAG_KEY);
    (tags, keys)
}
