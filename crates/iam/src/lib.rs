//! `iam`: the AWS IAM policy language and its evaluation, with a trace that says why.
//!
//! Pure: no I/O, no async, no HTTP. The twin, the agent and `rolechain explain` all decide
//! through [`evaluate`], so every decision can be explained the same way.
//!
//! ```
//! use iam::{evaluate, NamedPolicy, Policy, PolicyKind, PolicySet, Principal, RequestContext};
//!
//! let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
//!     "Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}]}"#;
//! let identity = [NamedPolicy::new("read-pics", Policy::parse(doc, PolicyKind::Identity)?)];
//! let ctx = RequestContext::new(
//!     Principal::User {
//!         arn: "arn:aws:iam::111111111111:user/dev".into(),
//!         account: "111111111111".into(),
//!         unique_id: None,
//!     },
//!     "s3:GetObject",
//!     "arn:aws:s3:::pics/indoor-cat.jpg",
//! );
//! let decision = evaluate(&PolicySet { identity: &identity, ..Default::default() }, &ctx);
//! assert!(decision.is_allowed());
//! # Ok::<(), iam::PolicyError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod arn;
pub mod condition;
pub mod context;
pub mod eval;
pub mod pattern;
pub mod policy;
pub mod scenario;

pub use arn::{Arn, ArnError, IdentityArn, Partition};
pub use context::{Principal, RequestContext};
pub use eval::{
    evaluate, ConditionMismatch, Decision, Mismatch, NamedPolicy, PolicyRole, PolicySet,
    PolicyTrace, Reason, StatementTrace, Verdict,
};
pub use policy::{policy_size, Effect, Policy, PolicyError, PolicyKind, SizeQuota, Version};
