//! The constraints of the STS and IAM members the twin reads, from the botocore models.

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
