//! What the twin's integration tests share: the real AWS CLI and boto3 as peers
//! ([`aws_cli`]), and requests signed by the SDK's own signer sent over raw HTTP/1.1
//! ([`wire`]). Each test file includes it with `mod common;` and uses what it needs.

#![allow(dead_code)]

pub mod aws_cli;
pub mod wire;
