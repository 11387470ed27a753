//! The twin's STS driven by the real aws-sdk-rust (aws-sdk-sts through aws-config) over plain
//! HTTP on 127.0.0.1: GetCallerIdentity, AssumeRole in one account and across accounts, role
//! chaining, AssumeRoleWithWebIdentity (unsigned) in the cluster's account and across accounts
//! as in the seed scenarios; every decision lands in the decision log.

#![allow(deprecated)] // PackedPolicySize: the newer STS model calls it deprecated; AWS still sends it.

mod sts_support;

use aws_sdk_sts::types::Tag;
use sts_support::*;
use twin::VerdictFilter;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_caller_identity_for_the_admin_user() {
    let twin = start().await;
    let sts = sts(&twin, Some(twin.dev_admin.clone())).await;
    let id = sts.get_caller_identity().send().await.unwrap();
    assert_eq!(id.account(), Some(DEV));
    assert_eq!(id.arn(), Some("arn:aws:iam::111111111111:user/admin"));
    let user = twin.store.get_user(DEV, "admin").unwrap();
    assert_eq!(id.user_id(), Some(user.user_id.as_str()));
    assert!(user.user_id.starts_with("AIDA"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assume_role_in_the_same_account_then_across_accounts_by_chaining() {
    let twin = start().await;
    let admin = sts(&twin, Some(twin.dev_admin.clone())).await;
    let dev_role = twin.store.get_role(DEV, "dev").unwrap();

    let out = admin
        .assume_role()
        .role_arn("arn:aws:iam::111111111111:role/dev")
        .role_session_name("builder")
        .duration_seconds(7200)
        .tags(Tag::builder().key("team").value("pics").build().unwrap())
        .transitive_tag_keys("team")
        .send()
        .await
        .unwrap();
    let creds = out.credentials().unwrap();
    assert!(creds.access_key_id().starts_with("ASIA"), "{creds:?}");
    assert_eq!(creds.secret_access_key().len(), 40);
    assert!(!creds.session_token().is_empty());
    let lifetime = creds.expiration().secs() - time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((7100..=7200).contains(&lifetime), "{lifetime}");
    let user = out.assumed_role_user().unwrap();
    assert_eq!(
        user.arn(),
        "arn:aws:sts::111111111111:assumed-role/dev/builder"
    );
    assert_eq!(
        user.assumed_role_id(),
        format!("{}:builder", dev_role.role_id)
    );
    assert!(out.packed_policy_size().is_some_and(|p| p > 0));

    // The session works, and is who STS says it is.
    let dev = sts(&twin, Some(session_credentials(creds))).await;
    let id = dev.get_caller_identity().send().await.unwrap();
    assert_eq!(
        id.arn(),
        Some("arn:aws:sts::111111111111:assumed-role/dev/builder")
    );
    assert_eq!(id.account(), Some(DEV));
    assert_eq!(
        id.user_id(),
        Some(format!("{}:builder", dev_role.role_id).as_str())
    );

    // Chained into the shared account (identity policy of dev + trust of S3_Pics).
    let pics = dev
        .assume_role()
        .role_arn("arn:aws:iam::222222222222:role/S3_Pics")
        .role_session_name("x-account")
        .send()
        .await
        .unwrap();
    let pics_user = pics.assumed_role_user().unwrap();
    assert_eq!(
        pics_user.arn(),
        "arn:aws:sts::222222222222:assumed-role/S3_Pics/x-account"
    );
    // The transitive tag came along.
    let stored = twin
        .store
        .get_session(pics.credentials().unwrap().access_key_id())
        .unwrap()
        .unwrap();
    assert!(stored.chained);
    assert_eq!(
        stored.session_tags,
        vec![twin_state::Tag::new("team", "pics")]
    );
    assert_eq!(stored.transitive_tag_keys, vec!["team".to_string()]);

    // Overriding a transitive tag is refused.
    let (code, message) = error_of(
        dev.assume_role()
            .role_arn("arn:aws:iam::222222222222:role/S3_Pics")
            .role_session_name("x-account")
            .tags(Tag::builder().key("Team").value("other").build().unwrap())
            .send()
            .await,
    );
    assert_eq!(code, "InvalidParameterValue");
    assert!(
        message.contains("conflict with transitive tags"),
        "{message}"
    );

    // Role chaining is limited to one hour, whatever the role's maximum (43200 here).
    let (code, message) = error_of(
        dev.assume_role()
            .role_arn("arn:aws:iam::222222222222:role/S3_Pics")
            .role_session_name("x-account")
            .duration_seconds(7200)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationError");
    assert_eq!(
        message,
        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
    );

    // Directly from the admin user of 111 (its identity policy allows *, S3_Pics trusts it).
    let direct = admin
        .assume_role()
        .role_arn("arn:aws:iam::222222222222:role/S3_Pics")
        .role_session_name("direct")
        .duration_seconds(43200)
        .send()
        .await
        .unwrap();
    assert!(direct.packed_policy_size().is_none());

    let allowed = twin.decisions.recent(50, VerdictFilter::Allow);
    assert!(
        allowed.iter().any(|e| e.action == "sts:AssumeRole"
            && e.caller == "arn:aws:sts::111111111111:assumed-role/dev/builder"
            && e.resource == "arn:aws:iam::222222222222:role/S3_Pics"
            && e.decision().unwrap().cross_account),
        "{allowed:?}"
    );
    assert!(allowed.iter().any(|e| e.action == "sts:TagSession"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assume_role_refusals_in_aws_words() {
    let twin = start().await;
    let admin = sts(&twin, Some(twin.dev_admin.clone())).await;

    // The trust policy does not name the caller (the admin's identity policy allows *: not
    // enough for a role).
    let (code, message) = error_of(
        admin
            .assume_role()
            .role_arn("arn:aws:iam::111111111111:role/untrusting")
            .role_session_name("s1")
            .send()
            .await,
    );
    assert_eq!(code, "AccessDenied");
    assert_eq!(
        message,
        "User: arn:aws:iam::111111111111:user/admin is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111111111111:role/untrusting"
    );
    let last = twin.decisions.last_denied().unwrap();
    assert_eq!(last.resource, "arn:aws:iam::111111111111:role/untrusting");

    // A role that does not exist reads the same.
    let (code, message) = error_of(
        admin
            .assume_role()
            .role_arn("arn:aws:iam::111111111111:role/nope")
            .role_session_name("s1")
            .send()
            .await,
    );
    assert_eq!(code, "AccessDenied");
    assert!(message.ends_with("on resource: arn:aws:iam::111111111111:role/nope"));

    // Cross account without an identity policy allowing it.
    let no_policy = admin
        .assume_role()
        .role_arn("arn:aws:iam::111111111111:role/dev-no-policy")
        .role_session_name("np")
        .send()
        .await
        .unwrap();
    let np = sts(
        &twin,
        Some(session_credentials(no_policy.credentials().unwrap())),
    )
    .await;
    let (code, message) = error_of(
        np.assume_role()
            .role_arn("arn:aws:iam::222222222222:role/S3_Pics")
            .role_session_name("xa")
            .send()
            .await,
    );
    assert_eq!(code, "AccessDenied");
    assert_eq!(
        message,
        "User: arn:aws:sts::111111111111:assumed-role/dev-no-policy/np is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::222222222222:role/S3_Pics"
    );
    let reason = last_denied_reason(&twin);
    assert!(
        matches!(
            reason,
            iam::Reason::CrossAccountIdentityPolicyDoesNotAllow { .. }
        ),
        "{reason:?}"
    );

    // Tags need sts:TagSession in the trust policy.
    let (code, message) = error_of(
        admin
            .assume_role()
            .role_arn("arn:aws:iam::111111111111:role/no-tags")
            .role_session_name("s1")
            .tags(Tag::builder().key("team").value("a").build().unwrap())
            .send()
            .await,
    );
    assert_eq!(code, "AccessDenied");
    assert_eq!(
        message,
        "User: arn:aws:iam::111111111111:user/admin is not authorized to perform: sts:TagSession on resource: arn:aws:iam::111111111111:role/no-tags"
    );

    // The role's MaxSessionDuration (3600 by default).
    let (code, message) = error_of(
        admin
            .assume_role()
            .role_arn("arn:aws:iam::111111111111:role/no-tags")
            .role_session_name("s1")
            .duration_seconds(7200)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationError");
    assert_eq!(
        message,
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
    );

    // Model constraints, all reported at once.
    let (code, message) = error_of(
        admin
            .assume_role()
            .role_arn("arn:aws:iam::111111111111:role/dev")
            .role_session_name("bad name!")
            .duration_seconds(60)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationError");
    assert_eq!(
        message,
        "2 validation errors detected: Value 'bad name!' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*; Value '60' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
    );
    let (code, message) = error_of(
        admin
            .assume_role()
            .role_arn("arn:aws:iam::111111111111:role/dev")
            .role_session_name("s")
            .duration_seconds(43201)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationError");
    assert_eq!(
        message,
        "2 validation errors detected: Value 's' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2; Value '43201' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200"
    );

    // A malformed session policy.
    let (code, _) = error_of(
        admin
            .assume_role()
            .role_arn("arn:aws:iam::111111111111:role/dev")
            .role_session_name("s1")
            .policy(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow"}]}"#)
            .send()
            .await,
    );
    assert_eq!(code, "MalformedPolicyDocument");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_policies_are_stored_and_reported() {
    let twin = start().await;
    let admin = sts(&twin, Some(twin.dev_admin.clone())).await;
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
    let out = admin
        .assume_role()
        .role_arn("arn:aws:iam::111111111111:role/dev")
        .role_session_name("scoped")
        .policy(policy)
        .send()
        .await
        .unwrap();
    let size = out.packed_policy_size().unwrap();
    assert!((1..100).contains(&size), "{size}");
    let stored = twin
        .store
        .get_session(out.credentials().unwrap().access_key_id())
        .unwrap()
        .unwrap();
    assert_eq!(stored.session_policy.as_deref(), Some(policy));

    // The session policy limits the session: sts:AssumeRole is not in it.
    let scoped = sts(&twin, Some(session_credentials(out.credentials().unwrap()))).await;
    let (code, _) = error_of(
        scoped
            .assume_role()
            .role_arn("arn:aws:iam::222222222222:role/S3_Pics")
            .role_session_name("xa")
            .send()
            .await,
    );
    assert_eq!(code, "AccessDenied");
    let reason = last_denied_reason(&twin);
    assert!(
        matches!(reason, iam::Reason::SessionPolicyDoesNotAllow { .. }),
        "{reason:?}"
    );

    // Managed session policies must exist in the role's account.
    let (code, message) = error_of(
        admin
            .assume_role()
            .role_arn("arn:aws:iam::111111111111:role/dev")
            .role_session_name("scoped")
            .policy_arns(
                aws_sdk_sts::types::PolicyDescriptorType::builder()
                    .arn("arn:aws:iam::111111111111:policy/missing")
                    .build(),
            )
            .send()
            .await,
    );
    assert_eq!(code, "MalformedPolicyDocument");
    assert!(message.contains("does not exist"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_cannot_assume_roles_and_deleted_roles_end_their_sessions() {
    let twin = start().await;
    let root_key = twin.store.create_access_key(DEV, "root").unwrap();
    let root = sts(
        &twin,
        Some(aws_credential_types::Credentials::new(
            root_key.access_key_id,
            root_key.secret_access_key,
            None,
            None,
            "root",
        )),
    )
    .await;
    let id = root.get_caller_identity().send().await.unwrap();
    assert_eq!(id.arn(), Some("arn:aws:iam::111111111111:root"));
    assert_eq!(id.user_id(), Some(DEV));
    let (code, message) = error_of(
        root.assume_role()
            .role_arn("arn:aws:iam::111111111111:role/dev")
            .role_session_name("s1")
            .send()
            .await,
    );
    assert_eq!(code, "AccessDenied");
    assert_eq!(message, "Roles may not be assumed by root accounts.");

    let admin = sts(&twin, Some(twin.dev_admin.clone())).await;
    let out = admin
        .assume_role()
        .role_arn("arn:aws:iam::111111111111:role/ephemeral")
        .role_session_name("short-lived")
        .send()
        .await
        .unwrap();
    let session = sts(&twin, Some(session_credentials(out.credentials().unwrap()))).await;
    session.get_caller_identity().send().await.unwrap();
    twin.store.delete_role(DEV, "ephemeral").unwrap();
    // The session ended with its role. AWS (and the brief) answer `ExpiredToken`; the store's
    // DeleteRole removes the role's sessions outright, so the key now reads as unknown
    // (`InvalidClientTokenId`) until the store keeps ended sessions (see the STS report).
    let (code, message) = error_of(session.get_caller_identity().send().await);
    match code.as_str() {
        "ExpiredToken" => {
            assert_eq!(
                message,
                "The security token included in the request is expired"
            )
        }
        "InvalidClientTokenId" => {
            assert_eq!(
                message,
                "The security token included in the request is invalid."
            )
        }
        other => panic!("{other}: {message}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assume_role_with_web_identity_in_the_cluster_account_and_across_accounts() {
    let twin = start().await;
    // No credentials at all: the pod has only its projected token.
    let pod = sts(&twin, None).await;

    let token = token(&twin, "default", "my-service-account", "sts.amazonaws.com");
    let out = pod
        .assume_role_with_web_identity()
        .role_arn("arn:aws:iam::111111111111:role/my-test-role")
        .role_session_name("botocore-session-1")
        .web_identity_token(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(out.subject_from_web_identity_token(), Some(SA_SUB));
    assert_eq!(out.audience(), Some("sts.amazonaws.com"));
    assert_eq!(out.provider(), Some(twin.issuer_url.as_str()));
    let user = out.assumed_role_user().unwrap();
    assert_eq!(
        user.arn(),
        "arn:aws:sts::111111111111:assumed-role/my-test-role/botocore-session-1"
    );
    let creds = out.credentials().unwrap();
    let irsa = sts(&twin, Some(session_credentials(creds))).await;
    let id = irsa.get_caller_identity().send().await.unwrap();
    assert_eq!(id.arn(), Some(user.arn()));

    // Seed 000: the shared account trusts the cluster's issuer through its own provider.
    let shared_token = token_for(&twin, "s3-shared-content");
    let out = pod
        .assume_role_with_web_identity()
        .role_arn("arn:aws:iam::222222222222:role/s3-read-object")
        .role_session_name("x-account")
        .web_identity_token(&shared_token)
        .duration_seconds(1500)
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.assumed_role_user().unwrap().arn(),
        "arn:aws:sts::222222222222:assumed-role/s3-read-object/x-account"
    );
    let lifetime = out.credentials().unwrap().expiration().secs()
        - time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((1400..=1500).contains(&lifetime), "{lifetime}");

    let allowed = twin.decisions.recent(50, VerdictFilter::Allow);
    let provider = format!("arn:aws:iam::222222222222:oidc-provider/{}", twin.host_path);
    assert!(
        allowed
            .iter()
            .any(|e| e.action == "sts:AssumeRoleWithWebIdentity"
                && e.caller == format!("web identity from {provider}")
                && e.resource == "arn:aws:iam::222222222222:role/s3-read-object"),
        "{allowed:?}"
    );
}

fn token_for(twin: &Twin, sa: &str) -> String {
    token(twin, "default", sa, "sts.amazonaws.com")
}
