//! # gcrec-testkit
//!
//! Test support for gcrec, kept out of the shipped crates:
//! - [`export`]: a deterministic synthetic Genesys Cloud export (many days and hours;
//!   call, screen and digital recordings with real Ogg/Opus and ZIP media; sidecars with
//!   every schema field; deliberate orphans, malformed sidecars and foreign keys);
//! - [`conformance`]: the suite every `ObjectSource` implementation must pass;
//! - [`fixtures`]: conformance fixtures for the local-directory, in-memory and S3 (moto)
//!   sources;
//! - [`servers`]: moto on a free loopback port;
//! - [`faults`]: a failure-injecting source for the retry layer;
//! - [`s3ec`]: a streaming S3 Encryption Client writer for inputs of any size;
//! - [`inventory`]: S3 Inventory reports (manifest, checksum, CSV data files) in AWS's
//!   documented layout;
//! - [`latency`]: a loopback TCP proxy that delays every request (benchmarks).
//!
//! The `gcrec-testkit` binary writes generated exports to disk for examples and
//! benchmarks.

// Test support: a failed unwrap here is a failed test, with the value in the message.
#![allow(clippy::unwrap_used)]

pub mod conformance;
pub mod encrypted;
pub mod export;
pub mod faults;
pub mod fixtures;
pub mod inventory;
pub mod latency;
pub mod media;
pub mod rng;
pub mod s3ec;
pub mod servers;

pub use export::{Export, ExportSpec, GenRecording, Padding, SidecarState};
