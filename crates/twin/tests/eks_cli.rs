//! The twin's EKS driven by the real AWS CLI (v1) over loopback HTTP: seeds 000 and 002's
//! `aws eks describe-cluster --query cluster.identity.oidc.issuer`, seed 004's association with
//! `--target-role-arn` and its deployment-order pitfall (a trust policy naming a role that does
//! not exist yet), the association lifecycle, and the errors EKS answers with.
//!
//! The interpreter is `$ROLECHAIN_PYTHON` (default `python3`), which must have awscli. Without
//! it the tests print a notice and pass, unless `ROLECHAIN_REQUIRE_PEERS=1`.

mod common;
mod eks_support;

use common::aws_cli::{aws_cli, peers_available, with_credentials, Run};
use eks_support::*;

/// `aws ARGS` as the account's admin, isolated from the machine's AWS configuration.
async fn aws(twin: &EksTwin, account: &str, args: &[&str]) -> Run {
    let creds = if account == SHARED {
        &twin.shared_admin
    } else {
        &twin.dev_admin
    };
    let mut cmd = aws_cli(twin.dir.path());
    cmd.args(["--endpoint-url", &twin.base_url]).args(args);
    with_credentials(
        &mut cmd,
        creds.access_key_id(),
        creds.secret_access_key(),
        None,
    );
    Run::run(cmd, None).await
}

/// `aws eks OP --cluster-name development-cluster --association-id ID EXTRA…` as the
/// developer account's admin.
async fn on_association(twin: &EksTwin, op: &str, id: &str, extra: &[&str]) -> Run {
    let mut args = vec!["eks", op, "--cluster-name", CLUSTER, "--association-id", id];
    args.extend_from_slice(extra);
    aws(twin, DEV, &args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_and_list_clusters_as_the_seeds_query_them() {
    if !peers_available("awscli") {
        return;
    }
    let twin = start().await;
    // Seed 000: aws eks describe-cluster --name development-cluster
    //   --query "cluster.identity.oidc.issuer" --output text
    let out = aws(
        &twin,
        DEV,
        &[
            "eks",
            "describe-cluster",
            "--name",
            CLUSTER,
            "--query",
            "cluster.identity.oidc.issuer",
            "--output",
            "text",
        ],
    )
    .await;
    let issuer = out.expect_ok().text();
    assert_eq!(issuer.trim(), twin.issuer_url);
    // Seed 002: … | cut -d '/' -f 5 is the issuer id.
    let id = issuer.trim().split('/').nth(4).unwrap();
    assert_eq!(id, twin::derive_issuer_id(CLUSTER));

    let cluster = aws(&twin, DEV, &["eks", "describe-cluster", "--name", CLUSTER])
        .await
        .json();
    assert_eq!(
        cluster["cluster"]["arn"],
        format!("arn:aws:eks:us-east-1:{DEV}:cluster/{CLUSTER}")
    );
    assert_eq!(cluster["cluster"]["status"], "ACTIVE");

    let list = aws(&twin, DEV, &["eks", "list-clusters"]).await.json();
    let names: Vec<&str> = list["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(names, vec![CLUSTER, OTHER_CLUSTER]);
    let page = aws(&twin, DEV, &["eks", "list-clusters", "--max-items", "1"])
        .await
        .json();
    assert_eq!(page["clusters"].as_array().unwrap().len(), 1);
    assert!(page["NextToken"].is_string(), "{page}");

    // The shared account has no cluster; the name is unknown there.
    let list = aws(&twin, SHARED, &["eks", "list-clusters"]).await.json();
    assert_eq!(list["clusters"], serde_json::json!([]));
    let out = aws(
        &twin,
        SHARED,
        &["eks", "describe-cluster", "--name", CLUSTER],
    )
    .await;
    assert!(
        out.failure().contains("(ResourceNotFoundException)")
            && out
                .failure()
                .contains("No cluster found for name: development-cluster."),
        "{}",
        out.stderr
    );
    let out = aws(&twin, DEV, &["eks", "list-clusters", "--page-size", "101"]).await;
    assert!(
        out.failure().contains("(InvalidParameterException)")
            && out.failure().contains("maxResults"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_004_cross_account_association_lifecycle() {
    if !peers_available("awscli") {
        return;
    }
    let twin = start().await;
    let policy_doc = twin.dir.path().join("trust.json");

    // Pitfall 2: account B's target role cannot trust a primary role that does not exist yet.
    let not_yet = arn(DEV, "primary-role-not-created-yet");
    std::fs::write(
        &policy_doc,
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{not_yet}"}},"Action":["sts:AssumeRole"]}},{{"Effect":"Allow","Principal":{{"AWS":"{not_yet}"}},"Action":["sts:TagSession"]}}]}}"#
        ),
    )
    .unwrap();
    let doc_arg = format!("file://{}", policy_doc.display());
    let out = aws(
        &twin,
        SHARED,
        &[
            "iam",
            "create-role",
            "--role-name",
            "target-too-early",
            "--assume-role-policy-document",
            &doc_arg,
        ],
    )
    .await;
    assert!(
        out.failure().contains("(MalformedPolicyDocument)")
            && out.failure().contains("Invalid principal in policy"),
        "{}",
        out.stderr
    );
    let out = aws(
        &twin,
        SHARED,
        &[
            "iam",
            "update-assume-role-policy",
            "--role-name",
            TARGET,
            "--policy-document",
            &doc_arg,
        ],
    )
    .await;
    assert!(
        out.failure().contains("Invalid principal in policy"),
        "{}",
        out.stderr
    );

    // The association of seed 004's Terraform, with the CLI.
    let created = aws(
        &twin,
        DEV,
        &[
            "eks",
            "create-pod-identity-association",
            "--cluster-name",
            CLUSTER,
            "--namespace",
            "my-app-namespace",
            "--service-account",
            "my-app-sa",
            "--role-arn",
            &arn(DEV, PRIMARY),
            "--target-role-arn",
            &arn(SHARED, TARGET),
            "--tags",
            "team=data",
        ],
    )
    .await
    .json();
    let a = &created["association"];
    let id = a["associationId"].as_str().unwrap().to_string();
    assert!(
        id.len() == 19
            && id.starts_with("a-")
            && id[2..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{id}"
    );
    assert_eq!(
        a["associationArn"],
        format!("arn:aws:eks:us-east-1:{DEV}:podidentityassociation/{CLUSTER}/{id}")
    );
    assert_eq!(a["clusterName"], CLUSTER);
    assert_eq!(a["roleArn"], arn(DEV, PRIMARY));
    assert_eq!(a["targetRoleArn"], arn(SHARED, TARGET));
    assert_eq!(
        a["externalId"],
        format!("us-east-1/{DEV}/{CLUSTER}/my-app-namespace/my-app-sa")
    );
    assert_eq!(a["disableSessionTags"], false);
    assert_eq!(a["tags"]["team"], "data");
    // CLI v1 prints wire timestamps as they came: epoch seconds.
    let created_at = a["createdAt"].as_f64().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
    assert!((created_at - now).abs() < 120.0, "{a}");
    assert_eq!(a["modifiedAt"], a["createdAt"]);

    // One association per service account.
    let out = aws(
        &twin,
        DEV,
        &[
            "eks",
            "create-pod-identity-association",
            "--cluster-name",
            CLUSTER,
            "--namespace",
            "my-app-namespace",
            "--service-account",
            "my-app-sa",
            "--role-arn",
            &arn(DEV, PRIMARY),
        ],
    )
    .await;
    assert!(
        out.failure().contains("(ResourceInUseException)") && out.failure().contains(&id),
        "{}",
        out.stderr
    );

    let described = on_association(&twin, "describe-pod-identity-association", &id, &[])
        .await
        .json();
    assert_eq!(described["association"], created["association"]);

    let listed = aws(
        &twin,
        DEV,
        &[
            "eks",
            "list-pod-identity-associations",
            "--cluster-name",
            CLUSTER,
            "--namespace",
            "my-app-namespace",
        ],
    )
    .await
    .json();
    let summaries = listed["associations"].as_array().unwrap();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0]["associationId"], id.as_str());
    assert_eq!(summaries[0]["serviceAccount"], "my-app-sa");
    assert!(
        summaries[0].get("roleArn").is_none(),
        "summaries omit the role"
    );
    let none = aws(
        &twin,
        DEV,
        &[
            "eks",
            "list-pod-identity-associations",
            "--cluster-name",
            CLUSTER,
            "--service-account",
            "someone-else",
        ],
    )
    .await
    .json();
    assert_eq!(none["associations"], serde_json::json!([]));

    // A policy needs the session tags off; together they are accepted.
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
    let out = on_association(
        &twin,
        "update-pod-identity-association",
        &id,
        &["--policy", policy],
    )
    .await;
    assert!(
        out.failure().contains("(InvalidParameterException)")
            && out.failure().contains("disableSessionTags"),
        "{}",
        out.stderr
    );
    let updated = on_association(
        &twin,
        "update-pod-identity-association",
        &id,
        &["--disable-session-tags", "--policy", policy],
    )
    .await
    .json();
    assert_eq!(updated["association"]["disableSessionTags"], true);
    assert_eq!(updated["association"]["policy"], policy);
    // Removing the target role (an empty ARN) also removes the external id.
    let updated = on_association(
        &twin,
        "update-pod-identity-association",
        &id,
        &["--target-role-arn", ""],
    )
    .await
    .json();
    assert!(updated["association"].get("targetRoleArn").is_none());
    assert!(updated["association"].get("externalId").is_none());

    // Durable: what the CLI changed is in the store.
    let cluster = twin.store.get_cluster(DEV, "us-east-1", CLUSTER).unwrap();
    let stored = twin
        .store
        .find_pod_identity_association(&cluster, "my-app-namespace", "my-app-sa")
        .unwrap()
        .unwrap();
    assert!(stored.disable_session_tags && stored.target_role_arn.is_none());

    let deleted = on_association(&twin, "delete-pod-identity-association", &id, &[])
        .await
        .json();
    assert_eq!(deleted["association"]["associationId"], id.as_str());
    let out = on_association(&twin, "describe-pod-identity-association", &id, &[]).await;
    assert!(
        out.failure().contains("(ResourceNotFoundException)"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_pod_identity_association_refuses_bad_input() {
    if !peers_available("awscli") {
        return;
    }
    let twin = start().await;
    let create = |extra: Vec<String>| {
        let mut args: Vec<String> = [
            "eks",
            "create-pod-identity-association",
            "--cluster-name",
            CLUSTER,
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra);
        args
    };
    let base = |ns: &str, sa: &str, role: &str| {
        vec![
            "--namespace".to_string(),
            ns.to_string(),
            "--service-account".to_string(),
            sa.to_string(),
            "--role-arn".to_string(),
            role.to_string(),
        ]
    };
    let primary = arn(DEV, PRIMARY);
    let cases: Vec<(Vec<String>, &str, &str)> = vec![
        (
            create(base("default", "app", &arn(SHARED, TARGET))),
            "(InvalidParameterException)",
            "cluster's account",
        ),
        (
            create(base("default", "app", &arn(DEV, "no-such-role"))),
            "(InvalidParameterException)",
            "Role provided in the request does not exist",
        ),
        (
            create(base("default", "app", "not-an-arn")),
            "(InvalidParameterException)",
            "not a valid IAM role ARN",
        ),
        (
            create(base("Bad_Namespace", "app", &primary)),
            "(InvalidParameterException)",
            "Namespace 'Bad_Namespace' is invalid",
        ),
        (
            create(base("default", "app/x", &primary)),
            "(InvalidParameterException)",
            "ServiceAccount 'app/x' is invalid",
        ),
        (
            {
                let mut a = base("default", "app", &primary);
                a.extend(["--tags".to_string(), "aws:owner=x".to_string()]);
                create(a)
            },
            "(InvalidParameterException)",
            "aws:",
        ),
        (
            {
                let mut a = base("default", "app", &primary);
                a.extend([
                    "--target-role-arn".to_string(),
                    "arn:aws:s3:::bucket".to_string(),
                ]);
                create(a)
            },
            "(InvalidParameterException)",
            "targetRoleArn",
        ),
        (
            {
                let mut a = base("default", "app", &primary);
                a.extend([
                    "--disable-session-tags".to_string(),
                    "--policy".to_string(),
                    "{not a policy".to_string(),
                ]);
                create(a)
            },
            "(InvalidParameterException)",
            "not a valid IAM policy",
        ),
    ];
    for (args, code, words) in cases {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = aws(&twin, DEV, &refs).await;
        assert!(
            out.failure().contains(code) && out.failure().contains(words),
            "{refs:?}: {}",
            out.stderr
        );
    }
    // None of them created anything.
    let listed = aws(
        &twin,
        DEV,
        &[
            "eks",
            "list-pod-identity-associations",
            "--cluster-name",
            CLUSTER,
        ],
    )
    .await
    .json();
    assert_eq!(listed["associations"], serde_json::json!([]));

    // Unknown cluster and association; a bad page size; an update that changes nothing.
    let out = aws(
        &twin,
        DEV,
        &[
            "eks",
            "list-pod-identity-associations",
            "--cluster-name",
            "no-such-cluster",
        ],
    )
    .await;
    assert!(
        out.failure().contains("(ResourceNotFoundException)"),
        "{}",
        out.stderr
    );
    for op in [
        "describe-pod-identity-association",
        "delete-pod-identity-association",
    ] {
        let out = on_association(&twin, op, "a-00000000000000000", &[]).await;
        assert!(
            out.failure().contains("(ResourceNotFoundException)")
                && out.failure().contains("a-00000000000000000"),
            "{op}: {}",
            out.stderr
        );
    }
    let out = aws(
        &twin,
        DEV,
        &[
            "eks",
            "list-pod-identity-associations",
            "--cluster-name",
            CLUSTER,
            "--page-size",
            "101",
        ],
    )
    .await;
    assert!(out.failure().contains("maxResults"), "{}", out.stderr);
    let a = associate(&twin, "default", "app", &primary, None, false);
    let out = on_association(
        &twin,
        "update-pod-identity-association",
        &a.association_id,
        &[],
    )
    .await;
    assert!(
        out.failure().contains("(InvalidParameterException)")
            && out.failure().contains("At least one of"),
        "{}",
        out.stderr
    );
}

/// `aws eks create-cluster` (seed 000's blue/green note: a new cluster has a new issuer), the
/// new cluster's issuer served at once, `list-clusters` showing it, `delete-cluster` taking its
/// associations and its issuer with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_are_created_with_their_own_issuer_and_deleted() {
    if !peers_available("awscli") {
        return;
    }
    let twin = start().await;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    aws(
        &twin,
        DEV,
        &[
            "iam",
            "create-role",
            "--role-name",
            "eks-cluster",
            "--assume-role-policy-document",
            trust,
        ],
    )
    .await
    .expect_ok();
    let role = arn(DEV, "eks-cluster");
    let create = |name: &'static str| {
        let role = role.clone();
        let twin = &twin;
        async move {
            aws(
                twin,
                DEV,
                &[
                    "eks",
                    "create-cluster",
                    "--name",
                    name,
                    "--role-arn",
                    &role,
                    "--resources-vpc-config",
                    "subnetIds=subnet-1,subnet-2",
                    "--kubernetes-version",
                    "1.31",
                    "--tags",
                    "env=green",
                ],
            )
            .await
        }
    };
    let green = create("green").await.expect_ok().json();
    let cluster = &green["cluster"];
    assert_eq!(cluster["status"], "ACTIVE", "{green}");
    assert_eq!(cluster["roleArn"], role.as_str());
    assert_eq!(cluster["version"], "1.31");
    assert_eq!(cluster["tags"]["env"], "green");
    assert_eq!(
        cluster["arn"],
        format!("arn:aws:eks:us-east-1:{DEV}:cluster/green")
    );
    let issuer = cluster["identity"]["oidc"]["issuer"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(issuer, twin.issuer_url, "a new cluster has a new issuer");
    let id = issuer.split('/').nth(4).unwrap().to_string();
    assert!(twin::is_valid_issuer_id(&id), "{issuer}");
    // Its issuer is served as soon as create-cluster answers.
    let discovery = format!("/id/{id}/.well-known/openid-configuration");
    let reply = common::wire::get(twin.addr, &discovery).await;
    assert_eq!(reply.status.as_u16(), 200, "{issuer}");

    // describe-cluster as seed 000 queries it; list-clusters shows it.
    let described = aws(
        &twin,
        DEV,
        &[
            "eks",
            "describe-cluster",
            "--name",
            "green",
            "--query",
            "cluster.identity.oidc.issuer",
            "--output",
            "text",
        ],
    )
    .await
    .expect_ok()
    .text();
    assert_eq!(described.trim(), issuer);
    let list = aws(&twin, DEV, &["eks", "list-clusters"]).await.json();
    assert_eq!(
        list["clusters"],
        serde_json::json!([CLUSTER, "green", OTHER_CLUSTER])
    );

    // The name is taken, in EKS's words.
    let again = create("green").await;
    assert!(
        again.failure().contains("(ResourceInUseException)") && again.failure().contains("green"),
        "{}",
        again.stderr
    );

    // An association in the new cluster goes with it.
    aws(
        &twin,
        DEV,
        &[
            "eks",
            "create-pod-identity-association",
            "--cluster-name",
            "green",
            "--namespace",
            "default",
            "--service-account",
            "app",
            "--role-arn",
            &arn(DEV, PRIMARY),
        ],
    )
    .await
    .expect_ok();
    let deleted = aws(&twin, DEV, &["eks", "delete-cluster", "--name", "green"])
        .await
        .expect_ok()
        .json();
    assert_eq!(deleted["cluster"]["status"], "DELETING");
    assert_eq!(deleted["cluster"]["name"], "green");
    let gone = aws(&twin, DEV, &["eks", "describe-cluster", "--name", "green"]).await;
    assert!(
        gone.failure().contains("(ResourceNotFoundException)")
            && gone.failure().contains("No cluster found for name: green."),
        "{}",
        gone.stderr
    );
    assert_eq!(
        common::wire::get(twin.addr, &discovery)
            .await
            .status
            .as_u16(),
        404,
        "a deleted cluster's issuer is no longer served"
    );
    let again = aws(&twin, DEV, &["eks", "delete-cluster", "--name", "green"]).await;
    assert!(
        again.failure().contains("(ResourceNotFoundException)"),
        "{}",
        again.stderr
    );

    // Created again under the same name, it is another cluster: a new issuer, no association.
    let blue_again = create("green").await.expect_ok().json();
    assert_ne!(
        blue_again["cluster"]["identity"]["oidc"]["issuer"],
        issuer.as_str()
    );
    let associations = aws(
        &twin,
        DEV,
        &[
            "eks",
            "list-pod-identity-associations",
            "--cluster-name",
            "green",
        ],
    )
    .await
    .expect_ok()
    .json();
    assert_eq!(associations["associations"], serde_json::json!([]));
}
