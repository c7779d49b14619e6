#!/usr/bin/env python3
"""Encrypts or decrypts a file with the AWS Encryption SDK for Python's streaming API and
a raw AES master key (a base64 key file, as keys-example/aes256.key): the peer of
bench/containers.sh. Encryption uses suite 0x0578 (committed, ECDSA P-384) in 4 KiB
frames.

usage: esdk_stream.py e|d IN OUT KEY-FILE
"""
import base64
import sys

import aws_encryption_sdk
from aws_encryption_sdk.identifiers import (
    Algorithm,
    CommitmentPolicy,
    EncryptionKeyType,
    WrappingAlgorithm,
)
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
from aws_encryption_sdk.key_providers.raw import RawMasterKeyProvider


class Raw(RawMasterKeyProvider):
    provider_id = "gcrec-bench"

    def __init__(self, **kwargs):
        pass

    def _get_raw_key(self, key_id):
        return self.wrapping_key


def main():
    mode, src, dst, key_file = sys.argv[1:5]
    provider = Raw()
    provider.wrapping_key = WrappingKey(
        wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
        wrapping_key=base64.b64decode(open(key_file).read().strip()),
        wrapping_key_type=EncryptionKeyType.SYMMETRIC,
    )
    provider.add_master_key(b"recordings")
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    options = {}
    if mode == "e":
        options = dict(frame_length=4096, algorithm=Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384)
    with open(src, "rb") as i, open(dst, "wb") as o:
        with client.stream(mode=mode, source=i, key_provider=provider, **options) as s:
            for chunk in s:
                o.write(chunk)


if __name__ == "__main__":
    main()
