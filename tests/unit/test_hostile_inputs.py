"""Bad inputs, round two (issue 24): the surfaces added since the first round's table
(test_bad_inputs.py), through the same real entry point and the same checks: the exact
``error:`` line, a ``hint:``, a non-zero exit, no traceback, nothing changed on disk. What is
not an error (`check` and `up` agreeing, a warning where oslab leaves a thing alone) is in
test_hostile_outcomes.py."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from oslab.access.state import LabState
from oslab.spec_file import default_spec_text
from tests.unit.test_bad_inputs import (
    DEFAULT,
    SPEC,
    Case,
    World,
    check_case,
    edit,
    world,
)

__all__ = ["world"]  # the fixture, for the tests here

DEBIAN = default_spec_text("debian13")
MANIFEST = {"name": "inst", "user": "cirros", "disk_format": "qcow2"}
IMAGES = "cache/oslab/debian/images"


def with_image(path: str, text: str = DEFAULT) -> str:
    return text + f'\n[verify]\nimage = "{path}"\n'


def iso_path(path: str) -> str:
    """The default spec with a local ISO at ``path`` instead of its download."""
    text = "\n".join(line for line in DEFAULT.splitlines()
                     if not line.startswith(("url = ", "sha256_url = ")))
    return text.replace("[iso]\n", f'[iso]\npath = "{path}"\n') + "\n"


def _image(w: World, manifest: object = MANIFEST, name: str = "img.qcow2") -> Path:
    image = w.root / "cwd" / name
    image.write_bytes(b"QFI\xfb")
    if manifest is not None:
        Path(f"{image}.json").write_text(json.dumps(manifest))
    return image


def _fifo_manifest(w: World) -> None:
    os.mkfifo(f"{_image(w, None)}.json")


def _zero_manifest(w: World) -> None:
    Path(f"{_image(w, None)}.json").symlink_to("/dev/zero")


def _fifo(w: World) -> None:
    os.mkfifo(w.root / "cwd" / "fifo")


def _link(w: World) -> None:
    (w.root / "cwd" / "link").symlink_to(w.root / "other" / "precious.txt")


def cached_base(built_at: object,
                 name: str = "debian13-base-aaaaaaaaaaaaaaaa") -> Callable[[World], None]:
    def setup(w: World) -> None:
        base = w.root / IMAGES / ("a" * 16)
        base.mkdir(parents=True)
        (base / "manifest.json").write_text(json.dumps(
            {"name": name, "inputs": {"distro": "debian13", "role": "base"},
             "built_at": built_at}))
    return setup


NO_LIBVIRT = "qemu+unix:///system?socket=/nonexistent"  # any libvirt call fails at once
# the default lab on TEST-NET-1: no node address here reaches a machine, even without the fix
UNROUTED = DEFAULT.replace("10.0.0.", "192.0.2.").replace("10.0.0.0/24", "192.0.2.0/24")
STATE = "{root}/state/oslab/oslab"


def _state(passwords: object = None, fifo: str = "", keys: bool = False,
           ledger: object = None) -> Callable[[World], None]:
    """A lab state directory: with ``passwords``, the lab's keys, a ``ledger``, or a FIFO in
    place of the file named ``fifo`` (made first, when it is a key)."""
    def setup(w: World) -> None:
        state = LabState("oslab", root=w.state_root).ensure()
        if keys or fifo.startswith(("id_", "hostkeys/")):
            state.ssh_key()
            state.host_key("controller")
        if passwords is not None:
            (state.dir / "passwords.json").write_text(json.dumps(passwords))
        if ledger is not None:
            (state.dir / "verify-resources.json").write_text(json.dumps(ledger))
        if fifo:
            (state.dir / fifo).unlink(missing_ok=True)
            os.mkfifo(state.dir / fifo)
    return setup


def _fifo_pool_marker(w: World) -> None:
    """libvirt has a pool named like the lab's whose directory holds a FIFO for a marker."""
    pool = w.root / "cwd" / "pool"
    pool.mkdir()
    os.mkfifo(pool / ".oslab-pool")
    (w.root / "cwd" / "host.xml").write_text(
        f"<node><pool type='dir'><name>oslab</name><target><path>{pool}</path></target>"
        "</pool></node>\n")


def _fifo_lock(w: World) -> None:
    cached_base(1)(w)
    os.mkfifo(w.root / IMAGES / f"{'a' * 16}.lock")


def deb(old: str, new: str) -> str:
    assert old in DEBIAN, old
    return DEBIAN.replace(old, new)


def iso_url(url: str) -> str:
    text = "\n".join(line for line in DEFAULT.splitlines()
                     if not line.startswith(("url = ", "sha256_url = ")))
    return text.replace("[iso]\n", f'[iso]\nurl = "{url}"\nsha256 = "{"a" * 64}"\n') + "\n"


def _clouds(kind: str) -> Callable[[World], None]:
    """A built lab's passwords, and at cwd/clouds.yaml: a FIFO, a link, or a flow-style file."""
    def setup(w: World) -> None:
        _state(passwords={"keystone_admin": "abc", "keystone_demo": "def"})(w)
        path = w.root / "cwd" / "clouds.yaml"
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "link":
            (w.root / "other" / "clouds.yaml").write_text("clouds:\n")
            path.symlink_to(w.root / "other" / "clouds.yaml")
        else:
            path.write_text(kind)
    return setup


MANIFEST_HINT = "a manifest is a small JSON file"
PATH_HINT = "relative to the lab spec's directory"
CASES = [
    # -- [verify] image and iso.path: one rule for a path on this host, checked in the spec
    Case("verify-image-other-home", ("-f", SPEC, "check"),
         "error: {spec}: verify.image: '~nosuchuser/x.qcow2' names another user's home; only "
         "~/ (your own) is expanded", spec=with_image("~nosuchuser/x.qcow2"), hint=PATH_HINT),
    Case("verify-image-other-home-up", ("-f", SPEC, "up"),
         "error: {spec}: verify.image: '~nosuchuser/x.qcow2' names another user's home; only "
         "~/ (your own) is expanded", spec=with_image("~nosuchuser/x.qcow2")),
    Case("verify-image-nul", ("-f", SPEC, "check"),
         "error: {spec}: verify.image: 'a\\x00b' is not a usable path (one line of at most "
         "1024 printable characters)", spec=with_image("a\\u0000b")),
    Case("verify-image-nul-verify", ("-f", SPEC, "verify", "--image", "{root}/cwd/x"),
         "error: {spec}: verify.image: 'a\\x00b' is not a usable path (one line of at most "
         "1024 printable characters)", spec=with_image("a\\u0000b")),
    Case("verify-image-tab", ("-f", SPEC, "up"),
         "error: {spec}: verify.image: 'a\\tb' is not a usable path (one line of at most 1024 "
         "printable characters)", spec=with_image("a\\tb")),
    Case("verify-image-blank", ("-f", SPEC, "check"),
         "error: {spec}: verify.image: '  ' is empty", spec=with_image("  ")),
    Case("verify-image-huge", ("-f", SPEC, "check"),
         "error: {spec}: verify.image: '" + "x" * 139 + "...(2071 characters)",
         spec=with_image("x" * 2000)),
    Case("verify-image-number", ("-f", SPEC, "check"),
         "error: {spec}: verify.image: must be a str, not 5",
         spec=DEFAULT + "\n[verify]\nimage = 5\n"),
    Case("iso-path-nul", ("-f", SPEC, "check"),
         "error: {spec}: iso.path: '/a\\x00b.iso' is not a usable path (one line of at most "
         "1024 printable characters)",
         spec=iso_path("/a\\u0000b.iso")),
    Case("iso-path-other-home", ("-f", SPEC, "up"),
         "error: {spec}: iso.path: '~root/boot.iso' names another user's home; only ~/ (your "
         "own) is expanded",
         spec=iso_path("~root/boot.iso")),
    # -- verify --image: the same rule, then the image and its manifest as regular files
    Case("image-option-other-home", ("verify", "--image", "~nosuchuser/x.qcow2"),
         "error: --image: '~nosuchuser/x.qcow2' names another user's home; only ~/ (your own) "
         "is expanded"),
    Case("image-option-empty", ("verify", "--image", ""), "error: --image: '' is empty"),
    Case("image-fifo-manifest", ("verify", "--image", "img.qcow2"),
         "error: instance image manifest {root}/cwd/img.qcow2.json is not a regular file",
         setup=_fifo_manifest, hint=MANIFEST_HINT),
    Case("image-dev-zero-manifest", ("verify", "--image", "img.qcow2"),
         "error: instance image manifest {root}/cwd/img.qcow2.json is not a regular file",
         setup=_zero_manifest, hint=MANIFEST_HINT),
    Case("image-fifo", ("verify", "--image", "fifo"),
         "error: --image: the instance image {root}/cwd/fifo is not a regular file",
         setup=_fifo),
    Case("image-dev-null", ("verify", "--image", "/dev/null"),
         "error: --image: the instance image /dev/null is not a regular file"),
    Case("image-directory", ("verify", "--image", "{root}/other"),
         "error: --image: the instance image {root}/other is not a regular file"),
    Case("image-no-manifest", ("verify", "--image", "img.qcow2"),
         "error: --image: the instance image {root}/cwd/img.qcow2 has no manifest "
         "{root}/cwd/img.qcow2.json", setup=lambda w: (_image(w, None), None)[1]),
    Case("image-manifest-newline-user", ("verify", "--image", "img.qcow2"),
         "error: {root}/cwd/img.qcow2.json: user 'c\\nid' is not a valid user name",
         setup=lambda w: (_image(w, {"user": "c\nid"}), None)[1]),
    Case("image-manifest-property-equals", ("verify", "--image", "img.qcow2"),
         "error: {root}/cwd/img.qcow2.json: properties: 'hw_disk_bus=scsi' is not a Glance "
         "property name",
         setup=lambda w: (_image(w, {"user": "c", "properties": {"hw_disk_bus=scsi": "x"}}),
                          None)[1]),
    Case("image-manifest-huge-ram", ("verify", "--image", "img.qcow2"),
         "error: {root}/cwd/img.qcow2.json: min_ram_mib must be a whole number from 0 to "
         "1048576, not 100000000000000000000000",
         setup=lambda w: (_image(w, {"user": "c", "min_ram_mib": 10**23}), None)[1]),
    # -- the base-image cache: a manifest that is not what oslab wrote
    Case("images-built-at-word", ("--uri", "test:///default", "images"),
         f"error: the base image manifest {{root}}/{IMAGES}/{'a' * 16}/manifest.json cannot be "
         "read: built_at \"yesterday\" is not a time in seconds since the epoch",
         setup=cached_base("yesterday"), hint="the next `oslab up` builds it again"),
    Case("images-built-at-nan", ("--uri", "test:///default", "images", "--json"),
         f"error: the base image manifest {{root}}/{IMAGES}/{'a' * 16}/manifest.json cannot be "
         "read: built_at NaN is not a time in seconds since the epoch",
         setup=cached_base(float("nan"))),
    Case("images-built-at-infinite", ("--uri", "test:///default", "images", "--prune"),
         f"error: the base image manifest {{root}}/{IMAGES}/{'a' * 16}/manifest.json cannot be "
         "read: built_at Infinity is not a time in seconds since the epoch",
         setup=cached_base(float("inf"))),
    Case("images-name-not-its-directory", ("--uri", "test:///default", "images"),
         f"error: the base image manifest {{root}}/{IMAGES}/{'a' * 16}/manifest.json cannot be "
         f"read: its name, distro and role do not name the base in {'a' * 16}",
         setup=cached_base(1, name="debian13-base-" + "b" * 16)),
    # -- init --force replaces a regular file, nothing else
    Case("init-force-fifo", ("init", "--force", "fifo"),
         "error: fifo is not a regular file; oslab init writes a new file or, with --force, "
         "replaces a regular one", setup=_fifo),
    Case("init-force-link", ("init", "--force", "link"),
         "error: link is a symbolic link; oslab init writes a new file or, with --force, "
         "replaces a regular one", setup=_link),
    # -- oslab's own snapshot names
    Case("snapshot-auto", ("--uri", "test:///default", "snapshot", "auto-verified"),
         "error: snapshot names starting with 'auto-' are oslab's own",
         hint="choose another name, such as my-auto-verified"),
    Case("snapshot-exercise", ("--uri", "test:///default", "snapshot", "exercise-1"),
         "error: snapshot names starting with 'exercise-' are oslab's own"),
    Case("snapshot-saved", ("--uri", "test:///default", "snapshot", "saved-x",
                            "--description", "mine"),
         "error: snapshot names starting with 'saved-' are oslab's own"),
    # -- the sweep: snapshot, revert, up --from, verify --only, plan --node, openrc, images
    Case("snapshot-auto-before-libvirt", ("--uri", NO_LIBVIRT, "snapshot", "auto-os"),
         "error: snapshot names starting with 'auto-' are oslab's own"),
    Case("snapshot-no-name-before-libvirt", ("--uri", NO_LIBVIRT, "snapshot", "--description",
                                             "x"),
         "error: name the snapshot", hint="oslab snapshot NAME, or --list"),
    Case("snapshot-delete-empty", ("--uri", NO_LIBVIRT, "snapshot", "--delete", ""),
         "error: '' is not a valid snapshot name"),
    Case("snapshot-delete-path", ("--uri", NO_LIBVIRT, "snapshot", "--delete", "../x"),
         "error: '../x' is not a valid snapshot name"),
    Case("snapshot-description-tab", ("--uri", NO_LIBVIRT, "snapshot", "s1", "--description",
                                      "a\tb"),
         "error: --description must be one line of at most 1000 printable characters"),
    Case("snapshot-description-escape", ("--uri", NO_LIBVIRT, "snapshot", "s1",
                                         "--description", "\x1b[2J"),
         "error: --description must be one line of at most 1000 printable characters"),
    Case("snapshot-description-with-list", ("--uri", NO_LIBVIRT, "snapshot", "--list",
                                            "--description", "x"),
         "error: --description goes with taking a snapshot"),
    Case("revert-empty", ("--uri", NO_LIBVIRT, "revert", ""),
         "error: '' is not a valid snapshot name"),
    Case("revert-newline", ("--uri", NO_LIBVIRT, "revert", "s1\n"),
         "error: 's1\\n' is not a valid snapshot name"),
    Case("up-from-empty", ("--uri", NO_LIBVIRT, "up", "--from", ""),
         "error: --from is empty", hint="`oslab plan` lists them"),
    Case("up-until-empty", ("--uri", NO_LIBVIRT, "up", "--until", " "),
         "error: --until is empty", hint="`oslab plan` lists them"),
    Case("verify-only-unknown", ("verify", "--only", "everything"),
         "error: Invalid value for '--only': 'everything' is not one of 'identity', 'catalog', "
         "'services', 'image', 'network', 'instance', 'volume', 'dashboard'."),
    Case("verify-only-empty", ("verify", "--only", ""),
         "error: Invalid value for '--only': '' is not one of 'identity', 'catalog', "
         "'services', 'image', 'network', 'instance', 'volume', 'dashboard'."),
    Case("verify-only-out-of-scope", ("-f", SPEC, "verify", "--only", "volume"),
         "error: a lab of scope 'identity' has no image, network, instance, volume to check",
         spec=edit('timezone = "UTC"', 'timezone = "UTC"\nscope = "identity"'),
         hint="choose from: identity, catalog"),
    Case("plan-node-empty", ("plan", "--fresh", "--node", ""),
         "error: lab 'oslab' has no node ''"),
    Case("plan-node-newline", ("plan", "--fresh", "--node", "controller\n"),
         "error: lab 'oslab' has no node 'controller\\n'"),
    Case("openrc-who", ("openrc", "root"),
         "error: Invalid value for '[admin|demo]': 'root' is not one of 'admin', 'demo'."),
    Case("status-json-extra", ("status", "--json", "--yes"), "error: No such option '--yes'."),
    Case("images-all-without-prune", ("images", "--json", "--all"),
         "error: --dry-run and --all only go with --prune"),
    Case("render-check-no-out", ("render", "--check"),
         "error: Missing option '--out'."),
    # -- URLs in the spec: what urllib can take apart, and a mirror apt can use
    Case("iso-url-open-ipv6", ("-f", SPEC, "check"),
         "error: {spec}: iso.url: 'http://[::1/x.iso' is not an http(s) URL",
         spec=iso_url("http://[::1/x.iso")),
    Case("iso-url-port", ("-f", SPEC, "up"),
         "error: {spec}: iso.url: 'https://h:99999/x.iso' is not an http(s) URL",
         spec=iso_url("https://h:99999/x.iso")),
    Case("iso-url-huge", ("-f", SPEC, "check"),
         "error: {spec}: iso.url: 'https://h/" + "x" * 129 + "...(3038 characters)",
         spec=iso_url("https://h/" + "x" * 3000 + ".iso")),
    Case("mirror-query", ("-f", SPEC, "check"),
         "error: {spec}: packages.mirror: 'http://h/debian?x=`id`' is not an http(s) URL",
         spec=deb('mirror = ""', 'mirror = "http://h/debian?x=`id`"'), hint="no ?query"),
    Case("mirror-fragment", ("-f", SPEC, "check"),
         "error: {spec}: packages.mirror: 'http://h/debian#x' is not an http(s) URL",
         spec=deb('mirror = ""', 'mirror = "http://h/debian#x"')),
    Case("mirror-port", ("-f", SPEC, "up"),
         "error: {spec}: packages.mirror: 'http://h:0x50/debian' is not an http(s) URL",
         spec=deb('mirror = ""', 'mirror = "http://h:0x50/debian"')),
    Case("scope-case", ("-f", SPEC, "check"),
         "error: {spec}: lab.scope: 'IDENTITY' is not a scope",
         spec=deb('scope = "all"', 'scope = "IDENTITY"'), hint="choose one of: all, identity"),
    Case("packages-source-list", ("-f", SPEC, "check"),
         "error: {spec}: packages.source: must be a str, not ['local']",
         spec=deb('source = "local"', 'source = ["local"]')),
    Case("verify-table-scalar", ("-f", SPEC, "check"),
         "error: {spec}: verify: must be a table", spec='verify = "x"\n' + DEBIAN),
    # -- the lab's state directory: files oslab wrote, read as such
    Case("passwords-fifo", ("openrc", "admin"),
         f"error: the lab's state file {STATE}/passwords.json is not a regular file",
         setup=_state(fifo="passwords.json")),
    Case("passwords-newline", ("render", "--out", "{root}/cwd/out"),
         f"error: {STATE}/passwords.json is damaged: 'keystone_admin': not a name and password "
         "as oslab makes them (letters and digits)",
         setup=_state(passwords={"keystone_admin": "pw\n[DEFAULT]\ndebug = true"})),
    Case("passwords-quote", ("openrc", "admin", "--print"),
         f"error: {STATE}/passwords.json is damaged: 'db_nova': not a name and password as "
         "oslab makes them (letters and digits)",
         setup=_state(passwords={"keystone_admin": "abc", "db_nova": "x'@h/db"})),
    Case("key-fifo", ("render", "--out", "{root}/cwd/out"),
         f"error: the lab's state file {STATE}/id_ed25519 is not a regular file",
         setup=_state(fifo="id_ed25519")),
    Case("host-key-pub-fifo", ("-f", SPEC, "verify"),
         f"error: the lab's state file {STATE}/hostkeys/controller_ed25519.pub is not a "
         "regular file", spec=UNROUTED, setup=_state(fifo="hostkeys/controller_ed25519.pub")),
    Case("verify-never-built", ("-f", SPEC, "verify"),
         f"error: lab oslab has no SSH keys on this host (state directory {STATE}): it was not "
         "built here", spec=UNROUTED),
    Case("ledger-shell", ("-f", SPEC, "verify"),
         f"error: the verify ledger {STATE}/verify-resources.json cannot be read (not a list of "
         "the resources verify creates): the resources of the run that wrote it may still be "
         "in the cloud, and this run would forget them", spec=UNROUTED,
         setup=_state(keys=True, ledger=[{"kind": "server", "ref": "x", "who": "demo",
                                          "delete": "server delete x; reboot"}]),
         hint="it may name: server x; delete those still in the cloud"),
    Case("ledger-keys", ("-f", SPEC, "verify"),
         f"error: the verify ledger {STATE}/verify-resources.json cannot be read (not a list of "
         "the resources verify creates): the resources of the run that wrote it may still be "
         "in the cloud, and this run would forget them", spec=UNROUTED,
         setup=_state(keys=True, ledger=[{"kind": "server"}])),
    Case("ledger-who", ("-f", SPEC, "verify", "--only", "identity"),
         f"error: the verify ledger {STATE}/verify-resources.json cannot be read (not a list of "
         "the resources verify creates): the resources of the run that wrote it may still be "
         "in the cloud, and this run would forget them", spec=UNROUTED,
         setup=_state(keys=True, ledger=[{"kind": "server", "ref": "x", "who": "root",
                                          "delete": "server delete x"}])),
    Case("ledger-fifo", ("-f", SPEC, "verify"),
         f"error: the verify ledger {STATE}/verify-resources.json is not a regular file",
         spec=UNROUTED, setup=_state(keys=True, fifo="verify-resources.json")),
    # -- openrc --clouds-yaml: the user's own file, never changed unless all of it is kept
    Case("clouds-yaml-fifo", ("openrc", "--clouds-yaml", "--out", "{root}/cwd/clouds.yaml"),
         "error: clouds.yaml {root}/cwd/clouds.yaml is not a regular file",
         setup=_clouds("fifo")),
    Case("clouds-yaml-link", ("openrc", "--clouds-yaml", "--out", "{root}/cwd/clouds.yaml"),
         "error: {root}/cwd/clouds.yaml is a symbolic link; oslab does not write through one",
         setup=_clouds("link"), hint="/other/clouds.yaml"),
    Case("clouds-yaml-flow", ("openrc", "--clouds-yaml", "--out", "{root}/cwd/clouds.yaml"),
         "error: cannot add the lab's entries to {root}/cwd/clouds.yaml without changing what "
         "else it says (its layout: flow style, anchors or a document marker)",
         setup=_clouds("clouds: {mine: {region_name: R}}\n"), hint="copy the entries"),
    Case("clouds-yaml-list", ("openrc", "--clouds-yaml", "--out", "{root}/cwd/clouds.yaml"),
         "error: {root}/cwd/clouds.yaml is not a mapping (it holds a list)",
         setup=_clouds("- a\n")),
    Case("clouds-yaml-print", ("openrc", "--clouds-yaml", "--print"),
         "error: --print and --clouds-yaml do not go together: the clouds.yaml entries are "
         "never printed (they hold the passwords)", setup=_clouds("fifo")),
    Case("clouds-yaml-out-alone", ("openrc", "--out", "{root}/cwd/clouds.yaml"),
         "error: --out goes with --clouds-yaml", setup=_clouds("fifo")),
    Case("clouds-yaml-no-lab", ("openrc", "--clouds-yaml"),
         "error: lab oslab has no passwords on this host: its install has not run (state "
         f"directory {STATE})", hint="`oslab up` builds the lab"),
    # -- libvirt's pools: a marker that is a FIFO is no marker
    Case("pool-marker-fifo", ("--uri", "test://{root}/cwd/host.xml", "status"),
         "error: storage pool oslab exists but oslab did not make it for lab oslab (no "
         ".oslab-pool marker in {root}/cwd/pool)", setup=_fifo_pool_marker),
    # -- the cache's lock files: a FIFO would be waited on for ever
    Case("images-lock-fifo", ("--uri", "test:///default", "images", "--prune"),
         f"error: the lock file {{root}}/{IMAGES}/{'a' * 16}.lock is not a regular file",
         setup=_fifo_lock, hint="oslab makes its lock files itself"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(world: World, case: Case) -> None:
    check_case(world, case)
