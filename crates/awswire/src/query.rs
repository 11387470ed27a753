//! Query protocol requests (STS, IAM): action and version, and member validation with AWS's
//! `ValidationError` messages.

use crate::{pattern::Pattern, AwsError, Params};

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

/// Constraints of a string member: the model's `min`, `max`, `pattern` and `enum`.
///
/// Lengths count characters (Unicode scalar values).
#[derive(Clone, Copy, Debug)]
pub struct StrRule {
    /// Minimum length.
    pub min: usize,
    /// Maximum length.
    pub max: Option<usize>,
    /// Pattern the whole value must match.
    pub pattern: Option<Pattern>,
    /// The allowed values, for enums.
    pub one_of: Option<&'static [&'static str]>,
    /// Keep the value out of messages (the model's `sensitive` members: tokens, assertions).
    /// Chosen here: such failures read `Value at 'x' failed …`.
    pub sensitive: bool,
}

impl StrRule {
    /// No constraint.
    pub const ANY: StrRule = StrRule {
        min: 0,
        max: None,
        pattern: None,
        one_of: None,
        sensitive: false,
    };

    /// Length bounds, inclusive.
    pub const fn len(min: usize, max: usize) -> StrRule {
        StrRule {
            min,
            max: Some(max),
            ..Self::ANY
        }
    }

    /// A minimum length only.
    pub const fn min_len(min: usize) -> StrRule {
        StrRule { min, ..Self::ANY }
    }

    /// With a pattern.
    pub const fn pattern(self, pattern: Pattern) -> StrRule {
        StrRule {
            pattern: Some(pattern),
            ..self
        }
    }

    /// With an enum.
    pub const fn one_of(self, values: &'static [&'static str]) -> StrRule {
        StrRule {
            one_of: Some(values),
            ..self
        }
    }

    /// Marked sensitive.
    pub const fn sensitive(self) -> StrRule {
        StrRule {
            sensitive: true,
            ..self
        }
    }
}

/// Constraints of an integer member: the model's `min` and `max`, inclusive.
#[derive(Clone, Copy, Debug)]
pub struct IntRule {
    /// Minimum value.
    pub min: Option<i64>,
    /// Maximum value.
    pub max: Option<i64>,
}

impl IntRule {
    /// Inclusive bounds.
    pub const fn range(min: i64, max: i64) -> IntRule {
        IntRule {
            min: Some(min),
            max: Some(max),
        }
    }

    /// No bound.
    pub const ANY: IntRule = IntRule {
        min: None,
        max: None,
    };
}

/// Constraints of a list member: whether it is required and its `min`/`max` length.
#[derive(Clone, Copy, Debug)]
pub struct ListRule {
    /// The member must be present (`Value null … Member must not be null` otherwise).
    pub required: bool,
    /// Minimum number of members.
    pub min: usize,
    /// Maximum number of members.
    pub max: Option<usize>,
}

impl ListRule {
    /// Optional, any length.
    pub const ANY: ListRule = ListRule {
        required: false,
        min: 0,
        max: None,
    };

    /// Optional, at most `max` members.
    pub const fn max(max: usize) -> ListRule {
        ListRule {
            max: Some(max),
            ..Self::ANY
        }
    }

    /// Optional, between `min` and `max` members.
    pub const fn len(min: usize, max: usize) -> ListRule {
        ListRule {
            required: false,
            min,
            max: Some(max),
        }
    }

    /// Required.
    pub const fn required(self) -> ListRule {
        ListRule {
            required: true,
            ..self
        }
    }
}

/// Reads members from [`Params`] and collects every constraint failure, so that one
/// response reports them all as AWS does:
/// `2 validation errors detected: Value null at 'roleArn' failed to satisfy constraint:
/// Member must not be null; Value 'a' at 'roleSessionName' …`.
///
/// Getters always return a value so handlers need no `unwrap`: a missing or invalid
/// required member reads as empty (or 0). Values are only meaningful once
/// [`finish`](Self::finish) has returned `Ok`. Call the getters in the model's member order:
/// that is the order of the messages.
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

    /// A required string member; empty if absent or invalid (and the failure recorded).
    pub fn required_str(&mut self, at: impl Into<Path>, rule: &StrRule) -> String {
        let at = at.into();
        match self.params.get(&at.key) {
            Some(value) => {
                if self.check_str(&at, value, rule) {
                    value.to_owned()
                } else {
                    String::new()
                }
            }
            None => {
                self.fail(&at, None, "Member must not be null");
                String::new()
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

    /// A required integer member; 0 if absent or invalid.
    pub fn required_int(&mut self, at: impl Into<Path>, rule: &IntRule) -> i64 {
        let at = at.into();
        if !self.params.contains(&at.key) {
            self.fail(&at, None, "Member must not be null");
            return 0;
        }
        self.int(at, rule).unwrap_or(0)
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
    pub fn finish(self) -> Result<(), AwsError> {
        if let Some(first) = self.malformed.first() {
            return Err(AwsError::malformed_input(first.clone()));
        }
        match self.errors.len() {
            0 => Ok(()),
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

/// The constraints of the STS and IAM members the twin reads, from the botocore models.
pub mod rules {
    use super::{IntRule, ListRule, StrRule};
    use crate::pattern;

    /// STS `arnType` (RoleArn, PolicyArns.member.N.arn, ProviderArn).
    pub const STS_ARN: StrRule = StrRule::len(20, 2048).pattern(pattern::STS_ARN);
    /// IAM `arnType` (PolicyArn, PermissionsBoundary, PolicySourceArn): no pattern in IAM's model.
    pub const IAM_ARN: StrRule = StrRule::len(20, 2048);
    /// `roleSessionNameType`.
    pub const ROLE_SESSION_NAME: StrRule = StrRule::len(2, 64).pattern(pattern::NAME);
    /// `sourceIdentityType`.
    pub const SOURCE_IDENTITY: StrRule = StrRule::len(2, 64).pattern(pattern::NAME);
    /// `externalIdType`.
    pub const EXTERNAL_ID: StrRule = StrRule::len(2, 1224).pattern(pattern::EXTERNAL_ID);
    /// `serialNumberType` (STS).
    pub const SERIAL_NUMBER: StrRule = StrRule::len(9, 256).pattern(pattern::SERIAL_NUMBER);
    /// `tokenCodeType`.
    pub const TOKEN_CODE: StrRule = StrRule::len(6, 6).pattern(pattern::DIGITS);
    /// `sessionPolicyDocumentType` (AssumeRoleWithWebIdentity, …).
    pub const SESSION_POLICY: StrRule = StrRule::len(1, 2048).pattern(pattern::POLICY_DOCUMENT);
    /// `unrestrictedSessionPolicyDocumentType` (AssumeRole).
    pub const UNRESTRICTED_SESSION_POLICY: StrRule =
        StrRule::min_len(1).pattern(pattern::POLICY_DOCUMENT);
    /// `clientTokenType` (WebIdentityToken): sensitive.
    pub const WEB_IDENTITY_TOKEN: StrRule = StrRule::len(4, 20000).sensitive();
    /// `urlType` (ProviderId).
    pub const PROVIDER_ID: StrRule = StrRule::len(4, 2048);
    /// `contextAssertionType`.
    pub const CONTEXT_ASSERTION: StrRule = StrRule::len(4, 2048);
    /// `tagKeyType`.
    pub const TAG_KEY: StrRule = StrRule::len(1, 128).pattern(pattern::TAG_KEY);
    /// `tagValueType`.
    pub const TAG_VALUE: StrRule = StrRule::len(0, 256).pattern(pattern::TAG_VALUE);
    /// `roleNameType`.
    pub const ROLE_NAME: StrRule = StrRule::len(1, 64).pattern(pattern::ENTITY_NAME);
    /// `policyNameType`.
    pub const POLICY_NAME: StrRule = StrRule::len(1, 128).pattern(pattern::ENTITY_NAME);
    /// `instanceProfileNameType`.
    pub const INSTANCE_PROFILE_NAME: StrRule = StrRule::len(1, 128).pattern(pattern::ENTITY_NAME);
    /// `pathType`.
    pub const PATH: StrRule = StrRule::len(1, 512).pattern(pattern::PATH);
    /// `pathPrefixType`.
    pub const PATH_PREFIX: StrRule = StrRule::len(1, 512).pattern(pattern::PATH_PREFIX);
    /// `policyPathType`.
    pub const POLICY_PATH: StrRule = StrRule::len(1, 512).pattern(pattern::POLICY_PATH);
    /// `policyDocumentType`.
    pub const POLICY_DOCUMENT: StrRule = StrRule::len(1, 131072).pattern(pattern::POLICY_DOCUMENT);
    /// `roleDescriptionType`.
    pub const ROLE_DESCRIPTION: StrRule = StrRule::len(0, 1000).pattern(pattern::DESCRIPTION);
    /// `policyDescriptionType`.
    pub const POLICY_DESCRIPTION: StrRule = StrRule::len(0, 1000);
    /// `markerType`.
    pub const MARKER: StrRule = StrRule::len(1, 320).pattern(pattern::MARKER);
    /// `OpenIDConnectProviderUrlType`.
    pub const OIDC_URL: StrRule = StrRule::len(1, 255);
    /// `clientIDType`.
    pub const CLIENT_ID: StrRule = StrRule::len(1, 255);
    /// `thumbprintType`.
    pub const THUMBPRINT: StrRule = StrRule::len(40, 40);
    /// `ActionNameType` (SimulatePrincipalPolicy ActionNames).
    pub const ACTION_NAME: StrRule = StrRule::len(3, 128);
    /// `ResourceNameType`.
    pub const RESOURCE_NAME: StrRule = StrRule::len(1, 2048);
    /// `ContextKeyNameType`.
    pub const CONTEXT_KEY_NAME: StrRule = StrRule::len(5, 256);
    /// `ContextKeyTypeEnum`.
    pub const CONTEXT_KEY_TYPE: StrRule = StrRule::ANY.one_of(&[
        "string",
        "stringList",
        "numeric",
        "numericList",
        "boolean",
        "booleanList",
        "ip",
        "ipList",
        "binary",
        "binaryList",
        "date",
        "dateList",
    ]);

    /// `roleDurationSecondsType` (AssumeRole*).
    pub const ROLE_DURATION_SECONDS: IntRule = IntRule::range(900, 43200);
    /// `durationSecondsType` (GetSessionToken, GetFederationToken).
    pub const DURATION_SECONDS: IntRule = IntRule::range(900, 129600);
    /// `roleMaxSessionDurationType`.
    pub const MAX_SESSION_DURATION: IntRule = IntRule::range(3600, 43200);
    /// `maxItemsType`.
    pub const MAX_ITEMS: IntRule = IntRule::range(1, 1000);

    /// `tagListType` and `tagKeyListType`: at most 50.
    pub const TAG_LIST: ListRule = ListRule::max(50);
    /// `ProvidedContextsListType`: 1 to 5.
    pub const PROVIDED_CONTEXTS: ListRule = ListRule::len(1, 5);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(s: &str) -> Params {
        match Params::parse(s.as_bytes()) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    const OPS: &[&str] = &["AssumeRole", "GetCallerIdentity"];

    #[test]
    fn action_and_version() {
        let ok = QueryRequest::parse(&STS, "", Some(b"Action=AssumeRole&Version=2011-06-15"), OPS)
            .unwrap();
        assert_eq!(
            (ok.action(), ok.version(), ok.service().name),
            ("AssumeRole", "2011-06-15", "sts")
        );

        let e = QueryRequest::parse(&STS, "Version=2011-06-15", None, OPS).unwrap_err();
        assert_eq!(
            (&*e.code, e.message.as_str(), e.status),
            ("MissingAction", "Missing Action", 400)
        );

        let e = QueryRequest::parse(&STS, "Action=AssumeRole", None, OPS).unwrap_err();
        assert_eq!(
            (&*e.code, e.message.as_str(), e.status),
            (
                "InvalidAction",
                "Could not find operation AssumeRole for version NO_VERSION_SPECIFIED",
                400
            )
        );
        let e = QueryRequest::parse(&STS, "Action=AssumeRole&Version=2010-05-08", None, OPS)
            .unwrap_err();
        assert_eq!(
            e.message,
            "Could not find operation AssumeRole for version 2010-05-08"
        );
        let e = QueryRequest::parse(&STS, "Action=assumerole&Version=2011-06-15", None, OPS)
            .unwrap_err();
        assert_eq!(
            e.message,
            "Could not find operation assumerole for version 2011-06-15"
        );

        // Query string first, then body.
        let r = QueryRequest::parse(
            &STS,
            "Action=GetCallerIdentity&Version=2011-06-15",
            Some(b"Action=AssumeRole&X=1"),
            OPS,
        )
        .unwrap();
        assert_eq!(r.action(), "GetCallerIdentity");
        assert_eq!(r.params().get("X"), Some("1"));
    }

    #[test]
    fn required_members_aggregate() {
        let p = params("Action=AssumeRole");
        let mut v = Validator::new(&p);
        assert_eq!(v.required_str("RoleArn", &rules::STS_ARN), "");
        v.required_str("RoleSessionName", &rules::ROLE_SESSION_NAME);
        let e = v.finish().unwrap_err();
        assert_eq!((&*e.code, e.status), ("ValidationError", 400));
        assert_eq!(
            e.message,
            "2 validation errors detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null; \
             Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn one_error_is_singular_and_lengths_and_patterns_each_count() {
        let p = params("RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr&RoleSessionName=a");
        let mut v = Validator::new(&p);
        assert_eq!(
            v.required_str("RoleArn", &rules::STS_ARN),
            "arn:aws:iam::123456789012:role/r"
        );
        v.required_str("RoleSessionName", &rules::ROLE_SESSION_NAME);
        assert_eq!(
            v.finish().unwrap_err().message,
            "1 validation error detected: Value 'a' at 'roleSessionName' failed to satisfy constraint: \
             Member must have length greater than or equal to 2"
        );

        let p = params("RoleSessionName=a+b&ExternalId=x");
        let mut v = Validator::new(&p);
        assert_eq!(v.str("RoleSessionName", &rules::ROLE_SESSION_NAME), None);
        assert_eq!(v.str("ExternalId", &rules::EXTERNAL_ID), None);
        assert_eq!(v.str("Missing", &rules::EXTERNAL_ID), None);
        assert_eq!(
            v.finish().unwrap_err().message,
            "2 validation errors detected: Value 'a b' at 'roleSessionName' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: [\\w+=,.@-]*; \
             Value 'x' at 'externalId' failed to satisfy constraint: Member must have length greater than or equal to 2"
        );

        let long = "x".repeat(65);
        let p: Params = [("RoleSessionName", format!("{long} "))]
            .into_iter()
            .collect();
        let mut v = Validator::new(&p);
        v.str("RoleSessionName", &rules::ROLE_SESSION_NAME);
        let msg = v.finish().unwrap_err().message;
        assert!(msg.starts_with("2 validation errors detected: "), "{msg}");
        assert!(
            msg.contains("Member must have length less than or equal to 64; "),
            "{msg}"
        );
    }

    #[test]
    fn sensitive_values_stay_out_of_messages() {
        let p = params("WebIdentityToken=abc");
        let mut v = Validator::new(&p);
        v.required_str("WebIdentityToken", &rules::WEB_IDENTITY_TOKEN);
        let msg = v.finish().unwrap_err().message;
        assert_eq!(
            msg,
            "1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: \
             Member must have length greater than or equal to 4"
        );
    }

    #[test]
    fn integers_and_booleans() {
        let p = params("DurationSeconds=3600&Low=10&High=50000&Bad=1h&Huge=99999999999999999999999&B1=TRUE&B2=false&B3=yes&Spaced=%20900&Trailing=900%20");
        let mut v = Validator::new(&p);
        assert_eq!(
            v.int("DurationSeconds", &rules::ROLE_DURATION_SECONDS),
            Some(3600)
        );
        assert_eq!(v.int("Absent", &rules::ROLE_DURATION_SECONDS), None);
        assert_eq!(v.bool("B1"), Some(true));
        assert_eq!(v.bool("B2"), Some(false));
        assert_eq!(v.finish(), Ok(()));

        let mut v = Validator::new(&p);
        assert_eq!(v.int("Low", &rules::ROLE_DURATION_SECONDS), None);
        v.int("High", &rules::ROLE_DURATION_SECONDS);
        v.int("Bad", &IntRule::ANY);
        v.int("Huge", &IntRule::ANY);
        v.bool("B3");
        assert_eq!(v.required_int("MaxItems", &rules::MAX_ITEMS), 0);
        assert_eq!(v.int("Spaced", &rules::ROLE_DURATION_SECONDS), None);
        assert_eq!(v.int("Trailing", &rules::ROLE_DURATION_SECONDS), None);
        let msg = v.finish().unwrap_err().message;
        assert_eq!(
            msg,
            "8 validation errors detected: \
             Value '10' at 'low' failed to satisfy constraint: Member must have value greater than or equal to 900; \
             Value '50000' at 'high' failed to satisfy constraint: Member must have value less than or equal to 43200; \
             Value '1h' at 'bad' failed to satisfy constraint: Member must be a number; \
             Value '99999999999999999999999' at 'huge' failed to satisfy constraint: Member must be a number; \
             Value 'yes' at 'b3' failed to satisfy constraint: Member must be a boolean; \
             Value null at 'maxItems' failed to satisfy constraint: Member must not be null; \
             Value ' 900' at 'spaced' failed to satisfy constraint: Member must be a number; \
             Value '900 ' at 'trailing' failed to satisfy constraint: Member must be a number"
        );
    }

    #[test]
    fn duplicate_tag_keys_ignore_case() {
        assert!(!has_duplicate_keys(["a", "b", "ab"]));
        assert!(has_duplicate_keys(["k", "k"]));
        assert!(has_duplicate_keys(["team", "x", "TEAM"]));
        assert!(!has_duplicate_keys([]));
    }

    #[test]
    fn string_lists_with_gaps_order_and_limits() {
        let p = params(
            "ClientIDList.member.3=three&ClientIDList.member.2=two&ClientIDList.member.1=one\
             &ClientIDList.member.x=junk&ClientIDList.member.4.Sub=junk",
        );
        let mut v = Validator::new(&p);
        assert_eq!(
            v.str_list("ClientIDList", &ListRule::ANY, &rules::CLIENT_ID),
            ["one", "two", "three"]
        );
        assert_eq!(
            v.str_list("ThumbprintList", &ListRule::ANY, &rules::THUMBPRINT),
            Vec::<String>::new()
        );
        assert_eq!(v.finish(), Ok(()));

        // Indexes other than 1..=n: zero, zero-padded, a gap, one past u32.
        for (query, bad) in [
            ("L.member.0=a", "0 is not a valid index (L.member.0)"),
            (
                "L.member.1=a&L.member.01=b",
                "01 is not a valid index (L.member.01)",
            ),
            (
                "L.member.1=a&L.member.3=c",
                "3 is not a valid index (L.member.3)",
            ),
            (
                "L.member.1=a&L.member.99999999999999=c",
                "99999999999999 is not a valid index (L.member.99999999999999)",
            ),
        ] {
            let p = params(query);
            let mut v = Validator::new(&p);
            v.str_list("L", &ListRule::ANY, &StrRule::ANY);
            // A constraint failure elsewhere does not hide the malformed list.
            v.required_str("Missing", &StrRule::ANY);
            let e = v.finish().unwrap_err();
            assert_eq!(
                (e.code.as_ref(), e.status),
                ("MalformedInput", 400),
                "{query}"
            );
            assert_eq!(e.message, bad, "{query}");
        }
        let p = params("Tags.member.0.Key=k&Tags.member.0.Value=v");
        let mut v = Validator::new(&p);
        assert!(v.struct_list("Tags", &rules::TAG_LIST).is_empty());
        assert_eq!(
            v.finish().unwrap_err().message,
            "0 is not a valid index (Tags.member.0)"
        );

        // Empty list as botocore sends it, required list missing, too many members, bad item.
        let p = params("TransitiveTagKeys=&Tags.member.1.Key=a&TransitiveTagKeys2.member.1=a&TransitiveTagKeys2.member.2=b*");
        let mut v = Validator::new(&p);
        assert!(v
            .str_list("TransitiveTagKeys", &rules::TAG_LIST, &rules::TAG_KEY)
            .is_empty());
        assert_eq!(v.error_count(), 0);
        v.str_list(
            "ActionNames",
            &ListRule::ANY.required(),
            &rules::ACTION_NAME,
        );
        v.str_list("TransitiveTagKeys2", &ListRule::max(1), &rules::TAG_KEY);
        let msg = v.finish().unwrap_err().message;
        assert_eq!(
            msg,
            "3 validation errors detected: \
             Value null at 'actionNames' failed to satisfy constraint: Member must not be null; \
             Value '[a, b*]' at 'transitiveTagKeys2' failed to satisfy constraint: Member must have length less than or equal to 1; \
             Value 'b*' at 'transitiveTagKeys2.2.member' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+"
        );
    }

    #[test]
    fn structure_lists_and_nesting() {
        let p = params(
            "Tags.member.1.Key=team&Tags.member.1.Value=a&Tags.member.2.Key=bad*key&Tags.member.2.Value=b\
             &PolicyArns.member.1.arn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2FReadOnlyAccess\
             &ContextEntries.member.1.ContextKeyName=aws%3AUsername&ContextEntries.member.1.ContextKeyType=string\
             &ContextEntries.member.1.ContextKeyValues.member.1=alice&ContextEntries.member.1.ContextKeyValues.member.2=bob\
             &ContextEntries.member.2.ContextKeyName=aws%3ASourceIp&ContextEntries.member.2.ContextKeyType=ipv9",
        );
        let mut v = Validator::new(&p);
        let tags: Vec<(String, String)> = v
            .struct_list("Tags", &rules::TAG_LIST)
            .iter()
            .map(|t| {
                (
                    v.required_str(t.member("Key"), &rules::TAG_KEY),
                    v.required_str(t.member("Value"), &rules::TAG_VALUE),
                )
            })
            .collect();
        assert_eq!(tags[0], ("team".to_owned(), "a".to_owned()));
        let arns: Vec<String> = v
            .struct_list("PolicyArns", &ListRule::ANY)
            .iter()
            .map(|m| v.required_str(m.member("arn"), &rules::STS_ARN))
            .collect();
        assert_eq!(arns, ["arn:aws:iam::aws:policy/ReadOnlyAccess"]);
        let entries = v.struct_list("ContextEntries", &ListRule::ANY);
        let mut values = Vec::new();
        for e in &entries {
            v.str(e.member("ContextKeyName"), &rules::CONTEXT_KEY_NAME);
            v.str(e.member("ContextKeyType"), &rules::CONTEXT_KEY_TYPE);
            values.push(v.str_list(e.member("ContextKeyValues"), &ListRule::ANY, &StrRule::ANY));
        }
        assert_eq!(values, [vec!["alice".to_owned(), "bob".to_owned()], vec![]]);
        let msg = v.finish().unwrap_err().message;
        assert_eq!(
            msg,
            "2 validation errors detected: \
             Value 'bad*key' at 'tags.2.member.key' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+; \
             Value 'ipv9' at 'contextEntries.2.member.contextKeyType' failed to satisfy constraint: \
             Member must satisfy enum value set: [string, stringList, numeric, numericList, boolean, booleanList, ip, ipList, binary, binaryList, date, dateList]"
        );
    }

    #[test]
    fn too_many_structures_and_required_structure_list() {
        let body: String = (1..=51)
            .map(|i| format!("Tags.member.{i}.Key=k{i}&Tags.member.{i}.Value=v&"))
            .collect();
        let p = params(&body);
        let mut v = Validator::new(&p);
        assert_eq!(v.struct_list("Tags", &rules::TAG_LIST).len(), 51);
        v.struct_list("Other", &ListRule::ANY.required());
        assert_eq!(
            v.finish().unwrap_err().message,
            "2 validation errors detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50; \
             Value null at 'other' failed to satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn labels_lower_the_first_letter_only() {
        assert_eq!(Path::new("ClientIDList").label(), "clientIDList");
        assert_eq!(Path::new("RoleArn").member("X").label(), "roleArn.x");
        assert_eq!(Path::new("").label(), "");
    }
}
