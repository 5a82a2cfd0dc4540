#!/usr/bin/python3
"""dsse_verify.py - verify a DSSE envelope holding an in-toto attestation
with an implementation independent of agentfactory: the signature check is
Debian's python3-securesystemslib (SSlibKey, scheme rsassa-pss-sha256, which
verifies with pyca/cryptography); the pre-authentication encoding is written
here from the DSSE specification (github.com/secure-systems-lab/dsse,
protocol.md), and the key id is recomputed as SHA-256 of the DER public key.

usage: dsse_verify.py ENVELOPE PUBLIC_KEY.pem [--payload-type T]
                      [--predicate-type T] [--subject NAME=SHA256HEX]...

Exit 0 and "OK ..." when a signature by that key verifies over the PAE, the
payload type is the expected one and the payload is an in-toto Statement v1
(with the predicate type and subjects asked for); exit 1 and "FAIL: reason"
otherwise; exit 2 on usage errors.
"""
import argparse
import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives import serialization
from securesystemslib import exceptions
from securesystemslib.signer import Signature, SSlibKey


def pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def fail(msg: str) -> None:
    print(f"FAIL: {msg}")
    sys.exit(1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("envelope")
    ap.add_argument("public_key")
    ap.add_argument("--payload-type", default="application/vnd.in-toto+json")
    ap.add_argument("--predicate-type", default=None)
    ap.add_argument("--subject", action="append", default=[])
    args = ap.parse_args()

    with open(args.public_key, "rb") as f:
        pem = f.read()
    der = serialization.load_pem_public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    keyid = hashlib.sha256(der).hexdigest()
    key = SSlibKey(keyid, "rsa", "rsassa-pss-sha256", {"public": pem.decode()})

    try:
        with open(args.envelope, "rb") as f:
            env = json.load(f)
        payload = base64.b64decode(env["payload"], validate=True)
        sigs = env["signatures"]
        ptype = env["payloadType"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        fail(f"not a DSSE envelope: {e}")
    if ptype != args.payload_type:
        fail(f"payloadType {ptype!r}, expected {args.payload_type!r}")
    verified = False
    for s in sigs:
        if s.get("keyid") != keyid:
            continue
        raw = base64.b64decode(s["sig"])
        try:
            key.verify_signature(Signature(keyid, raw.hex()), pae(ptype, payload))
            verified = True
        except exceptions.UnverifiedSignatureError:
            pass
    if not verified:
        fail(f"no signature by key {keyid} verifies over the envelope's PAE")
    try:
        st = json.loads(payload)
    except ValueError as e:
        fail(f"the payload is not JSON: {e}")
    if st.get("_type") != "https://in-toto.io/Statement/v1":
        fail(f"not an in-toto Statement v1: _type {st.get('_type')!r}")
    if args.predicate_type and st.get("predicateType") != args.predicate_type:
        fail(f"predicateType {st.get('predicateType')!r}, expected {args.predicate_type!r}")
    subjects = {s.get("name"): s.get("digest", {}).get("sha256") for s in st.get("subject", [])}
    if not subjects:
        fail("the statement has no subject")
    for want in args.subject:
        name, _, digest = want.partition("=")
        if subjects.get(name) != digest:
            fail(f"subject {name!r}: digest {subjects.get(name)!r}, expected {digest!r}")
    print(f"OK keyid={keyid} predicateType={st.get('predicateType')} subjects={len(subjects)}")


if __name__ == "__main__":
    main()
