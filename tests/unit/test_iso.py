"""oslab.downloads.iso: reading boot files out of small ISOs."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pycdlib
import pytest

from oslab.downloads import iso as isomod
from oslab.errors import OslabError

KERNEL = b"\x7fKERNEL" + bytes(range(256)) * 40
INITRD = os.urandom(3 * 1024 * 1024 + 123)  # spans many pycdlib copy blocks
CENTOS_LABEL = "CentOS-Stream-9-BaseOS-x86_64"


# -- building ISOs --------------------------------------------------------------------------------


def make_iso(path: Path, label: str, *, rock_ridge: bool, joliet: bool,
             files: dict[str, bytes] | None = None) -> Path:
    """An ISO holding ``files`` (default: images/pxeboot/vmlinuz and initrd.img)."""
    files = files if files is not None else {"images/pxeboot/vmlinuz": KERNEL,
                                             "images/pxeboot/initrd.img": INITRD}
    cd = pycdlib.PyCdlib()
    cd.new(interchange_level=3 if (rock_ridge or joliet) else 1, vol_ident=label,
           rock_ridge="1.09" if rock_ridge else None, joliet=3 if joliet else None)
    made: set[str] = set()
    for rel, data in files.items():
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            d = "/".join(parts[:depth])
            if d not in made:
                made.add(d)
                cd.add_directory("/" + d.upper(),
                                 rr_name=parts[depth - 1] if rock_ridge else None,
                                 joliet_path="/" + d if joliet else None)
        iso_name = "/" + "/".join(p.upper() for p in parts[:-1]) + "/" + _iso_file(parts[-1])
        cd.add_fp(io.BytesIO(data), len(data), iso_name,
                  rr_name=parts[-1] if rock_ridge else None,
                  joliet_path="/" + rel if joliet else None)
    cd.write(str(path))
    cd.close()
    return path


def _iso_file(name: str) -> str:
    """The mkisofs-style ISO9660 name: VMLINUZ.;1, INITRD.IMG;1."""
    upper = name.upper()
    return (upper if "." in upper else upper + ".") + ";1"


@pytest.mark.parametrize(("rock_ridge", "joliet", "label"), [
    (True, True, "CentOS-Stream-9"),  # Joliet volume ids hold at most 16 characters
    (True, False, CENTOS_LABEL),
    (False, True, "JOLIET-ONLY"),
    (False, False, "PLAIN_ISO9660"),
])
def test_extract_boot_files(tmp_path: Path, rock_ridge: bool, joliet: bool, label: str) -> None:
    iso = make_iso(tmp_path / "boot.iso", label, rock_ridge=rock_ridge, joliet=joliet)
    kernel, initrd = isomod.extract_boot_files(
        iso, "/images/pxeboot/vmlinuz", "/images/pxeboot/initrd.img", tmp_path / "out")
    assert kernel == tmp_path / "out" / "vmlinuz"
    assert initrd == tmp_path / "out" / "initrd.img"
    assert kernel.read_bytes() == KERNEL
    assert initrd.read_bytes() == INITRD
    assert not list((tmp_path / "out").glob("*.part"))
    assert isomod.read_label(iso) == label


@pytest.mark.parametrize(("rock_ridge", "joliet", "expected_key"), [
    (True, True, "rr_path"),
    (False, True, "joliet_path"),
    (False, False, "iso_path"),
])
def test_find_file_prefers_rock_ridge_then_joliet(tmp_path: Path, rock_ridge: bool,
                                                  joliet: bool, expected_key: str) -> None:
    iso = make_iso(tmp_path / "b.iso", "X", rock_ridge=rock_ridge, joliet=joliet)
    cd = pycdlib.PyCdlib()
    cd.open(str(iso))
    try:
        location = isomod.find_file(cd, "images/pxeboot/vmlinuz")
    finally:
        cd.close()
    assert location is not None
    assert list(location) == [expected_key]
    if expected_key == "iso_path":
        assert location["iso_path"] == "/IMAGES/PXEBOOT/VMLINUZ.;1"


def test_read_label_centos(tmp_path: Path) -> None:
    iso = make_iso(tmp_path / "c.iso", CENTOS_LABEL, rock_ridge=True, joliet=False)
    assert isomod.read_label(iso) == CENTOS_LABEL


def test_missing_file_names_path_and_iso(tmp_path: Path) -> None:
    iso = make_iso(tmp_path / "nokernel.iso", "X", rock_ridge=True, joliet=True,
                   files={"images/pxeboot/initrd.img": INITRD})
    with pytest.raises(OslabError) as err:
        isomod.extract_boot_files(iso, "/images/pxeboot/vmlinuz", "/images/pxeboot/initrd.img",
                                  tmp_path / "out")
    assert "/images/pxeboot/vmlinuz" in err.value.message
    assert str(iso) in err.value.message
    assert err.value.hint is not None and "CentOS Stream 9" in err.value.hint


def test_not_an_iso(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.iso"
    bogus.write_bytes(b"not an iso" * 1000)
    with pytest.raises(OslabError, match="not a readable ISO 9660 image"):
        isomod.read_label(bogus)
    with pytest.raises(OslabError, match="cannot read the ISO"):
        isomod.read_label(tmp_path / "absent.iso")
