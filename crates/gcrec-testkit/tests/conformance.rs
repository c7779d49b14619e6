//! The ObjectSource conformance suite, run against every source: the local directory,
//! the in-memory double, and S3 (aws-sdk-s3 against moto on a free loopback port).

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod local {
    gcrec_testkit::conformance_tests!(gcrec_testkit::fixtures::LocalFixture::new());
}

mod memory {
    gcrec_testkit::conformance_tests!(gcrec_testkit::fixtures::MemoryFixture::default());
}

mod s3_moto {
    gcrec_testkit::conformance_tests!(gcrec_testkit::fixtures::S3Fixture::new().await);
}

mod s3_s3s_fs {
    gcrec_testkit::conformance_tests!(gcrec_testkit::fixtures::S3Fixture::s3s_fs().await);
}
