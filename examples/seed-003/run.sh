#!/usr/bin/env bash
# Seed 003 (Amazon EKS's "Authenticate to another account with IRSA"), both methods, against
# `rolechain up`: account A is the developer account (111111111111, which owns the cluster),
# account B is shared_content (222222222222). Run it in an empty directory after exporting the
# two lines `up` printed. `rolechain` is the built binary ($ROLECHAIN), or
# `cargo run --release --` from the repository.
set -euo pipefail
rolechain() { if [ -n "${ROLECHAIN:-}" ]; then "$ROLECHAIN" "$@"; else cargo run --quiet --release -- "$@"; fi; }

issuer=$(aws eks describe-cluster --name development-cluster --query "cluster.identity.oidc.issuer" --output text)
oidc_provider=$(echo "$issuer" | sed -e 's|^https\{0,1\}://||')

# Method 1, an identity provider from another account's cluster: account B creates an OIDC
# provider for account A's issuer and a role trusting it; account A's cluster administrator
# annotates the service account with account B's role.
aws iam create-open-id-connect-provider --profile shared_content --url "$issuer" --client-id-list sts.amazonaws.com >/dev/null
aws iam create-role --profile shared_content --role-name account-b-role --assume-role-policy-document "$(cat <<TRUST
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Principal": {"Federated": "arn:aws:iam::222222222222:oidc-provider/$oidc_provider"},
  "Action": "sts:AssumeRoleWithWebIdentity",
  "Condition": {"StringEquals": {"$oidc_provider:sub": "system:serviceaccount:default:method-one",
                                 "$oidc_provider:aud": "sts.amazonaws.com"}}}]}
TRUST
)" >/dev/null
aws iam put-role-policy --profile shared_content --role-name account-b-role --policy-name pics --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}]}'
cat >method-one.yaml <<SA
apiVersion: v1
kind: ServiceAccount
metadata:
  name: method-one
  namespace: default
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::222222222222:role/account-b-role
SA
rolechain cluster apply -f method-one.yaml
rolechain exec -n default --service-account method-one -- aws sts get-caller-identity --query Arn --output text

# Method 2, chained AssumeRole: account B's role trusts account A (its root, as the seed
# writes it); account A's role trusts the cluster's provider and may assume account B's role.
aws iam create-open-id-connect-provider --url "$issuer" --client-id-list sts.amazonaws.com >/dev/null
aws iam create-role --profile shared_content --role-name account-b-chained --assume-role-policy-document \
  '{ "Version": "2012-10-17", "Statement": [ { "Effect": "Allow", "Principal": { "AWS": "arn:aws:iam::111111111111:root" }, "Action": "sts:AssumeRole", "Condition": {} } ] }' >/dev/null
aws iam put-role-policy --profile shared_content --role-name account-b-chained --policy-name pics --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}]}'
aws iam create-role --role-name account-a-role --assume-role-policy-document \
  "{ \"Version\": \"2012-10-17\", \"Statement\": [ { \"Effect\": \"Allow\", \"Principal\": { \"Federated\": \"arn:aws:iam::111111111111:oidc-provider/$oidc_provider\" }, \"Action\": \"sts:AssumeRoleWithWebIdentity\" } ] }" >/dev/null
aws iam put-role-policy --role-name account-a-role --policy-name assume-account-b --policy-document \
  '{ "Version": "2012-10-17", "Statement": [ { "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "arn:aws:iam::222222222222:role/account-b-chained" } ] }'
cat >method-two.yaml <<SA
apiVersion: v1
kind: ServiceAccount
metadata:
  name: method-two
  namespace: default
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::111111111111:role/account-a-role
SA
rolechain cluster apply -f method-two.yaml

# The pod's application uses two profiles, account_b_role with account_a_role as its source,
# in ~/.aws/config as the seed shows it (the token file is where the pod's token is).
rolechain exec -n default --service-account method-two -- bash -c '
  set -euo pipefail
  mkdir -p ~/.aws
  cat >~/.aws/config <<CONFIG
[profile account_b_role]
source_profile = account_a_role
role_arn=arn:aws:iam::222222222222:role/account-b-chained
[profile account_a_role]
web_identity_token_file = $AWS_WEB_IDENTITY_TOKEN_FILE
role_arn=arn:aws:iam::111111111111:role/account-a-role
CONFIG
  aws sts get-caller-identity --profile account_b_role --query Arn --output text
  aws s3 cp s3://pics/indoor-cat.jpg cat.jpg --profile account_b_role
  python3 -c "
import boto3
s3 = boto3.Session(profile_name=\"account_b_role\").client(\"s3\")
print(\"boto3:\", s3.get_object(Bucket=\"pics\", Key=\"indoor-cat.jpg\")[\"ContentType\"])
"'
