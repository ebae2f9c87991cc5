#!/usr/bin/env python3
"""Drives pywidevine (installed from PyPI by tests/setup.sh, never vendored) against Tessera.

One licence exchange per run: load a .wvd made by `tessera devices widevine`, build a
challenge with pywidevine's Cdm, POST it to Tessera, let pywidevine parse the licence, and
print what pywidevine recovered as one JSON line. The Rust integration tests
(tests/it/widevine.rs) decide what is right; this script only reports.

The one override (drm-interop.md section 1.7): pywidevine checks service certificates against
a hard-coded vendor root, so for privacy mode `Cdm.root_cert` is set to Tessera's test root.
"""
import argparse
import json
import sys
import urllib.error
import urllib.request
from uuid import UUID

from pywidevine.cdm import Cdm
from pywidevine.device import Device
from pywidevine.license_protocol_pb2 import (DrmCertificate, LicenseRequest, SignedDrmCertificate,
                                             SignedMessage, WidevinePsshData)
from pywidevine.pssh import PSSH


def post(url, body, token):
    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("Content-Type", "application/octet-stream")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wvd", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--token")
    ap.add_argument("--kid", action="append", default=[], help="KID as a UUID or 32 hex digits")
    ap.add_argument("--license-type", default="STREAMING", choices=["STREAMING", "OFFLINE"])
    ap.add_argument("--privacy", action="store_true", help="fetch the service certificate first")
    ap.add_argument("--root-cert", help="root-cert.bin of Tessera's root (privacy mode)")
    ap.add_argument("--tamper", action="store_true", help="flip one byte of the signed request")
    args = ap.parse_args()

    cdm = Cdm.from_device(Device.load(args.wvd))
    sid = cdm.open()
    out = {}
    if args.privacy:
        root = SignedDrmCertificate()
        root.ParseFromString(open(args.root_cert, "rb").read())
        root_cert = DrmCertificate()
        root_cert.ParseFromString(root.drm_certificate)
        cdm.root_cert = root_cert
        status, body = post(args.url, cdm.service_certificate_challenge, None)
        if status != 200:
            print(json.dumps({"stage": "service_certificate", "status": status,
                              "body": body.decode("utf-8", "replace")}))
            return 0
        out["provider_id"] = cdm.set_service_certificate(sid, body)

    data = WidevinePsshData()
    data.key_ids.extend(UUID(k).bytes for k in args.kid)
    pssh = PSSH.new(system_id=PSSH.SystemId.Widevine, init_data=data)
    challenge = cdm.get_license_challenge(sid, pssh, args.license_type, privacy_mode=args.privacy)
    if args.tamper:
        # Inside the signed SignedMessage.msg: request_time one second later, the signature
        # kept. Through protobuf, not a byte offset: field offsets move with the varint
        # lengths of pywidevine's random values.
        signed = SignedMessage.FromString(challenge)
        request = LicenseRequest.FromString(signed.msg)
        request.request_time += 1
        signed.msg = request.SerializeToString()
        challenge = signed.SerializeToString()
    status, body = post(args.url, challenge, args.token)
    out.update({"stage": "license", "status": status})
    if status != 200:
        out["body"] = body.decode("utf-8", "replace")
        print(json.dumps(out))
        return 0
    try:
        cdm.parse_license(sid, body)
    except Exception as e:  # the test asserts on the reported class name
        out["parse_error"] = type(e).__name__ + ": " + str(e)
        print(json.dumps(out))
        return 0
    out["keys"] = [{"kid": k.kid.hex, "key": k.key.hex()} for k in cdm.get_keys(sid, "CONTENT")]
    print(json.dumps(out))
    cdm.close(sid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
