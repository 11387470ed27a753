#!/usr/bin/env bash
# Seed 004, EKS Pod Identity across accounts with a target role, with the AWS CLI in place of
# the seed's Terraform (crates/rolechain/tests/terraform_seed004.rs applies the seed's own
# Terraform), against `rolechain up`: account A is the developer account (111111111111, the
# cluster's), account B is shared_content (222222222222). The pod gets its credentials from
# the node agent `up` runs. Run it in an empty directory after exporting the two lines `up`
# printed. `rolechain` is the built binary ($ROLECHAIN), or `cargo run --release --` from the
# repository.
set -euo pipefail
rolechain() { if [ -n "${ROLECHAIN:-}" ]; then "$ROLECHAIN" "$@"; else cargo run --quiet --release -- "$@"; fi; }

# The seed's deployment-order pitfall first: account B's trust policy cannot name the primary
# role before it exists (IAM refuses the principal).
aws iam create-role --profile shared_content --role-name s3-reader-target-role --assume-role-policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/eks-pod-identity-primary-role"},"Action":"sts:AssumeRole"}]}' \
  2>&1 >/dev/null || echo "refused: create the primary role first, as the seed says"

# Step 1, account A: the primary role, trusting the EKS Pod Identity service with both
# actions (first, as in the seed: account B's trust policy names it, and IAM refuses a
# principal that does not exist).
aws iam create-role --role-name eks-pod-identity-primary-role --assume-role-policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}' >/dev/null

# Step 2, account B: the bucket and the target role, trusting the primary role with
# sts:AssumeRole and sts:TagSession in two statements (the seed's recommendation), allowed to
# read the bucket.
bucket=my-cross-account-data-bucket
aws s3api create-bucket --profile shared_content --bucket "$bucket" >/dev/null
echo "data" | aws s3 cp --profile shared_content - "s3://$bucket/data.txt" >/dev/null
aws iam create-role --profile shared_content --role-name s3-reader-target-role --assume-role-policy-document \
  '{"Version":"2012-10-17","Statement":[
     {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/eks-pod-identity-primary-role"},"Action":["sts:AssumeRole"]},
     {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/eks-pod-identity-primary-role"},"Action":["sts:TagSession"]}]}' >/dev/null
aws iam create-policy --profile shared_content --policy-name s3-read-only-for-target-role --policy-document \
  "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Action\":[\"s3:GetObject\",\"s3:ListBucket\"],\"Effect\":\"Allow\",\"Resource\":[\"arn:aws:s3:::$bucket\",\"arn:aws:s3:::$bucket/*\"]}]}" >/dev/null
aws iam attach-role-policy --profile shared_content --role-name s3-reader-target-role \
  --policy-arn arn:aws:iam::222222222222:policy/s3-read-only-for-target-role

# Step 3, account A: the primary role may assume (and tag) the target role; the association
# names both.
aws iam create-policy --policy-name allow-assume-s3-reader-target-role --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession"],"Resource":"arn:aws:iam::222222222222:role/s3-reader-target-role"}]}' >/dev/null
aws iam attach-role-policy --role-name eks-pod-identity-primary-role \
  --policy-arn arn:aws:iam::111111111111:policy/allow-assume-s3-reader-target-role
aws eks create-pod-identity-association --cluster-name development-cluster \
  --namespace my-app-namespace --service-account my-app-sa \
  --role-arn arn:aws:iam::111111111111:role/eks-pod-identity-primary-role \
  --target-role-arn arn:aws:iam::222222222222:role/s3-reader-target-role \
  --query association.associationId --output text

# The pod's service account, and the seed's test pod script (its waits shortened to a second).
cat >my-app-sa.yaml <<SA
apiVersion: v1
kind: ServiceAccount
metadata:
  name: my-app-sa
  namespace: my-app-namespace
SA
rolechain cluster apply -f my-app-sa.yaml
rolechain exec -n my-app-namespace --service-account my-app-sa -- /bin/bash -c '
  for i in {1..5}; do
    echo "--- AWS CLI attempt #$i ---"
    aws s3 ls "s3://'"$bucket"'/" && exit 0
    if [ $i -lt 5 ]; then
      echo "--- Command failed. Retrying in 1 second... ---"
      sleep 1
    fi
  done
  echo "--- Command failed after 5 attempts. ---"
  exit 1'
rolechain exec -n my-app-namespace --service-account my-app-sa -- aws sts get-caller-identity --query Arn --output text

# The seed's first pitfall: a primary role whose trust lacks sts:TagSession. EKS Auth refuses
# it, so the pod gets no credentials at all.
aws iam create-role --role-name primary-without-tagsession --assume-role-policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}' >/dev/null
aws eks create-pod-identity-association --cluster-name development-cluster \
  --namespace my-app-namespace --service-account no-tagsession-sa \
  --role-arn arn:aws:iam::111111111111:role/primary-without-tagsession >/dev/null
cat >no-tagsession-sa.yaml <<SA
apiVersion: v1
kind: ServiceAccount
metadata:
  name: no-tagsession-sa
  namespace: my-app-namespace
SA
rolechain cluster apply -f no-tagsession-sa.yaml
rolechain exec -n my-app-namespace --service-account no-tagsession-sa -- aws sts get-caller-identity 2>&1 \
  || echo "refused, as the seed warns"
# What rolechain says about it: the link that breaks, and the change that fixes it.
rolechain explain pod -n my-app-namespace --service-account no-tagsession-sa \
  --action s3:ListBucket --resource "arn:aws:s3:::$bucket" || true
