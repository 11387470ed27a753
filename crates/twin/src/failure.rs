//! A failed call of one protocol: an AWS error, into which the store's errors convert in that
//! protocol's words, so handlers write `store.op(…)?` rather than mapping each call.
//!
//! IAM and EKS word the same store failure differently (IAM's `NoSuchEntity` 404 is EKS's
//! `ResourceNotFoundException` 404; a storage fault is IAM's `ServiceFailure`, EKS's
//! `ServerException`), so each protocol has a [`StateWords`] marker and handlers return
//! `Result<_, Failure<ThatProtocol>>`.

use std::marker::PhantomData;

use awswire::AwsError;
use twin_state::StateError;

/// How a protocol answers a store error.
pub(crate) trait StateWords {
    /// `error` as this protocol's AWS error.
    fn state_error(error: StateError) -> AwsError;
}

/// A failed call of protocol `P`. See the [module documentation](self).
pub(crate) struct Failure<P> {
    error: AwsError,
    protocol: PhantomData<P>,
}

impl<P> Failure<P> {
    /// The AWS error to answer with.
    pub(crate) fn into_aws(self) -> AwsError {
        self.error
    }
}

impl<P> std::fmt::Debug for Failure<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl<P> From<AwsError> for Failure<P> {
    fn from(error: AwsError) -> Self {
        Failure {
            error,
            protocol: PhantomData,
        }
    }
}

impl<P: StateWords> From<StateError> for Failure<P> {
    fn from(error: StateError) -> Self {
        P::state_error(error).into()
    }
}
