//! S3's bucket operations: list, create, delete, head, and bucket policies.

use s3s::dto;
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result};
use twin_state::BucketError;

use super::{caller_account, check_bucket_policy, owner, TwinS3};
use crate::s3::access::{bucket_error, s3_error};

impl TwinS3 {
    pub(super) async fn list_buckets(
        &self,
        _req: S3Request<dto::ListBucketsInput>,
    ) -> S3Result<S3Response<dto::ListBucketsOutput>> {
        let account = caller_account();
        let owned = {
            let account = account.clone();
            self.store_op(move |store| store.list_buckets(&account))
                .await?
        };
        let buckets = owned
            .into_iter()
            .map(|b| dto::Bucket {
                bucket_region: Some(b.region),
                creation_date: Some(b.created.into()),
                name: Some(b.name),
            })
            .collect();
        Ok(S3Response::new(dto::ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(owner(&account)),
            ..Default::default()
        }))
    }

    pub(super) async fn create_bucket(
        &self,
        req: S3Request<dto::CreateBucketInput>,
    ) -> S3Result<S3Response<dto::CreateBucketOutput>> {
        let account = caller_account();
        let signed_region = req.region.as_ref().map(|r| r.as_str().to_string());
        let constraint = req
            .input
            .create_bucket_configuration
            .as_ref()
            .and_then(|c| c.location_constraint.as_ref())
            .map(|c| c.as_str().to_string());
        let region = match (constraint, signed_region) {
            (Some(c), Some(signed)) if c != signed => {
                return Err(s3_error(
                    S3ErrorCode::IllegalLocationConstraintException,
                    format!(
                        "The {c} location constraint is incompatible for the region specific endpoint this request was sent to."
                    ),
                ))
            }
            (Some(c), _) => c,
            (None, Some(signed)) => signed,
            (None, None) => "us-east-1".to_string(),
        };
        let name = req.input.bucket.clone();
        self.store_op(move |store| store.create_bucket(&name, &account, &region))
            .await?;
        Ok(S3Response::new(dto::CreateBucketOutput {
            location: Some(format!("/{}", req.input.bucket)),
        }))
    }

    pub(super) async fn delete_bucket(
        &self,
        req: S3Request<dto::DeleteBucketInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketOutput>> {
        let name = req.input.bucket;
        self.store_op(move |store| store.delete_bucket(&name))
            .await?;
        Ok(S3Response::new(dto::DeleteBucketOutput {}))
    }

    pub(super) async fn head_bucket(
        &self,
        req: S3Request<dto::HeadBucketInput>,
    ) -> S3Result<S3Response<dto::HeadBucketOutput>> {
        let bucket = self.existing_bucket(req.input.bucket).await?;
        Ok(S3Response::new(dto::HeadBucketOutput {
            bucket_region: Some(bucket.region),
            ..Default::default()
        }))
    }

    pub(super) async fn put_bucket_policy(
        &self,
        req: S3Request<dto::PutBucketPolicyInput>,
    ) -> S3Result<S3Response<dto::PutBucketPolicyOutput>> {
        let name = req.input.bucket;
        let doc = req.input.policy;
        check_bucket_policy(&name, &doc)?;
        self.store_op(move |store| store.set_bucket_policy(&name, Some(&doc)))
            .await?;
        Ok(S3Response::new(dto::PutBucketPolicyOutput {}))
    }

    pub(super) async fn get_bucket_policy(
        &self,
        req: S3Request<dto::GetBucketPolicyInput>,
    ) -> S3Result<S3Response<dto::GetBucketPolicyOutput>> {
        let bucket = self.existing_bucket(req.input.bucket).await?;
        let policy = bucket
            .policy
            .ok_or_else(|| bucket_error(BucketError::NoSuchBucketPolicy))?;
        Ok(S3Response::new(dto::GetBucketPolicyOutput {
            policy: Some(policy),
        }))
    }

    pub(super) async fn delete_bucket_policy(
        &self,
        req: S3Request<dto::DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketPolicyOutput>> {
        let name = req.input.bucket;
        self.store_op(move |store| store.set_bucket_policy(&name, None))
            .await?;
        Ok(S3Response::new(dto::DeleteBucketPolicyOutput {}))
    }
}
