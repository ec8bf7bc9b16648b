#!/usr/bin/env python3
"""Write a small ISO9660 image (Rock Ridge 1.09 + Joliet) with pycdlib.

Usage:
    mkiso.py --label TESTLINUX --out out.iso images/pxeboot/vmlinuz=/path/to/vmlinuz ...

Each DEST=SRC argument puts the local file SRC at path DEST inside the image.
DEST is the Rock Ridge / Joliet name (any case); the plain ISO9660 name is
derived from it (upper case, 8.3-ish, ";1" version), like the CentOS ISOs.

Also importable: ``make_iso(out_path, label, {dest: src_path_or_bytes})``.
"""

import argparse
import contextlib
import io
import os
import re
import sys

import pycdlib


def _iso_component(name, is_dir):
    """Map a Rock Ridge name to a valid ISO9660 (interchange level 3) name."""
    up = name.upper()
    if is_dir:
        return re.sub(r"[^A-Z0-9_]", "_", up)[:31]
    base, dot, ext = up.rpartition(".")
    if not dot:
        base, ext = up, ""
    base = re.sub(r"[^A-Z0-9_]", "_", base)[:24] or "_"
    ext = re.sub(r"[^A-Z0-9_]", "_", ext)[:5]
    return f"{base}.{ext};1"


def make_iso(out_path, label, files):
    """Write an ISO to out_path. files maps "dir/name" -> local path or bytes."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, vol_ident=label, rock_ridge="1.09", joliet=3)
    made = set()
    with contextlib.ExitStack() as handles:
        for dest in sorted(files):
            parts = [p for p in dest.strip("/").split("/") if p]
            if not parts:
                raise ValueError(f"bad destination path {dest!r}")
            iso_dir, joliet_dir = "", ""
            for comp in parts[:-1]:
                iso_dir += "/" + _iso_component(comp, True)
                joliet_dir += "/" + comp
                if iso_dir not in made:
                    iso.add_directory(iso_dir, rr_name=comp, joliet_path=joliet_dir)
                    made.add(iso_dir)
            name = parts[-1]
            src = files[dest]
            if isinstance(src, (bytes, bytearray)):
                fp = io.BytesIO(bytes(src))
                size = len(src)
            else:
                fp = handles.enter_context(open(src, "rb"))
                size = os.fstat(fp.fileno()).st_size
            iso.add_fp(
                fp,
                size,
                iso_path=iso_dir + "/" + _iso_component(name, False),
                rr_name=name,
                joliet_path=joliet_dir + "/" + name,
            )
        try:
            iso.write(out_path)
        finally:
            iso.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", required=True, help="volume label (vol_ident)")
    ap.add_argument("--out", required=True, help="ISO file to write")
    ap.add_argument("files", nargs="+", metavar="DEST=SRC")
    args = ap.parse_args(argv)
    files = {}
    for spec in args.files:
        dest, sep, src = spec.partition("=")
        if not sep or not dest or not src:
            ap.error(f"expected DEST=SRC, got {spec!r}")
        files[dest] = src
    make_iso(args.out, args.label, files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
