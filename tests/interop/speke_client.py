#!/usr/bin/env python3
"""SPEKE v2.0 / v2.1 encryptor stand-in built on the PyPI `cpix` package (1.4.1).

Installed by tests/setup.sh into its own venv from tests/interop/speke-requirements.txt (cpix needs
construct>=2.9, which cannot share a venv with the Widevine/PlayReady clients). Never vendored.

One exchange per run: build a CPIX request the way an encryptor asks for keys (ContentKey
without a value, DRMSystem with empty children naming the signalling wanted, usage rules with
video/audio filters, optional key periods, optional DeliveryDataList with a fresh RSA
certificate), POST it to Tessera, then parse whatever comes back both with `cpix.parse` and with
lxml (by namespace URI, never by prefix) and print one JSON object on stdout. The exit code is 0
whenever an HTTP exchange happened, whatever its status: the Rust integration tests decide what
is right; this script only reports.

What cpix 1.4.1 cannot do, and what this script does instead (all with lxml on the serialized
cpix output, which uses a default namespace and no `cpix:` prefix):
  * DRMSystem systemIds outside its fixed list (the HLS AES-128 "clear key" id 3ea8778f-...):
    that DRMSystem element is built by hand. Parsing a document that contains one raises, so the
    response is re-parsed by cpix without those elements (reported in `cpix_adjustments`).
  * A DeliveryData holding only a DeliveryKey (the request form): built by hand around
    `cpix.DeliveryKey(cert).element()`.
  * commonEncryptionScheme values other than cenc/cbc1/cens/cbcs (SPEKE 2.1 HLS method names),
    or no scheme at all: the attribute is rewritten after cpix built the element.
  * ContentKeyPeriod with @index and @start/@end together (SPEKE 2.1 INDEX_WITH_START_END):
    start/end are added by hand; cpix refuses to parse such a period, so the response is
    re-parsed without start/end (reported in `cpix_adjustments`).
  * HLSSignalingData@playlist="multiVariant" (CPIX 2.4), SmoothStreamingProtectionHeaderData:
    cpix only emits "master" and drops both on parse; built and read with lxml.
  * No crypto at all: RSA-OAEP, HMAC-SHA512 and AES-256-CBC are done with `cryptography`.
"""
import argparse
import base64
import datetime
import hashlib
import hmac
import json
import re
import secrets
import struct
import sys
import urllib.error
import urllib.request
import uuid
import warnings

# `import cpix` goes through pkg_resources, which prints a deprecation notice on newer
# setuptools; stdout must stay one JSON object, and stderr should stay readable.
warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", message=".*pkg_resources.*")

import cpix  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, padding, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from lxml import etree  # noqa: E402

NS_CPIX = "urn:dashif:org:cpix"
NS_PSKC = "urn:ietf:params:xml:ns:keyprov:pskc"
NS_ENC = "http://www.w3.org/2001/04/xmlenc#"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_CENC = "urn:mpeg:cenc:2013"
NS_MSPR = "urn:microsoft:playready"


def C(name):
    return "{%s}%s" % (NS_CPIX, name)


def P(name):
    return "{%s}%s" % (NS_PSKC, name)


def E(name):
    return "{%s}%s" % (NS_ENC, name)


WIDEVINE = "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"
PLAYREADY = "9a04f079-9840-4286-ab92-e65be0885f95"
FAIRPLAY = "94ce86fb-07ff-4f43-adb8-93d2fa968ca2"
CLEARKEY_AES128 = "3ea8778f-7742-4bf9-b18b-e834b2acbd47"
COMMON = "1077efec-c0b2-4d02-ace3-3c1e52e2fb4b"

# name -> (systemId, signalling children requested by default)
SYSTEMS = {
    "widevine": (WIDEVINE, ["pssh", "cpd", "hls-media", "hls-master"]),
    "playready": (PLAYREADY, ["pssh", "cpd", "hls-media", "hls-master"]),
    "fairplay": (FAIRPLAY, ["hls-media", "hls-master"]),
    "clearkey-aes128": (CLEARKEY_AES128, ["hls-media", "hls-master"]),
    "common": (COMMON, ["pssh", "cpd"]),
}
CHILD_TOKENS = {"pssh", "cpd", "hls", "hls-media", "hls-master", "smooth"}

CPIX_VERSION_FOR = {"2.0": "2.3", "2.1": "2.4"}
CPIX_SCHEMES = {"cenc", "cbc1", "cens", "cbcs"}

# Track-type presets (MediaPackage/MediaConvert SPEKE v2 encryption contract).
DEFAULT_TRACK_TYPES = {
    1: ["ALL"],
    2: ["SD", "HD"],
    3: ["SD", "HD", "UHD"],
    4: ["SD", "HD", "UHD1", "UHD2"],
    5: ["SD", "HD1", "HD2", "UHD1", "UHD2"],
    6: ["SD", "HD1", "HD2", "UHD1", "UHD2", "AUDIO"],
    7: ["SD", "HD1", "HD2", "UHD1", "UHD2", "STEREO_AUDIO", "MULTICHANNEL_AUDIO"],
    8: ["SD", "HD1", "HD2", "UHD1", "UHD2", "STEREO_AUDIO", "MULTICHANNEL_AUDIO_3_6",
        "MULTICHANNEL_AUDIO_7"],
}
SD_MAX = 589824          # 1024 x 576
HD_MAX = 2073600         # 1920 x 1080
HD1_MAX = 921600         # 1280 x 720
UHD1_MAX = 8847360       # 4096 x 2160


def default_track_types(n):
    if n in DEFAULT_TRACK_TYPES:
        return list(DEFAULT_TRACK_TYPES[n])
    base = list(DEFAULT_TRACK_TYPES[8])
    return base + ["VIDEO_%d" % i for i in range(len(base) + 1, n + 1)]


def filters_for(track_type, all_types):
    """cpix filter objects for one intendedTrackType, following the SPEKE v2 presets."""
    t = track_type.upper()
    has_uhd = any(x.upper().startswith("UHD") for x in all_types)
    if t == "ALL":
        return [cpix.VideoFilter(), cpix.AudioFilter()]
    if t == "VIDEO":
        return [cpix.VideoFilter()]
    if t == "AUDIO":
        return [cpix.AudioFilter()]
    if t == "SD":
        return [cpix.VideoFilter(max_pixels=SD_MAX)]
    if t == "HD":
        if has_uhd:
            return [cpix.VideoFilter(min_pixels=SD_MAX + 1, max_pixels=HD_MAX)]
        return [cpix.VideoFilter(min_pixels=SD_MAX + 1)]
    if t == "HD1":
        return [cpix.VideoFilter(min_pixels=SD_MAX + 1, max_pixels=HD1_MAX)]
    if t == "HD2":
        return [cpix.VideoFilter(min_pixels=HD1_MAX + 1, max_pixels=HD_MAX)]
    if t == "SD+HD1":
        return [cpix.VideoFilter(max_pixels=HD1_MAX)]
    if t == "UHD":
        return [cpix.VideoFilter(min_pixels=HD_MAX + 1)]
    if t == "UHD1":
        return [cpix.VideoFilter(min_pixels=HD_MAX + 1, max_pixels=UHD1_MAX)]
    if t == "UHD2":
        return [cpix.VideoFilter(min_pixels=UHD1_MAX + 1)]
    if t == "STEREO_AUDIO":
        return [cpix.AudioFilter(max_channels=2)]
    if t == "MULTICHANNEL_AUDIO":
        return [cpix.AudioFilter(min_channels=3)]
    if t == "MULTICHANNEL_AUDIO_3_6":
        return [cpix.AudioFilter(min_channels=3, max_channels=6)]
    if t == "MULTICHANNEL_AUDIO_7":
        return [cpix.AudioFilter(min_channels=7)]
    if "AUDIO" in t:
        return [cpix.AudioFilter()]
    return [cpix.VideoFilter()]


# ----------------------------------------------------------------------------------------------
# small helpers


def b64(data):
    return base64.b64encode(data).decode("ascii")


def b64d(text):
    """Strict base64 decode (whitespace tolerated); None for None; raises ValueError."""
    if text is None:
        return None
    return base64.b64decode("".join(text.split()), validate=True)


def norm_kid(text):
    """A KID as lowercase hyphenated UUID; accepts a UUID or 32 hex digits."""
    return str(uuid.UUID(text.strip()))


def text_of(el):
    """Element text ('' for an empty element), None when the element is absent."""
    if el is None:
        return None
    return el.text if el.text is not None else ""


def safe_parser():
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           huge_tree=False, remove_blank_text=False)


def xml_parse(data):
    return etree.fromstring(data, safe_parser())


# ----------------------------------------------------------------------------------------------
# delivery key (encrypted content keys)


def make_delivery_key(bits, pem_path):
    if pem_path:
        with open(pem_path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tessera speke test encryptor")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.DER)


def load_private_key(pem_path):
    with open(pem_path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def rsa_oaep_sha1_decrypt(key, data):
    return key.decrypt(data, asym_padding.OAEP(mgf=asym_padding.MGF1(algorithm=hashes.SHA1()),
                                               algorithm=hashes.SHA1(), label=None))


# ----------------------------------------------------------------------------------------------
# request building


def build_request(args, kids, track_types, schemes, period_of_kid, period_ids, cert_der):
    """Returns the request body (bytes). Built with cpix; lxml only where cpix cannot."""
    systems = []
    for name in [s.strip() for s in args.systems.split(",") if s.strip()]:
        if name.lower() in SYSTEMS:
            sid, children = SYSTEMS[name.lower()]
        else:
            sid, children = norm_kid(name), ["pssh", "cpd", "hls-media", "hls-master"]
        if args.children is not None:
            children = [c.strip() for c in args.children.split(",") if c.strip()]
        children = set(children)
        if "hls" in children:
            children |= {"hls-media", "hls-master"}
        if args.smooth and sid == PLAYREADY:
            children.add("smooth")
        systems.append((sid, children))

    cpix_known = {str(u).lower() for u in cpix.VALID_SYSTEM_IDS}

    content_keys = cpix.ContentKeyList()
    for kid in kids:
        scheme = schemes[kid]
        ck_scheme = scheme if scheme in CPIX_SCHEMES else "cenc"  # rewritten below if needed
        iv = b64(secrets.token_bytes(16)) if args.explicit_iv else None
        content_keys.append(cpix.ContentKey(kid, common_encryption_scheme=ck_scheme,
                                            explicit_iv=iv))

    drm_systems = cpix.DRMSystemList()
    order = []  # ("cpix", None) or ("lxml", element), in document order
    for sid, children in systems:
        for kid in kids:
            if sid in cpix_known:
                drm_systems.append(cpix.DRMSystem(
                    kid, sid,
                    pssh="" if "pssh" in children else None,
                    content_protection_data="" if "cpd" in children else None,
                    hls_signaling_data="" if "hls-media" in children else None,
                    hls_signaling_data_master="" if "hls-master" in children else None))
                order.append(("cpix", (kid, sid, children)))
            else:
                el = etree.Element(C("DRMSystem"), kid=kid, systemId=sid)
                if "pssh" in children:
                    etree.SubElement(el, C("PSSH")).text = ""
                if "cpd" in children:
                    etree.SubElement(el, C("ContentProtectionData")).text = ""
                if "hls-media" in children:
                    etree.SubElement(el, C("HLSSignalingData"), playlist="media").text = ""
                if "hls-master" in children:
                    etree.SubElement(el, C("HLSSignalingData"), playlist="master").text = ""
                order.append(("lxml", (el, children)))

    periods = cpix.PeriodList()
    for i, pid in enumerate(period_ids):
        periods.append(cpix.Period(pid, index=args.first_period_index + i))

    usage_rules = cpix.UsageRuleList()
    for kid in kids:
        flt = []
        if period_ids:
            flt.append(cpix.KeyPeriodFilter(period_ids[period_of_kid[kid]]))
        if not args.no_filters:
            flt.extend(filters_for(track_types[kid], list(track_types.values())))
        usage_rules.append(cpix.UsageRule(kid, flt, track_types[kid]))

    doc = cpix.CPIX(content_keys=content_keys, drm_systems=drm_systems, usage_rules=usage_rules,
                    periods=periods,
                    content_id=None if args.omit_content_id else args.content_id,
                    version=None if args.cpix_version == "none" else args.cpix_version)

    # Round-trip through text: cpix creates its list elements without a namespace and relies on
    # the default namespace at serialization; after re-parsing, every element is namespaced.
    root = xml_parse(etree.tostring(doc.element()))

    # ContentKey@commonEncryptionScheme values cpix refuses (or none at all).
    for ck in root.iter(C("ContentKey")):
        scheme = schemes[norm_kid(ck.get("kid"))]
        if scheme == "none":
            del ck.attrib["commonEncryptionScheme"]
        elif scheme not in CPIX_SCHEMES:
            ck.set("commonEncryptionScheme", scheme)

    # DRMSystems: merge the hand-built ones (system ids cpix does not know) in order, rename the
    # session-key playlist, add SmoothStreamingProtectionHeaderData where requested.
    dsl = root.find(C("DRMSystemList"))
    if dsl is None and order:
        dsl = etree.Element(C("DRMSystemList"))
        anchor = root.find(C("ContentKeyList"))
        anchor.addnext(dsl)
    if dsl is not None:
        built = list(dsl)
        for el in built:
            dsl.remove(el)
        it = iter(built)
        for kind, payload in order:
            if kind == "cpix":
                el = next(it)
                children = payload[2]
            else:
                el, children = payload
            if "smooth" in children:
                etree.SubElement(el, C("SmoothStreamingProtectionHeaderData")).text = ""
            dsl.append(el)
        for hls in dsl.iter(C("HLSSignalingData")):
            if hls.get("playlist") == "master":
                hls.set("playlist", args.playlist_name)

    # SPEKE 2.1 period timing: cpix will not combine @index with @start/@end.
    if args.period_start and period_ids:
        start0 = datetime.datetime.fromisoformat(args.period_start.replace("Z", "+00:00"))
        step = datetime.timedelta(seconds=args.period_seconds)
        for i, cp in enumerate(root.iter(C("ContentKeyPeriod"))):
            s = start0 + i * step
            cp.set("start", s.strftime("%Y-%m-%dT%H:%M:%SZ"))
            cp.set("end", (s + step).strftime("%Y-%m-%dT%H:%M:%SZ"))

    # Encrypted content keys: cpix cannot build a DeliveryData without a DocumentKey.
    if cert_der is not None:
        ddl = etree.Element(C("DeliveryDataList"))
        dd = etree.SubElement(ddl, C("DeliveryData"), id="tessera-speke-test-encryptor")
        dd.append(cpix.DeliveryKey(b64(cert_der)).element())
        root.insert(0, ddl)

    body = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    # Re-parse once more and make sure nothing ended up outside the CPIX namespace (cpix's own
    # redundant namespace declarations are left as cpix wrote them).
    for el in xml_parse(body).iter():
        if isinstance(el.tag, str) and etree.QName(el).namespace not in (NS_CPIX, NS_DS):
            raise RuntimeError("request element outside the CPIX namespace: %s" % el.tag)
    return body


# ----------------------------------------------------------------------------------------------
# HTTP


def post(url, body, headers, timeout):
    req = urllib.request.Request(url, data=body, method="POST")
    for name, value in headers.items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers.items()) if e.headers else {}, e.read()


def header_get(headers, name):
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v
    return None


# ----------------------------------------------------------------------------------------------
# PSSH / protobuf / PRO decoding (by hand, no DRM client library needed)


def read_varint(buf, pos):
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def protobuf_fields(buf):
    """Yields (field_number, wire_type, value) of one protobuf message; value is int or bytes."""
    pos = 0
    while pos < len(buf):
        tag, pos = read_varint(buf, pos)
        field, wt = tag >> 3, tag & 7
        if wt == 0:
            val, pos = read_varint(buf, pos)
        elif wt == 1:
            val, pos = buf[pos:pos + 8], pos + 8
        elif wt == 2:
            ln, pos = read_varint(buf, pos)
            if pos + ln > len(buf):
                raise ValueError("truncated length-delimited field %d" % field)
            val, pos = buf[pos:pos + ln], pos + ln
        elif wt == 5:
            val, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError("unsupported wire type %d" % wt)
        yield field, wt, val


def decode_widevine_pssh_data(data):
    """WidevinePsshData: 2 key_ids (repeated bytes), 3 provider, 4 content_id, 9 protection_scheme."""
    out = {"key_ids": [], "provider": None, "content_id": None, "protection_scheme": None}
    for field, wt, val in protobuf_fields(data):
        if field == 2 and wt == 2:
            out["key_ids"].append(str(uuid.UUID(bytes=bytes(val))) if len(val) == 16
                                  else val.hex())
        elif field == 3 and wt == 2:
            out["provider"] = val.decode("utf-8", "replace")
        elif field == 4 and wt == 2:
            try:
                out["content_id"] = val.decode("utf-8")
            except UnicodeDecodeError:
                out["content_id"] = val.hex()
        elif field == 9 and wt == 0:
            out["protection_scheme"] = struct.pack(">I", val).decode("latin-1") \
                if val > 0xFFFFFF else val
    return out


def decode_pro(data):
    """PlayReady Object: KIDs from the WRMHEADER record (GUID little-endian in base64)."""
    total, count = struct.unpack_from("<IH", data, 0)
    pos, kids, version = 6, [], None
    for _ in range(count):
        rtype, rlen = struct.unpack_from("<HH", data, pos)
        rec = data[pos + 4:pos + 4 + rlen]
        pos += 4 + rlen
        if rtype != 1:
            continue
        xml = rec.decode("utf-16-le", "replace")
        m = re.search(r'<WRMHEADER[^>]*version="([^"]+)"', xml)
        version = m.group(1) if m else None
        for v in re.findall(r'<KID[^>]*VALUE="([^"]+)"', xml) + \
                re.findall(r"<KID>([^<]+)</KID>", xml):
            raw = base64.b64decode(v)
            kids.append(str(uuid.UUID(bytes_le=raw)) if len(raw) == 16 else raw.hex())
    return {"length_ok": total == len(data), "wrmheader_version": version, "kids": kids}


def decode_pssh_box(raw, expected_system_id):
    out = {"ok": False}
    if len(raw) < 32:
        out["error"] = "too short for a pssh box"
        return out
    size, btype = struct.unpack_from(">I4s", raw, 0)
    out["box_type"] = btype.decode("latin-1")
    out["size_ok"] = size == len(raw)
    version = raw[8]
    out["version"] = version
    sid = str(uuid.UUID(bytes=raw[12:28]))
    out["system_id"] = sid
    out["system_id_ok"] = sid == expected_system_id
    pos = 28
    if version == 1:
        (n,) = struct.unpack_from(">I", raw, pos)
        pos += 4
        out["kids"] = [str(uuid.UUID(bytes=raw[pos + 16 * i:pos + 16 * (i + 1)]))
                       for i in range(n)]
        pos += 16 * n
    (dlen,) = struct.unpack_from(">I", raw, pos)
    data = raw[pos + 4:pos + 4 + dlen]
    out["data_size_ok"] = pos + 4 + dlen == len(raw)
    out["ok"] = (out["box_type"] == "pssh" and out["size_ok"] and out["system_id_ok"]
                 and out["data_size_ok"] and version in (0, 1))
    if expected_system_id == WIDEVINE and data:
        try:
            out["widevine_pssh_data"] = decode_widevine_pssh_data(data)
        except Exception as e:  # reported, not fatal
            out["widevine_pssh_data_error"] = str(e)
    elif expected_system_id == PLAYREADY and data:
        try:
            out["playready_object"] = decode_pro(data)
        except Exception as e:
            out["playready_object_error"] = str(e)
    return out


# ----------------------------------------------------------------------------------------------
# response analysis


def cpix_parse_tolerant(body):
    """cpix.parse on the document; if cpix raises on something it is known not to support,
    retry without exactly those parts. Returns (parsed or None, adjustments, error)."""
    try:
        return cpix.parse(body), [], None
    except Exception as first:
        first_error = "%s: %s" % (type(first).__name__, first)
    try:
        root = xml_parse(body)
    except Exception:
        return None, [], first_error
    adjustments = []
    known = {str(u).lower() for u in cpix.VALID_SYSTEM_IDS}
    for ds in list(root.iter(C("DRMSystem"))):
        sid = (ds.get("systemId") or "").lower()
        try:
            sid = str(uuid.UUID(sid))
        except ValueError:
            continue
        if sid not in known:
            ds.getparent().remove(ds)
            adjustments.append("removed DRMSystem systemId=%s kid=%s (not in cpix's list)"
                               % (sid, ds.get("kid")))
    for cp in root.iter(C("ContentKeyPeriod")):
        if cp.get("index") is not None and (cp.get("start") or cp.get("end")):
            for a in ("start", "end"):
                cp.attrib.pop(a, None)
            adjustments.append("removed @start/@end of ContentKeyPeriod id=%s (cpix refuses "
                               "them next to @index)" % cp.get("id"))
    if not adjustments:
        return None, [], first_error
    try:
        return cpix.parse(etree.tostring(root)), adjustments, None
    except Exception as e:
        return None, adjustments, "%s (after adjustments: %s: %s)" % (first_error,
                                                                     type(e).__name__, e)


def decode_text_field(value, errors, what):
    """base64 text -> utf-8 text; '' stays ''; None stays None."""
    if value is None:
        return None
    if value.strip() == "":
        return ""
    try:
        return b64d(value).decode("utf-8", "replace")
    except Exception as e:
        errors.append("%s: not base64 (%s)" % (what, e))
        return None


def analyse(body, out, private_key, request_kids):
    errors = out.setdefault("errors", [])
    try:
        root = xml_parse(body)
    except Exception as e:
        out["parsed_by_cpix"] = False
        out["xml_error"] = str(e)
        return
    if etree.QName(root).namespace != NS_CPIX or etree.QName(root).localname != "CPIX":
        errors.append("root element is %s" % root.tag)

    # --- cpix ---------------------------------------------------------------------------------
    parsed, adjustments, cpix_error = cpix_parse_tolerant(body)
    out["parsed_by_cpix"] = parsed is not None
    out["cpix_adjustments"] = adjustments
    if cpix_error:
        out["cpix_error"] = cpix_error

    # --- lxml: document ------------------------------------------------------------------------
    out["content_id"] = root.get("contentId")
    out["cpix_version"] = root.get("version")
    out["root_nsmap"] = {k or "": v for k, v in root.nsmap.items()}
    out["plain_value_prefixed"] = None
    text = body.decode("utf-8", "replace")
    if "PlainValue" in text:
        out["plain_value_prefixed"] = re.search(r"<(.*):PlainValue>", text) is not None

    # --- content keys (lxml view) --------------------------------------------------------------
    lx_keys = {}
    for ck in root.iter(C("ContentKey")):
        kid = norm_kid(ck.get("kid"))
        secret = ck.find(C("Data") + "/" + P("Secret"))
        entry = {"scheme": ck.get("commonEncryptionScheme"), "explicit_iv": ck.get("explicitIV"),
                 "plain": None, "cipher": None, "mac": None}
        if secret is not None:
            entry["plain"] = text_of(secret.find(P("PlainValue")))
            ev = secret.find(P("EncryptedValue"))
            if ev is not None:
                entry["cipher"] = text_of(ev.find(E("CipherData") + "/" + E("CipherValue")))
                entry["cipher_algorithm"] = (ev.find(E("EncryptionMethod")).get("Algorithm")
                                             if ev.find(E("EncryptionMethod")) is not None
                                             else None)
            entry["mac"] = text_of(secret.find(P("ValueMAC")))
        lx_keys[kid] = entry
    out["response_kids"] = list(lx_keys)
    out["schemes"] = {k: v["scheme"] for k, v in lx_keys.items()}
    out["explicit_ivs"] = {k: v["explicit_iv"] for k, v in lx_keys.items()}

    # --- cross-check cpix against lxml ---------------------------------------------------------
    disagreements = []
    if parsed is not None:
        cp_keys = {str(k.kid): k for k in parsed.content_keys}
        if set(cp_keys) != set(lx_keys):
            disagreements.append("ContentKey kids differ: cpix %s lxml %s"
                                 % (sorted(cp_keys), sorted(lx_keys)))
        for kid, k in cp_keys.items():
            lx = lx_keys.get(kid, {})
            want_cek = lx.get("cipher") if lx.get("cipher") is not None else lx.get("plain")
            if (k.cek or None) != (want_cek or None):
                disagreements.append("cek of %s differs" % kid)
            if (k.value_mac or None) != (lx.get("mac") or None):
                disagreements.append("ValueMAC of %s differs" % kid)
    # --- keys: plain or encrypted --------------------------------------------------------------
    keys, key_forms, mac_ok, unverified = {}, {}, {}, {}
    dd = root.find(C("DeliveryDataList") + "/" + C("DeliveryData"))
    doc_key = mac_key = None
    delivery = None
    if dd is not None:
        delivery = {"id": dd.get("id")}
        dk = dd.find(C("DocumentKey"))
        mm = dd.find(C("MACMethod"))
        delivery["document_key_algorithm"] = dk.get("Algorithm") if dk is not None else None
        delivery["mac_method_algorithm"] = mm.get("Algorithm") if mm is not None else None
        dk_cv = dk.find(".//" + E("CipherValue")) if dk is not None else None
        mm_cv = mm.find(".//" + E("CipherValue")) if mm is not None else None
        dk_em = dk.find(".//" + E("EncryptionMethod")) if dk is not None else None
        mm_em = mm.find(".//" + E("EncryptionMethod")) if mm is not None else None
        delivery["document_key_wrap_algorithm"] = dk_em.get("Algorithm") if dk_em is not None \
            else None
        delivery["mac_key_wrap_algorithm"] = mm_em.get("Algorithm") if mm_em is not None else None
        # cpix's view of the same values, when it parsed the document
        if parsed is not None and len(parsed.delivery_datas) > 0:
            cdd = parsed.delivery_datas[0]
            if dk_cv is not None and cdd.document_key.cipher_value != dk_cv.text:
                disagreements.append("DocumentKey CipherValue differs")
            if (mm_cv is not None and cdd.mac_method is not None
                    and cdd.mac_method.cipher_value != mm_cv.text):
                disagreements.append("MACMethod CipherValue differs")
        if private_key is not None:
            try:
                doc_key = rsa_oaep_sha1_decrypt(private_key, b64d(dk_cv.text))
                delivery["document_key_len"] = len(doc_key)
            except Exception as e:
                errors.append("DocumentKey: cannot decrypt (%s: %s)" % (type(e).__name__, e))
            try:
                mac_key = rsa_oaep_sha1_decrypt(private_key, b64d(mm_cv.text))
                delivery["mac_key_len"] = len(mac_key)
            except Exception as e:
                errors.append("MACMethod key: cannot decrypt (%s: %s)" % (type(e).__name__, e))
        out["delivery_data"] = delivery

    for kid, entry in lx_keys.items():
        if entry["cipher"] is not None:
            key_forms[kid] = "encrypted"
            if doc_key is None or mac_key is None:
                continue
            try:
                blob = b64d(entry["cipher"])
                iv, ct = blob[:16], blob[16:]
                want = hmac.new(mac_key, blob, hashlib.sha512).digest()
                got = b64d(entry["mac"]) if entry["mac"] else b""
                mac_ok[kid] = hmac.compare_digest(want, got)
                dec = Cipher(algorithms.AES(doc_key), modes.CBC(iv)).decryptor()
                padded = dec.update(ct) + dec.finalize()
                unpad = padding.PKCS7(128).unpadder()
                key = unpad.update(padded) + unpad.finalize()
                if len(key) != 16:
                    errors.append("%s: decrypted key is %d bytes" % (kid, len(key)))
                if mac_ok[kid]:
                    keys[kid] = key.hex()
                else:  # never hand out a key whose MAC did not verify
                    errors.append("%s: ValueMAC does not verify" % kid)
                    unverified[kid] = key.hex()
            except Exception as e:
                errors.append("%s: cannot decrypt content key (%s: %s)"
                              % (kid, type(e).__name__, e))
        elif entry["plain"] is not None:
            key_forms[kid] = "plain"
            try:
                key = b64d(entry["plain"])
                if len(key) != 16:
                    errors.append("%s: PlainValue is %d bytes" % (kid, len(key)))
                keys[kid] = key.hex()
            except Exception as e:
                errors.append("%s: PlainValue not base64 (%s)" % (kid, e))
        else:
            key_forms[kid] = "missing"
    out["keys"] = keys
    out["key_forms"] = key_forms
    if private_key is not None or dd is not None:
        out["mac_ok"] = mac_ok
    if unverified:
        out["unverified_keys"] = unverified

    # --- DRM systems ---------------------------------------------------------------------------
    drm = []
    playlist_attrs = []
    cp_systems = {}
    if parsed is not None:
        for s in parsed.drm_systems:
            cp_systems[(str(s.kid), str(s.system_id))] = s
    for ds in root.iter(C("DRMSystem")):
        kid = norm_kid(ds.get("kid"))
        sid = str(uuid.UUID(ds.get("systemId")))
        pssh_b64 = text_of(ds.find(C("PSSH")))
        cpd_raw = text_of(ds.find(C("ContentProtectionData")))
        smooth = text_of(ds.find(C("SmoothStreamingProtectionHeaderData")))
        entry = {"kid": kid, "system_id": sid, "pssh_b64": pssh_b64,
                 "content_protection_data": decode_text_field(cpd_raw, errors,
                                                              "%s/%s CPD" % (kid, sid)),
                 "hls": {}, "smooth": smooth}
        for hls in ds.findall(C("HLSSignalingData")):
            pl = hls.get("playlist")
            playlist_attrs.append(pl)
            entry["hls"][pl if pl is not None else "(none)"] = decode_text_field(
                text_of(hls), errors, "%s/%s HLS %s" % (kid, sid, pl))
        if ds.find(C("URIExtXKey")) is not None:
            entry["uri_ext_x_key"] = decode_text_field(text_of(ds.find(C("URIExtXKey"))),
                                                       errors, "URIExtXKey")
        if pssh_b64:
            try:
                entry["pssh_box"] = decode_pssh_box(b64d(pssh_b64), sid)
            except Exception as e:
                entry["pssh_box"] = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        cpd = entry["content_protection_data"]
        if cpd:
            try:
                frag = xml_parse(("<cpd>%s</cpd>" % cpd).encode("utf-8"))
                p = frag.find("{%s}pssh" % NS_CENC)
                entry["cpd_pssh_matches"] = (p is not None and pssh_b64 is not None
                                             and (p.text or "").strip() == pssh_b64.strip())
                pro = frag.find("{%s}pro" % NS_MSPR)
                if pro is not None:
                    entry["cpd_pro_b64"] = (pro.text or "").strip()
            except Exception as e:
                entry["cpd_xml_error"] = str(e)
        if smooth:
            try:
                entry["smooth_pro"] = decode_pro(b64d(smooth))
            except Exception as e:
                entry["smooth_pro_error"] = str(e)
        c = cp_systems.get((kid, sid))
        if parsed is not None:
            entry["in_cpix"] = c is not None
            if c is not None:
                mismatch = []
                if (c.pssh or None) != (pssh_b64 or None):
                    mismatch.append("PSSH")
                if (c.content_protection_data or None) != (cpd_raw or None):
                    mismatch.append("ContentProtectionData")
                lx_media = text_of(next((h for h in ds.findall(C("HLSSignalingData"))
                                         if h.get("playlist") in (None, "media")), None))
                lx_master = text_of(next((h for h in ds.findall(C("HLSSignalingData"))
                                          if h.get("playlist") == "master"), None))
                if (c.hls_signaling_data or None) != (lx_media or None):
                    mismatch.append("HLSSignalingData media")
                if (c.hls_signaling_data_master or None) != (lx_master or None):
                    mismatch.append("HLSSignalingData master")
                if mismatch:
                    disagreements.append("%s/%s: %s" % (kid, sid, ", ".join(mismatch)))
        drm.append(entry)
    out["drm"] = drm
    if parsed is not None:
        out["cpix_lxml_agree"] = not disagreements
        if disagreements:
            out["cpix_lxml_disagreements"] = disagreements

    # --- echoes --------------------------------------------------------------------------------
    rules, rule_details = [], []
    for r in root.iter(C("ContentKeyUsageRule")):
        rules.append(r.get("intendedTrackType"))
        rule_details.append({
            "kid": r.get("kid"), "intendedTrackType": r.get("intendedTrackType"),
            "filters": [{"type": etree.QName(f).localname, **dict(f.attrib)}
                        for f in r if isinstance(f.tag, str)]})
    periods, period_details = [], []
    for p in root.iter(C("ContentKeyPeriod")):
        periods.append(p.get("id"))
        period_details.append(dict(p.attrib))
    out["echo"] = {"usage_rules": rules, "periods": periods, "playlist_attrs": playlist_attrs,
                   "usage_rule_details": rule_details, "period_details": period_details}
    if parsed is not None:
        out["cpix_counts"] = {"content_keys": len(parsed.content_keys),
                              "drm_systems": len(parsed.drm_systems),
                              "usage_rules": len(parsed.usage_rules),
                              "periods": len(parsed.periods),
                              "delivery_datas": len(parsed.delivery_datas)}
    if request_kids:
        out["missing_kids"] = [k for k in request_kids if k not in lx_keys]


# ----------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", help="sent as Authorization: Bearer TOKEN")
    ap.add_argument("--speke-version", default="2.0",
                    help="X-Speke-Version header (2.0 -> CPIX 2.3, 2.1 -> CPIX 2.4)")
    ap.add_argument("--cpix-version", help="override CPIX@version ('none' omits it)")
    ap.add_argument("--content-id")
    ap.add_argument("--omit-content-id", action="store_true", help="negative test")
    ap.add_argument("--kid", action="extend", nargs="+", default=[],
                    help="KID (UUID or 32 hex digits); repeatable")
    ap.add_argument("--keys", type=int, help="N random KIDs")
    ap.add_argument("--scheme", default="cenc",
                    help="commonEncryptionScheme for every key, or a comma list with one per KID;"
                         " 'none' omits the attribute (any other value is sent as is)")
    ap.add_argument("--explicit-iv", action="store_true", help="send a random @explicitIV")
    ap.add_argument("--systems", default="widevine,playready",
                    help="comma list of widevine, playready, fairplay, clearkey-aes128, common,"
                         " or raw systemId UUIDs")
    ap.add_argument("--children",
                    help="override the signalling requested for every system: comma list of "
                         "pssh,cpd,hls,hls-media,hls-master,smooth")
    ap.add_argument("--smooth", action="store_true",
                    help="also request SmoothStreamingProtectionHeaderData for PlayReady")
    ap.add_argument("--track-types",
                    help="comma list of intendedTrackType, one per KID (or one per KID of a "
                         "period when --periods > 1); default SD,HD,... or ALL for one key")
    ap.add_argument("--no-filters", action="store_true",
                    help="usage rules without Video/AudioFilter (negative test)")
    ap.add_argument("--periods", type=int, default=0,
                    help="N key periods (rotation); KIDs are spread over them in order")
    ap.add_argument("--first-period-index", type=int, default=0)
    ap.add_argument("--period-start", help="SPEKE 2.1: add @start/@end, first start (ISO 8601)")
    ap.add_argument("--period-seconds", type=int, default=60)
    ap.add_argument("--encrypted", action="store_true",
                    help="ask for encrypted content keys (DeliveryDataList with a fresh cert)")
    ap.add_argument("--cert-bits", type=int, default=2048)
    ap.add_argument("--delivery-key", help="PEM RSA private key to use instead of a fresh one "
                                           "(with --raw-body: only to decrypt the response)")
    ap.add_argument("--save-delivery-key", help="write the delivery private key (PEM) here")
    ap.add_argument("--playlist-name", default="master", choices=["master", "multiVariant"])
    ap.add_argument("--raw-body", help="POST this file verbatim instead of building a request")
    ap.add_argument("--save-request", help="also write the request body to this file")
    ap.add_argument("--dry-run", action="store_true", help="print the request body, send nothing")
    ap.add_argument("--header", action="extend", nargs="+", default=[],
                    help="extra header NAME:VALUE (an empty VALUE removes that header)")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--pretty", action="store_true")
    args = ap.parse_args()

    if args.cpix_version is None:
        args.cpix_version = CPIX_VERSION_FOR.get(args.speke_version, "2.3")
    if args.content_id is None:
        args.content_id = "tessera-speke-" + secrets.token_hex(6)

    out = {}
    private_key = None
    request_kids = []
    cert_der = None

    if args.raw_body:
        with open(args.raw_body, "rb") as f:
            body = f.read()
        if args.delivery_key:
            private_key = load_private_key(args.delivery_key)
        try:
            request_kids = [norm_kid(ck.get("kid"))
                            for ck in xml_parse(body).iter(C("ContentKey"))]
        except Exception:
            request_kids = []
    else:
        kids = [norm_kid(k) for k in args.kid]
        if args.keys:
            kids += [str(uuid.uuid4()) for _ in range(args.keys)]
        n_periods = max(args.periods, 0)
        if not kids:
            n_tracks = len(args.track_types.split(",")) if args.track_types else 1
            kids = [str(uuid.uuid4()) for _ in range(n_tracks * max(n_periods, 1))]
        if len(set(kids)) != len(kids):
            ap.error("duplicate KIDs")
        per_period = len(kids)
        if n_periods > 1:
            if len(kids) % n_periods:
                ap.error("%d KIDs cannot be spread evenly over %d periods"
                         % (len(kids), n_periods))
            per_period = len(kids) // n_periods
        if args.track_types:
            tt = [t.strip() for t in args.track_types.split(",") if t.strip()]
        else:
            tt = default_track_types(per_period)
        if len(tt) == len(kids):
            track_types = dict(zip(kids, tt))
        elif len(tt) == per_period:
            track_types = {k: tt[i % per_period] for i, k in enumerate(kids)}
        else:
            ap.error("--track-types needs one entry per KID (%d) or per KID of a period (%d)"
                     % (len(kids), per_period))
        sch = [s.strip() for s in args.scheme.split(",") if s.strip()]
        if len(sch) == 1:
            schemes = {k: sch[0] for k in kids}
        elif len(sch) == len(kids):
            schemes = dict(zip(kids, sch))
        else:
            ap.error("--scheme needs one value or one per KID")
        period_ids, period_of_kid = [], {}
        if n_periods > 0:
            tag = secrets.token_hex(4)
            period_ids = ["keyPeriod_%s_%d" % (tag, args.first_period_index + i)
                          for i in range(n_periods)]
            period_of_kid = {k: i // per_period for i, k in enumerate(kids)}
        if args.encrypted:
            private_key, cert_der = make_delivery_key(args.cert_bits, args.delivery_key)
        body = build_request(args, kids, track_types, schemes, period_of_kid, period_ids,
                             cert_der)
        request_kids = kids

    if private_key is not None and args.save_delivery_key:
        with open(args.save_delivery_key, "wb") as f:
            f.write(private_key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    if args.save_request:
        with open(args.save_request, "wb") as f:
            f.write(body)
    if args.dry_run:
        sys.stdout.write(body.decode("utf-8"))
        return 0

    headers = {"Content-Type": "application/xml", "X-Speke-Version": args.speke_version}
    if args.token:
        headers["Authorization"] = "Bearer " + args.token
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep:
            ap.error("--header wants NAME:VALUE")
        name, value = name.strip(), value.strip()
        for existing in [k for k in headers if k.lower() == name.lower()]:
            del headers[existing]
        if value:
            headers[name] = value

    try:
        status, resp_headers, resp_body = post(args.url, body, headers, args.timeout)
    except Exception as e:
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))
        return 2

    out["status"] = status
    out["headers"] = {h: header_get(resp_headers, h)
                      for h in ("x-speke-version", "x-speke-user-agent", "content-type")}
    out["request_kids"] = request_kids
    out["content_id"] = None
    out["parsed_by_cpix"] = False
    out["keys"] = {}
    if status != 200:
        out["body_text"] = resp_body.decode("utf-8", "replace")
    else:
        try:
            analyse(resp_body, out, private_key, request_kids)
        except Exception as e:  # a client bug must show up in the report, not hide the status
            import traceback
            out["client_error"] = "%s: %s" % (type(e).__name__, e)
            out["client_traceback"] = traceback.format_exc()
        if not out.get("errors"):
            out.pop("errors", None)
    print(json.dumps(out, indent=2 if args.pretty else None, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
