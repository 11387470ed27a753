//! rolechain's node credential agent, part by part.
//!
//! The agent gives a pod the final credentials of a chain of roles of any length, across
//! accounts, through the protocol every AWS SDK's container provider speaks (the EKS Pod
//! Identity agent's). This crate holds its pure core first:
//!
//! - [`associations`]: the association file (`--associations FILE`): which service account
//!   gets which chain, validated completely, every error naming the entry and the field;
//! - [`session`]: the session names and session tags each hop of a chain is assumed with.
//!
//! The server (wire protocol, token verification, the shared cache, refresh ahead of expiry,
//! static stability) builds on these.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod associations;
pub mod session;

pub use associations::{
    Association, AssociationError, AssociationFile, Chain, Hop, LoadOptions, SessionTags, Start,
    MAX_CHAINED_DURATION_SECS, MAX_HOPS,
};
pub use session::{session_name, session_tags, PodIdentity, SessionTag};
