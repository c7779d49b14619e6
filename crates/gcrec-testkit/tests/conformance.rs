//! The ObjectSource conformance suite, run against the sources that need no server.
//! (The S3 source runs the same suite against moto and s3s-fs in its own tests.)

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod local {
    gcrec_testkit::conformance_tests!(gcrec_testkit::fixtures::LocalFixture::new());
}

mod memory {
    gcrec_testkit::conformance_tests!(gcrec_testkit::fixtures::MemoryFixture::default());
}
