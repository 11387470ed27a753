#!/usr/bin/env bash
# Seed 001, cross-account IRSA with credentials renewed: a Python app in a pod of the developer
# account's cluster reads `pics` in shared_content through a role it assumes from its IRSA role,
# first in the container's entrypoint script, then inside the app with botocore's
# DeferredRefreshableCredentials, against `rolechain up`. Run it in an empty directory after
# exporting the two lines `up` printed; `python3` must have boto3. `rolechain` is the built
# binary ($ROLECHAIN), or `cargo run --release --` from the repository.
set -euo pipefail
rolechain() { if [ -n "${ROLECHAIN:-}" ]; then "$ROLECHAIN" "$@"; else cargo run --quiet --release -- "$@"; fi; }

issuer=$(aws eks describe-cluster --name development-cluster --query "cluster.identity.oidc.issuer" --output text)
oidc_provider=$(echo "$issuer" | sed -e 's|^https\{0,1\}://||')
aws iam create-open-id-connect-provider --url "$issuer" --client-id-list sts.amazonaws.com >/dev/null

# The IRSA role of the app's service account: it only needs to assume the other account's role.
aws iam create-role --role-name python-app --assume-role-policy-document "$(cat <<TRUST
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Principal": {"Federated": "arn:aws:iam::111111111111:oidc-provider/$oidc_provider"},
  "Action": "sts:AssumeRoleWithWebIdentity",
  "Condition": {"StringEquals": {"$oidc_provider:sub": "system:serviceaccount:default:python-app"}}}]}
TRUST
)" >/dev/null
aws iam put-role-policy --role-name python-app --policy-name assume-pics-reader --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::222222222222:role/pics-reader"}]}'

# The role in the other account, which allows itself to be assumed by the IRSA role.
aws iam create-role --profile shared_content --role-name pics-reader --assume-role-policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/python-app"},"Action":"sts:AssumeRole"}]}' >/dev/null
aws iam put-role-policy --profile shared_content --role-name pics-reader --policy-name pics --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}]}'

cat >python-app.yaml <<SA
apiVersion: v1
kind: ServiceAccount
metadata:
  name: python-app
  namespace: default
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::111111111111:role/python-app
SA
rolechain cluster apply -f python-app.yaml

# The first choice: assume the role in the container's entrypoint script, then start the app
# (the AWS CLI's --query in place of yq).
cat >app.py <<'APP'
import boto3
s3 = boto3.client("s3")
print("app as", boto3.client("sts").get_caller_identity()["Arn"])
print("read", s3.get_object(Bucket="pics", Key="indoor-cat.jpg")["ContentLength"], "bytes")
APP
cat >entrypoint.sh <<'ENTRYPOINT'
#!/usr/bin/env bash
set -euo pipefail
ACCOUNT=222222222222 ROLE=pics-reader SESSION=entrypoint
read -r AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN <<<"$(aws sts assume-role \
  --role-session-name "$SESSION" --role-arn "arn:aws:iam::$ACCOUNT:role/$ROLE" \
  --query "Credentials.[AccessKeyId,SecretAccessKey,SessionToken]" --output text)"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
# Start Python app...
exec python3 app.py
ENTRYPOINT
rolechain exec -n default --service-account python-app -- bash entrypoint.sh

# The second choice: assume the role inside the app, with credentials botocore renews itself.
# A session of 900 s is inside botocore's 15-minute advisory window from the start, so each
# call renews it: every read below runs on a fresh session of the other account's role.
cat >refreshing.py <<'APP'
from boto3 import Session
from botocore.credentials import create_assume_role_refresher
from botocore.credentials import DeferredRefreshableCredentials

session = Session()
session._session._credentials = DeferredRefreshableCredentials(
    method="sts-assume-role",
    refresh_using=create_assume_role_refresher(
        session.client("sts"),
        {
            "RoleSessionName": "refreshing-app",
            "RoleArn": "arn:aws:iam::222222222222:role/pics-reader",
            "DurationSeconds": 900,
        },
    ),
)
s3 = session.client("s3")
keys = set()
for _ in range(3):
    s3.get_object(Bucket="pics", Key="indoor-cat.jpg")
    keys.add(session.get_credentials().get_frozen_credentials().access_key)
print("3 reads on", len(keys), "sessions of", session.client("sts").get_caller_identity()["Arn"])
APP
rolechain exec -n default --service-account python-app -- python3 refreshing.py

# The rolechain way: no credential code in the app at all. rolechain's node agent serves the
# chain (the IRSA role, then the other account's) from nothing but the pod's token, shares it
# and renews it ahead of expiry; botocore's container provider, the SDK's default, asks the
# agent again as its credentials near their end. `--max-lifetime 4s` rehearses an hour of
# renewals in seconds: the agent treats (and hands out) each set as expiring 4 s after it
# fetched it.
aws iam add-client-id-to-open-id-connect-provider \
  --open-id-connect-provider-arn "arn:aws:iam::111111111111:oidc-provider/$oidc_provider" \
  --client-id pods.eks.amazonaws.com
cat >associations.yaml <<YAML
associations:
  - namespace: default
    serviceAccount: python-app
    roleArn: arn:aws:iam::111111111111:role/python-app
    targetRoleArns:
      - arn: arn:aws:iam::222222222222:role/pics-reader
    sessionTags: none
YAML
endpoint=$(aws configure get endpoint_url)
rolechain agent --cluster development-cluster --issuer "$issuer" --associations associations.yaml \
  --endpoint-url "$endpoint" --region us-east-1 --max-lifetime 4s --refresh-interval 1s \
  --bind 127.0.0.1:0 --probe-bind 127.0.0.1:0 --metrics-bind 127.0.0.1:0 > agent.out 2> agent.log &
agent=$!
trap 'kill $agent 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q "credentials at" agent.out 2>/dev/null && break
  sleep 0.1
done
agent_url=$(grep -o 'http://[^ ]*/v1/credentials' agent.out)
cat >no-credential-code.py <<'APP'
import time
import boto3

session = boto3.Session()        # the default chain: here, the agent's two variables
s3 = session.client("s3")
keys = set()
for _ in range(8):
    s3.get_object(Bucket="pics", Key="indoor-cat.jpg")
    keys.add(session.get_credentials().get_frozen_credentials().access_key)
    time.sleep(1)
who = session.client("sts").get_caller_identity()["Arn"]
print("8 reads over 8 s on", len(keys), "sets of credentials of", who)
APP
rolechain exec -n default --service-account python-app --agent "$agent_url" -- python3 no-credential-code.py
