#!/usr/bin/env python3
"""Encrypts files with the official AWS Encryption SDK for Python (PyPI
`aws-encryption-sdk`), in place or into a directory, and checks that the SDK decrypts
each back. One master key, chosen by the flags:

  --aes-key FILE            raw AES-256 master key (base64 file, as keys-example/aes256.key)
  --rsa-public PEM --rsa-padding pkcs1|oaep-sha1|oaep-sha256
                            raw RSA master key (the private key is needed only to check)
  --rsa-private PEM         the private half, for the round-trip check
  --kms --endpoint URL      a new KMS key in the moto server at URL (loopback only);
                            prints {"kms_key_id": ...}

usage: esdk_encrypt.py KEY-FLAGS --suite NAME [--frame-length N] [--context K=V]...
                       (--out DIR FILE... | --in-place FILE...)
NAME is an aws_encryption_sdk.identifiers.Algorithm member, e.g.
AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384; --frame-length 0 writes a non-framed body.
"""
import argparse
import base64
import json
import os

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
    provider_id = "gcrec-tests"

    def __init__(self, **kwargs):
        pass

    def _get_raw_key(self, key_id):
        return self.wrapping_key


PADDING = {
    "pkcs1": WrappingAlgorithm.RSA_PKCS1,
    "oaep-sha1": WrappingAlgorithm.RSA_OAEP_SHA1_MGF1,
    "oaep-sha256": WrappingAlgorithm.RSA_OAEP_SHA256_MGF1,
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--aes-key")
    p.add_argument("--rsa-public")
    p.add_argument("--rsa-private")
    p.add_argument("--rsa-padding", choices=sorted(PADDING), default="oaep-sha256")
    p.add_argument("--kms", action="store_true")
    p.add_argument("--endpoint")
    p.add_argument("--suite", default="AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384")
    p.add_argument("--frame-length", type=int, default=4096)
    p.add_argument("--context", action="append", default=[])
    p.add_argument("--out")
    p.add_argument("--in-place", action="store_true")
    p.add_argument("files", nargs="+")
    a = p.parse_args()

    if a.kms:
        import boto3
        from aws_encryption_sdk import StrictAwsKmsMasterKeyProvider

        if not (a.endpoint or "").startswith(("http://127.", "http://localhost")):
            raise SystemExit("refusing a non-loopback endpoint")
        session = boto3.session.Session(
            region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
        )
        kms = session.client("kms", endpoint_url=a.endpoint)
        key_id = kms.create_key()["KeyMetadata"]["Arn"]
        import botocore.session

        bsession = botocore.session.Session()
        bsession.set_credentials("test", "test")
        bsession.set_config_variable("region", "us-east-1")
        os.environ["AWS_ENDPOINT_URL_KMS"] = a.endpoint
        provider = StrictAwsKmsMasterKeyProvider(key_ids=[key_id], botocore_session=bsession)
        print(json.dumps({"kms_key_id": key_id}))
        decrypt_provider = provider
    elif a.aes_key:
        provider = Raw()
        provider.wrapping_key = WrappingKey(
            wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
            wrapping_key=base64.b64decode(open(a.aes_key).read().strip()),
            wrapping_key_type=EncryptionKeyType.SYMMETRIC,
        )
        provider.add_master_key(b"recordings")
        decrypt_provider = provider
    else:
        provider = Raw()
        provider.wrapping_key = WrappingKey(
            wrapping_algorithm=PADDING[a.rsa_padding],
            wrapping_key=open(a.rsa_public, "rb").read(),
            wrapping_key_type=EncryptionKeyType.PUBLIC,
        )
        provider.add_master_key(b"recordings-rsa")
        decrypt_provider = None
        if a.rsa_private:
            decrypt_provider = Raw()
            decrypt_provider.wrapping_key = WrappingKey(
                wrapping_algorithm=PADDING[a.rsa_padding],
                wrapping_key=open(a.rsa_private, "rb").read(),
                wrapping_key_type=EncryptionKeyType.PRIVATE,
            )
            decrypt_provider.add_master_key(b"recordings-rsa")

    suite = getattr(Algorithm, a.suite)
    policy = (
        CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
        if "COMMIT" in a.suite
        else CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT
    )
    client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=policy)
    context = dict(kv.split("=", 1) for kv in a.context)
    for f in a.files:
        data = open(f, "rb").read()
        ct, _ = client.encrypt(
            source=data,
            key_provider=provider,
            encryption_context=context,
            algorithm=suite,
            frame_length=a.frame_length,
        )
        if decrypt_provider is not None:
            back, _ = client.decrypt(source=ct, key_provider=decrypt_provider)
            assert back == data, f
        target = f if a.in_place else os.path.join(a.out, os.path.basename(f))
        with open(target, "wb") as out:
            out.write(ct)


if __name__ == "__main__":
    main()
