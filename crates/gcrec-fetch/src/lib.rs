//! # gcrec-fetch
//!
//! Finding Genesys Cloud recordings in a bulk export: the key [`layout`], the metadata
//! sidecar model ([`metadata`]), object [`source`]s (S3, and a local directory laid out like
//! the bucket), [`transfer`]s (ranged parts, a byte budget, integrity checks), time-range pruning ([`prune`]), and the [`catalog`] that pairs
//! media with sidecars and applies [`filter`]s.
//!
//! This crate knows nothing about command lines or terminals; it returns typed errors
//! that name the object and say what to do next.

pub mod catalog;
pub mod filter;
pub mod layout;
pub mod metadata;
pub mod prune;
pub mod source;
pub mod transfer;
