//! Seed 004 (cross-account EKS Pod Identity) with real Terraform and terraform-provider-aws
//! against `rolechain up`: the seed's two configurations, adapted only where this machine forces
//! it (each adaptation is commented in the HCL), deployed in the seed's three steps, planned
//! clean, destroyed, and the twin checked empty of all of it through the AWS CLI. A small extra
//! configuration covers `aws_iam_openid_connect_provider` and `aws_s3_bucket_policy` (not in
//! the seed) and an update of a role's tags and a bucket policy.
//!
//! Terraform never reaches the network: the provider comes from a filesystem mirror, every
//! endpoint it uses points at the twin, and the test checks in Terraform's debug log that every
//! HTTP request went to 127.0.0.1.
//!
//! Needs `terraform` on `PATH` and a mirror of `hashicorp/aws` (`$ROLECHAIN_TF_MIRROR`, then
//! the usual plugin directories); without them the test prints a `NOTICE: skipping` and
//! passes, unless `ROLECHAIN_REQUIRE_PEERS=1`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::*;

const ACCOUNT_A: &str = "111111111111";
const ACCOUNT_B: &str = "222222222222";
const CLUSTER: &str = "development-cluster";
/// The seed's `random_pet` suffix, fixed (see `ACCOUNT_B_TF`).
const BUCKET: &str = "my-cross-account-data-bucket-fixed-suffix";
const EXTRA_BUCKET: &str = "rolechain-terraform-extra";

/// Fails (peers required) or prints a notice and returns `None` (the `peers` gate).
fn missing(what: &str) -> Option<()> {
    peers::missing(&format!("terraform_seed004: {what}"))
}

/// A version directory name as numbers, for picking the newest (`5.100.0` > `5.99.1`).
fn version_key(v: &str) -> Option<Vec<u64>> {
    v.split('.').map(|p| p.parse().ok()).collect()
}

/// The newest `hashicorp/aws` in the first mirror directories that hold one:
/// `$ROLECHAIN_TF_MIRROR`, `/opt/tf-plugins`, `~/.terraform.d/plugins`,
/// `/usr/share/terraform/plugins`, `/usr/local/share/terraform/plugins`. Returns the mirror
/// directory and the version.
fn find_mirror() -> Option<(PathBuf, String)> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(d) = std::env::var("ROLECHAIN_TF_MIRROR") {
        dirs.push(d.into());
    }
    dirs.push("/opt/tf-plugins".into());
    if let Ok(home) = std::env::var("HOME") {
        dirs.push(Path::new(&home).join(".terraform.d/plugins"));
    }
    dirs.push("/usr/share/terraform/plugins".into());
    dirs.push("/usr/local/share/terraform/plugins".into());
    let mut best: Option<(Vec<u64>, PathBuf, String)> = None;
    for dir in dirs {
        let aws = dir.join("registry.terraform.io/hashicorp/aws");
        let Ok(entries) = std::fs::read_dir(&aws) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(key) = version_key(&name) else {
                continue;
            };
            // Unpacked layout: VERSION/OS_ARCH/terraform-provider-aws_*.
            if !e.path().join("linux_amd64").is_dir() {
                continue;
            }
            if best.as_ref().is_none_or(|(k, _, _)| key > *k) {
                best = Some((key, dir.clone(), name));
            }
        }
    }
    best.map(|(_, dir, version)| (dir, version))
}

/// Terraform in one working directory, isolated from the machine's set-up.
struct Terraform<'a> {
    /// The CLI configuration file (mirror and plugin cache).
    cli_config: PathBuf,
    home: &'a Path,
    logs: &'a Path,
    up: &'a Up,
}

impl Terraform<'_> {
    /// `terraform ARGS` in `dir`, debug log to `logs/LOG.log`; asserts it exited with one of
    /// `codes` and returns its output.
    #[track_caller]
    fn run(&self, dir: &Path, log: &str, args: &[&str], codes: &[i32]) -> Output {
        let out = Command::new("terraform")
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.home)
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_LOG", "DEBUG")
            .env("TF_LOG_PATH", self.logs.join(format!("{log}.log")))
            .env("AWS_CONFIG_FILE", self.up.data_dir.join("aws/config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.up.data_dir.join("aws/credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .expect("terraform runs");
        let code = out.status.code().unwrap_or(-1);
        assert!(
            codes.contains(&code),
            "terraform {args:?} in {} exited {code}\n{}\n{}",
            dir.display(),
            stdout(&out),
            stderr(&out)
        );
        out
    }
}

/// The provider block and version constraint shared by the configurations.
fn provider(profile: &str, version: &str, endpoint: &str) -> String {
    format!(
        r#"terraform {{
  required_providers {{
    aws = {{
      source = "hashicorp/aws"
      # ADAPTED: the seed asks for "~> 6.3"; this machine's mirror has {version}.
      version = "{version}"
    }}
    # ADAPTED: the seed's hashicorp/kubernetes provider is not declared: there is no
    # Kubernetes API server here (the pod part of the seed is another issue).
  }}
}}

provider "aws" {{
  region = var.region
  # ADAPTED: the seed relies on "your CLI is authenticated to the account"; here the account
  # is the profile `rolechain up` wrote (AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE).
  profile = "{profile}"
  # ADAPTED: every endpoint the provider uses is the twin, and nothing else is asked.
  endpoints {{
    iam = "{endpoint}"
    sts = "{endpoint}"
    s3  = "{endpoint}"
    eks = "{endpoint}"
  }}
  s3_use_path_style       = true
  skip_metadata_api_check = true
}}
"#
    )
}

/// Seed 004's `account-a/main.tf`, adapted as commented; `@TARGET@` is the association's
/// `target_role_arn` line with a 6.x provider, nothing with 5.x.
const ACCOUNT_A_TF: &str = r#"
variable "region" {
  description = "The AWS region where your EKS cluster is located."
  type        = string
  default     = "us-east-1"
}

variable "eks_cluster_name" {
  description = "The name of your existing EKS cluster."
  type        = string
  default     = "my-eks-cluster" # <-- Replace with your cluster name
}

variable "account_b_id" {
  description = "The AWS Account ID where the S3 bucket and target role exist."
  type        = string
  default     = "222222222222" # <-- Replace with the ID of Account B
}

variable "data_bucket_name" {
  description = "The name of the S3 bucket in Account B."
  type        = string
  default     = "the-bucket-name-from-account-b-output" # <-- Replace with the output from the Account B deployment
}

# The "EKS Pod Identity Role" (Primary Role) in Account A.
resource "aws_iam_role" "primary_role" {
  name = "eks-pod-identity-primary-role"

  # This role must trust the EKS Pod Identity service with both actions.
  assume_role_policy = jsonencode({
    Version = "2012-10-17",
    Statement = [
      {
        Effect = "Allow",
        Principal = {
          Service = "pods.eks.amazonaws.com"
        },
        Action = [
          "sts:AssumeRole",
          "sts:TagSession"
        ]
      },
    ]
  })
}

# Policy granting the Primary Role permission to assume the Target Role.
resource "aws_iam_policy" "assume_target_role_policy" {
  name = "allow-assume-s3-reader-target-role"
  policy = jsonencode({
    Version = "2012-10-17",
    Statement = [
      {
        Effect   = "Allow",
        Action   = ["sts:AssumeRole", "sts:TagSession"],
        Resource = "arn:aws:iam::${var.account_b_id}:role/s3-reader-target-role"
      }
    ]
  })
}

resource "aws_iam_role_policy_attachment" "primary_role_attachment" {
  role       = aws_iam_role.primary_role.name
  policy_arn = aws_iam_policy.assume_target_role_policy.arn
}

resource "aws_eks_pod_identity_association" "cross_account" {
  cluster_name    = var.eks_cluster_name
  namespace       = "my-app-namespace"
  service_account = "my-app-sa"
  role_arn        = aws_iam_role.primary_role.arn
@TARGET@}

# ADAPTED: the seed's kubernetes_namespace, kubernetes_service_account and kubernetes_pod
# resources are left out: there is no Kubernetes API server here.
"#;

/// Seed 004's `account-b/main.tf`, adapted as commented.
const ACCOUNT_B_TF: &str = r#"
variable "region" {
  description = "The AWS region for the resources."
  type        = string
  default     = "us-east-1"
}

variable "account_a_id" {
  description = "The AWS Account ID where the EKS cluster resides."
  type        = string
  default     = "111111111111" # <-- Replace with the ID of Account A
}

# ADAPTED: the seed's random_pet.bucket_suffix is a fixed suffix: hashicorp/random is not in
# this machine's mirror.
resource "aws_s3_bucket" "data_bucket" {
  bucket = "my-cross-account-data-bucket-fixed-suffix"
}

resource "aws_iam_role" "target_role" {
  name = "s3-reader-target-role"

  assume_role_policy = jsonencode({
    Version = "2012-10-17",
    Statement = [
      {
        Effect = "Allow",
        Principal = {
          AWS = "arn:aws:iam::${var.account_a_id}:role/eks-pod-identity-primary-role"
        },
        Action = ["sts:AssumeRole"]
      },
      {
        Effect = "Allow",
        Principal = {
          AWS = "arn:aws:iam::${var.account_a_id}:role/eks-pod-identity-primary-role"
        },
        Action = ["sts:TagSession"]
      }
    ]
  })
}

resource "aws_iam_policy" "s3_read_policy" {
  name = "s3-read-only-for-target-role"
  policy = jsonencode({
    Version = "2012-10-17",
    Statement = [
      {
        Action   = ["s3:GetObject", "s3:ListBucket"],
        Effect   = "Allow",
        Resource = [
          aws_s3_bucket.data_bucket.arn,
          "${aws_s3_bucket.data_bucket.arn}/*"
        ]
      }
    ]
  })
}

resource "aws_iam_role_policy_attachment" "target_role_attachment" {
  role       = aws_iam_role.target_role.name
  policy_arn = aws_iam_policy.s3_read_policy.arn
}

output "data_bucket_name" {
  description = "The name of the cross-account S3 data bucket."
  value       = aws_s3_bucket.data_bucket.bucket
}
"#;

/// Not in the seed: an OIDC provider, a role trusting it, a bucket and its policy, with
/// variables to update the role's tags and the policy's resource.
const EXTRA_TF: &str = r#"
variable "region" {
  type    = string
  default = "us-east-1"
}

variable "revision" {
  type    = string
  default = "v1"
}

variable "readable" {
  type    = string
  default = "pics/*"
}

resource "aws_iam_openid_connect_provider" "cluster" {
  url             = "https://oidc.rolechain.test/id/EXAMPLE"
  client_id_list  = ["sts.amazonaws.com"]
  thumbprint_list = ["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"]
}

resource "aws_iam_role" "reader" {
  name = "extra-reader"
  assume_role_policy = jsonencode({
    Version = "2012-10-17",
    Statement = [{
      Effect    = "Allow",
      Principal = { Federated = aws_iam_openid_connect_provider.cluster.arn },
      Action    = "sts:AssumeRoleWithWebIdentity",
      Condition = { StringEquals = { "oidc.rolechain.test/id/EXAMPLE:aud" = "sts.amazonaws.com" } }
    }]
  })
  tags = { revision = var.revision }
}

resource "aws_s3_bucket" "extra" {
  bucket = "rolechain-terraform-extra"
}

resource "aws_s3_bucket_policy" "extra" {
  bucket = aws_s3_bucket.extra.id
  policy = jsonencode({
    Version = "2012-10-17",
    Statement = [{
      Effect    = "Allow",
      Principal = { AWS = aws_iam_role.reader.arn },
      Action    = "s3:GetObject",
      Resource  = "${aws_s3_bucket.extra.arn}/${var.readable}"
    }]
  })
}
"#;

/// Every HTTP request the provider logged went to the twin on loopback.
fn assert_only_loopback(logs: &Path) {
    let mut sent = 0;
    for entry in std::fs::read_dir(logs).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        sent += text.matches("HTTP Request Sent").count();
        for peer in text.split("net.peer.name=").skip(1) {
            let host = peer.split_whitespace().next().unwrap_or_default();
            assert_eq!(
                host,
                "127.0.0.1",
                "a request to {host} in {}",
                entry.path().display()
            );
        }
        let peers = text.matches("net.peer.name=").count();
        assert_eq!(
            peers,
            text.matches("HTTP Request Sent").count(),
            "a request without its peer in {}",
            entry.path().display()
        );
    }
    assert!(sent > 50, "the logs show only {sent} requests");
}

/// The AWS error code of a failed CLI call.
fn error_code(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure: {}", stdout(out));
    let err = stderr(out);
    err.split("An error occurred (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("no error code in {err}"))
        .to_string()
}

#[test]
fn seed_004_terraform_round_trip() {
    let version_ok = Command::new("terraform")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !version_ok {
        missing("terraform is not on PATH");
        return;
    }
    let Some((mirror, version)) = find_mirror() else {
        missing("no hashicorp/aws provider in a filesystem mirror");
        return;
    };
    let dir = TempDir::new("terraform-seed004");
    let up = Up::start(&dir.path().join("data"), &[]);
    if python().is_none() {
        return;
    }
    let root = dir.path();
    let logs = root.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    // One plugin cache for every working directory (and every run of this test).
    let cache = std::env::temp_dir().join("rolechain-terraform-plugin-cache");
    std::fs::create_dir_all(&cache).unwrap();
    let cli_config = root.join("terraform.rc");
    std::fs::write(
        &cli_config,
        format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"registry.terraform.io/*/*\"]\n  }}\n}}\nplugin_cache_dir = \"{}\"\n",
            mirror.display(),
            cache.display()
        ),
    )
    .unwrap();
    let tf = Terraform {
        cli_config,
        home: root,
        logs: &logs,
        up: &up,
    };
    // 6.2+ has the association's target_role_arn; with 5.x the CLI sets it after apply.
    let native_target = version_key(&version).is_some_and(|k| k >= vec![6, 2]);
    let target_arn = format!("arn:aws:iam::{ACCOUNT_B}:role/s3-reader-target-role");
    let endpoint = up.base_url.clone();

    let write = |name: &str, profile: &str, main: &str| -> PathBuf {
        let d = root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("provider.tf"),
            provider(profile, &version, &endpoint),
        )
        .unwrap();
        std::fs::write(d.join("main.tf"), main).unwrap();
        d
    };
    let target_line = if native_target {
        "  target_role_arn = \"arn:aws:iam::${var.account_b_id}:role/s3-reader-target-role\"\n"
            .to_string()
    } else {
        "  # ADAPTED: target_role_arn needs provider 6.2+; with this mirror's 5.x the test\n  # sets it with `aws eks update-pod-identity-association --target-role-arn`.\n"
            .to_string()
    };
    let account_a = write(
        "account-a",
        "developer",
        &ACCOUNT_A_TF.replace("@TARGET@", &target_line),
    );
    let account_b = write("account-b", "shared_content", ACCOUNT_B_TF);
    let extra = write("extra", "shared_content", EXTRA_TF);
    for (d, log) in [
        (&account_a, "a-init"),
        (&account_b, "b-init"),
        (&extra, "x-init"),
    ] {
        tf.run(d, log, &["init", "-input=false", "-no-color"], &[0]);
    }
    let apply = ["apply", "-auto-approve", "-input=false", "-no-color"];
    let a_vars = [
        "-var",
        &format!("data_bucket_name={BUCKET}"),
        "-var",
        &format!("eks_cluster_name={CLUSTER}"),
    ]
    .map(str::to_string);
    let with = |base: &[&str], extra: &[String]| -> Vec<String> {
        base.iter()
            .map(|s| s.to_string())
            .chain(extra.iter().cloned())
            .collect()
    };
    let run = |d: &Path, log: &str, args: &[String], codes: &[i32]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        tf.run(d, log, &args, codes)
    };

    // Step 1: the primary role alone.
    run(
        &account_a,
        "a-apply-target",
        &with(&apply, &["-target=aws_iam_role.primary_role".to_string()]),
        &[0],
    );
    // Step 2: account B, whose target role trusts the primary role.
    let b = run(&account_b, "b-apply", &with(&apply, &[]), &[0]);
    assert!(stdout(&b).contains(BUCKET), "{}", stdout(&b));
    // Step 3: the rest of account A.
    run(&account_a, "a-apply", &with(&apply, &a_vars), &[0]);

    let associations = ok_json(up.aws(
        Some("developer"),
        &[
            "eks",
            "list-pod-identity-associations",
            "--cluster-name",
            CLUSTER,
        ],
    ));
    let list = associations["associations"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{associations}");
    let id = list[0]["associationId"].as_str().unwrap().to_string();
    if !native_target {
        ok_json(up.aws(
            Some("developer"),
            &[
                "eks",
                "update-pod-identity-association",
                "--cluster-name",
                CLUSTER,
                "--association-id",
                &id,
                "--target-role-arn",
                &target_arn,
            ],
        ));
    }
    let described = ok_json(up.aws(
        Some("developer"),
        &[
            "eks",
            "describe-pod-identity-association",
            "--cluster-name",
            CLUSTER,
            "--association-id",
            &id,
        ],
    ));
    assert_eq!(
        described["association"]["targetRoleArn"],
        target_arn.as_str()
    );
    assert_eq!(
        described["association"]["roleArn"],
        format!("arn:aws:iam::{ACCOUNT_A}:role/eks-pod-identity-primary-role").as_str()
    );
    let attached = ok_json(up.aws(
        Some("shared_content"),
        &[
            "iam",
            "list-attached-role-policies",
            "--role-name",
            "s3-reader-target-role",
        ],
    ));
    assert_eq!(
        attached["AttachedPolicies"][0]["PolicyName"],
        "s3-read-only-for-target-role"
    );

    // Nothing left to change in either account.
    let plan = ["plan", "-detailed-exitcode", "-input=false", "-no-color"];
    run(&account_a, "a-plan", &with(&plan, &a_vars), &[0]);
    run(&account_b, "b-plan", &with(&plan, &[]), &[0]);

    // The extra configuration: create, update a role's tags and the bucket policy, plan clean.
    run(&extra, "x-apply", &with(&apply, &[]), &[0]);
    let update = [
        "-var".to_string(),
        "revision=v2".to_string(),
        "-var".to_string(),
        "readable=docs/*".to_string(),
    ];
    run(&extra, "x-plan-changes", &with(&plan, &update), &[2]);
    let updated = run(&extra, "x-update", &with(&apply, &update), &[0]);
    assert!(
        stdout(&updated).contains("0 added, 2 changed, 0 destroyed"),
        "{}",
        stdout(&updated)
    );
    run(&extra, "x-plan", &with(&plan, &update), &[0]);
    let tags = ok_json(up.aws(
        Some("shared_content"),
        &["iam", "list-role-tags", "--role-name", "extra-reader"],
    ));
    assert_eq!(
        tags["Tags"],
        serde_json::json!([{"Key": "revision", "Value": "v2"}])
    );
    let policy = ok_json(up.aws(
        Some("shared_content"),
        &["s3api", "get-bucket-policy", "--bucket", EXTRA_BUCKET],
    ));
    assert!(
        policy["Policy"].as_str().unwrap().contains("docs/*"),
        "{policy}"
    );

    // Destroy, account A first.
    let destroy = ["destroy", "-auto-approve", "-input=false", "-no-color"];
    run(&account_a, "a-destroy", &with(&destroy, &a_vars), &[0]);
    run(&account_b, "b-destroy", &with(&destroy, &[]), &[0]);
    run(&extra, "x-destroy", &with(&destroy, &update), &[0]);

    // The twin holds nothing of it.
    for (profile, role) in [
        ("developer", "eks-pod-identity-primary-role"),
        ("shared_content", "s3-reader-target-role"),
        ("shared_content", "extra-reader"),
    ] {
        let out = up
            .aws(Some(profile), &["iam", "get-role", "--role-name", role])
            .unwrap();
        assert_eq!(error_code(&out), "NoSuchEntity", "{role}");
    }
    for (profile, account, name) in [
        ("developer", ACCOUNT_A, "allow-assume-s3-reader-target-role"),
        ("shared_content", ACCOUNT_B, "s3-read-only-for-target-role"),
    ] {
        let out = up
            .aws(
                Some(profile),
                &[
                    "iam",
                    "get-policy",
                    "--policy-arn",
                    &format!("arn:aws:iam::{account}:policy/{name}"),
                ],
            )
            .unwrap();
        assert_eq!(error_code(&out), "NoSuchEntity", "{name}");
    }
    let local = ok_json(up.aws(
        Some("shared_content"),
        &["iam", "list-policies", "--scope", "Local"],
    ));
    assert_eq!(local["Policies"], serde_json::json!([]), "{local}");
    let providers = ok_json(up.aws(
        Some("shared_content"),
        &["iam", "list-open-id-connect-providers"],
    ));
    assert!(
        !providers.to_string().contains("oidc.rolechain.test"),
        "{providers}"
    );
    let associations = ok_json(up.aws(
        Some("developer"),
        &[
            "eks",
            "list-pod-identity-associations",
            "--cluster-name",
            CLUSTER,
        ],
    ));
    assert_eq!(
        associations["associations"],
        serde_json::json!([]),
        "{associations}"
    );
    let buckets = ok_json(up.aws(Some("shared_content"), &["s3api", "list-buckets"]));
    for gone in [BUCKET, EXTRA_BUCKET] {
        assert!(!buckets.to_string().contains(gone), "{buckets}");
        let out = up
            .aws(
                Some("shared_content"),
                &["s3api", "head-bucket", "--bucket", gone],
            )
            .unwrap();
        assert!(!out.status.success(), "{gone} still answers HeadBucket");
    }

    assert_only_loopback(&logs);
}
