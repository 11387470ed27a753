//! Errors, carrying the IAM error code and message a real AWS client expects.

use iam::PolicyError;

/// A failed state operation. [`StateError::code`] is the AWS error code, the `Display` text is
/// IAM's message, and [`StateError::http_status`] the status IAM answers with.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// `NoSuchEntity` (404): the named entity does not exist.
    #[error("{0}")]
    NoSuchEntity(String),
    /// `EntityAlreadyExists` (409): an entity with that name already exists.
    #[error("{0}")]
    EntityAlreadyExists(String),
    /// `DeleteConflict` (409): the entity still has dependents.
    #[error("{0}")]
    DeleteConflict(String),
    /// `LimitExceeded` (409): a count or size quota would be exceeded.
    #[error("{0}")]
    LimitExceeded(String),
    /// `MalformedPolicyDocument` (400): the policy does not parse or names an invalid principal.
    #[error("{0}")]
    MalformedPolicyDocument(String),
    /// `InvalidInput` (400): a parameter is not acceptable.
    #[error("{0}")]
    InvalidInput(String),
    /// `ValidationError` (400): a parameter fails its documented constraint (length, range).
    #[error("{0}")]
    Validation(String),
    /// EKS's `ResourceNotFoundException` (404): no such cluster.
    #[error("{0}")]
    ResourceNotFound(String),
    /// EKS's `ResourceInUseException` (409): a cluster with that name already exists.
    #[error("{0}")]
    ResourceInUse(String),
    /// `ServiceFailure` (500): the database failed; the operation did not take effect.
    #[error("internal storage failure: {0}")]
    Storage(String),
    /// `ServiceFailure` (500): a stored record could not be decoded.
    #[error("corrupt stored record in table {table}: {detail}")]
    Corrupt {
        /// The table the record is in.
        table: &'static str,
        /// What failed.
        detail: String,
    },
}

impl StateError {
    /// The AWS error code (`<Code>` in IAM's XML error, `__type` in JSON protocols).
    pub fn code(&self) -> &'static str {
        match self {
            StateError::NoSuchEntity(_) => "NoSuchEntity",
            StateError::EntityAlreadyExists(_) => "EntityAlreadyExists",
            StateError::DeleteConflict(_) => "DeleteConflict",
            StateError::LimitExceeded(_) => "LimitExceeded",
            StateError::MalformedPolicyDocument(_) => "MalformedPolicyDocument",
            StateError::InvalidInput(_) => "InvalidInput",
            StateError::Validation(_) => "ValidationError",
            StateError::ResourceNotFound(_) => "ResourceNotFoundException",
            StateError::ResourceInUse(_) => "ResourceInUseException",
            StateError::Storage(_) | StateError::Corrupt { .. } => "ServiceFailure",
        }
    }

    /// The HTTP status IAM answers this error with.
    pub fn http_status(&self) -> u16 {
        match self {
            StateError::NoSuchEntity(_) | StateError::ResourceNotFound(_) => 404,
            StateError::ResourceInUse(_)
            | StateError::EntityAlreadyExists(_)
            | StateError::DeleteConflict(_)
            | StateError::LimitExceeded(_) => 409,
            StateError::MalformedPolicyDocument(_)
            | StateError::InvalidInput(_)
            | StateError::Validation(_) => 400,
            StateError::Storage(_) | StateError::Corrupt { .. } => 500,
        }
    }

    /// True for errors the caller caused (4xx), false for the twin's own failures (5xx).
    pub fn is_client_error(&self) -> bool {
        self.http_status() < 500
    }
}

impl From<PolicyError> for StateError {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::LimitExceeded { .. } => StateError::LimitExceeded(e.to_string()),
            PolicyError::Syntax { .. } | PolicyError::Malformed { .. } => {
                StateError::MalformedPolicyDocument(e.to_string())
            }
        }
    }
}

// redb reports failures through several error types; all of them mean the operation did not
// take effect, which callers handle alike (a 500), so they collapse into one variant.
macro_rules! storage_error {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for StateError {
            fn from(e: $t) -> Self {
                StateError::Storage(e.to_string())
            }
        }
    )*};
}

storage_error!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    std::io::Error,
);

/// Shorthand for results of state operations.
pub type Result<T, E = StateError> = std::result::Result<T, E>;
