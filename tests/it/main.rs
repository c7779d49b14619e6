//! End-to-end tests of the `gcrec` binary, one module per area, linked once.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod catalog;
mod cms;
mod common;
mod decrypt;
mod esdk;
mod example_export;
mod hostile;
mod inventory;
mod ls;
mod media;
mod operator;
mod production;
mod pruning;
mod pull;
mod s3;
