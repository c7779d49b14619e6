//! # gcrec-decrypt
//!
//! Removing the optional client-side *Recording Export Encryption* layer, whose container
//! Genesys does not publish: gcrec reads the standard containers a customer-held key
//! implies, tells which one an object uses, and refuses anything else clearly.
//!
//! - [`detect`]: OpenPGP, an S3 Encryption Client envelope ([`envelope`]), or plain media;
//! - [`openpgp`]: OpenPGP messages through rPGP, streaming;
//! - [`s3ec`]: S3 Encryption Client V1/V2/V3 key unwrapping (RSA, AES, KMS) and content;
//! - [`gcm`]: a streaming AES-256-GCM decryptor;
//! - [`keys`]: key files and the keyring;
//! - [`object`]: one object, end to end;
//! - [`release`]: nothing reaches its destination before it is verified.

pub mod detect;
pub mod envelope;
pub mod gcm;
pub mod keys;
pub mod kms;
pub mod object;
pub mod openpgp;
pub mod release;
pub mod s3ec;
