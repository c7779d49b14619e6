#!/usr/bin/env python3
"""Encrypts files with the official amazon-s3-encryption-client-python (KMS keyring)
against a local moto server, and saves each object as S3 stores it: the ciphertext as
OUT/NAME and its user metadata as OUT/NAME.gcrec-object.json (gcrec's saved-object
metadata). Checks that the official client decrypts each object back, and prints
{"kms_key_id": ...} on stdout.

usage: s3ec_official.py --endpoint http://127.0.0.1:PORT --suite v3|v2 --out DIR FILE...
       s3ec_official.py --endpoint ... --suite ... --bucket B --root DIR FILE...
With --root, each FILE is stored under its path relative to DIR (an export's key) and
left in the bucket; nothing is saved locally.
"""
import argparse
import json
import os
import sys

import boto3
from s3_encryption import S3EncryptionClient, S3EncryptionClientConfig
from s3_encryption.materials.kms_keyring import KmsKeyring
from s3_encryption.materials.materials import AlgorithmSuite, CommitmentPolicy


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--suite", choices=["v2", "v3"], default="v3")
    p.add_argument("--out")
    p.add_argument("--root")
    p.add_argument("--bucket", default="interop")
    p.add_argument("files", nargs="+")
    a = p.parse_args()
    if not a.endpoint.startswith(("http://127.", "http://localhost")):
        raise SystemExit("refusing a non-loopback endpoint")
    common = dict(endpoint_url=a.endpoint, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
    s3 = boto3.client("s3", **common)
    kms = boto3.client("kms", **common)
    try:
        s3.create_bucket(Bucket=a.bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    key_id = kms.create_key(Description="gcrec interop")["KeyMetadata"]["Arn"]
    options = {}
    if a.suite == "v2":
        options = dict(encryption_algorithm=AlgorithmSuite.ALG_AES_256_GCM_IV12_TAG16_NO_KDF,
                       commitment_policy=CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT)
    # The encryption client installs itself on the boto3 client it is given, so raw
    # downloads go through a separate one.
    encrypting = boto3.client("s3", **common)
    client = S3EncryptionClient(encrypting, S3EncryptionClientConfig(keyring=KmsKeyring(kms, key_id), **options))
    if not a.root:
        os.makedirs(a.out, exist_ok=True)
    for path in a.files:
        name = os.path.relpath(path, a.root) if a.root else os.path.basename(path)
        data = open(path, "rb").read()
        client.put_object(Bucket=a.bucket, Key=name, Body=data)
        assert client.get_object(Bucket=a.bucket, Key=name)["Body"].read() == data
        if a.root:
            continue
        raw = s3.get_object(Bucket=a.bucket, Key=name)
        body = raw["Body"].read()
        assert body != data, "the raw download came back decrypted"
        raw["Body"] = None
        with open(os.path.join(a.out, name), "wb") as f:
            f.write(body)
        with open(os.path.join(a.out, name + ".gcrec-object.json"), "w") as f:
            json.dump({"user_metadata": raw["Metadata"]}, f, indent=1)
    json.dump({"kms_key_id": key_id}, sys.stdout)


if __name__ == "__main__":
    main()
