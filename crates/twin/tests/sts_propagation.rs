//! IAM's eventual consistency (seed 004: "A pod may start before IAM permissions have fully
//! propagated, causing initial authentication failures"), reproduced with an IAM propagation
//! delay: STS, driven by the real SDK, sees IAM changes only once the delay has passed, while
//! IAM's own reads see them at once.
//!
//! Each check polls until the delay has surely passed and asserts on every answer whose timing
//! is certain: an answer received less than the delay after the write began must show the old
//! state; a request sent at least the delay after the write returned must show the new one.

mod sts_support;

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use sts_support::*;
use twin_state::{CreateOidcProvider, CreateRole};

const DELAY: Duration = Duration::from_millis(1500);

/// `Ok` or the AWS error code and message.
fn outcome<R, E: ProvideErrorMetadata>(r: Result<R, SdkError<E>>) -> Result<(), (String, String)> {
    r.map(|_| ()).map_err(|e| {
        (
            e.code().unwrap_or("no code").to_string(),
            e.message().unwrap_or_default().to_string(),
        )
    })
}

/// The write's bounds and what STS answered for the state before it.
struct Change {
    began: Instant,
    returned: Instant,
}

fn change(write: impl FnOnce()) -> Change {
    let began = Instant::now();
    write();
    Change {
        began,
        returned: Instant::now(),
    }
}

/// Polls `attempt` until the change has surely propagated. While it surely has not, the
/// answer must be `before`; once it surely has, `after`. `Ok(())` is success, `Err` the error
/// code and message, compared in full.
async fn propagates<F, Fut>(
    what: &str,
    change: &Change,
    before: Result<(), (String, String)>,
    after: Result<(), (String, String)>,
    mut attempt: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), (String, String)>>,
{
    let mut saw_before = false;
    loop {
        let asked = Instant::now();
        let answer = attempt().await;
        if Instant::now().duration_since(change.began) < DELAY {
            assert_eq!(
                answer, before,
                "{what}: answered the new state before the delay"
            );
            saw_before = true;
        }
        if asked.duration_since(change.returned) >= DELAY {
            assert_eq!(answer, after, "{what}: still the old state after the delay");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(saw_before, "{what}: never asked before the delay passed");
}

fn denied(caller: &str, role_arn: &str) -> Result<(), (String, String)> {
    Err((
        "AccessDenied".into(),
        format!(
            "User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
        ),
    ))
}

const ADMIN: &str = "arn:aws:iam::111111111111:user/admin";

/// A role in the development account that the account's admin may assume.
fn trusting_admin(name: &str) -> CreateRole {
    CreateRole {
        account: DEV.into(),
        name: name.into(),
        assume_role_policy: format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{ADMIN}"}},"Action":"sts:AssumeRole"}}]}}"#
        ),
        ..Default::default()
    }
}

async fn new_role_then_changed_trust(twin: &Twin) {
    let admin = sts(twin, Some(twin.dev_admin.clone())).await;
    let arn = format!("arn:aws:iam::{DEV}:role/fresh");
    let assume = || async {
        outcome(
            admin
                .assume_role()
                .role_arn(&arn)
                .role_session_name("pod")
                .send()
                .await,
        )
    };
    let created = change(|| {
        twin.store.create_role(&trusting_admin("fresh")).unwrap();
    });
    // IAM itself reads its own write at once.
    twin.store.get_role(DEV, "fresh").unwrap();
    propagates("a new role", &created, denied(ADMIN, &arn), Ok(()), assume).await;

    // Now it trusts only the other account: the old trust policy goes on deciding a while.
    let updated = change(|| {
        twin.store
            .update_assume_role_policy(
                DEV,
                "fresh",
                &format!(
                    r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{SHARED}:root"}},"Action":"sts:AssumeRole"}}]}}"#
                ),
            )
            .unwrap();
    });
    propagates(
        "a changed trust policy",
        &updated,
        Ok(()),
        denied(ADMIN, &arn),
        assume,
    )
    .await;
}

async fn new_oidc_provider(twin: &Twin) {
    let pod = sts(twin, None).await;
    let token = token(twin, "default", "my-service-account", "sts.amazonaws.com");
    let arn = format!("arn:aws:iam::{THIRD}:role/irsa-without-provider");
    let assume = || async {
        outcome(
            pod.assume_role_with_web_identity()
                .role_arn(&arn)
                .role_session_name("pod")
                .web_identity_token(&token)
                .send()
                .await,
        )
    };
    let created = change(|| {
        twin.store
            .create_oidc_provider(&CreateOidcProvider {
                account: THIRD.into(),
                url: format!("https://{}", twin.host_path),
                client_ids: vec!["sts.amazonaws.com".into()],
                ..Default::default()
            })
            .unwrap();
    });
    let before = Err((
        "InvalidIdentityToken".into(),
        format!(
            "No OpenIDConnect provider found in your account for {}",
            twin.issuer_url
        ),
    ));
    propagates("a new OIDC provider", &created, before, Ok(()), assume).await;
}

async fn new_permission_of_a_session(twin: &Twin) {
    let admin = sts(twin, Some(twin.dev_admin.clone())).await;
    let out = admin
        .assume_role()
        .role_arn(format!("arn:aws:iam::{DEV}:role/dev-no-policy"))
        .role_session_name("chain")
        .send()
        .await
        .unwrap();
    let session = sts(twin, Some(session_credentials(out.credentials().unwrap()))).await;
    let target = format!("arn:aws:iam::{SHARED}:role/S3_Pics");
    let assume = || async {
        outcome(
            session
                .assume_role()
                .role_arn(&target)
                .role_session_name("chained")
                .send()
                .await,
        )
    };
    let put = change(|| {
        twin.store
            .put_role_policy(
                DEV,
                "dev-no-policy",
                "assume-shared",
                &format!(
                    r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::{SHARED}:role/*"}}]}}"#
                ),
            )
            .unwrap();
    });
    let caller = format!("arn:aws:sts::{DEV}:assumed-role/dev-no-policy/chain");
    propagates(
        "a new permission of the caller's role",
        &put,
        denied(&caller, &target),
        Ok(()),
        assume,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_changes_reach_sts_after_the_propagation_delay() {
    let twin = start().await;
    // What the world and the seed scenarios created has propagated.
    twin.store.set_iam_propagation_delay(DELAY);
    tokio::join!(
        new_role_then_changed_trust(&twin),
        new_oidc_provider(&twin),
        new_permission_of_a_session(&twin),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_delay_sts_sees_iam_changes_at_once() {
    let twin = start().await;
    let admin = sts(&twin, Some(twin.dev_admin.clone())).await;
    twin.store.create_role(&trusting_admin("at-once")).unwrap();
    admin
        .assume_role()
        .role_arn(format!("arn:aws:iam::{DEV}:role/at-once"))
        .role_session_name("pod")
        .send()
        .await
        .unwrap();
}
