//! [`AwsError`]: one service error, rendered by the protocol modules.

use std::borrow::Cow;

/// An error as an AWS service answers it: a code, a message, an HTTP status and whose fault it
/// is (`<Type>Sender</Type>` or `<Type>Receiver</Type>` in Query XML).
///
/// The same value renders as Query XML ([`AwsError::to_query_response`]) or as rest-json
/// ([`AwsError::to_rest_json_response`]); the constructors below carry the status each code has
/// on the wire.
///
/// # Codes and statuses
///
/// Query protocol (STS, IAM):
///
/// | constructor | code | status | fault | where the status comes from |
/// | --- | --- | --- | --- | --- |
/// | [`validation`](Self::validation) | `ValidationError` | 400 | Sender | AWS common errors; what STS and IAM answer for a constraint failure |
/// | [`access_denied`](Self::access_denied) | `AccessDenied` | 403 | Sender | what STS (`AssumeRole*`) and IAM answer when the caller is not authorized (the common-errors page's `AccessDeniedException` 400 is the JSON protocols' name) |
/// | [`no_such_entity`](Self::no_such_entity) | `NoSuchEntity` | 404 | Sender | botocore IAM model, `NoSuchEntityException` |
/// | [`entity_already_exists`](Self::entity_already_exists) | `EntityAlreadyExists` | 409 | Sender | botocore IAM model |
/// | [`limit_exceeded`](Self::limit_exceeded) | `LimitExceeded` | 409 | Sender | botocore IAM model |
/// | [`malformed_policy_document`](Self::malformed_policy_document) | `MalformedPolicyDocument` | 400 | Sender | botocore IAM and STS models |
/// | [`invalid_input`](Self::invalid_input) | `InvalidInput` | 400 | Sender | botocore IAM model |
/// | [`delete_conflict`](Self::delete_conflict) | `DeleteConflict` | 409 | Sender | botocore IAM model |
/// | [`concurrent_modification`](Self::concurrent_modification) | `ConcurrentModification` | 409 | Sender | botocore IAM model |
/// | [`unmodifiable_entity`](Self::unmodifiable_entity) | `UnmodifiableEntity` | 400 | Sender | botocore IAM model |
/// | [`service_failure`](Self::service_failure) | `ServiceFailure` | 500 | Receiver | botocore IAM model |
/// | [`invalid_action`](Self::invalid_action) | `InvalidAction` | 400 | Sender | AWS common errors |
/// | [`missing_action`](Self::missing_action) | `MissingAction` | 400 | Sender | AWS common errors |
/// | [`invalid_parameter_value`](Self::invalid_parameter_value) | `InvalidParameterValue` | 400 | Sender | AWS common errors |
/// | [`malformed_query_string`](Self::malformed_query_string) | `MalformedQueryString` | 404 | Sender | AWS common errors (404 is what that page documents) |
/// | [`malformed_input`](Self::malformed_input) | `MalformedInput` | 400 | Sender | what Coral's Query services answer for a list index that is not valid (`0 is not a valid index`, seen from SQS) |
/// | [`internal_failure`](Self::internal_failure) | `InternalFailure` | 500 | Receiver | AWS common errors |
/// | [`service_unavailable`](Self::service_unavailable) | `ServiceUnavailable` | 503 | Receiver | AWS common errors |
/// | [`throttling`](Self::throttling) | `Throttling` | 400 | Sender | what STS and IAM send; botocore's `_retry.json` retries exactly `Throttling` with 400 |
/// | [`expired_token`](Self::expired_token) | `ExpiredTokenException` | 400 | Sender | botocore STS model |
/// | [`invalid_identity_token`](Self::invalid_identity_token) | `InvalidIdentityToken` | 400 | Sender | botocore STS model |
/// | [`idp_rejected_claim`](Self::idp_rejected_claim) | `IDPRejectedClaim` | 403 | Sender | botocore STS model |
/// | [`idp_communication_error`](Self::idp_communication_error) | `IDPCommunicationError` | 400 | Sender | botocore STS model (retried by botocore) |
/// | [`packed_policy_too_large`](Self::packed_policy_too_large) | `PackedPolicyTooLarge` | 400 | Sender | botocore STS model |
/// | [`region_disabled`](Self::region_disabled) | `RegionDisabledException` | 403 | Sender | botocore STS model |
///
/// rest-json (EKS, EKS Auth; the code travels in `x-amzn-ErrorType`):
///
/// | constructor | code | status | where the status comes from |
/// | --- | --- | --- | --- |
/// | [`resource_not_found`](Self::resource_not_found) | `ResourceNotFoundException` | 404 | botocore EKS and EKS Auth models |
/// | [`invalid_parameter_exception`](Self::invalid_parameter_exception) | `InvalidParameterException` | 400 | botocore EKS and EKS Auth models |
/// | [`invalid_request_exception`](Self::invalid_request_exception) | `InvalidRequestException` | 400 | botocore EKS and EKS Auth models |
/// | [`resource_in_use`](Self::resource_in_use) | `ResourceInUseException` | 409 | botocore EKS model |
/// | [`access_denied_exception`](Self::access_denied_exception) | `AccessDeniedException` | given | EKS models 403, EKS Auth models 400: the caller passes its service's |
/// | [`invalid_token_exception`](Self::invalid_token_exception) | `InvalidTokenException` | 400 | botocore EKS Auth model |
/// | [`expired_token_exception`](Self::expired_token_exception) | `ExpiredTokenException` | 400 | botocore EKS Auth model |
/// | [`server_exception`](Self::server_exception) | `ServerException` | 500 | botocore EKS model (EKS Auth's is `InternalServerException` 500: use [`new`](Self::new)) |
/// | [`throttling_exception`](Self::throttling_exception) | `ThrottlingException` | 429 | botocore EKS and EKS Auth models |
/// | [`service_unavailable_exception`](Self::service_unavailable_exception) | `ServiceUnavailableException` | 503 | botocore EKS and EKS Auth models |
///
/// Any other code: [`AwsError::new`], where the fault follows the status (5xx is the
/// receiver's).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code} ({status}): {message}")]
pub struct AwsError {
    /// The error code as it goes on the wire (`NoSuchEntity`, `ResourceNotFoundException`).
    pub code: Cow<'static, str>,
    /// The human-readable message.
    pub message: String,
    /// The HTTP status.
    pub status: u16,
    /// `true` when the caller is at fault (`<Type>Sender</Type>`), `false` for the service's own
    /// failures (`Receiver`).
    pub sender_fault: bool,
}

macro_rules! ctor {
    ($(#[$doc:meta] $name:ident => $code:literal, $status:literal;)*) => {
        $(
            #[$doc]
            pub fn $name(message: impl Into<String>) -> Self {
                Self::new($code, message, $status)
            }
        )*
    };
}

impl AwsError {
    /// An error with any code; the fault is the sender's for statuses below 500.
    pub fn new(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
        status: u16,
    ) -> Self {
        AwsError {
            code: code.into(),
            message: message.into(),
            status,
            sender_fault: status < 500,
        }
    }

    /// The `<Type>` of a Query error: `Sender` or `Receiver`.
    pub fn fault_type(&self) -> &'static str {
        if self.sender_fault {
            "Sender"
        } else {
            "Receiver"
        }
    }

    /// `InvalidAction` 400 with AWS's wording for an operation the service does not have at
    /// the requested version: `Could not find operation {action} for version {version}`.
    /// A request without `Version` passes `NO_VERSION_SPECIFIED`, as STS says it.
    pub fn unknown_operation(action: &str, version: &str) -> Self {
        Self::invalid_action(format!(
            "Could not find operation {action} for version {version}"
        ))
    }

    /// `AccessDeniedException` (rest-json) with the status of the caller's service: EKS's
    /// model says 403, EKS Auth's says 400.
    pub fn access_denied_exception(message: impl Into<String>, status: u16) -> Self {
        Self::new("AccessDeniedException", message, status)
    }

    ctor! {
        /// `ValidationError` 400.
        validation => "ValidationError", 400;
        /// `AccessDenied` 403 (STS and IAM).
        access_denied => "AccessDenied", 403;
        /// `NoSuchEntity` 404 (IAM).
        no_such_entity => "NoSuchEntity", 404;
        /// `EntityAlreadyExists` 409 (IAM).
        entity_already_exists => "EntityAlreadyExists", 409;
        /// `LimitExceeded` 409 (IAM).
        limit_exceeded => "LimitExceeded", 409;
        /// `MalformedPolicyDocument` 400 (IAM, STS).
        malformed_policy_document => "MalformedPolicyDocument", 400;
        /// `InvalidInput` 400 (IAM).
        invalid_input => "InvalidInput", 400;
        /// `DeleteConflict` 409 (IAM).
        delete_conflict => "DeleteConflict", 409;
        /// `ConcurrentModification` 409 (IAM).
        concurrent_modification => "ConcurrentModification", 409;
        /// `UnmodifiableEntity` 400 (IAM).
        unmodifiable_entity => "UnmodifiableEntity", 400;
        /// `ServiceFailure` 500 (IAM).
        service_failure => "ServiceFailure", 500;
        /// `InvalidAction` 400.
        invalid_action => "InvalidAction", 400;
        /// `MissingAction` 400.
        missing_action => "MissingAction", 400;
        /// `InvalidParameterValue` 400.
        invalid_parameter_value => "InvalidParameterValue", 400;
        /// `MalformedQueryString` 404, as AWS's common-errors page documents it.
        malformed_query_string => "MalformedQueryString", 404;
        /// `MalformedInput` 400: a Query parameter that cannot be read as the model's shape.
        malformed_input => "MalformedInput", 400;
        /// `InternalFailure` 500.
        internal_failure => "InternalFailure", 500;
        /// `ServiceUnavailable` 503.
        service_unavailable => "ServiceUnavailable", 503;
        /// `Throttling` 400 (`Rate exceeded` is what STS and IAM say).
        throttling => "Throttling", 400;
        /// `ExpiredTokenException` 400 (STS).
        expired_token => "ExpiredTokenException", 400;
        /// `InvalidIdentityToken` 400 (STS).
        invalid_identity_token => "InvalidIdentityToken", 400;
        /// `IDPRejectedClaim` 403 (STS).
        idp_rejected_claim => "IDPRejectedClaim", 403;
        /// `IDPCommunicationError` 400 (STS).
        idp_communication_error => "IDPCommunicationError", 400;
        /// `PackedPolicyTooLarge` 400 (STS).
        packed_policy_too_large => "PackedPolicyTooLarge", 400;
        /// `RegionDisabledException` 403 (STS).
        region_disabled => "RegionDisabledException", 403;
        /// `ResourceNotFoundException` 404 (rest-json).
        resource_not_found => "ResourceNotFoundException", 404;
        /// `InvalidParameterException` 400 (rest-json).
        invalid_parameter_exception => "InvalidParameterException", 400;
        /// `InvalidRequestException` 400 (rest-json).
        invalid_request_exception => "InvalidRequestException", 400;
        /// `ResourceInUseException` 409 (EKS).
        resource_in_use => "ResourceInUseException", 409;
        /// `InvalidTokenException` 400 (EKS Auth).
        invalid_token_exception => "InvalidTokenException", 400;
        /// `ExpiredTokenException` 400 (EKS Auth).
        expired_token_exception => "ExpiredTokenException", 400;
        /// `ServerException` 500 (EKS).
        server_exception => "ServerException", 500;
        /// `ThrottlingException` 429 (rest-json).
        throttling_exception => "ThrottlingException", 429;
        /// `ServiceUnavailableException` 503 (rest-json).
        service_unavailable_exception => "ServiceUnavailableException", 503;
    }
}
