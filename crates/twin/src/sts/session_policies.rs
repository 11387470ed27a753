//! Session policies as an `AssumeRole*` request passes them, and `PackedPolicySize`, the share
//! of STS's packed limit they and the session tags take.

use awswire::{rules, AwsError, Required, Validator};
use iam::PolicyKind;
use twin_state::StateError;

use super::issuing::store_failure;
use super::session_tags::SessionTags;
use super::{Inner, StsConfig};

/// Session policies as passed: the inline document and managed policy ARNs.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionPolicies {
    pub(crate) inline: Option<String>,
    pub(crate) arns: Vec<String>,
}

impl SessionPolicies {
    /// Reads `PolicyArns` then `Policy`, in the model's member order.
    pub(crate) fn read(
        v: &mut Validator<'_>,
        policy_rule: &awswire::StrRule,
    ) -> Required<SessionPolicies> {
        let arns: Required<Vec<String>> = v
            .struct_list("PolicyArns", &awswire::ListRule::ANY)
            .iter()
            .map(|m| v.required_str(m.member("arn"), &rules::STS_ARN))
            .collect();
        let inline = v.str("Policy", policy_rule);
        arns.map(|arns| SessionPolicies { inline, arns })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.inline.is_none() && self.arns.is_empty()
    }

    /// Checks the inline policy (IAM's grammar, STS's 2 048-character quota) and that each
    /// managed policy exists in the role's account.
    pub(crate) fn check(
        &self,
        inner: &Inner,
        role_account: &str,
        config: &StsConfig,
    ) -> Result<(), AwsError> {
        if self.arns.len() > config.max_session_policy_arns {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to {}",
                config.max_session_policy_arns
            )));
        }
        if let Some(doc) = &self.inline {
            let size = iam::policy_size(doc);
            if size > 2048 {
                return Err(AwsError::packed_policy_too_large(format!(
                    "Packed policy consumes {}% of allotted space, please use smaller policy.",
                    percent(size)
                )));
            }
            iam::Policy::parse(doc, PolicyKind::Identity)
                .map_err(|e| AwsError::malformed_policy_document(e.to_string()))?;
        }
        for arn in &self.arns {
            let in_account = arn
                .parse::<iam::Arn>()
                .is_ok_and(|a| a.service == "iam" && a.account == role_account);
            let exists = in_account
                && match inner.store.propagated().get_policy(arn) {
                    Ok(_) => true,
                    Err(StateError::NoSuchEntity(_)) => false,
                    Err(e) => return Err(store_failure(e)),
                };
            if !exists {
                return Err(AwsError::malformed_policy_document(format!(
                    "Policy {arn} does not exist or is not attachable."
                )));
            }
        }
        Ok(())
    }
}

/// `PackedPolicySize`: the share of STS's packed limit that the session policies and session
/// tags use, in percent. STS compresses them in a binary format it does not document; the twin
/// counts characters (policy text without white space, ARNs, tag keys and values) against
/// 2 048, which is an upper bound of the real figure for typical documents.
pub(crate) fn packed_policy_size(policies: &SessionPolicies, tags: &SessionTags) -> Option<u32> {
    if policies.is_empty() && !tags.any() && tags.inherited.is_empty() {
        return None;
    }
    let mut chars = policies.inline.as_deref().map_or(0, iam::policy_size);
    chars += policies.arns.iter().map(String::len).sum::<usize>();
    chars += tags
        .passed
        .iter()
        .chain(tags.inherited.iter())
        .map(|t| t.key.chars().count() + t.value.chars().count())
        .sum::<usize>();
    Some(percent(chars))
}

fn percent(chars: usize) -> u32 {
    u32::try_from(chars.saturating_mul(100).div_ceil(2048)).unwrap_or(u32::MAX)
}
