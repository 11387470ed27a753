//! IAM's XML shapes of roles, policies, versions and tags.

use awswire::{iam_policy_encode, Element};
use twin_state::{ManagedPolicy, PolicyVersion, Role, Tag};

/// The `Role` structure. `trust` is the trust policy as rendered for display.
pub(crate) fn role(e: &mut Element<'_>, role: &Role, trust: &str, with_tags: bool) {
    e.text("Path", &role.path)
        .text("RoleName", &role.name)
        .text("RoleId", &role.role_id)
        .text("Arn", &role.arn)
        .timestamp("CreateDate", role.created)
        .text("AssumeRolePolicyDocument", &iam_policy_encode(trust))
        .opt_text("Description", role.description.as_deref())
        .display("MaxSessionDuration", role.max_session_duration);
    if let Some(b) = &role.permissions_boundary {
        e.child("PermissionsBoundary", |p| {
            p.text("PermissionsBoundaryType", "PermissionsBoundaryPolicy")
                .text("PermissionsBoundaryArn", b);
        });
    }
    if with_tags && !role.tags.is_empty() {
        tags(e, &role.tags);
    }
    e.child("RoleLastUsed", |_| {});
}

/// `Tags` as a member list of `Key`/`Value`.
pub(crate) fn tags(e: &mut Element<'_>, tags: &[Tag]) {
    e.list("Tags", tags, |m, t| {
        m.text("Key", &t.key).text("Value", &t.value);
    });
}

/// The `Policy` structure.
pub(crate) fn policy(e: &mut Element<'_>, p: &ManagedPolicy) {
    e.text("PolicyName", &p.name)
        .text("PolicyId", &p.policy_id)
        .text("Arn", &p.arn)
        .text("Path", &p.path)
        .text("DefaultVersionId", &p.default_version_id)
        .display("AttachmentCount", p.attachment_count)
        .display(
            "PermissionsBoundaryUsageCount",
            p.permissions_boundary_usage_count,
        )
        .bool("IsAttachable", true)
        .opt_text("Description", p.description.as_deref())
        .timestamp("CreateDate", p.created)
        .timestamp("UpdateDate", p.updated);
}

/// The `Policy` structure with its tags, as `CreatePolicy` and `GetPolicy` return it
/// (`ListPolicies` leaves tags out).
pub(crate) fn policy_with_tags(e: &mut Element<'_>, p: &ManagedPolicy) {
    policy(e, p);
    if !p.tags.is_empty() {
        tags(e, &p.tags);
    }
}

/// The `PolicyVersion` structure, with the document when `with_document`.
pub(crate) fn version(e: &mut Element<'_>, v: &PolicyVersion, with_document: bool) {
    if with_document {
        e.text("Document", &iam_policy_encode(&v.document));
    }
    e.text("VersionId", &v.version_id)
        .bool("IsDefaultVersion", v.is_default)
        .timestamp("CreateDate", v.created);
}

/// `IsTruncated` and, when truncated, `Marker`.
pub(crate) fn page_end<T>(e: &mut Element<'_>, page: &twin_state::Page<T>) {
    e.bool("IsTruncated", page.is_truncated);
    if page.is_truncated {
        e.opt_text("Marker", page.marker.as_deref());
    }
}
