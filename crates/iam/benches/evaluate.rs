//! Criterion benchmarks of the policy engine's hot paths.
//!
//! * `evaluate/10-statements-no-conditions`: a realistic ten-statement identity policy (S3,
//!   DynamoDB, SQS, STS, KMS, EC2 with wildcards in actions and resources), evaluated for an
//!   assumed-role session; the seventh statement allows the request.
//! * `evaluate/10-statements-with-conditions`: the same shape with one to three conditions per
//!   statement (`StringEquals` on principal tags, `IpAddress`, `StringLike`, `DateLessThan`,
//!   `Bool`); four statements match on action and resource so their conditions are evaluated,
//!   some passing and some failing.
//! * `parse/6kb-policy`: parsing and compiling a ~6 KB customer managed policy (just under the
//!   6,144-character `PolicySize` quota).
//!
//! Measurement times are kept short so `cargo bench -p iam` finishes quickly on a small machine.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use iam::{
    evaluate, policy_size, Decision, NamedPolicy, Policy, PolicyKind, PolicySet, Principal, Reason,
    RequestContext, Verdict,
};
use time::macros::datetime;

/// Ten statements, no conditions. The request (`s3:GetObject` on a `pics/` key) is allowed by
/// statement 6 (`ReadPics`); statement 1 matches the action but not the resource.
const NO_CONDITIONS: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "ListBuckets", "Effect": "Allow",
     "Action": ["s3:ListAllMyBuckets", "s3:GetBucketLocation"], "Resource": "*"},
    {"Sid": "Artifacts", "Effect": "Allow",
     "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
     "Resource": ["arn:aws:s3:::platform-artifacts-*/builds/*", "arn:aws:s3:::platform-cache/*"]},
    {"Sid": "Orders", "Effect": "Allow",
     "Action": ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"],
     "Resource": ["arn:aws:dynamodb:us-east-1:111122223333:table/orders",
                  "arn:aws:dynamodb:us-east-1:111122223333:table/orders/index/*"]},
    {"Sid": "Streams", "Effect": "Allow",
     "Action": ["dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:Describe*"],
     "Resource": "arn:aws:dynamodb:*:111122223333:table/*/stream/*"},
    {"Sid": "Queues", "Effect": "Allow",
     "Action": ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueue*"],
     "Resource": "arn:aws:sqs:*:111122223333:platform-jobs-*"},
    {"Sid": "AssumeDeploy", "Effect": "Allow",
     "Action": ["sts:AssumeRole", "sts:TagSession"],
     "Resource": ["arn:aws:iam::111122223333:role/platform-deploy-*",
                  "arn:aws:iam::444455556666:role/platform-deploy-*"]},
    {"Sid": "ReadPics", "Effect": "Allow",
     "Action": ["s3:Get*", "s3:List*"],
     "Resource": ["arn:aws:s3:::pics", "arn:aws:s3:::pics/*"]},
    {"Sid": "Keys", "Effect": "Allow",
     "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
     "Resource": "arn:aws:kms:*:111122223333:key/*"},
    {"Sid": "Describe", "Effect": "Allow",
     "Action": ["ec2:Describe*", "ecs:List*", "ecs:Describe*", "cloudwatch:GetMetricData"],
     "Resource": "*"},
    {"Sid": "DenyIamWrites", "Effect": "Deny",
     "Action": ["iam:Create*", "iam:Delete*", "iam:Put*", "iam:Attach*"],
     "Resource": "*"}
  ]
}"#;

/// The same shape with conditions. Statements 6 to 9 match on action and resource, so their
/// conditions run: 6 passes all three (and allows), 7 fails its tag condition, 8 (a deny on
/// insecure transport) and 9 (a deny outside the office network) fail theirs and do not apply.
const WITH_CONDITIONS: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "ListBuckets", "Effect": "Allow",
     "Action": ["s3:ListAllMyBuckets", "s3:GetBucketLocation"], "Resource": "*",
     "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
    {"Sid": "Artifacts", "Effect": "Allow",
     "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
     "Resource": ["arn:aws:s3:::platform-artifacts-*/builds/*", "arn:aws:s3:::platform-cache/*"],
     "Condition": {"StringEquals": {"aws:PrincipalTag/team": ["platform", "release"]}}},
    {"Sid": "Orders", "Effect": "Allow",
     "Action": ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"],
     "Resource": ["arn:aws:dynamodb:us-east-1:111122223333:table/orders",
                  "arn:aws:dynamodb:us-east-1:111122223333:table/orders/index/*"],
     "Condition": {"StringEquals": {"aws:PrincipalTag/team": "orders"},
                   "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
    {"Sid": "Streams", "Effect": "Allow",
     "Action": ["dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:Describe*"],
     "Resource": "arn:aws:dynamodb:*:111122223333:table/*/stream/*",
     "Condition": {"DateLessThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"}}},
    {"Sid": "Queues", "Effect": "Allow",
     "Action": ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueue*"],
     "Resource": "arn:aws:sqs:*:111122223333:platform-jobs-*",
     "Condition": {"StringLike": {"aws:userid": "AROA*:pod-*"}}},
    {"Sid": "AssumeDeploy", "Effect": "Allow",
     "Action": ["sts:AssumeRole", "sts:TagSession"],
     "Resource": ["arn:aws:iam::111122223333:role/platform-deploy-*",
                  "arn:aws:iam::444455556666:role/platform-deploy-*"],
     "Condition": {"StringEquals": {"aws:PrincipalTag/team": "platform"},
                   "DateLessThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"},
                   "IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.0/24"]}}},
    {"Sid": "ReadPics", "Effect": "Allow",
     "Action": ["s3:Get*", "s3:List*"],
     "Resource": ["arn:aws:s3:::pics", "arn:aws:s3:::pics/*"],
     "Condition": {"StringEquals": {"aws:PrincipalTag/team": "platform"},
                   "IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.0/24"]},
                   "DateLessThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"}}},
    {"Sid": "WritePics", "Effect": "Allow",
     "Action": "s3:*",
     "Resource": "arn:aws:s3:::pics/*",
     "Condition": {"StringEquals": {"aws:PrincipalTag/team": "media"},
                   "StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/media-*"}}},
    {"Sid": "DenyInsecure", "Effect": "Deny",
     "Action": "s3:*",
     "Resource": "*",
     "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    {"Sid": "DenyOffNetwork", "Effect": "Deny",
     "Action": "*",
     "Resource": "*",
     "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.0/24"]},
                   "StringNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/break-glass-*"}}}
  ]
}"#;

/// A customer managed policy just under the 6,144-character quota.
const MANAGED_6KB: &str = r#"{
  "Version": "2012-10-17",
  "Id": "PlatformWorkloadAccessV3",
  "Statement": [
    {
      "Sid": "ListBucketsForConsole",
      "Effect": "Allow",
      "Action": ["s3:ListAllMyBuckets", "s3:GetBucketLocation", "s3:GetAccountPublicAccessBlock"],
      "Resource": "*"
    },
    {
      "Sid": "ReadWriteApplicationArtifacts",
      "Effect": "Allow",
      "Action": [
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:GetObjectTagging",
        "s3:PutObject",
        "s3:PutObjectTagging",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts"
      ],
      "Resource": [
        "arn:aws:s3:::platform-artifacts-111122223333-us-east-1/builds/*",
        "arn:aws:s3:::platform-artifacts-111122223333-us-west-2/builds/*",
        "arn:aws:s3:::platform-artifacts-111122223333-eu-west-1/builds/*"
      ],
      "Condition": {
        "StringEquals": {"aws:PrincipalTag/team": ["platform", "release-engineering"]},
        "Bool": {"aws:SecureTransport": "true"}
      }
    },
    {
      "Sid": "ListArtifactPrefixes",
      "Effect": "Allow",
      "Action": ["s3:ListBucket", "s3:ListBucketVersions", "s3:ListBucketMultipartUploads"],
      "Resource": [
        "arn:aws:s3:::platform-artifacts-111122223333-us-east-1",
        "arn:aws:s3:::platform-artifacts-111122223333-us-west-2",
        "arn:aws:s3:::platform-artifacts-111122223333-eu-west-1"
      ],
      "Condition": {
        "StringLike": {"s3:prefix": ["builds/*", "releases/${aws:PrincipalTag/team}/*", ""]}
      }
    },
    {
      "Sid": "PerUserHomeDirectory",
      "Effect": "Allow",
      "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
      "Resource": "arn:aws:s3:::platform-home-111122223333/home/${aws:username}/*"
    },
    {
      "Sid": "OrdersTableReadWrite",
      "Effect": "Allow",
      "Action": [
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:Scan",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:ConditionCheckItem",
        "dynamodb:DescribeTable"
      ],
      "Resource": [
        "arn:aws:dynamodb:us-east-1:111122223333:table/orders",
        "arn:aws:dynamodb:us-east-1:111122223333:table/orders/index/*",
        "arn:aws:dynamodb:us-west-2:111122223333:table/orders",
        "arn:aws:dynamodb:us-west-2:111122223333:table/orders/index/*"
      ],
      "Condition": {
        "ForAllValues:StringEquals": {"dynamodb:Attributes": ["orderId", "customerId", "status", "total", "createdAt", "updatedAt"]},
        "StringEqualsIfExists": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"}
      }
    },
    {
      "Sid": "StreamsForOrders",
      "Effect": "Allow",
      "Action": ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"],
      "Resource": "arn:aws:dynamodb:*:111122223333:table/orders/stream/*"
    },
    {
      "Sid": "JobQueues",
      "Effect": "Allow",
      "Action": [
        "sqs:SendMessage",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl"
      ],
      "Resource": [
        "arn:aws:sqs:us-east-1:111122223333:platform-jobs-*",
        "arn:aws:sqs:us-west-2:111122223333:platform-jobs-*"
      ]
    },
    {
      "Sid": "PublishEvents",
      "Effect": "Allow",
      "Action": ["sns:Publish", "events:PutEvents"],
      "Resource": [
        "arn:aws:sns:*:111122223333:platform-*",
        "arn:aws:events:*:111122223333:event-bus/platform"
      ]
    },
    {
      "Sid": "DecryptWithAppKeys",
      "Effect": "Allow",
      "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
      "Resource": "arn:aws:kms:*:111122223333:key/*",
      "Condition": {
        "StringLike": {"kms:ViaService": ["s3.*.amazonaws.com", "dynamodb.*.amazonaws.com", "sqs.*.amazonaws.com"]},
        "StringEquals": {"kms:CallerAccount": "111122223333"}
      }
    },
    {
      "Sid": "ReadAppSecrets",
      "Effect": "Allow",
      "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret", "ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
      "Resource": [
        "arn:aws:secretsmanager:*:111122223333:secret:platform/*",
        "arn:aws:ssm:*:111122223333:parameter/platform/*"
      ]
    },
    {
      "Sid": "AssumeDeployRoles",
      "Effect": "Allow",
      "Action": ["sts:AssumeRole", "sts:TagSession"],
      "Resource": [
        "arn:aws:iam::111122223333:role/platform-deploy-*",
        "arn:aws:iam::444455556666:role/platform-deploy-*"
      ],
      "Condition": {
        "StringEquals": {"aws:PrincipalTag/team": "platform"},
        "DateLessThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"},
        "IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.0.2.0/24"]}
      }
    },
    {
      "Sid": "WriteLogs",
      "Effect": "Allow",
      "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
      "Resource": "arn:aws:logs:*:111122223333:log-group:/platform/*"
    },
    {
      "Sid": "ReadOnlyDescribe",
      "Effect": "Allow",
      "Action": ["ec2:Describe*", "ecs:Describe*", "ecs:List*", "eks:DescribeCluster", "eks:ListClusters", "cloudwatch:GetMetricData", "cloudwatch:ListMetrics"],
      "Resource": "*"
    },
    {
      "Sid": "PullContainerImages",
      "Effect": "Allow",
      "Action": [
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchGetImage",
        "ecr:DescribeImages"
      ],
      "Resource": "*"
    },
    {
      "Sid": "InvokePlatformFunctions",
      "Effect": "Allow",
      "Action": ["lambda:InvokeFunction", "lambda:GetFunction", "lambda:GetFunctionConfiguration"],
      "Resource": [
        "arn:aws:lambda:us-east-1:111122223333:function:platform-*",
        "arn:aws:lambda:us-west-2:111122223333:function:platform-*"
      ],
      "Condition": {
        "StringEquals": {"aws:ResourceTag/owner": "${aws:PrincipalTag/team}"}
      }
    },
    {
      "Sid": "RunStateMachines",
      "Effect": "Allow",
      "Action": ["states:StartExecution", "states:DescribeExecution", "states:StopExecution"],
      "Resource": [
        "arn:aws:states:*:111122223333:stateMachine:platform-*",
        "arn:aws:states:*:111122223333:execution:platform-*:*"
      ]
    },
    {
      "Sid": "PutCustomMetrics",
      "Effect": "Allow",
      "Action": "cloudwatch:PutMetricData",
      "Resource": "*",
      "Condition": {"StringLike": {"cloudwatch:namespace": ["Platform/*", "Custom/${aws:PrincipalTag/team}/*"]}}
    },
    {
      "Sid": "ReadBuildCache",
      "Effect": "Allow",
      "Action": ["codeartifact:GetAuthorizationToken", "codeartifact:ReadFromRepository", "codeartifact:ListPackages"],
      "Resource": "arn:aws:codeartifact:us-east-1:111122223333:*/platform/*"
    },
    {
      "Sid": "DenyOutsideApprovedRegions",
      "Effect": "Deny",
      "NotAction": ["iam:*", "sts:*", "s3:ListAllMyBuckets", "cloudfront:*", "route53:*", "support:*"],
      "Resource": "*",
      "Condition": {
        "StringNotEquals": {"aws:RequestedRegion": ["us-east-1", "us-west-2", "eu-west-1"]}
      }
    },
    {
      "Sid": "DenyInsecureTransport",
      "Effect": "Deny",
      "Action": "s3:*",
      "Resource": "*",
      "Condition": {"Bool": {"aws:SecureTransport": "false"}}
    },
    {
      "Sid": "DenyIamChanges",
      "Effect": "Deny",
      "Action": ["iam:Create*", "iam:Delete*", "iam:Put*", "iam:Attach*", "iam:Detach*", "iam:Update*"],
      "Resource": "*"
    }
  ]
}"#;

/// An EKS pod's role session with the usual global keys set.
fn request() -> RequestContext {
    let mut ctx = RequestContext::new(
        Principal::AssumedRole {
            session_arn: "arn:aws:sts::111122223333:assumed-role/platform-app/pod-7f9c4d".into(),
            role_arn: "arn:aws:iam::111122223333:role/platform-app".into(),
            account: "111122223333".into(),
            role_unique_id: Some("AROAEXAMPLEROLEID0001".into()),
        },
        "s3:GetObject",
        "arn:aws:s3:::pics/2024/05/indoor-cat.jpg",
    );
    let tags = BTreeMap::from([
        ("team".to_string(), "platform".to_string()),
        ("cost-center".to_string(), "cc-1042".to_string()),
    ]);
    ctx.set_principal_tags(&tags)
        .set_source_ip("10.20.30.40".parse().expect("ip"))
        .set_time(datetime!(2026-05-01 12:00:00 UTC))
        .set("aws:SecureTransport", "true")
        .set("aws:RequestedRegion", "us-east-1")
        .set_resource_account("111122223333");
    ctx
}

fn identity(name: &str, text: &str) -> Vec<NamedPolicy> {
    let policy = Policy::parse(text, PolicyKind::Identity).expect("benchmark policy parses");
    assert_eq!(policy.statements.len(), 10, "{name} has ten statements");
    vec![NamedPolicy::new(name, policy)]
}

/// Checks that the benchmark measures what it claims: allowed by statement 6.
fn assert_allowed_by_read_pics(decision: &Decision) {
    assert_eq!(decision.verdict, Verdict::Allow, "{decision:#?}");
    match &decision.reason {
        Reason::IdentityPolicyAllows { by } => assert_eq!(by.statement, 6),
        other => panic!("unexpected reason {other:?}"),
    }
}

fn bench_evaluate(c: &mut Criterion) {
    let ctx = request();
    let plain = identity("platform-app-plain", NO_CONDITIONS);
    let conditional = identity("platform-app-conditional", WITH_CONDITIONS);
    let plain_set = PolicySet {
        identity: &plain,
        ..Default::default()
    };
    let conditional_set = PolicySet {
        identity: &conditional,
        ..Default::default()
    };
    assert_allowed_by_read_pics(&evaluate(&plain_set, &ctx));
    let decision = evaluate(&conditional_set, &ctx);
    assert_allowed_by_read_pics(&decision);
    // Statements 6..=9 reach their conditions; 7, 8 and 9 fail one.
    let failed_on_condition = decision.policies[0]
        .statements
        .iter()
        .filter(|s| matches!(s.failed, Some(iam::Mismatch::Condition(_))))
        .count();
    assert_eq!(failed_on_condition, 3, "{decision:#?}");

    let mut group = c.benchmark_group("evaluate");
    group
        .throughput(Throughput::Elements(1))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    group.bench_function("10-statements-no-conditions", |b| {
        b.iter(|| evaluate(black_box(&plain_set), black_box(&ctx)))
    });
    group.bench_function("10-statements-with-conditions", |b| {
        b.iter(|| evaluate(black_box(&conditional_set), black_box(&ctx)))
    });
    group.finish();
}

fn bench_parse(c: &mut Criterion) {
    let size = policy_size(MANAGED_6KB);
    assert!(
        (5_900..=6_144).contains(&size),
        "the managed policy is {size} characters, not ~6 KB"
    );
    Policy::parse(MANAGED_6KB, PolicyKind::Identity).expect("managed policy parses");

    let mut group = c.benchmark_group("parse");
    group
        .throughput(Throughput::Elements(1))
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    group.bench_function("6kb-policy", |b| {
        b.iter(|| Policy::parse(black_box(MANAGED_6KB), PolicyKind::Identity))
    });
    group.finish();
}

criterion_group!(benches, bench_evaluate, bench_parse);
criterion_main!(benches);
