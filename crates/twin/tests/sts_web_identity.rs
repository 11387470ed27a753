//! AssumeRoleWithWebIdentity refusals, each with AWS's error code and message: wrong audience,
//! a subject the trust policy does not allow, expired tokens, forged tokens (another key,
//! `alg: none`, HS256 keyed with the public key, unknown `kid`), no OIDC provider in the role's
//! account, and malformed requests. The requests are unsigned, as a pod sends them.

mod sts_support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::time::{Duration, SystemTime};
use sts_support::*;
use twin::VerdictFilter;

const ROLE: &str = "arn:aws:iam::111111111111:role/my-test-role";

async fn call(twin: &Twin, role: &str, token: &str) -> (String, String) {
    let pod = sts(twin, None).await;
    error_of(
        pod.assume_role_with_web_identity()
            .role_arn(role)
            .role_session_name("s1")
            .web_identity_token(token)
            .send()
            .await,
    )
}

fn parts(token: &str) -> (Value, Value, String) {
    let mut it = token.split('.');
    let header = serde_json::from_slice(&B64.decode(it.next().unwrap()).unwrap()).unwrap();
    let claims = serde_json::from_slice(&B64.decode(it.next().unwrap()).unwrap()).unwrap();
    (header, claims, it.next().unwrap().to_string())
}

fn encode(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    )
}

/// HMAC-SHA256 (RFC 2104), enough to forge the classic HS256-with-the-public-key token.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

const INVALID_TOKEN: &str = "The web identity token that was passed could not be validated by AWS. Get a new identity token from the identity provider and then retry the request.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_the_trust_or_the_provider_refuse() {
    let twin = start().await;

    // An audience the provider does not list.
    let wrong_aud = token(
        &twin,
        "default",
        "my-service-account",
        "pods.eks.amazonaws.com",
    );
    assert_eq!(
        call(&twin, ROLE, &wrong_aud).await,
        (
            "InvalidIdentityToken".to_string(),
            "Incorrect token audience".to_string()
        )
    );

    // A subject the trust policy's condition does not allow.
    let wrong_sub = token(&twin, "default", "other", "sts.amazonaws.com");
    assert_eq!(
        call(&twin, ROLE, &wrong_sub).await,
        (
            "AccessDenied".to_string(),
            "Not authorized to perform sts:AssumeRoleWithWebIdentity".to_string()
        )
    );
    let denied = twin.decisions.last_denied().unwrap();
    assert_eq!(denied.action, "sts:AssumeRoleWithWebIdentity");
    assert_eq!(denied.resource, ROLE);
    assert!(denied
        .caller
        .starts_with("web identity from arn:aws:iam::111111111111:oidc-provider/"));
    let closest = denied
        .decision()
        .unwrap()
        .closest_allow()
        .map(|(_, s)| format!("{:?}", s.failed));
    assert!(
        closest
            .as_deref()
            .is_some_and(|f| f.contains("system:serviceaccount:default:other")),
        "{closest:?}"
    );

    // A trust policy that does not allow web identities at all.
    let good = token(&twin, "default", "my-service-account", "sts.amazonaws.com");
    assert_eq!(
        call(&twin, "arn:aws:iam::111111111111:role/dev", &good).await,
        (
            "AccessDenied".to_string(),
            "Not authorized to perform sts:AssumeRoleWithWebIdentity".to_string()
        )
    );

    // No IAM OIDC provider for the issuer in the role's account.
    let (code, message) = call(
        &twin,
        "arn:aws:iam::333333333333:role/irsa-without-provider",
        &good,
    )
    .await;
    assert_eq!(code, "InvalidIdentityToken");
    assert_eq!(
        message,
        format!(
            "No OpenIDConnect provider found in your account for {}",
            twin.issuer_url
        )
    );

    // Expired an hour ago.
    let expired = twin
        .issuer
        .mint_at(
            &oidc::TokenRequest::new("default", "my-service-account", "uid", "sts.amazonaws.com"),
            SystemTime::now() - Duration::from_secs(7200),
        )
        .unwrap();
    let (code, message) = call(&twin, ROLE, &expired).await;
    assert_eq!(code, "ExpiredTokenException");
    assert!(
        message.starts_with("Token expired: current date/time "),
        "{message}"
    );

    // Every decision, allowed or denied, was recorded; the denials include the web identity's.
    assert!(twin.decisions.recent(100, VerdictFilter::Deny).len() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tokens_are_invalid_identity_tokens() {
    let twin = start().await;
    let good = token(&twin, "default", "my-service-account", "sts.amazonaws.com");
    let (header, claims, signature) = parts(&good);
    let kid = header["kid"].as_str().unwrap().to_string();

    // Signed by another key, presented under the real key's kid.
    let other = oidc::Issuer::load_or_create(oidc::IssuerConfig::new(
        twin.issuer_url.clone(),
        twin.dir.path().join("attacker-keys"),
    ))
    .unwrap();
    let forged = other
        .mint(&oidc::TokenRequest::new(
            "default",
            "my-service-account",
            "uid",
            "sts.amazonaws.com",
        ))
        .unwrap();
    let (_, forged_claims, forged_sig) = parts(&forged);
    let resigned = format!(
        "{}.{forged_sig}",
        encode(&json!({"alg": "RS256", "kid": kid}), &forged_claims)
    );
    assert_eq!(
        call(&twin, ROLE, &resigned).await,
        (
            "InvalidIdentityToken".to_string(),
            INVALID_TOKEN.to_string()
        )
    );

    // The same token with its own (unknown) kid.
    assert_eq!(
        call(&twin, ROLE, &forged).await,
        (
            "InvalidIdentityToken".to_string(),
            "Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements".to_string()
        )
    );
    // Both refusals are in the decision log, with the message the caller got.
    let refused = twin.decisions.recent(2, twin::VerdictFilter::Refused);
    assert_eq!(refused.len(), 2);
    for entry in &refused {
        assert_eq!(entry.action, "sts:AssumeRoleWithWebIdentity");
        assert_eq!(entry.resource, ROLE);
        assert_eq!(
            entry.caller,
            format!("web identity token from {}", twin.issuer_url)
        );
        assert_eq!(entry.refusal().unwrap().code, "InvalidIdentityToken");
    }
    assert!(refused[0]
        .refusal()
        .unwrap()
        .message
        .starts_with("Couldn't retrieve verification key"));
    assert_eq!(refused[1].refusal().unwrap().message, INVALID_TOKEN);

    // alg: none.
    let none = format!("{}.", encode(&json!({"alg": "none", "kid": kid}), &claims));
    assert_eq!(
        call(&twin, ROLE, &none).await,
        (
            "InvalidIdentityToken".to_string(),
            "The web identity token is signed with an unsupported algorithm.".to_string()
        )
    );

    // HS256 keyed with the issuer's public key (the JWKS entry as published).
    let jwk = twin.issuer.jwks()["keys"][0].to_string();
    let input = encode(&json!({"alg": "HS256", "kid": kid}), &claims);
    let mac = hmac_sha256(jwk.as_bytes(), input.as_bytes());
    let hs256 = format!("{input}.{}", B64.encode(mac));
    assert_eq!(
        call(&twin, ROLE, &hs256).await,
        (
            "InvalidIdentityToken".to_string(),
            "The web identity token is signed with an unsupported algorithm.".to_string()
        )
    );

    // Claims altered after signing (a different subject under the real signature).
    let mut altered = claims.clone();
    altered["sub"] = json!("system:serviceaccount:kube-system:admin");
    let tampered = format!(
        "{}.{signature}",
        encode(&json!({"alg": "RS256", "kid": kid}), &altered)
    );
    assert_eq!(
        call(&twin, ROLE, &tampered).await,
        (
            "InvalidIdentityToken".to_string(),
            INVALID_TOKEN.to_string()
        )
    );

    // Not a JWT.
    assert_eq!(
        call(&twin, ROLE, "not-a-token").await,
        (
            "InvalidIdentityToken".to_string(),
            INVALID_TOKEN.to_string()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_validation_errors() {
    let twin = start().await;
    let pod = sts(&twin, None).await;
    let good = token(&twin, "default", "my-service-account", "sts.amazonaws.com");
    let (code, message) = error_of(
        pod.assume_role_with_web_identity()
            .role_arn(ROLE)
            .role_session_name("a")
            .web_identity_token("abc")
            .duration_seconds(899)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationError");
    assert_eq!(
        message,
        "3 validation errors detected: Value 'a' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2; Value at 'webIdentityToken' failed to satisfy constraint: Member must have length greater than or equal to 4; Value '899' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
    );
    let (code, message) = error_of(
        pod.assume_role_with_web_identity()
            .role_arn(ROLE)
            .role_session_name("s1")
            .web_identity_token(&good)
            .duration_seconds(7200)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationError");
    assert_eq!(
        message,
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
    );
}
