//! Parsed trust policies, kept between requests: every `AssumeRole*` call evaluates its role's
//! trust policy, and parsing the stored JSON document again each time cost as much as the rest
//! of the decision.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use awswire::AwsError;
use iam::{NamedPolicy, PolicyKind};
use twin_state::Role;

use super::issuing::store_failure;

/// Roles whose trust policy is kept; past this the cache starts over (a world has far fewer
/// roles that are assumed often).
const CAPACITY: usize = 4096;

/// The trust policy of each role assumed lately, by unique id. An entry serves only while the
/// role's ARN and stored document are exactly those it was parsed from, so an
/// `UpdateAssumeRolePolicy`, or a role deleted and created again under the same name (a new
/// unique id), is parsed afresh; the role given is the one read from the store (in STS's
/// propagated view), so what the cache answers is always that role's current document.
#[derive(Default)]
pub(crate) struct TrustPolicies {
    by_role_id: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    arn: String,
    document: String,
    policy: NamedPolicy,
}

impl TrustPolicies {
    /// `role`'s trust policy as the resource policy of `sts:AssumeRole*`, named
    /// `{arn} (trust policy)` in decision traces.
    pub(crate) fn policy(&self, role: &Role) -> Result<NamedPolicy, AwsError> {
        let document = &role.assume_role_policy.document;
        {
            let cache = self
                .by_role_id
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(e) = cache.get(&role.role_id) {
                if e.arn == role.arn && e.document == *document {
                    return Ok(e.policy.clone());
                }
            }
        }
        // Parsed outside the lock: concurrent first requests for a role may both parse it.
        let policy = role
            .assume_role_policy
            .to_policy(PolicyKind::Trust)
            .map_err(store_failure)?;
        let policy = NamedPolicy::new(&format!("{} (trust policy)", role.arn), policy);
        let mut cache = self
            .by_role_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CAPACITY && !cache.contains_key(&role.role_id) {
            cache.clear();
        }
        cache.insert(
            role.role_id.clone(),
            Entry {
                arn: role.arn.clone(),
                document: document.clone(),
                policy: policy.clone(),
            },
        );
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(role_id: &str, principal: &str) -> Role {
        Role {
            account: "111111111111".into(),
            name: "r".into(),
            path: "/".into(),
            role_id: role_id.into(),
            arn: "arn:aws:iam::111111111111:role/r".into(),
            created: time::OffsetDateTime::UNIX_EPOCH,
            description: None,
            max_session_duration: 3600,
            assume_role_policy: twin_state::principals::StoredPolicy {
                document: format!(
                    r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"sts:AssumeRole"}}]}}"#
                ),
                unique_ids: Vec::new(),
            },
            tags: Vec::new(),
            permissions_boundary: None,
            inline_policies: Default::default(),
            attached_policies: Vec::new(),
        }
    }

    #[test]
    fn serves_a_parsed_policy_only_while_the_document_is_the_same() {
        let cache = TrustPolicies::default();
        let first = role("AROA1", "arn:aws:iam::222222222222:root");
        let a = cache.policy(&first).unwrap();
        let again = cache.policy(&first).unwrap();
        assert!(std::sync::Arc::ptr_eq(&a.policy, &again.policy));
        assert_eq!(&*a.name, "arn:aws:iam::111111111111:role/r (trust policy)");

        // UpdateAssumeRolePolicy: the same role, another document.
        let updated = role("AROA1", "arn:aws:iam::333333333333:root");
        let b = cache.policy(&updated).unwrap();
        assert!(!std::sync::Arc::ptr_eq(&a.policy, &b.policy));
        assert_ne!(format!("{:?}", a.policy), format!("{:?}", b.policy));

        // Deleted and created again: a new unique id, parsed afresh.
        let recreated = role("AROA2", "arn:aws:iam::333333333333:root");
        let c = cache.policy(&recreated).unwrap();
        assert!(!std::sync::Arc::ptr_eq(&b.policy, &c.policy));
    }
}
