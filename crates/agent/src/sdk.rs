//! [`Upstream`] through the AWS SDK for Rust: `aws-sdk-sts` for the role assumptions and
//! `aws-sdk-eksauth` for EKS Auth, over one HTTP client that speaks TLS (rustls on aws-lc) to
//! AWS and plain HTTP to the twin, with the endpoint override and timeouts the agent is given.

use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::types::Tag;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

use crate::credentials::{account_of_arn, Credentials};
use crate::upstream::{
    AssumeRoleRequest, BoxFuture, Operation, PodIdentityRequest, Upstream, UpstreamError,
    WebIdentityRequest, CONNECTION_FAILED, TIMEOUT,
};

/// Where and how the agent reaches AWS.
#[derive(Debug, Clone)]
pub struct SdkSettings {
    /// The region of STS and EKS Auth.
    pub region: Option<String>,
    /// One endpoint for STS and EKS Auth (the twin serves both); else the SDK's own resolution,
    /// which honours `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_STS`/`_EKS_AUTH`.
    pub endpoint_url: Option<String>,
    /// How long one upstream call may take, connection included.
    pub call_timeout: Duration,
    /// How long establishing a connection may take.
    pub connect_timeout: Duration,
    /// The node's credentials for EKS Auth, instead of the default chain's (`rolechain up`
    /// runs its agent with the cluster account's keys).
    pub node_credentials: Option<aws_credential_types::Credentials>,
}

impl Default for SdkSettings {
    fn default() -> Self {
        SdkSettings {
            region: None,
            endpoint_url: None,
            call_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            node_credentials: None,
        }
    }
}

/// The real upstream.
#[derive(Debug, Clone)]
pub struct SdkUpstream {
    sts: aws_sdk_sts::Client,
    eks_auth: aws_sdk_eksauth::Client,
}

impl SdkUpstream {
    /// Clients built from the default AWS configuration chain (environment, profiles, the
    /// instance's role) with `settings` applied. The node's credentials sign only EKS Auth
    /// calls; `AssumeRoleWithWebIdentity` is sent unsigned and each `AssumeRole` is signed with
    /// the previous hop's credentials.
    pub async fn new(settings: &SdkSettings) -> SdkUpstream {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(settings.connect_timeout)
                    .operation_attempt_timeout(settings.call_timeout)
                    .operation_timeout(settings.call_timeout)
                    .build(),
            );
        if let Some(region) = &settings.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(endpoint) = &settings.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(credentials) = &settings.node_credentials {
            loader = loader.credentials_provider(credentials.clone());
        }
        let shared = loader.load().await;
        // Retries are the agent's: its cache backs off and keeps serving what it has, which
        // the SDK's retry loop cannot know about.
        let mut sts = aws_sdk_sts::config::Builder::from(&shared);
        sts.set_credentials_provider(None);
        let sts = sts.build();
        let eks_auth = aws_sdk_eksauth::config::Builder::from(&shared).build();
        SdkUpstream {
            sts: aws_sdk_sts::Client::from_conf(sts),
            eks_auth: aws_sdk_eksauth::Client::from_conf(eks_auth),
        }
    }
}

fn to_system_time(at: &aws_smithy_types::DateTime) -> SystemTime {
    SystemTime::try_from(*at).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// An SDK failure as an [`UpstreamError`]: the service's code and status when it answered,
/// else a retryable failure named after what went wrong.
fn upstream_error<E>(operation: Operation, error: SdkError<E, HttpResponse>) -> UpstreamError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &error {
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            let err = context.err();
            UpstreamError::answered(
                operation,
                err.code().unwrap_or("Unknown"),
                err.message().unwrap_or(""),
                status,
            )
        }
        SdkError::TimeoutError(_) => {
            UpstreamError::unanswered(operation, TIMEOUT, "the call timed out")
        }
        SdkError::DispatchFailure(failure) => {
            let code = if failure.is_timeout() {
                TIMEOUT
            } else {
                CONNECTION_FAILED
            };
            UpstreamError::unanswered(operation, code, error_chain(&error))
        }
        SdkError::ResponseError(_) => {
            UpstreamError::unanswered(operation, "InvalidResponse", error_chain(&error))
        }
        _ => UpstreamError {
            operation,
            code: "InvalidRequest".to_string(),
            message: error_chain(&error),
            status: None,
            retry: crate::upstream::Retry::Never,
        },
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The credentials of an answer (STS's and EKS Auth's have the same fields, in two types):
/// `[access key id, secret, session token]`, the expiration and the assumed role's ARN.
fn credentials(
    operation: Operation,
    [access_key_id, secret_access_key, session_token]: [&str; 3],
    expiration: &aws_smithy_types::DateTime,
    assumed_role_arn: Option<&str>,
) -> Result<Credentials, UpstreamError> {
    let arn = assumed_role_arn.ok_or_else(|| malformed(operation, "assumed role user"))?;
    let account = account_of_arn(arn)
        .ok_or_else(|| malformed(operation, "account in the assumed role's ARN"))?;
    Ok(Credentials {
        access_key_id: access_key_id.to_string(),
        secret_access_key: secret_access_key.to_string(),
        session_token: session_token.to_string(),
        expiration: to_system_time(expiration),
        account_id: account.to_string(),
    })
}

/// The credentials of an STS answer (`AssumeRole` and `AssumeRoleWithWebIdentity` share the
/// types).
fn from_sts(
    operation: Operation,
    creds: Option<&aws_sdk_sts::types::Credentials>,
    user: Option<&aws_sdk_sts::types::AssumedRoleUser>,
) -> Result<Credentials, UpstreamError> {
    let creds = creds.ok_or_else(|| malformed(operation, "Credentials"))?;
    credentials(
        operation,
        [
            creds.access_key_id(),
            creds.secret_access_key(),
            creds.session_token(),
        ],
        creds.expiration(),
        user.map(|u| u.arn()),
    )
}

fn malformed(operation: Operation, what: &str) -> UpstreamError {
    UpstreamError::unanswered(
        operation,
        "InvalidResponse",
        format!("the answer has no {what}"),
    )
}

impl Upstream for SdkUpstream {
    fn assume_role_with_web_identity<'a>(
        &'a self,
        request: WebIdentityRequest<'a>,
    ) -> BoxFuture<'a, Result<Credentials, UpstreamError>> {
        Box::pin(async move {
            let op = Operation::AssumeRoleWithWebIdentity;
            let answer = self
                .sts
                .assume_role_with_web_identity()
                .role_arn(request.role_arn)
                .role_session_name(request.session_name)
                .web_identity_token(request.token)
                .set_duration_seconds(request.duration_seconds.map(|d| d as i32))
                .send()
                .await
                .map_err(|e| upstream_error(op, e))?;
            from_sts(op, answer.credentials(), answer.assumed_role_user())
        })
    }

    fn assume_role<'a>(
        &'a self,
        request: AssumeRoleRequest<'a>,
    ) -> BoxFuture<'a, Result<Credentials, UpstreamError>> {
        Box::pin(async move {
            let op = Operation::AssumeRole;
            let caller = request.caller.to_sdk("rolechain-agent-chain");
            let mut call = self
                .sts
                .assume_role()
                .role_arn(request.role_arn)
                .role_session_name(request.session_name)
                .set_external_id(request.external_id.map(str::to_owned))
                .set_duration_seconds(request.duration_seconds.map(|d| d as i32));
            for tag in request.tags {
                let tag = Tag::builder()
                    .key(tag.key)
                    .value(&tag.value)
                    .build()
                    .map_err(|e| UpstreamError {
                        operation: op,
                        code: "InvalidRequest".into(),
                        message: e.to_string(),
                        status: None,
                        retry: crate::upstream::Retry::Never,
                    })?;
                call = call.tags(tag);
            }
            let call = call.set_transitive_tag_keys(
                (!request.tags.is_empty())
                    .then(|| request.tags.iter().map(|t| t.key.to_string()).collect()),
            );
            let answer = call
                .customize()
                .config_override(aws_sdk_sts::config::Builder::new().credentials_provider(caller))
                .send()
                .await
                .map_err(|e| upstream_error(op, e))?;
            from_sts(op, answer.credentials(), answer.assumed_role_user())
        })
    }

    fn assume_role_for_pod_identity<'a>(
        &'a self,
        request: PodIdentityRequest<'a>,
    ) -> BoxFuture<'a, Result<Credentials, UpstreamError>> {
        Box::pin(async move {
            let op = Operation::AssumeRoleForPodIdentity;
            let answer = self
                .eks_auth
                .assume_role_for_pod_identity()
                .cluster_name(request.cluster_name)
                .token(request.token)
                .send()
                .await
                .map_err(|e| upstream_error(op, e))?;
            let creds = answer
                .credentials()
                .ok_or_else(|| malformed(op, "credentials"))?;
            let arn = answer.assumed_role_user().map(|u| u.arn());
            credentials(
                op,
                [
                    creds.access_key_id(),
                    creds.secret_access_key(),
                    creds.session_token(),
                ],
                creds.expiration(),
                arn,
            )
        })
    }
}
