#!/usr/bin/env bash
# Seed 000, cross-account IRSA: a pod of the developer account's cluster reads the `pics` bucket
# of the shared_content account, first through an OIDC provider for the cluster's issuer that
# shared_content creates (the seed's procedure), then the way the seed's blue/green note
# suggests (a role in the developer account, then a standard AssumeRole), against `rolechain up`.
# Run it in an empty directory after exporting the two lines `up` printed. `rolechain` is the
# built binary ($ROLECHAIN), or `cargo run --release --` from the repository.
set -euo pipefail
rolechain() { if [ -n "${ROLECHAIN:-}" ]; then "$ROLECHAIN" "$@"; else cargo run --quiet --release -- "$@"; fi; }

# 1. The cluster's OIDC provider in the developer account: the seed's `eksctl utils
#    associate-iam-oidc-provider --cluster development-cluster --approve`.
rolechain cluster associate-oidc-provider --cluster development-cluster
issuer=$(aws eks describe-cluster --name development-cluster --query "cluster.identity.oidc.issuer" --output text)

# 2. The same issuer as an OIDC provider in shared_content, audience sts.amazonaws.com (the
#    seed uses the console, which fetches the thumbprint; the twin needs none).
aws iam create-open-id-connect-provider --profile shared_content --url "$issuer" --client-id-list sts.amazonaws.com >/dev/null

# 3. The role in shared_content: read the objects of `pics`, for pods federated by that
#    provider with the service account's subject. The twin's issuers are http:// on loopback,
#    so strip either scheme.
shared_content_account_id=$(aws sts get-caller-identity --profile shared_content --query Account --output text)
oidc_provider=$(echo "$issuer" | sed -e 's|^https\{0,1\}://||')
cat >trust.json <<TRUST
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Principal": {"Federated": "arn:aws:iam::$shared_content_account_id:oidc-provider/$oidc_provider"},
      "Action": "sts:AssumeRoleWithWebIdentity",
      "Condition": {
        "StringEquals": {
          "$oidc_provider:aud": "sts.amazonaws.com",
          "$oidc_provider:sub": "system:serviceaccount:default:s3-shared-content"
        }
      }
    }
  ]
}
TRUST
cat >s3-read-object.json <<POLICY
{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "s3bucket", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::pics/*"}
  ]
}
POLICY
aws iam create-role --profile shared_content --role-name s3-read-object --assume-role-policy-document file://trust.json >/dev/null
aws iam put-role-policy --profile shared_content --role-name s3-read-object --policy-name s3-bucket --policy-document file://s3-read-object.json

# 4. The service account, annotated with the role (the seed's garbled `kubectl annotate`).
cat >s3-shared-content.yaml <<SA
apiVersion: v1
kind: ServiceAccount
metadata:
  name: s3-shared-content
  namespace: default
SA
rolechain cluster apply -f s3-shared-content.yaml
rolechain cluster annotate serviceaccount -n default s3-shared-content \
  eks.amazonaws.com/role-arn=arn:aws:iam::$shared_content_account_id:role/s3-read-object

# 5. In the pod: the seed's commands (the AWS CLI's --query in place of jq).
rolechain exec -n default --service-account s3-shared-content -- bash -c '
  set -euo pipefail
  creds=$(aws sts assume-role-with-web-identity --role-arn "$AWS_ROLE_ARN" --role-session-name x-account \
    --web-identity-token "file://$AWS_WEB_IDENTITY_TOKEN_FILE" --duration 1500 \
    --query "Credentials.[AccessKeyId,SecretAccessKey,SessionToken]" --output text)
  read -r AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN <<<"$creds"
  export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
  aws s3api get-object --bucket pics --key indoor-cat.jpg mypic.jpg'

# The blue/green note: a new cluster has a new issuer, so a role that trusts the issuer must
# change. Instead, the developer account's role (trusting its own provider) may assume a role
# in shared_content that trusts that role, and the pod does a standard AssumeRole.
cat >developer-trust.json <<TRUST
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Principal": {"Federated": "arn:aws:iam::111111111111:oidc-provider/$oidc_provider"},
      "Action": "sts:AssumeRoleWithWebIdentity",
      "Condition": {"StringEquals": {"$oidc_provider:sub": "system:serviceaccount:default:pics-reader"}}
    }
  ]
}
TRUST
aws iam create-role --role-name pics-hop --assume-role-policy-document file://developer-trust.json >/dev/null
aws iam put-role-policy --role-name pics-hop --policy-name assume-pics --policy-document \
  "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"sts:AssumeRole\",\"Resource\":\"arn:aws:iam::$shared_content_account_id:role/pics-from-developer\"}]}"
aws iam create-role --profile shared_content --role-name pics-from-developer --assume-role-policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/pics-hop"},"Action":"sts:AssumeRole"}]}' >/dev/null
aws iam put-role-policy --profile shared_content --role-name pics-from-developer --policy-name s3-bucket --policy-document file://s3-read-object.json
cat >pics-reader.yaml <<SA
apiVersion: v1
kind: ServiceAccount
metadata:
  name: pics-reader
  namespace: default
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::111111111111:role/pics-hop
SA
rolechain cluster apply -f pics-reader.yaml
rolechain exec -n default --service-account pics-reader -- bash -c '
  set -euo pipefail
  creds=$(aws sts assume-role --role-arn "arn:aws:iam::'"$shared_content_account_id"':role/pics-from-developer" \
    --role-session-name blue-green --query "Credentials.[AccessKeyId,SecretAccessKey,SessionToken]" --output text)
  read -r AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN <<<"$creds"
  export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
  aws sts get-caller-identity --query Arn --output text
  aws s3api get-object --bucket pics --key indoor-cat.jpg blue-green.jpg --query ContentLength'

# The blue/green update itself: a second cluster, `green`, which has an issuer of its own.
aws iam create-role --role-name eks-cluster --assume-role-policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}' >/dev/null
aws eks create-cluster --name green --role-arn arn:aws:iam::111111111111:role/eks-cluster \
  --resources-vpc-config subnetIds=subnet-a,subnet-b --query cluster.status --output text
aws eks list-clusters --query clusters --output text
green_issuer=$(aws eks describe-cluster --name green --query cluster.identity.oidc.issuer --output text)
green_provider=$(echo "$green_issuer" | sed -e 's|^https\{0,1\}://||')
rolechain cluster associate-oidc-provider --cluster green

# (a) The note's way: only the developer account's role learns the new issuer; the role in
#     shared_content is not touched.
aws iam update-assume-role-policy --role-name pics-hop --policy-document "{
  \"Version\": \"2012-10-17\",
  \"Statement\": [
    {\"Effect\": \"Allow\", \"Principal\": {\"Federated\": \"arn:aws:iam::111111111111:oidc-provider/$oidc_provider\"},
     \"Action\": \"sts:AssumeRoleWithWebIdentity\",
     \"Condition\": {\"StringEquals\": {\"$oidc_provider:sub\": \"system:serviceaccount:default:pics-reader\"}}},
    {\"Effect\": \"Allow\", \"Principal\": {\"Federated\": \"arn:aws:iam::111111111111:oidc-provider/$green_provider\"},
     \"Action\": \"sts:AssumeRoleWithWebIdentity\",
     \"Condition\": {\"StringEquals\": {\"$green_provider:sub\": \"system:serviceaccount:default:pics-reader\"}}}
  ]
}"
rolechain cluster apply --cluster green -f pics-reader.yaml
rolechain exec --cluster green -n default --service-account pics-reader -- bash -c '
  set -euo pipefail
  creds=$(aws sts assume-role --role-arn "arn:aws:iam::'"$shared_content_account_id"':role/pics-from-developer" \
    --role-session-name green --query "Credentials.[AccessKeyId,SecretAccessKey,SessionToken]" --output text)
  read -r AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN <<<"$creds"
  export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
  aws s3api get-object --bucket pics --key indoor-cat.jpg green.jpg --query ContentLength'

# (b) The seed's own procedure for the new cluster: its issuer registered in shared_content,
#     and the role there trusting both clusters' pods.
aws iam create-open-id-connect-provider --profile shared_content --url "$green_issuer" --client-id-list sts.amazonaws.com >/dev/null
aws iam update-assume-role-policy --profile shared_content --role-name s3-read-object --policy-document "{
  \"Version\": \"2012-10-17\",
  \"Statement\": [
    {\"Effect\": \"Allow\", \"Principal\": {\"Federated\": \"arn:aws:iam::$shared_content_account_id:oidc-provider/$oidc_provider\"},
     \"Action\": \"sts:AssumeRoleWithWebIdentity\",
     \"Condition\": {\"StringEquals\": {\"$oidc_provider:sub\": \"system:serviceaccount:default:s3-shared-content\"}}},
    {\"Effect\": \"Allow\", \"Principal\": {\"Federated\": \"arn:aws:iam::$shared_content_account_id:oidc-provider/$green_provider\"},
     \"Action\": \"sts:AssumeRoleWithWebIdentity\",
     \"Condition\": {\"StringEquals\": {\"$green_provider:sub\": \"system:serviceaccount:default:s3-shared-content\"}}}
  ]
}"
rolechain cluster apply --cluster green -f s3-shared-content.yaml
rolechain cluster annotate serviceaccount --cluster green -n default s3-shared-content \
  eks.amazonaws.com/role-arn=arn:aws:iam::$shared_content_account_id:role/s3-read-object
rolechain exec --cluster green -n default --service-account s3-shared-content -- bash -c '
  set -euo pipefail
  aws sts get-caller-identity --query Arn --output text
  aws s3api get-object --bucket pics --key indoor-cat.jpg green-irsa.jpg --query ContentLength'

# The old cluster is retired; its issuer goes with it, and green is the one local cluster left.
aws eks delete-cluster --name development-cluster --query cluster.status --output text
aws eks list-clusters --query clusters --output text
rolechain exec -n default --service-account pics-reader -- aws sts get-caller-identity --query Arn --output text
