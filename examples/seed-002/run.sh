#!/usr/bin/env bash
# Seed 002, IRSA in one account, as the seed writes it (repaired where its text is garbled),
# against `rolechain up`. Run it in an empty directory after exporting the two lines `up`
# printed (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE). `rolechain` is the built binary
# ($ROLECHAIN), or `cargo run --release --` from the repository.
set -euo pipefail
rolechain() { if [ -n "${ROLECHAIN:-}" ]; then "$ROLECHAIN" "$@"; else cargo run --quiet --release -- "$@"; fi; }

# The bucket the pod will read, and a policy that grants access to it and its contents.
aws s3api create-bucket --bucket my-test-bucket >/dev/null
cat >my-test-policy.json <<POLICY
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Action": "s3:*",
      "Effect": "Allow",
      "Resource": ["arn:aws:s3:::my-test-bucket", "arn:aws:s3:::my-test-bucket/*"]
    }
  ]
}
POLICY
aws iam create-policy --policy-name my-test-policy --policy-document file://my-test-policy.json >/dev/null

# The cluster's OIDC provider (what `eksctl utils associate-iam-oidc-provider` does).
issuer=$(aws eks describe-cluster --name development-cluster --query "cluster.identity.oidc.issuer" --output text)
aws iam create-open-id-connect-provider --url "$issuer" --client-id-list sts.amazonaws.com >/dev/null

# The role, trusting the provider for the pod's service account. The twin's issuers are
# http:// on loopback, so strip either scheme (the seed's sed strips only https://).
account_id=$(aws sts get-caller-identity --query "Account" --output text)
oidc_provider=$(echo "$issuer" | sed -e 's|^https\{0,1\}://||')
cat >trust-relationship.json <<TRUST
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Principal": {"Federated": "arn:aws:iam::$account_id:oidc-provider/$oidc_provider"},
      "Action": "sts:AssumeRoleWithWebIdentity",
      "Condition": {
        "StringEquals": {
          "$oidc_provider:aud": "sts.amazonaws.com",
          "$oidc_provider:sub": "system:serviceaccount:default:my-service-account"
        }
      }
    }
  ]
}
TRUST
aws iam create-role --role-name my-test-role --assume-role-policy-document file://trust-relationship.json --description "my-irsa-role" >/dev/null
aws iam attach-role-policy --role-name my-test-role --policy-arn "arn:aws:iam::$account_id:policy/my-test-policy"

# The pod's service account, as the seed's kubectl commands make it. Before the annotation
# its pods get no credentials (the seed's permission error).
cat >service-account.yaml <<SA
apiVersion: v1
kind: ServiceAccount
metadata:
  name: my-service-account
  namespace: default
SA
rolechain cluster apply -f service-account.yaml
rolechain exec -n default --service-account my-service-account -- aws s3 ls s3://my-test-bucket || echo "denied, as the seed shows"
rolechain cluster annotate serviceaccount -n default my-service-account \
  eks.amazonaws.com/role-arn=arn:aws:iam::$account_id:role/my-test-role

# The pod (seed 002's `kubectl exec -it awscli -- …`): the webhook's variables and a projected
# token, nothing of yours. The SDK's web identity provider does the rest.
rolechain exec -n default --service-account my-service-account -- aws sts get-caller-identity --query Arn --output text
echo "Hello from the pod" | rolechain exec -n default --service-account my-service-account -- aws s3 cp - s3://my-test-bucket/hello.txt
rolechain exec -n default --service-account my-service-account -- aws s3 ls s3://my-test-bucket
