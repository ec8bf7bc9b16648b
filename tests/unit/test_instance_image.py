"""The instance image `oslab verify` boots: which one is chosen (--image, the spec's [verify]
image, cirros), what its manifest says, and the upload and flavor commands that follow."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from oslab import spec as specmod
from oslab import spec_file
from oslab.errors import OslabError
from oslab.install import instance_image as ii
from oslab.install.verify import checklist

MANIFEST = {"name": "oslab-instance", "user": "cirros", "disk_format": "qcow2",
            "min_disk_gib": 1, "min_ram_mib": 128,
            "properties": {"hw_vif_model": "virtio", "hw_disk_bus": "virtio"},
            "build": "abc", "kernel": "6.1.0-57-cloud-amd64"}


def write_image(path: Path, manifest: object = MANIFEST, data: bytes = b"QFI\xfb img") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if manifest is not None:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        Path(str(path) + ".json").write_text(text)
    return path


def spec_with(tmp_path: Path, image: str | None) -> specmod.LabSpec:
    text = spec_file.default_spec_text()
    if image is not None:
        text += f'\n[verify]\nimage = "{image}"\n'
    path = tmp_path / "labs" / "lab.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return spec_file.load(path)


# (--image, [verify] image, expected label, expected path relative to tmp_path, origin)
CHOICES = [
    (None, None, "cirros", None, ii.Origin.DEFAULT),
    (None, "img/inst.qcow2", "oslab-instance", "labs/img/inst.qcow2", ii.Origin.SPEC),
    (None, "{tmp}/abs/inst.qcow2", "oslab-instance", "abs/inst.qcow2", ii.Origin.SPEC),
    ("{tmp}/cli/inst.qcow2", "img/inst.qcow2", "oslab-instance", "cli/inst.qcow2",
     ii.Origin.OPTION),
    ("cwd/inst.qcow2", None, "oslab-instance", "cwd/inst.qcow2", ii.Origin.OPTION),
]


@pytest.mark.parametrize(("option", "in_spec", "label", "where", "origin"), CHOICES)
def test_choice(tmp_path: Path, option: str | None, in_spec: str | None, label: str,
                where: str | None, origin: ii.Origin) -> None:
    for rel in ("labs/img/inst.qcow2", "abs/inst.qcow2", "cli/inst.qcow2", "cwd/inst.qcow2"):
        write_image(tmp_path / rel)
    fill = (lambda s: s.replace("{tmp}", str(tmp_path)))  # noqa: E731
    spec = spec_with(tmp_path, fill(in_spec) if in_spec else None)
    chosen = ii.choose(fill(option) if option else None, spec, cwd=tmp_path)
    assert (chosen.label, chosen.origin) == (label, origin)
    if where is None:
        assert chosen is ii.CIRROS
        assert chosen.source is not None and chosen.source.url == ii.CIRROS_URL
        assert chosen.path == ""
    else:
        assert Path(chosen.path) == tmp_path / where
        assert chosen.user == "cirros"
        assert chosen.properties == (("hw_disk_bus", "virtio"), ("hw_vif_model", "virtio"))


def test_the_built_in_default_spec_boots_cirros() -> None:
    assert ii.choose(None, spec_file.load_default()) is ii.CIRROS


# (manifest as written beside the image, the exact error message after "<manifest>: ")
BAD_MANIFESTS = [
    ("[1, 2]", "expected a JSON object"),
    ("null", "expected a JSON object"),
    ("{nope", "not JSON: Expecting property name enclosed in double quotes (line 1)"),
    ("[" * 20000 + "]" * 20000,
     "not JSON: maximum recursion depth exceeded while decoding a JSON array from a unicode "
     "string"),
    ('{"user": "cirros", "min_ram_mib": 1' + "0" * 5000 + "}",
     "not JSON: Exceeds the limit (4300 digits) for integer string conversion: value has 5001 "
     "digits"),
    ({"user": "cirros", "min_disk": 1}, "unknown key(s) min_disk"),
    ({"name": "Big Image", "user": "cirros"}, "name 'Big Image' is not a usable image name"),
    ({"name": "a" * 65, "user": "cirros"}, f"name '{'a' * 65}' is not a usable image name"),
    ({"name": "x"}, 'no "user": the user to log in as over SSH is needed'),
    ({"user": 7}, "user must be a string, not 7"),
    ({"user": "cirros\nrm -rf /"}, "user 'cirros\\nrm -rf /' is not a valid user name"),
    ({"user": "c;id"}, "user 'c;id' is not a valid user name"),
    ({"user": "$(reboot)"}, "user '$(reboot)' is not a valid user name"),
    ({"user": "Root"}, "user 'Root' is not a valid user name"),
    ({"user": "u" * 33}, f"user '{'u' * 33}' is not a valid user name"),
    ({"user": "cirros", "disk_format": "vmdk"}, "disk_format 'vmdk' is not one of qcow2, raw"),
    ({"user": "cirros", "min_ram_mib": -1},
     "min_ram_mib must be a whole number from 0 to 1048576, not -1"),
    ({"user": "cirros", "min_ram_mib": 10**23},
     "min_ram_mib must be a whole number from 0 to 1048576, not 100000000000000000000000"),
    ({"user": "cirros", "min_ram_mib": 1.5},
     "min_ram_mib must be a whole number from 0 to 1048576, not 1.5"),
    ({"user": "cirros", "min_disk_gib": True},
     "min_disk_gib must be a whole number from 0 to 16384, not true"),
    ({"user": "cirros", "min_disk_gib": 16385},
     "min_disk_gib must be a whole number from 0 to 16384, not 16385"),
    ({"user": "cirros", "properties": ["hw_disk_bus"]}, "properties must map names to strings"),
    ({"user": "cirros", "properties": {"hw_disk_bus": 1}},
     "properties: hw_disk_bus must be one line of at most 255 printable characters, not 1"),
    ({"user": "cirros", "properties": {"hw_disk_bus\nos_distro": "x"}},
     "properties: 'hw_disk_bus\\nos_distro' is not a Glance property name"),
    ({"user": "cirros", "properties": {"hw_disk_bus=scsi": "virtio"}},
     "properties: 'hw_disk_bus=scsi' is not a Glance property name"),
    ({"user": "cirros", "properties": {"os distro": "x"}},
     "properties: 'os distro' is not a Glance property name"),
    ({"user": "cirros", "properties": {"": "x"}}, "properties: '' is not a Glance property name"),
    ({"user": "cirros", "properties": {"os_distro": "a\nb"}},
     'properties: os_distro must be one line of at most 255 printable characters, not "a\\nb"'),
    ({"user": "cirros", "properties": {f"p{i}": "x" for i in range(65)}},
     "properties: 65 of them; at most 64"),
    ({"user": "cirros", "sha256": "abc"}, "sha256 is not 64 hex digits"),
    ({"user": "cirros", "sha256": None}, "sha256 must be a string, not null"),
    ({"user": "cirros", "build": ["x"]}, 'build must be a string, not ["x"]'),
    ({"user": "cirros", "kernel": "6.1\n6.2"},
     "kernel must be one line of at most 200 printable characters"),
]


@pytest.mark.parametrize(("manifest", "message"), BAD_MANIFESTS)
def test_bad_manifest(tmp_path: Path, manifest: object, message: str) -> None:
    image = write_image(tmp_path / "inst.qcow2", manifest)
    with pytest.raises(OslabError) as err:
        ii.choose(str(image), spec_file.load_default())
    assert err.value.message == f"{image}.json: {message}"
    assert err.value.hint


def test_good_manifest_names() -> None:
    """What the rules above must still take: the users and Glance properties real images
    have."""
    data = {"name": "ubuntu-24.04_min", "user": "cloud-user",
            "properties": {"hw_qemu_guest_agent": "yes", "os_distro": "ubuntu",
                           "trait:CUSTOM_FAST": "required", "os_version": "24.04 LTS"}}
    chosen = ii.parse_manifest(data, "m.json", Path("/x/img.qcow2"))
    assert (chosen.label, chosen.user) == ("ubuntu-24.04_min", "cloud-user")
    assert dict(chosen.properties)["trait:CUSTOM_FAST"] == "required"


# (what stands where the manifest or the image should be, the exact error message)
NOT_FILES = [
    ("fifo-manifest", "instance image manifest {image}.json is not a regular file"),
    ("dev-zero-manifest", "instance image manifest {image}.json is not a regular file"),
    ("huge-manifest", "instance image manifest {image}.json is larger than 64 KiB"),
    ("dir-manifest", "instance image manifest {image}.json is not a regular file"),
    ("fifo-image", "--image: the instance image {image} is not a regular file"),
    ("dir-image", "--image: the instance image {image} is not a regular file"),
]


@pytest.mark.parametrize(("what", "message"), NOT_FILES, ids=[n[0] for n in NOT_FILES])
def test_what_is_not_a_file_is_refused_at_once(tmp_path: Path, what: str, message: str) -> None:
    """A FIFO would be waited on forever and /dev/zero read until memory ran out."""
    image = tmp_path / "inst.qcow2"
    manifest = Path(f"{image}.json")
    if what.endswith("-image"):
        (os.mkfifo if what == "fifo-image" else os.mkdir)(image)
        manifest.write_text(json.dumps(MANIFEST))
    else:
        image.write_bytes(b"QFI\xfb")
        {"fifo-manifest": lambda: os.mkfifo(manifest),
         "dev-zero-manifest": lambda: manifest.symlink_to("/dev/zero"),
         "huge-manifest": lambda: manifest.write_text(" " * (64 << 10) + "{}"),
         "dir-manifest": lambda: manifest.mkdir()}[what]()
    with pytest.raises(OslabError) as err:
        ii.choose(str(image), spec_file.load_default())
    assert err.value.message == message.format(image=image)
    assert err.value.hint


# (--image as given, the exact error message)
BAD_OPTIONS = [
    ("~nosuchuser/inst.qcow2",
     "--image: '~nosuchuser/inst.qcow2' names another user's home; only ~/ (your own) is "
     "expanded"),
    ("", "--image: '' is empty"),
    ("a\x00b", "--image: 'a\\x00b' is not a usable path (one line of at most 1024 printable "
                "characters)"),
    ("/x/" + "y" * 2000, "--image: '/x/" + "y" * 136 + "...(2005 characters) is not a usable "
                        "path (one line of at most 1024 printable characters)"),
]


@pytest.mark.parametrize(("option", "message"), BAD_OPTIONS)
def test_bad_image_option(option: str, message: str) -> None:
    with pytest.raises(OslabError) as err:
        ii.choose(option, spec_file.load_default())
    assert err.value.message == message
    assert err.value.hint


def test_missing_image_and_missing_manifest(tmp_path: Path) -> None:
    spec = spec_with(tmp_path, "gone.qcow2")
    with pytest.raises(OslabError) as err:
        ii.choose(None, spec)
    assert err.value.message == ("[verify] image: the instance image "
                                 f"{tmp_path}/labs/gone.qcow2 does not exist")
    bare = write_image(tmp_path / "bare.raw", manifest=None)
    with pytest.raises(OslabError) as err:
        ii.choose(str(bare), spec)
    assert err.value.message == (f"--image: the instance image {bare} has no manifest "
                                 f"{bare}.json")
    assert err.value.hint is not None and err.value.hint.startswith(
        'write bare.raw.json beside it, e.g. {"name": "my-image", "user": "cirros"')


def test_name_defaults_to_the_file_name(tmp_path: Path) -> None:
    image = write_image(tmp_path / "my-disk.raw", {"user": "debian", "disk_format": "raw"})
    chosen = ii.choose(str(image), spec_file.load_default())
    assert (chosen.label, chosen.user, chosen.disk_format) == ("my-disk", "debian",
                                                               ii.DiskFormat.RAW)


# (image, the `openstack image create` arguments verify runs)
UPLOADS = [
    (ii.CIRROS,
     "image create --public --disk-format qcow2 --container-format bare "
     "--file /var/tmp/oslab-verify-cirros.img oslab-verify-cirros"),
    (ii.InstanceImage(label="oslab-instance", user="cirros", min_disk_gib=1, min_ram_mib=128,
                      properties=(("hw_disk_bus", "virtio"), ("hw_vif_model", "virtio"))),
     "image create --public --disk-format qcow2 --container-format bare --min-disk 1 "
     "--min-ram 128 --property hw_disk_bus=virtio --property hw_vif_model=virtio "
     "--file /var/tmp/oslab-verify-oslab-instance.img oslab-verify-oslab-instance"),
    (ii.InstanceImage(label="mine", user="u", disk_format=ii.DiskFormat.RAW,
                      properties=(("os_distro", "my distro"),)),
     "image create --public --disk-format raw --container-format bare "
     "--property 'os_distro=my distro' --file /var/tmp/oslab-verify-mine.img "
     "oslab-verify-mine"),
]


@pytest.mark.parametrize(("image", "args"), UPLOADS)
def test_upload_command(image: ii.InstanceImage, args: str) -> None:
    name = image.glance_name(checklist.PREFIX)
    assert ii.create_args(image, f"/var/tmp/{name}.img", name) == args


# (min RAM MiB, min disk GiB, flavor)
FLAVORS = [
    (0, 0, ("m1.nano", 128, 1)),
    (128, 1, ("m1.nano", 128, 1)),
    (256, 1, ("oslab.256m1g", 256, 1)),
    (64, 2, ("oslab.128m2g", 128, 2)),
]


@pytest.mark.parametrize(("ram", "disk", "flavor"), FLAVORS)
def test_flavor(ram: int, disk: int, flavor: tuple[str, int, int]) -> None:
    assert ii.InstanceImage("x", "u", min_ram_mib=ram, min_disk_gib=disk).flavor() == flavor


def test_fetch_checks_the_manifest_sum(tmp_path: Path) -> None:
    data = b"QFI\xfb image bytes"
    good = dict(MANIFEST, sha256=hashlib.sha256(data).hexdigest())
    image = write_image(tmp_path / "ok.qcow2", good, data)
    chosen = ii.choose(str(image), spec_file.load_default())
    assert ii.fetch(chosen, tmp_path / "cache") == image
    image.write_bytes(data + b"changed")
    with pytest.raises(OslabError, match=r"^sha256 mismatch for .*ok\.qcow2:\n  manifest "):
        ii.fetch(chosen, tmp_path / "cache")


def test_cli_refuses_a_bad_image_before_touching_anything(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from oslab.cli import cli
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    result = CliRunner().invoke(cli, ["verify", "--image", str(tmp_path / "nope.qcow2")])
    assert isinstance(result.exception, OslabError)
    assert result.exception.message == (f"--image: the instance image {tmp_path}/nope.qcow2 "
                                         "does not exist")
    spec = spec_with(tmp_path, "missing.qcow2")
    # `up` says so in its host checks (`oslab check`'s), before an hour of building
    result = CliRunner().invoke(cli, ["-f", spec.source, "up", "--uri", "test:///default"])
    assert isinstance(result.exception, OslabError)
    assert ("  - verify-image: [verify] image: the instance image "
            f"{tmp_path}/labs/missing.qcow2 does not exist") in result.exception.message
    assert not (tmp_path / "state").exists()
