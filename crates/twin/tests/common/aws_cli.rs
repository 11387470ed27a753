//! The AWS CLI (v1) and boto3 as peers: the `peers` crate's gate and isolated runner, under
//! the names the twin's tests use.

// Each test binary uses its own part of these.
#[allow(unused_imports)]
pub use peers::{
    available as peers_available, aws_cli, isolated_python, python, with_credentials, Run,
};
