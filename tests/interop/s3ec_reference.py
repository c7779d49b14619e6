#!/usr/bin/env python3
"""Builds Amazon S3 Encryption Client objects the way the Java client writes them.

The official Python client writes KMS-wrapped objects only, so RSA- and AES-wrapped
V2/V3 objects (and legacy V1 ones) for gcrec's interop tests are built here, with the
`cryptography` package, from the format the Java client uses:

- V2: AES-256-GCM content (12-byte IV, no AAD, 16-byte tag appended); the data key
  wrapped with RSA-OAEP-SHA1 over len(1) || key || "AES/GCM/NoPadding", or with AES-GCM
  as IV(12) || GCM(kek, key, AAD="AES/GCM/NoPadding") || tag.
- V3 (suite 115 = 0x0073): content key = HKDF-SHA512(salt=message ID, ikm=data key,
  info=00 73 "DERIVEKEY", 32); commitment = same with "COMMITKEY", 28 bytes; AES-256-GCM
  with IV = 12 x 01 and AAD = 00 73; wraps as V2 with "115" in place of the algorithm.
- V1: AES-256-CBC/PKCS5 content (16-byte IV); the data key wrapped with RSA PKCS#1 v1.5
  or AESWrap (RFC 3394).

Writes OUT (the ciphertext) and either OUT.gcrec-object.json ({"user_metadata": ...},
gcrec's saved-object-metadata file) or, with --instruction, OUT.instruction holding the
key-wrapping fields (the object's own metadata then keeps only the content fields).
"""
import argparse
import base64
import json
import os
import sys

from cryptography.hazmat.primitives import hashes, padding as sympadding, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import aes_key_wrap


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def load_rsa_public(path):
    with open(path, "rb") as f:
        return serialization.load_pem_public_key(f.read())


def load_aes(path):
    raw = open(path, "rb").read()
    return raw if len(raw) == 32 else base64.b64decode(raw.strip())


def wrap(kind, data_key, cek_alg, args):
    if kind == "rsa-oaep":
        plain = bytes([len(data_key)]) + data_key + cek_alg.encode()
        oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
        return load_rsa_public(args.rsa_public).encrypt(plain, oaep)
    if kind == "aes-gcm":
        iv = os.urandom(12)
        return iv + AESGCM(load_aes(args.aes_key)).encrypt(iv, data_key, cek_alg.encode())
    if kind == "rsa-pkcs1":
        return load_rsa_public(args.rsa_public).encrypt(data_key, padding.PKCS1v15())
    if kind == "aes-wrap":
        return aes_key_wrap(load_aes(args.aes_key), data_key)
    raise SystemExit(f"unknown wrap {kind}")


WRAP_NAMES = {
    ("v2", "rsa-oaep"): "RSA-OAEP-SHA1",
    ("v2", "aes-gcm"): "AES/GCM",
    ("v3", "rsa-oaep"): "22",
    ("v3", "aes-gcm"): "02",
}


def hkdf(data_key, message_id, label, length):
    return HKDF(algorithm=hashes.SHA512(), length=length, salt=message_id,
                info=b"\x00\x73" + label).derive(data_key)


def encrypt(version, kind, plain, args):
    data_key = os.urandom(32)
    if version == "v2":
        iv = os.urandom(12)
        body = AESGCM(data_key).encrypt(iv, plain, None)
        key_fields = {
            "x-amz-key-v2": b64(wrap(kind, data_key, "AES/GCM/NoPadding", args)),
            "x-amz-wrap-alg": WRAP_NAMES[(version, kind)],
            "x-amz-matdesc": "{}",
        }
        content_fields = {"x-amz-iv": b64(iv), "x-amz-cek-alg": "AES/GCM/NoPadding", "x-amz-tag-len": "128"}
    elif version == "v3":
        message_id = os.urandom(28)
        content_key = hkdf(data_key, message_id, b"DERIVEKEY", 32)
        commitment = hkdf(data_key, message_id, b"COMMITKEY", 28)
        body = AESGCM(content_key).encrypt(b"\x01" * 12, plain, b"\x00\x73")
        key_fields = {
            "x-amz-3": b64(wrap(kind, data_key, "115", args)),
            "x-amz-w": WRAP_NAMES[(version, kind)],
            "x-amz-m": "{}",
        }
        content_fields = {"x-amz-c": "115", "x-amz-d": b64(commitment), "x-amz-i": b64(message_id)}
    elif version == "v1":
        iv = os.urandom(16)
        padder = sympadding.PKCS7(128).padder()
        padded = padder.update(plain) + padder.finalize()
        enc = Cipher(algorithms.AES(data_key), modes.CBC(iv)).encryptor()
        body = enc.update(padded) + enc.finalize()
        key_fields = {"x-amz-key": b64(wrap(kind, data_key, "", args)), "x-amz-matdesc": "{}"}
        if kind == "aes-wrap":
            key_fields["x-amz-wrap-alg"] = "AESWrap"
        content_fields = {"x-amz-iv": b64(iv), "x-amz-unencrypted-content-length": str(len(plain))}
    else:
        raise SystemExit(f"unknown version {version}")
    return body, key_fields, content_fields


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", choices=["v1", "v2", "v3"], required=True)
    p.add_argument("--wrap", choices=["rsa-oaep", "aes-gcm", "rsa-pkcs1", "aes-wrap"], required=True)
    p.add_argument("--rsa-public")
    p.add_argument("--aes-key")
    p.add_argument("--instruction", action="store_true", help="put the key-wrapping fields in OUT.instruction")
    p.add_argument("input")
    p.add_argument("out")
    args = p.parse_args()
    plain = open(args.input, "rb").read()
    body, key_fields, content_fields = encrypt(args.version, args.wrap, plain, args)
    with open(args.out, "wb") as f:
        f.write(body)
    if args.instruction:
        object_meta = dict(content_fields)
        with open(args.out + ".instruction", "w") as f:
            json.dump(key_fields, f)
    else:
        object_meta = {**key_fields, **content_fields}
    with open(args.out + ".gcrec-object.json", "w") as f:
        json.dump({"user_metadata": object_meta}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
