//! Query protocol requests (STS, IAM): action and version, and member validation with AWS's
//! `ValidationError` messages.

mod constraints;

pub use constraints::{IntRule, ListRule, StrRule};

use crate::{AwsError, Params};

/// A Query protocol service: its API version and XML namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryService {
    /// The signing name, for logs (`sts`, `iam`).
    pub name: &'static str,
    /// The only `Version` the service answers.
    pub version: &'static str,
    /// The `xmlns` of its responses.
    pub xmlns: &'static str,
}

/// STS, `Version=2011-06-15`.
pub const STS: QueryService = QueryService {
    name: "sts",
    version: "2011-06-15",
    xmlns: "https://sts.amazonaws.com/doc/2011-06-15/",
};

/// IAM, `Version=2010-05-08`.
pub const IAM: QueryService = QueryService {
    name: "iam",
    version: "2010-05-08",
    xmlns: "https://iam.amazonaws.com/doc/2010-05-08/",
};

/// What a request without `Version` is reported as, in STS's words.
pub const NO_VERSION_SPECIFIED: &str = "NO_VERSION_SPECIFIED";

/// A Query protocol request whose action the service has.
#[derive(Clone, Debug)]
pub struct QueryRequest {
    service: QueryService,
    action: String,
    params: Params,
}

impl QueryRequest {
    /// Reads `Action` and `Version` from `params` and checks them against the service and
    /// the `operations` it implements (case-sensitive, as AWS matches them).
    ///
    /// | request | answer |
    /// | --- | --- |
    /// | no `Action` (or empty) | `MissingAction` 400 `Missing Action` (code from AWS's common errors; the message is chosen here) |
    /// | no `Version` | `InvalidAction` 400 `Could not find operation {Action} for version NO_VERSION_SPECIFIED`, as STS answers |
    /// | another `Version` | `InvalidAction` 400 `Could not find operation {Action} for version {Version}` |
    /// | an action not in `operations` | the same `InvalidAction` with the service's version |
    pub fn from_params(
        service: &QueryService,
        params: Params,
        operations: &[&str],
    ) -> Result<QueryRequest, AwsError> {
        let action = match params.get("Action") {
            Some(a) if !a.is_empty() => a.to_owned(),
            _ => return Err(AwsError::missing_action("Missing Action")),
        };
        let version = match params.get("Version") {
            Some(v) if !v.is_empty() => v,
            _ => NO_VERSION_SPECIFIED,
        };
        if version != service.version || !operations.contains(&action.as_str()) {
            return Err(AwsError::unknown_operation(&action, version));
        }
        Ok(QueryRequest {
            service: *service,
            action,
            params,
        })
    }

    /// Parses the raw query string (without `?`) and, for a form POST, the body, then checks
    /// them as [`from_params`](Self::from_params) does. Parameters in the query string come
    /// first when a key is in both. Pass `None` as the body unless its `Content-Type` is
    /// `application/x-www-form-urlencoded`.
    pub fn parse(
        service: &QueryService,
        query: &str,
        form_body: Option<&[u8]>,
        operations: &[&str],
    ) -> Result<QueryRequest, AwsError> {
        let mut params = Params::parse(query.as_bytes())?;
        if let Some(body) = form_body {
            params.merge(Params::parse(body)?);
        }
        Self::from_params(service, params, operations)
    }

    /// The service.
    pub fn service(&self) -> &QueryService {
        &self.service
    }

    /// The action (`AssumeRole`).
    pub fn action(&self) -> &str {
        &self.action
    }

    /// The version, equal to the service's.
    pub fn version(&self) -> &str {
        self.service.version
    }

    /// All parameters, `Action` and `Version` included.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// A validator over the parameters.
    pub fn validator(&self) -> Validator<'_> {
        Validator::new(&self.params)
    }
}

/// Where a member is: its parameter key (`Tags.member.1.Key`) and the label AWS's messages
/// give it (`tags.1.member.key`).
///
/// A `&str` converts to a top-level member, labelled with the model's member name with its
/// first letter lower-cased, as AWS labels it (`RoleArn` → `roleArn`, `ClientIDList` →
/// `clientIDList`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    key: String,
    label: String,
}

impl Path {
    /// A top-level member.
    pub fn new(member: &str) -> Path {
        Path {
            key: member.to_owned(),
            label: lower_first(member),
        }
    }

    /// A member of this structure (`Tags.member.1` → `Tags.member.1.Key`,
    /// `tags.1.member.key`).
    pub fn member(&self, member: &str) -> Path {
        Path {
            key: format!("{}.{member}", self.key),
            label: format!("{}.{}", self.label, lower_first(member)),
        }
    }

    /// The parameter key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The label used in validation messages.
    pub fn label(&self) -> &str {
        &self.label
    }
}

impl From<&str> for Path {
    fn from(member: &str) -> Path {
        Path::new(member)
    }
}

impl From<&Path> for Path {
    fn from(path: &Path) -> Path {
        path.clone()
    }
}

fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Reads members from [`Params`] and collects every constraint failure, so that one
/// response reports them all as AWS does:
/// `2 validation errors detected: Value null at 'roleArn' failed to satisfy constraint:
/// Member must not be null; Value 'a' at 'roleSessionName' …`.
///
/// Optional getters answer `None` for a member that is absent or invalid; required ones a
/// [`Required`], whose value can only be read with the [`Checked`] that
/// [`finish`](Self::finish) returns when nothing failed — a handler cannot use a missing
/// member by mistake. Call the getters in the model's member order: that is the order of the
/// messages.
///
/// # Messages (Coral's wording)
///
/// - missing: `Value null at 'roleArn' failed to satisfy constraint: Member must not be null`
/// - length: `Value 'a' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2` (`less than or equal to` for max; lists too)
/// - pattern: `… Member must satisfy regular expression pattern: [\w+=,.@-]*`
/// - enum: `… Member must satisfy enum value set: [string, stringList]`
/// - integer range: `Value '10' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900`
///
/// Chosen here where AWS's answer is not known: a value that is not an integer is
/// `… Member must be a number`, one that is not `true`/`false` (any case) is
/// `… Member must be a boolean`, both `ValidationError`; a list value is shown as Java shows a
/// list of strings (`'[a, b]'`), and a list of structures not at all (`Value at 'tags' …`).
/// List members are numbered by position (1-based) in labels, which is the index botocore
/// sends.
#[derive(Debug)]
#[must_use = "a Validator's values are only usable once finish() has checked them"]
pub struct Validator<'a> {
    params: &'a Params,
    errors: Vec<String>,
    /// List indexes that are not 1, 2, … n: reported as `MalformedInput` before any
    /// constraint failure, as the request cannot be read as the model's shape at all.
    malformed: Vec<String>,
}

impl<'a> Validator<'a> {
    /// A validator over `params`.
    pub fn new(params: &'a Params) -> Validator<'a> {
        Validator {
            params,
            errors: Vec::new(),
            malformed: Vec::new(),
        }
    }

    /// Records a failure of the usual shape: `Value '{value}' at '{label}' failed to satisfy
    /// constraint: {constraint}` (`Value null at …` for `None`).
    pub fn fail(&mut self, at: &Path, value: Option<&str>, constraint: &str) {
        let shown = match value {
            Some(v) => format!("Value '{v}' at"),
            None => "Value null at".to_owned(),
        };
        self.errors.push(format!(
            "{shown} '{}' failed to satisfy constraint: {constraint}",
            at.label
        ));
    }

    /// Records a message verbatim, to be reported with the others.
    pub fn fail_with(&mut self, message: impl Into<String>) {
        self.errors.push(message.into());
    }

    /// The number of failures so far.
    pub fn error_count(&self) -> usize {
        self.errors.len()
    }

    /// An optional string member; `None` if absent or invalid.
    pub fn str(&mut self, at: impl Into<Path>, rule: &StrRule) -> Option<String> {
        let at = at.into();
        let value = self.params.get(&at.key)?;
        self.check_str(&at, value, rule).then(|| value.to_owned())
    }

    /// A required string member (a failure recorded when absent or invalid).
    pub fn required_str(&mut self, at: impl Into<Path>, rule: &StrRule) -> Required<String> {
        let at = at.into();
        match self.params.get(&at.key) {
            Some(value) => Required(self.check_str(&at, value, rule).then(|| value.to_owned())),
            None => {
                self.fail(&at, None, "Member must not be null");
                Required(None)
            }
        }
    }

    fn check_str(&mut self, at: &Path, value: &str, rule: &StrRule) -> bool {
        let before = self.errors.len();
        let shown = (!rule.sensitive).then_some(value);
        let len = value.chars().count();
        if len < rule.min {
            self.fail_value(
                at,
                shown,
                &format!(
                    "Member must have length greater than or equal to {}",
                    rule.min
                ),
            );
        }
        if let Some(max) = rule.max {
            if len > max {
                self.fail_value(
                    at,
                    shown,
                    &format!("Member must have length less than or equal to {max}"),
                );
            }
        }
        if let Some(pattern) = rule.pattern {
            if !pattern.is_match(value) {
                self.fail_value(
                    at,
                    shown,
                    &format!(
                        "Member must satisfy regular expression pattern: {}",
                        pattern.regex
                    ),
                );
            }
        }
        if let Some(values) = rule.one_of {
            if !values.contains(&value) {
                self.fail_value(
                    at,
                    shown,
                    &format!(
                        "Member must satisfy enum value set: [{}]",
                        values.join(", ")
                    ),
                );
            }
        }
        self.errors.len() == before
    }

    /// Like [`fail`](Self::fail), but a hidden (sensitive) value reads `Value at`.
    fn fail_value(&mut self, at: &Path, shown: Option<&str>, constraint: &str) {
        match shown {
            Some(v) => self.fail(at, Some(v), constraint),
            None => self.errors.push(format!(
                "Value at '{}' failed to satisfy constraint: {constraint}",
                at.label
            )),
        }
    }

    /// An optional integer member.
    pub fn int(&mut self, at: impl Into<Path>, rule: &IntRule) -> Option<i64> {
        let at = at.into();
        let raw = self.params.get(&at.key)?;
        // No trimming: ' 900' is not a number to AWS either (Java's parseInt refuses it).
        let Ok(value) = raw.parse::<i64>() else {
            self.fail(&at, Some(raw), "Member must be a number");
            return None;
        };
        let mut ok = true;
        if let Some(min) = rule.min {
            if value < min {
                self.fail(
                    &at,
                    Some(raw),
                    &format!("Member must have value greater than or equal to {min}"),
                );
                ok = false;
            }
        }
        if let Some(max) = rule.max {
            if value > max {
                self.fail(
                    &at,
                    Some(raw),
                    &format!("Member must have value less than or equal to {max}"),
                );
                ok = false;
            }
        }
        ok.then_some(value)
    }

    /// A required integer member (a failure recorded when absent or invalid).
    pub fn required_int(&mut self, at: impl Into<Path>, rule: &IntRule) -> Required<i64> {
        let at = at.into();
        if !self.params.contains(&at.key) {
            self.fail(&at, None, "Member must not be null");
            return Required(None);
        }
        Required(self.int(at, rule))
    }

    /// An optional boolean member (`true`/`false`, any case).
    pub fn bool(&mut self, at: impl Into<Path>) -> Option<bool> {
        let at = at.into();
        let raw = self.params.get(&at.key)?;
        if raw.eq_ignore_ascii_case("true") {
            Some(true)
        } else if raw.eq_ignore_ascii_case("false") {
            Some(false)
        } else {
            self.fail(&at, Some(raw), "Member must be a boolean");
            None
        }
    }

    /// The positions present under `{key}.member.`: the decimal index after it, followed by
    /// the end of the key (`scalar`) or by `.` (structures), sorted. The indexes must be
    /// exactly 1, 2, … n, as botocore numbers them: `member.0`, a zero-padded index, a gap
    /// (`member.1` and `member.3`) or an index past the list's end records a `MalformedInput`
    /// naming the parameter (`0 is not a valid index (Tags.member.0)`; AWS's words for 0, seen
    /// from SQS's Query front end; the parameter in brackets and the use for gaps are chosen
    /// here). Keys whose segment after `member.` is not all digits (`member.x`) are not list
    /// members and are ignored like any unknown parameter.
    fn indices(&mut self, at: &Path, scalar: bool) -> Vec<u32> {
        let prefix = format!("{}.member.", at.key);
        let mut found: Vec<(Option<u32>, &str)> = Vec::new();
        for (k, _) in self.params.with_prefix(&prefix) {
            let rest = &k[prefix.len()..];
            let (digits, tail) = match rest.find('.') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            if scalar != tail.is_empty()
                || digits.is_empty()
                || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                continue;
            }
            let index = (!digits.starts_with('0'))
                .then(|| digits.parse::<u32>().ok())
                .flatten();
            found.push((index, digits));
        }
        found.sort_unstable();
        found.dedup();
        let mut out = Vec::with_capacity(found.len());
        for (index, digits) in found {
            match index {
                Some(i) if i as usize == out.len() + 1 => out.push(i),
                _ => {
                    let message = format!("{digits} is not a valid index ({prefix}{digits})");
                    if !self.malformed.contains(&message) {
                        self.malformed.push(message);
                    }
                }
            }
        }
        out
    }

    fn check_list(
        &mut self,
        at: &Path,
        present: bool,
        count: usize,
        shown: Option<&str>,
        rule: &ListRule,
    ) -> bool {
        if !present {
            if rule.required {
                self.fail(at, None, "Member must not be null");
            }
            return false;
        }
        let before = self.errors.len();
        if count < rule.min {
            self.fail_value(
                at,
                shown,
                &format!(
                    "Member must have length greater than or equal to {}",
                    rule.min
                ),
            );
        }
        if let Some(max) = rule.max {
            if count > max {
                self.fail_value(
                    at,
                    shown,
                    &format!("Member must have length less than or equal to {max}"),
                );
            }
        }
        self.errors.len() == before
    }

    /// A list of strings, `{Name}.member.{N}`, numbered 1, 2, … n (anything else is
    /// `MalformedInput` at [`finish`](Self::finish)). Present if any member is, or if the bare
    /// key is (botocore sends an empty list as `Name=`). Each item is checked against `item`
    /// and labelled `{name}.{N}.member`.
    pub fn str_list(
        &mut self,
        at: impl Into<Path>,
        rule: &ListRule,
        item: &StrRule,
    ) -> Vec<String> {
        let at = at.into();
        let indices = self.indices(&at, true);
        let present = !indices.is_empty() || self.params.contains(&at.key);
        let mut values = Vec::with_capacity(indices.len());
        for (pos, index) in indices.iter().enumerate() {
            let key = format!("{}.member.{index}", at.key);
            if let Some(v) = self.params.get(&key) {
                values.push((pos + 1, v));
            }
        }
        let shown = if item.sensitive {
            None
        } else {
            let mut s = String::from("[");
            for (i, (_, v)) in values.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                s.push_str(v);
            }
            s.push(']');
            Some(s)
        };
        self.check_list(&at, present, values.len(), shown.as_deref(), rule);
        let mut out = Vec::with_capacity(values.len());
        for (pos, v) in values {
            let item_path = Path {
                key: format!("{}.member.{pos}", at.key),
                label: format!("{}.{pos}.member", at.label),
            };
            if self.check_str(&item_path, v, item) {
                out.push(v.to_owned());
            }
        }
        out
    }

    /// A list of structures, `{Name}.member.{N}.{Field}`: one [`Path`] per member, whose
    /// [`member`](Path::member) paths the handler reads with the other getters
    /// (`tags.1.member.key` in messages).
    pub fn struct_list(&mut self, at: impl Into<Path>, rule: &ListRule) -> Vec<Path> {
        let at = at.into();
        let indices = self.indices(&at, false);
        let present = !indices.is_empty() || self.params.contains(&at.key);
        self.check_list(&at, present, indices.len(), None, rule);
        indices
            .iter()
            .enumerate()
            .map(|(pos, index)| Path {
                key: format!("{}.member.{index}", at.key),
                label: format!("{}.{}.member", at.label, pos + 1),
            })
            .collect()
    }

    /// `Ok` if nothing failed; a `MalformedInput` for the first list index that is not valid
    /// (see [`str_list`](Self::str_list)); else one `ValidationError` with every message:
    /// `1 validation error detected: …` or `N validation errors detected: …; …`.
    pub fn finish(self) -> Result<Checked, AwsError> {
        if let Some(first) = self.malformed.first() {
            return Err(AwsError::malformed_input(first.clone()));
        }
        match self.errors.len() {
            0 => Ok(Checked(())),
            n => {
                let mut message = format!(
                    "{n} validation error{} detected: ",
                    if n == 1 { "" } else { "s" }
                );
                for (i, e) in self.errors.iter().enumerate() {
                    if i > 0 {
                        message.push_str("; ");
                    }
                    message.push_str(e);
                }
                Err(AwsError::validation(message))
            }
        }
    }
}

/// Proof that a [`Validator`] finished with every member valid: what reads a [`Required`].
#[derive(Debug)]
pub struct Checked(());

/// A required member's value, read with the [`Checked`] of its validator. Without a value (the
/// member absent or invalid) the validator recorded a failure, so no `Checked` exists for it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a required member is read to be used"]
pub struct Required<T>(Option<T>);

impl<T> Required<T> {
    /// The value made into another (a type the member builds).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Required<U> {
        Required(self.0.map(f))
    }

    /// Both values, when both are there.
    pub fn zip<U>(self, other: Required<U>) -> Required<(T, U)> {
        Required(self.0.zip(other.0))
    }

    /// The value.
    pub fn get(self, checked: &Checked) -> T {
        let _ = checked;
        match self.0 {
            Some(v) => v,
            // A getter that has no value recorded a failure, and finish() answered Err.
            None => unreachable!("a Checked exists only when every required member has a value"),
        }
    }
}

/// Every value of a list of required members (a list's structures' members).
impl<T> FromIterator<Required<T>> for Required<Vec<T>> {
    fn from_iter<I: IntoIterator<Item = Required<T>>>(items: I) -> Self {
        Required(items.into_iter().map(|r| r.0).collect())
    }
}

/// IAM's and STS's message for a request naming one tag key twice (IAM answers it as
/// `InvalidInput`, STS as `InvalidParameterValue`).
pub const DUPLICATE_TAG_KEYS: &str =
    "Duplicate tag keys found. Please note that Tag keys are case insensitive.";

/// Whether `keys` names a key twice, ignoring ASCII case: tag keys of IAM entities and STS
/// sessions are case-insensitive (`k` and `K` are one key).
pub fn has_duplicate_keys<'k>(keys: impl IntoIterator<Item = &'k str>) -> bool {
    let mut seen = std::collections::HashSet::new();
    keys.into_iter()
        .any(|k| !seen.insert(k.to_ascii_lowercase()))
}

pub mod rules;

#[cfg(test)]
mod tests;
