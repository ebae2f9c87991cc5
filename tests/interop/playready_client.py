#!/usr/bin/env python3
"""Drives pyplayready (installed from PyPI by tests/setup.sh, never vendored) against Tessera.

pyplayready is CC BY-NC-ND 4.0: it is only installed and called here, none of its code is copied.
Every subcommand prints ONE JSON object on stdout; the Rust integration tests decide what is
right, this script only reports. Subcommands:

  license         one licence exchange with POST /playready/license: load a .prd, build the SOAP
                  AcquireLicense challenge for a WRMHEADER, optionally tamper with it, POST it,
                  let pyplayready parse the response and print the keys it recovered.
  build-device    make a .prd from zgpriv.dat + bgroupcert.dat with pyplayready's own CLI
                  `create-device`, so its chain verifier must accept Tessera's group chain.
  inspect-device  print the device's chain as pyplayready parses it.

The two overrides of drm-interop.md section 2.2, applied here in the test harness only, never in
the product:
  #1 `Cdm._wmrm_key` is set to Tessera's WMRM public key (otherwise the challenge is encrypted to
     Microsoft's WMRM key); `license --tamper wmrm` leaves it out on purpose.
  #2 `CertificateChain.MSPlayReadyRootIssuerPubKey` is set to Tessera's test root x||y, for
     `build-device` and `inspect-device --root-public`.

Exit codes: 0 success (or the expected fault), 1 unexpected HTTP status, 2 bad input or
challenge building failed, 3 pyplayready raised (parse_license, create-device).
"""
import argparse
import base64
import hashlib
import json
import os
import re
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

from Crypto.PublicKey import ECC
from ecpy.curves import Curve, Point

from pyplayready.cdm import Cdm
from pyplayready.crypto import Crypto
from pyplayready.device import Device
from pyplayready.misc.revocation_list import RevocationList
from pyplayready.system.bcert import BCertCertType, BCertObjType, CertificateChain
from pyplayready.system.pssh import PSSH
from pyplayready.system.wrmheader import WRMHeader

SOAP_ACTION = '"http://schemas.microsoft.com/DRM/2007/03/protocols/AcquireLicense"'
PLAYREADY_SYSTEM_ID = bytes.fromhex("9a04f07998404286ab92e65be0885f95")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
TAMPER_MODES = ["la", "signature", "cipher", "wmrm"]


def emit(obj, code=0):
    print(json.dumps(obj))
    return code


def p256_public_pem(path):
    """(x, y) of a PEM SubjectPublicKeyInfo P-256 public key."""
    key = ECC.import_key(Path(path).read_text())
    if key.curve not in ("NIST P-256", "p256", "P-256", "prime256v1", "secp256r1"):
        raise ValueError(f"{path}: not a P-256 key ({key.curve})")
    return int(key.pointQ.x), int(key.pointQ.y)


def load_wrm_header(arg):
    """A WRMHeader from base64 of a pssh box / PlayReady Header / PlayReady Object, base64 of a
    UTF-16LE or UTF-8 WRMHEADER XML, or the XML itself."""
    text = arg.strip()
    data = text.encode("utf-16-le") if text.startswith("<") else base64.b64decode(text)
    if data[4:8] == b"pssh" and data[12:28] != PLAYREADY_SYSTEM_ID:
        raise ValueError(f"pssh box system id {data[12:28].hex()} is not PlayReady's")
    if data[:2] == b"\xff\xfe":  # UTF-16LE BOM
        data = data[2:]
    if data[:2] == b"<\x00":
        return WRMHeader(data)
    if data[:1] == b"<":
        return WRMHeader(data.decode("utf-8").encode("utf-16-le"))
    headers = PSSH(data).wrm_headers
    if not headers:
        raise ValueError("no WRMHEADER record (type 1) in the PlayReady data")
    return headers[0]


def post(url, body, token):
    if urllib.parse.urlsplit(url).hostname not in LOCAL_HOSTS:
        raise ValueError(f"refusing a non-loopback URL: {url}")
    req = urllib.request.Request(url, data=body.encode("utf-8"), method="POST")
    req.add_header("Content-Type", "text/xml; charset=utf-8")
    req.add_header("SOAPAction", SOAP_ACTION)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def replace_text(doc, tag, change, last=False):
    """Replace the text of the first (or last) `<tag>text</tag>` (no attributes) in `doc`."""
    matches = list(re.finditer(f"<{tag}>([^<]*)</{tag}>", doc))
    if not matches:
        raise ValueError(f"no <{tag}> in the document")
    m = matches[-1] if last else matches[0]
    return doc[:m.start(1)] + change(m.group(1)) + doc[m.end(1):]


def other_first_char(b64):
    """Change the first base64 character: the bytes always differ and the text stays base64."""
    return ("B" if b64[0] == "A" else "A") + b64[1:]


def flip_byte(b64, index):
    raw = bytearray(base64.b64decode(b64))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def resign(doc, signing_key):
    """Recompute DigestValue over the raw LA substring and re-sign the raw SignedInfo substring
    with the device key, as pyplayready itself does, so only the edited content is wrong."""
    la = re.search(r"<LA [^>]*>.*?</LA>", doc, re.S).group(0)
    digest = base64.b64encode(hashlib.sha256(la.encode("utf-8")).digest()).decode()
    doc = replace_text(doc, "DigestValue", lambda _: digest)
    signed_info = re.search(r"<SignedInfo [^>]*>.*?</SignedInfo>", doc, re.S).group(0)
    signature = base64.b64encode(Crypto.ecc256_sign(signing_key, signed_info.encode("utf-8")))
    return replace_text(doc, "SignatureValue", lambda _: signature.decode())


def tamper_challenge(challenge, mode, signing_key):
    if mode == "la":  # inside the signed LA: its DigestValue no longer matches
        return replace_text(challenge, "LicenseNonce", other_first_char)
    if mode == "signature":  # ECDSA r||s no longer verifies over SignedInfo
        return replace_text(challenge, "SignatureValue", lambda v: flip_byte(v, 0))
    if mode == "cipher":  # first ciphertext byte after the 16-byte IV of the ClientData;
        # re-signed so digest and signature hold and only the decrypted ClientData is garbage
        edited = replace_text(challenge, "CipherValue", lambda v: flip_byte(v, 16), last=True)
        return resign(edited, signing_key)
    return challenge  # "wmrm": the change is leaving override #1 out


# pyplayready 0.8.5 writes integers with `Util.to_bytes`, which drops leading zero bytes two at a
# time instead of padding to the field size. Real clients always write 32 bytes per value, and
# Tessera refuses a short value as malformed (unit-tested in src/protocol/playready/challenge.rs:
# which coordinate is short cannot be told). The harness works around the client's defect
# without changing what it sends:
#  - keys pyplayready generates (device keys in create-device, the session's XmlKey) are drawn
#    again until every value is full width (one key in about 21,800 is not);
#  - a challenge whose ElGamal session key came out short (one in about 16,400: the randomness
#    is inside pyplayready's ElGamal) is rebuilt with a fresh session; the output reports it.
KEY_DRAWS = 64
CHALLENGE_ATTEMPTS = 8


def full_width_key_generation():
    from pyplayready.crypto.ecc_key import ECCKey

    original = ECCKey.generate.__func__

    def generate(cls):
        for _ in range(KEY_DRAWS):
            key = original(cls)
            if len(key.private_bytes()) == 32 and len(key.public_bytes()) == 64:
                return key
        raise RuntimeError(f"no full-width P-256 key in {KEY_DRAWS} draws")

    ECCKey.generate = classmethod(generate)


def session_key_length(challenge):
    """Length of the ElGamal session key: the first CipherValue (KeyInfo precedes CipherData)."""
    m = re.search(r"<CipherValue>([^<]*)</CipherValue>", challenge)
    return len(base64.b64decode(m.group(1))) if m else None


def build_challenge(cdm, header, args):
    """(session id, challenge, rebuilds) with a full-width session key."""
    rev_lists = RevocationList.SupportedListIds if args.rev_lists else None
    for attempt in range(CHALLENGE_ATTEMPTS):
        sid = cdm.open()
        challenge = cdm.get_license_challenge(sid, header, rev_lists=rev_lists,
                                              custom_data=args.custom_data)
        if session_key_length(challenge) == 128:
            return sid, challenge, attempt
        cdm.close(sid)
    raise RuntimeError(f"no well-formed challenge in {CHALLENGE_ATTEMPTS} attempts")


def local(tag):
    return tag.rsplit("}", 1)[-1]


def find_local(root, name):
    return next((e for e in root.iter() if local(e.tag) == name), None)


def soap_fault(body):
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    fault = find_local(root, "Fault")
    if fault is None:
        return None
    text = {name: (getattr(find_local(fault, name), "text", None) or None)
            for name in ("faultcode", "faultstring", "StatusCode")}
    return {"faultcode": text["faultcode"], "faultstring": text["faultstring"],
            "status_code": text["StatusCode"]}


def response_signed(text):
    try:
        root = ET.fromstring(text.encode("utf-8"))
    except ET.ParseError:
        return False
    return all(find_local(root, n) is not None for n in ("SigningCertificateChain", "SignatureValue"))


def cmd_license(args):
    try:
        header = load_wrm_header(args.wrmheader)
        cdm = Cdm.from_device(Device.load(args.device))
        if args.tamper != "wmrm":
            x, y = p256_public_pem(args.server_key)
            cdm._wmrm_key = Point(x, y, Curve.get_curve("secp256r1"))  # override #1
        sid, challenge, rebuilt = build_challenge(cdm, header, args)
        challenge = tamper_challenge(challenge, args.tamper, cdm.signing_key)
    except Exception as e:  # noqa: BLE001 - reported, not hidden
        return emit({"stage": "challenge", "error": f"{type(e).__name__}: {e}"}, 2)

    try:
        status, body = post(args.url, challenge, args.token)
    except (OSError, ValueError) as e:  # connection refused, timeout, non-loopback URL
        return emit({"stage": "http", "error": f"{type(e).__name__}: {e}"}, 2)
    if status != 200:
        text = body.decode("utf-8", "replace")
        return emit({"http_status": status, "fault": soap_fault(body), "body": text[:2000],
                     "challenge_rebuilds": rebuilt},
                    0 if args.expect_fault else 1)

    try:
        text = body.decode("utf-8")
        if args.tamper_response:  # inside the signed LicenseResponse
            text = replace_text(text, "ResponseID", other_first_char)
        signed = response_signed(text)
        cdm.parse_license(sid, text)
        keys = cdm.get_keys(sid)
    except Exception as e:  # noqa: BLE001 - pyplayready's verdict is the result
        return emit({"error": f"{type(e).__name__}: {e}"}, 3)
    out = {"keys": [{"kid": str(k.key_id), "key": k.key.hex(), "key_type": k.key_type.value,
                     "cipher_type": k.cipher_type.value, "key_length": k.key_length}
                    for k in keys],
           "signed": signed, "challenge_rebuilds": rebuilt}
    if args.expect_fault:
        out["http_status"] = 200
        return emit(out, 1)
    return emit(out)


def root_xy(path):
    x, y = p256_public_pem(path)
    return x.to_bytes(32, "big") + y.to_bytes(32, "big")


def cmd_build_device(args):
    from pyplayready.main import main as pyplayready_cli  # its click group

    CertificateChain.MSPlayReadyRootIssuerPubKey = root_xy(args.root_public)  # override #2
    out = Path(args.out)
    if out.exists():
        out.unlink()  # the CLI refuses to overwrite
    try:
        pyplayready_cli.main(args=["create-device", "-k", args.group_key, "-c", args.group_cert,
                                   "-o", str(out)], prog_name="pyplayready", standalone_mode=False)
        if not out.is_file():
            raise RuntimeError("create-device wrote no file")
        device = Device.load(out)
    except Exception as e:  # noqa: BLE001 - e.g. InvalidCertificateChain from verify_chain
        return emit({"error": f"{type(e).__name__}: {e}"}, 3)
    return emit({"device": str(out), "security_level": device.security_level})


def describe_cert(cert):
    basic = cert.get_attribute(BCertObjType.BASIC).attribute
    keys = cert.get_attribute(BCertObjType.KEY)
    cert_type = cert.get_type()
    try:
        type_name = BCertCertType(cert_type).name
    except ValueError:
        type_name = None
    return {
        "type": cert_type,
        "type_name": type_name,
        "cert_id": basic.cert_id.hex(),
        "security_level": basic.security_level,
        "flags": basic.flags,
        "expiration": basic.expiration_date,
        "client_id": basic.client_id.hex(),
        "keys": [{"key": k.key.hex(), "usages": list(k.usages)}
                 for k in (keys.attribute.cert_keys if keys else [])],
        "issuer_key": (cert.get_issuer_key() or b"").hex(),
        "name": cert.get_name(),
        "attributes": [a.tag for a in cert.parsed.attributes],
    }


def cmd_inspect_device(args):
    raw = Path(args.device).read_bytes()
    device = Device.loads(raw)
    chain = device.group_certificate
    out = {
        "prd_version": raw[3],
        "security_level": device.security_level,
        "chain_length": chain.count(),
        "certs": [describe_cert(chain.get(i)) for i in range(chain.count())],
        "has_group_key": device.group_key is not None,
        "signing_key": device.signing_key.public_bytes().hex(),
        "encryption_key": device.encryption_key.public_bytes().hex(),
    }
    if args.root_public:
        CertificateChain.MSPlayReadyRootIssuerPubKey = root_xy(args.root_public)  # override #2
        try:
            out["chain_verified"] = chain.verify_chain(check_expiry=True, cert_type=BCertCertType.DEVICE)
        except Exception as e:  # noqa: BLE001
            out["chain_verified"] = False
            out["chain_error"] = f"{type(e).__name__}: {e}"
    return emit(out)


def parser():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)

    lic = sub.add_parser("license", help="one licence exchange")
    lic.add_argument("--device", required=True, help=".prd file")
    lic.add_argument("--server-key", required=True, help="Tessera's WMRM public key (PEM SPKI)")
    lic.add_argument("--url", required=True, help="http://127.0.0.1:PORT/playready/license")
    lic.add_argument("--wrmheader", required=True,
                     help="base64 pssh box / PlayReady Object, or base64 WRMHEADER XML")
    lic.add_argument("--token", help="JWT sent as Authorization: Bearer")
    lic.add_argument("--custom-data", help="custom_data for get_license_challenge")
    lic.add_argument("--rev-lists", action="store_true",
                     help="send RevocationLists like pyplayready's CLI does")
    lic.add_argument("--tamper", choices=TAMPER_MODES)
    lic.add_argument("--tamper-response", action="store_true",
                     help="change one character of <ResponseID> before parse_license")
    lic.add_argument("--expect-fault", action="store_true", help="a non-200 reply exits 0")
    lic.set_defaults(func=cmd_license)

    bld = sub.add_parser("build-device", help="pyplayready create-device under Tessera's root")
    bld.add_argument("--group-key", required=True, help="zgpriv.dat (32 or 96 bytes)")
    bld.add_argument("--group-cert", required=True, help="bgroupcert.dat")
    bld.add_argument("--root-public", required=True, help="Tessera's root public key (PEM SPKI)")
    bld.add_argument("--out", required=True, help="output .prd path")
    bld.set_defaults(func=cmd_build_device)

    ins = sub.add_parser("inspect-device", help="the device as pyplayready parses it")
    ins.add_argument("--device", required=True)
    ins.add_argument("--root-public", help="also run verify_chain against this root (PEM SPKI)")
    ins.set_defaults(func=cmd_inspect_device)
    return ap


def main():
    args = parser().parse_args()
    full_width_key_generation()
    # pyplayready keeps revocation-list state under the platformdirs user data dir: keep it
    # out of the home directory and discard it with the run.
    with tempfile.TemporaryDirectory(prefix="pyplayready-data-") as data_home:
        os.environ["XDG_DATA_HOME"] = data_home
        return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
