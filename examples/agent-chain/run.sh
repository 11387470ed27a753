#!/usr/bin/env bash
# A pod of the development cluster gets the credentials of a role two accounts away through
# `rolechain agent`, with nothing but its token, against `rolechain up`. Run it in an empty
# directory after exporting the two lines `up` printed. `rolechain` is the built binary
# ($ROLECHAIN), or `cargo run --release --` from the repository.
set -euo pipefail
rolechain() { if [ -n "${ROLECHAIN:-}" ]; then "$ROLECHAIN" "$@"; else cargo run --quiet --release -- "$@"; fi; }

# The cluster's issuer as an OIDC provider in the developer account, for the agent's audience.
issuer=$(aws eks describe-cluster --name development-cluster --query "cluster.identity.oidc.issuer" --output text)
oidc_provider=$(echo "$issuer" | sed -e 's|^https\{0,1\}://||')
aws iam create-open-id-connect-provider --url "$issuer" --client-id-list pods.eks.amazonaws.com >/dev/null

# The first link: a role in 111111111111 for the pod's service account, allowed to go on.
cat >first-trust.json <<TRUST
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Principal": {"Federated": "arn:aws:iam::111111111111:oidc-provider/$oidc_provider"},
  "Action": "sts:AssumeRoleWithWebIdentity",
  "Condition": {"StringEquals": {"$oidc_provider:sub": "system:serviceaccount:my-app-namespace:my-app-sa"}}}]}
TRUST
aws iam create-role --role-name first --assume-role-policy-document file://first-trust.json >/dev/null
aws iam put-role-policy --role-name first --policy-name go-on --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession"],"Resource":"arn:aws:iam::222222222222:role/second"}]}'

# The second link: a role in shared_content that trusts the first (with an external id and the
# session tags the agent sends) and may read seed 000's picture.
aws iam create-role --profile shared_content --role-name second --assume-role-policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/first"},"Action":["sts:AssumeRole","sts:TagSession"],"Condition":{"StringEquals":{"sts:ExternalId":"optional-external-id"}}}]}' >/dev/null
aws iam put-role-policy --profile shared_content --role-name second --policy-name pics \
  --policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}]}'

# The chain, for the agent.
cat >associations.yaml <<YAML
associations:
  - namespace: my-app-namespace
    serviceAccount: my-app-sa
    roleArn: arn:aws:iam::111111111111:role/first
    targetRoleArns:
      - arn: arn:aws:iam::222222222222:role/second
        externalId: optional-external-id
YAML

# The agent on loopback, in front of the twin (it prints where it serves once bound).
endpoint=$(aws configure get endpoint_url)
rolechain agent --cluster development-cluster --issuer "$issuer" --associations associations.yaml \
  --endpoint-url "$endpoint" --region us-east-1 \
  --bind 127.0.0.1:8090 --probe-bind 127.0.0.1:2703 --metrics-bind 127.0.0.1:2705 > agent.out 2> agent.log &
agent=$!
trap 'pkill -P $agent 2>/dev/null; kill $agent 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q "credentials at" agent.out 2>/dev/null && break
  sleep 0.1
done

# The pod: its service account, then commands run as the pod with the agent's two variables
# and its projected token (audience pods.eks.amazonaws.com), no keys.
cat >my-app-sa.yaml <<SA
apiVersion: v1
kind: ServiceAccount
metadata:
  name: my-app-sa
  namespace: my-app-namespace
SA
rolechain cluster apply -f my-app-sa.yaml
pod() { rolechain exec -n my-app-namespace --service-account my-app-sa --agent http://127.0.0.1:8090/v1/credentials -- "$@"; }
pod aws sts get-caller-identity --query Arn --output text
pod aws s3 cp s3://pics/indoor-cat.jpg cat.jpg
