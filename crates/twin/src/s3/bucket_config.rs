//! The bucket configuration reads (`GetBucketAcl`, `…Cors`, `…Versioning`, …) that clients
//! such as terraform-provider-aws make of every bucket they manage. The twin keeps none of these
//! configurations, so each answers as S3 does for a bucket with nothing configured: S3's
//! default (the owner's `FULL_CONTROL` grant, `Payer` `BucketOwner`, SSE-S3 default
//! encryption, which S3 applies to every bucket since January 2023) or the "not configured"
//! error S3 sends (`NoSuchCORSConfiguration` 404, …).
//!
//! | operation | IAM action | answer |
//! | --- | --- | --- |
//! | `GetBucketAcl` | `s3:GetBucketAcl` | owner with `FULL_CONTROL` |
//! | `GetBucketCors` | `s3:GetBucketCORS` | `NoSuchCORSConfiguration` |
//! | `GetBucketWebsite` | `s3:GetBucketWebsite` | `NoSuchWebsiteConfiguration` |
//! | `GetBucketVersioning` | `s3:GetBucketVersioning` | no status (never enabled) |
//! | `GetBucketAccelerateConfiguration` | `s3:GetAccelerateConfiguration` | no status |
//! | `GetBucketRequestPayment` | `s3:GetBucketRequestPayment` | `BucketOwner` |
//! | `GetBucketLogging` | `s3:GetBucketLogging` | no logging |
//! | `GetBucketLifecycleConfiguration` | `s3:GetLifecycleConfiguration` | `NoSuchLifecycleConfiguration` |
//! | `GetBucketReplication` | `s3:GetReplicationConfiguration` | `ReplicationConfigurationNotFoundError` |
//! | `GetBucketEncryption` | `s3:GetEncryptionConfiguration` | `AES256`, bucket key off |
//! | `GetObjectLockConfiguration` | `s3:GetBucketObjectLockConfiguration` | `ObjectLockConfigurationNotFoundError` |
//! | `GetBucketTagging` | `s3:GetBucketTagging` | `NoSuchTagSet` |
//! | `GetBucketLocation` | `s3:GetBucketLocation` | the region (none for `us-east-1`, as S3 answers) |
//!
//! Setting any of them stays `NotImplemented`: the twin would have to keep and honour it.

use s3s::dto;
use s3s::{S3ErrorCode, S3Response, S3Result};
use twin_state::Bucket;

use super::access::{bucket_named, s3_error};
use super::ops::{owner, TwinS3};

/// The operations of this module with the IAM action each is authorized as (on the bucket).
pub(super) const OPERATIONS: [(&str, &str); 13] = [
    ("GetBucketAcl", "s3:GetBucketAcl"),
    ("GetBucketCors", "s3:GetBucketCORS"),
    ("GetBucketWebsite", "s3:GetBucketWebsite"),
    ("GetBucketVersioning", "s3:GetBucketVersioning"),
    (
        "GetBucketAccelerateConfiguration",
        "s3:GetAccelerateConfiguration",
    ),
    ("GetBucketRequestPayment", "s3:GetBucketRequestPayment"),
    ("GetBucketLogging", "s3:GetBucketLogging"),
    (
        "GetBucketLifecycleConfiguration",
        "s3:GetLifecycleConfiguration",
    ),
    ("GetBucketReplication", "s3:GetReplicationConfiguration"),
    ("GetBucketEncryption", "s3:GetEncryptionConfiguration"),
    (
        "GetObjectLockConfiguration",
        "s3:GetBucketObjectLockConfiguration",
    ),
    ("GetBucketTagging", "s3:GetBucketTagging"),
    ("GetBucketLocation", "s3:GetBucketLocation"),
];

/// The IAM action of one of these operations, `None` for any other.
pub(super) fn iam_action(op: &str) -> Option<&'static str> {
    OPERATIONS.iter().find(|(o, _)| *o == op).map(|(_, a)| *a)
}

/// The operation's name as `&'static str`, for the metrics label.
pub(super) fn static_name(op: &str) -> Option<&'static str> {
    OPERATIONS.iter().find(|(o, _)| *o == op).map(|(o, _)| *o)
}

impl TwinS3 {
    /// Reads bucket `name` (`NoSuchBucket` if gone) and answers with `answer`.
    pub(super) async fn bucket_config<T: Send + 'static>(
        &self,
        name: String,
        answer: fn(&Bucket) -> S3Result<T>,
    ) -> S3Result<S3Response<T>> {
        let store = std::sync::Arc::clone(&self.store);
        let bucket = super::access::blocking(move || bucket_named(&store, &name)).await?;
        answer(&bucket).map(S3Response::new)
    }
}

/// The owner's `FULL_CONTROL` grant, S3's ACL of a bucket created without one.
pub(super) fn acl(bucket: &Bucket) -> S3Result<dto::GetBucketAclOutput> {
    let owner = owner(&bucket.owner);
    Ok(dto::GetBucketAclOutput {
        grants: Some(vec![dto::Grant {
            grantee: Some(dto::Grantee {
                display_name: owner.display_name.clone(),
                email_address: None,
                id: owner.id.clone(),
                type_: dto::Type::from_static(dto::Type::CANONICAL_USER),
                uri: None,
            }),
            permission: Some(dto::Permission::from_static(dto::Permission::FULL_CONTROL)),
        }]),
        owner: Some(owner),
    })
}

pub(super) fn cors(_: &Bucket) -> S3Result<dto::GetBucketCorsOutput> {
    Err(s3_error(
        S3ErrorCode::NoSuchCORSConfiguration,
        "The CORS configuration does not exist",
    ))
}

pub(super) fn website(_: &Bucket) -> S3Result<dto::GetBucketWebsiteOutput> {
    Err(s3_error(
        S3ErrorCode::NoSuchWebsiteConfiguration,
        "The specified bucket does not have a website configuration",
    ))
}

pub(super) fn versioning(_: &Bucket) -> S3Result<dto::GetBucketVersioningOutput> {
    Ok(dto::GetBucketVersioningOutput::default())
}

pub(super) fn accelerate(_: &Bucket) -> S3Result<dto::GetBucketAccelerateConfigurationOutput> {
    Ok(dto::GetBucketAccelerateConfigurationOutput::default())
}

pub(super) fn request_payment(_: &Bucket) -> S3Result<dto::GetBucketRequestPaymentOutput> {
    Ok(dto::GetBucketRequestPaymentOutput {
        payer: Some(dto::Payer::from_static(dto::Payer::BUCKET_OWNER)),
    })
}

pub(super) fn logging(_: &Bucket) -> S3Result<dto::GetBucketLoggingOutput> {
    Ok(dto::GetBucketLoggingOutput::default())
}

pub(super) fn lifecycle(_: &Bucket) -> S3Result<dto::GetBucketLifecycleConfigurationOutput> {
    Err(s3_error(
        S3ErrorCode::NoSuchLifecycleConfiguration,
        "The lifecycle configuration does not exist",
    ))
}

pub(super) fn replication(_: &Bucket) -> S3Result<dto::GetBucketReplicationOutput> {
    Err(s3_error(
        S3ErrorCode::ReplicationConfigurationNotFoundError,
        "The replication configuration was not found",
    ))
}

pub(super) fn encryption(_: &Bucket) -> S3Result<dto::GetBucketEncryptionOutput> {
    Ok(dto::GetBucketEncryptionOutput {
        server_side_encryption_configuration: Some(dto::ServerSideEncryptionConfiguration {
            rules: vec![dto::ServerSideEncryptionRule {
                apply_server_side_encryption_by_default: Some(dto::ServerSideEncryptionByDefault {
                    kms_master_key_id: None,
                    sse_algorithm: dto::ServerSideEncryption::from_static(
                        dto::ServerSideEncryption::AES256,
                    ),
                }),
                bucket_key_enabled: Some(false),
            }],
        }),
    })
}

pub(super) fn object_lock(_: &Bucket) -> S3Result<dto::GetObjectLockConfigurationOutput> {
    Err(s3_error(
        S3ErrorCode::ObjectLockConfigurationNotFoundError,
        "Object Lock configuration does not exist for this bucket",
    ))
}

pub(super) fn tagging(_: &Bucket) -> S3Result<dto::GetBucketTaggingOutput> {
    Err(s3_error(
        S3ErrorCode::NoSuchTagSet,
        "The TagSet does not exist",
    ))
}

pub(super) fn location(bucket: &Bucket) -> S3Result<dto::GetBucketLocationOutput> {
    // S3 answers an empty LocationConstraint for us-east-1.
    Ok(dto::GetBucketLocationOutput {
        location_constraint: (bucket.region != "us-east-1")
            .then(|| dto::BucketLocationConstraint::from(bucket.region.clone())),
    })
}
