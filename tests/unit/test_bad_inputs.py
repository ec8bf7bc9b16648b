"""Bad inputs to every command and spec field, through the real entry point (`python -m
oslab`): each ends with its exact ``error:`` line (and a ``hint:``), a non-zero exit, no
traceback, and no file changed outside the lab's own state directory (most change nothing)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from oslab.access.state import LabState
from oslab.spec_file import default_spec_text

DEFAULT = default_spec_text()


def tree(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every path under ``root`` with its mode and content (None for a directory or link)."""
    out: dict[str, tuple[int, bytes | None]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        data = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        out[str(path.relative_to(root))] = (st.st_mode, data)
    return out


@dataclass
class World:
    """A scratch world: cwd, state and cache homes, all under ``root``."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def state_root(self) -> Path:
        return self.root / "state" / "oslab"

    def spec(self, text: str, name: str = "lab.toml") -> str:
        path = self.root / "cwd" / name
        path.write_text(text)
        return str(path)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "oslab", *args], env=self.env, text=True,
                              capture_output=True, timeout=120, stdin=subprocess.DEVNULL,
                              cwd=self.root / "cwd")


@pytest.fixture
def world(tmp_path: Path) -> World:
    (tmp_path / "cwd").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "precious.txt").write_text("not oslab's\n")
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"),
               XDG_CACHE_HOME=str(tmp_path / "cache"), HOME=str(tmp_path / "home"),
               OSLAB_SAVES_DIR=str(tmp_path / "saves"))
    return World(tmp_path, env)


def edit(old: str, new: str) -> str:
    assert old in DEFAULT, old
    return DEFAULT.replace(old, new)


SPEC = "{spec}"  # replaced by the path of the case's spec file
EMPTY_HOST = "<node></node>\n"  # a libvirt test driver with no objects


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    error: str  # the exact first stderr line, after "{root}" is filled in
    spec: str | bytes | None = None
    setup: Callable[[World], None] | None = None
    hint: str | None = None  # a fragment of the hint line
    code: int = 2


def _state_file(w: World) -> None:
    w.state_root.mkdir(parents=True)
    (w.state_root / "oslab").write_text("a file where the state directory goes\n")


def _bad_passwords(w: World) -> None:
    state = LabState("oslab", root=w.state_root).ensure()
    (state.dir / "passwords.json").write_text('{"keystone_admin": ')


def _wrong_passwords(w: World) -> None:
    state = LabState("oslab", root=w.state_root).ensure()
    (state.dir / "passwords.json").write_text('["keystone_admin"]')


def _truncated_key(w: World) -> None:
    state = LabState("oslab", root=w.state_root)
    key = state.ssh_key().private_path
    key.write_bytes(key.read_bytes()[:100])


def _bad_manifest(w: World) -> None:
    base = w.root / "cache" / "oslab" / "debian" / "images" / ("a" * 16)
    base.mkdir(parents=True)
    (base / "manifest.json").write_text("{")


def _mismatched_pub(w: World) -> None:
    state = LabState("oslab", root=w.state_root)
    key = state.ssh_key().private_path
    other = LabState("other", root=w.state_root).ssh_key()
    key.with_name("id_ed25519.pub").write_text(other.public + "\n")


def _a_file(w: World) -> None:
    (w.root / "cwd" / "afile").write_text("x")


CASES = [
    # -- the spec file itself
    Case("spec-binary", ("-f", SPEC, "check"), "error: {spec}: line 1: byte 0xff is not UTF-8",
         spec=b"\xff\xfe\x00\x01binary", hint="TOML files are UTF-8"),
    Case("spec-latin1-comment", ("-f", SPEC, "check"),
         "error: {spec}: line 2: byte 0xe9 is not UTF-8", spec=b"# lab\n# caf\xe9\n"
         + DEFAULT.encode()),
    Case("spec-dev-zero", ("-f", "/dev/zero", "check"),
         "error: lab spec /dev/zero is not a regular file"),
    Case("spec-fifo", ("-f", "{root}/cwd/fifo", "check"),
         "error: lab spec {root}/cwd/fifo is not a regular file",
         setup=lambda w: os.mkfifo(w.root / "cwd" / "fifo")),
    Case("spec-huge", ("-f", SPEC, "check"), "error: lab spec {spec} is larger than 1 MiB",
         spec="# " + "x" * (1 << 20) + "\n"),
    Case("spec-missing", ("-f", "{root}/cwd/nope.toml", "check"),
         "error: cannot read lab spec {root}/cwd/nope.toml: No such file or directory"),
    Case("spec-empty", ("-f", SPEC, "check"),
         "error: {spec}: lab: missing required key 'name'", spec=""),
    Case("spec-nul", ("-f", SPEC, "check"), "error: {spec}: not valid TOML: ", spec="\x00"),
    Case("spec-nested-deep", ("-f", SPEC, "check"),
         "error: {spec}: not valid TOML: arrays or tables nested too deeply",
         spec="a = " + "[" * 100_000 + "]" * 100_000 + "\n"),
    Case("spec-path-empty", ("-f", "", "check"), "error: -f/--file is empty"),
    Case("spec-shadow", ("-f", "/etc/shadow", "check"), "error: /etc/shadow: not valid TOML: "),
    # -- spec fields that check and up must both refuse
    Case("iso-ftp", ("-f", SPEC, "check"),
         "error: {spec}: iso.url: 'ftp://example.invalid/x.iso' is not an http(s) URL",
         spec=edit('url = "https://mirror', 'url = "ftp://example.invalid/x.iso"\n# "https://'),
         hint="for a local file use iso.path"),
    Case("iso-file-url", ("-f", SPEC, "up"),
         "error: {spec}: iso.url: 'file:///etc/shadow' is not an http(s) URL",
         spec=edit('url = "https://mirror', 'url = "file:///etc/shadow"\n# "https://')),
    Case("sha256-url-ftp", ("-f", SPEC, "check"),
         "error: {spec}: iso.sha256_url: 'ftp://x/SUMS' is not an http(s) URL",
         spec=edit('sha256_url = "https://', 'sha256_url = "ftp://x/SUMS"\n# "')),
    Case("pool-dir-relative", ("-f", SPEC, "up"),
         "error: {spec}: lab.pool_dir: 'images/lab' is not an absolute directory path",
         spec=edit('pool_dir = ""', 'pool_dir = "images/lab"')),
    Case("pool-dir-dotdot", ("-f", SPEC, "check"),
         "error: {spec}: lab.pool_dir: '/var/lib/../../etc' is not an absolute directory path",
         spec=edit('pool_dir = ""', 'pool_dir = "/var/lib/../../etc"')),
    Case("pool-dir-home", ("-f", SPEC, "check"),
         "error: {spec}: lab.pool_dir: '~/x' is not an absolute directory path",
         spec=edit('pool_dir = ""', 'pool_dir = "~/x"')),
    Case("pool-dir-root", ("-f", SPEC, "check"),
         "error: {spec}: lab.pool_dir: '/' is not an absolute directory path",
         spec=edit('pool_dir = ""', 'pool_dir = "/"')),
    Case("timezone", ("-f", SPEC, "check"),
         "error: {spec}: lab.timezone: 'Mars/Olympus' is not a time zone of the tz database",
         spec=edit('timezone = "UTC"', 'timezone = "Mars/Olympus"')),
    Case("timezone-path", ("-f", SPEC, "up"),
         "error: {spec}: lab.timezone: '../../etc/passwd' is not a time zone of the tz database",
         spec=edit('timezone = "UTC"', 'timezone = "../../etc/passwd"')),
    Case("node-localhost", ("-f", SPEC, "check"),
         "error: {spec}: nodes[1] (localhost).name: 'localhost' cannot name a node",
         spec=edit('name = "compute1"', 'name = "localhost"')),
    Case("mgmt-loopback", ("-f", SPEC, "check"),
         "error: {spec}: networks.management.cidr: 127.0.0.0/24 is loopback address space",
         spec=edit('cidr = "10.0.0.0/24"', 'cidr = "127.0.0.0/24"')),
    Case("provider-multicast", ("-f", SPEC, "check"),
         "error: {spec}: networks.provider.cidr: 224.0.1.0/24 is multicast address space",
         spec=edit('cidr = "203.0.113.0/24"', 'cidr = "224.0.1.0/24"')),
    Case("provider-link-local", ("-f", SPEC, "up"),
         "error: {spec}: networks.provider.cidr: 169.254.0.0/24 is link-local address space",
         spec=edit('cidr = "203.0.113.0/24"', 'cidr = "169.254.0.0/24"')),
    Case("provider-reserved", ("-f", SPEC, "check"),
         "error: {spec}: networks.provider.cidr: 240.0.0.0/24 is reserved address space",
         spec=edit('cidr = "203.0.113.0/24"', 'cidr = "240.0.0.0/24"')),
    Case("mgmt-this-network", ("-f", SPEC, "check"),
         "error: {spec}: networks.management.cidr: 0.0.0.0/8 is 'this network' address space",
         spec=edit('cidr = "10.0.0.0/24"', 'cidr = "0.0.0.0/8"')),
    Case("lab-name-newline", ("-f", SPEC, "check"),
         "error: {spec}: lab.name: 'oslab\\n' is not a valid lab name",
         spec=edit('name = "oslab"', 'name = "oslab\\n"')),
    Case("memory-huge", ("-f", SPEC, "check"),
         "error: {spec}: nodes[0] (controller).memory_mib: 99999999999 is out of range "
         "(256 to 1048576)", spec=edit("memory_mib = 6144", "memory_mib = 99999999999")),
    Case("vcpus-negative", ("-f", SPEC, "check"),
         "error: {spec}: nodes[0] (controller).vcpus: -1 is out of range (1 to 256)",
         spec=edit("vcpus = 2", "vcpus = -1")),
    Case("disk-string", ("-f", SPEC, "check"),
         "error: {spec}: nodes[0] (controller).disk_gib: must be an integer, not '40'",
         spec=edit("disk_gib = 40 ", 'disk_gib = "40" ')),
    Case("address-outside", ("-f", SPEC, "check"),
         "error: {spec}: nodes[0] (controller).address: 10.0.1.11 is not a usable address of "
         "the management network 10.0.0.0/24", spec=edit('"10.0.0.11"', '"10.0.1.11"')),
    Case("lab-name-huge", ("-f", SPEC, "check"),
         "error: {spec}: lab.name: '" + "a" * 139 + "...(100026 characters)",
         spec=edit('name = "oslab"', 'name = "' + "a" * 100_000 + '"')),
    Case("extra-disks-many", ("-f", SPEC, "check"),
         "error: {spec}: nodes[0] (controller).extra_disks_gib: 500 extra disks; at most 8",
         spec=edit("extra_disks_gib = [20]", "extra_disks_gib = [" + "1," * 500 + "]")),
    Case("cidr-too-large", ("-f", SPEC, "check"),
         "error: {spec}: networks.management.cidr: 10.0.0.0/8 is too large for a lab network",
         spec=edit('cidr = "10.0.0.0/24"', 'cidr = "10.0.0.0/8"')),
    Case("provider-everything", ("-f", SPEC, "check"),
         "error: {spec}: networks.provider.cidr: 0.0.0.0/0 is 'this network' address space",
         spec=edit('cidr = "203.0.113.0/24"', 'cidr = "0.0.0.0/0"')),
    Case("pool-dir-newline", ("-f", SPEC, "check"),
         "error: {spec}: lab.pool_dir: '/tmp/a\\nb' is not an absolute directory path",
         spec=edit('pool_dir = ""', 'pool_dir = "/tmp/a\\nb"')),
    Case("timezone-empty", ("-f", SPEC, "check"),
         "error: {spec}: lab.timezone: '' is not a time zone of the tz database",
         spec=edit('timezone = "UTC"', 'timezone = ""')),
    Case("iso-url-no-host", ("-f", SPEC, "check"),
         "error: {spec}: iso.url: 'https:///x.iso' is not an http(s) URL",
         spec=edit('url = "https://mirror', 'url = "https:///x.iso"\n# "https://')),
    Case("distro-path", ("-f", SPEC, "check"), "error: {spec}: lab.distro: unknown distro '../etc'",
         spec=edit('distro = "centos-stream9"', 'distro = "../etc"')),
    Case("timeout-bool", ("-f", SPEC, "check"),
         "error: {spec}: lab.install_timeout_s: must be an integer, not True",
         spec=edit("install_timeout_s = 0", "install_timeout_s = true")),
    # -- commands
    Case("init-empty", ("init", ""), "error: the path is empty"),
    Case("render-out-empty", ("render", "--out", ""), "error: --out is empty"),
    Case("up-from-typo", ("--uri", "qemu+unix:///system?socket=/nonexistent", "up", "--from",
                          "nosuchstep"), "error: no install step is named 'nosuchstep'"),
    Case("up-until-typo", ("--uri", "qemu+unix:///system?socket=/nonexistent", "up", "--until",
                           "glanse"), "error: no install step or service is named 'glanse'"),
    Case("up-until-provision", ("up", "--stage", "provision", "--until", "glance"),
         "error: --until names an install step, but --stage provision stops before the "
         "install"),
    # -- saved labs (no saves root is made by a refusal)
    Case("save-bad-name", ("--uri", "test:///default", "save", "../x"),
         "error: '../x' is not a valid save name"),
    Case("save-no-lab", ("--uri", "test:///default", "save", "s1"),
         "error: lab oslab has no nodes in libvirt", hint="oslab up"),
    Case("save-lab-without-spec", ("--lab", "x", "save", "s1"),
         "error: `oslab save` needs the lab's spec: the save keeps it to rebuild the lab's "
         "networks", hint="-f FILE"),
    Case("saved-delete-unknown", ("saved", "--delete", "nope"),
         "error: there is no save 'nope' in {root}/saves", hint="`oslab saved` lists"),
    Case("saved-delete-traversal", ("saved", "--delete", "../../etc"),
         "error: '../../etc' is not a valid save name"),
    Case("up-from-saved-unknown", ("up", "--from-saved", "nope"),
         "error: there is no save 'nope' in {root}/saves"),
    Case("up-from-saved-with-spec", ("-f", SPEC, "up", "--from-saved", "nope"),
         "error: --from-saved takes no spec: the save carries its own", spec=DEFAULT),
    Case("up-cold-alone", ("up", "--cold"), "error: --cold and --verify go with --from-saved"),
    Case("import-not-an-archive", ("import", "{root}/other/precious.txt"),
         "error: {root}/other/precious.txt is not an oslab save archive: ",
         hint="NAME/manifest.json first"),
    Case("lint-not-built", ("lint",),
         "error: lab oslab has no SSH keys on this host: it was not built here"),
    Case("exercise-unknown", ("exercise", "start", "nope"),
         "error: no exercise is named 'nope'", hint="`oslab exercise list` lists them"),
    Case("exercise-close-name", ("exercise", "start", "cinder"),
         "error: no exercise is named 'cinder'", hint="did you mean cinder-volume-group?"),
    Case("exercise-not-built", ("exercise", "start", "keystone-database"),
         "error: lab oslab has no SSH keys on this host: it was not built here"),
    Case("exercise-el-only", ("-f", SPEC, "exercise", "start", "placement-directory"),
         "error: exercise placement-directory is about el nodes; lab oslab runs debian13",
         spec=default_spec_text("debian13")),
    Case("exercise-none-in-progress", ("exercise", "hint"),
         "error: no exercise is in progress on this lab", hint="oslab exercise start NAME"),
    Case("exercise-check-none", ("exercise", "reset"),
         "error: no exercise is in progress on this lab"),
    Case("plan-node-unknown", ("plan", "--fresh", "--node", "nope"),
         "error: lab 'oslab' has no node 'nope'"),
    Case("uri-empty", ("--uri", "", "status"), "error: --uri is empty",
         hint="leave --uri out"),
    Case("uri-blank-check", ("--uri", " ", "check"), "error: --uri is empty"),
    Case("snapshot-list-delete", ("snapshot", "--list", "--delete", "x"),
         "error: --list and --delete do not go together"),
    Case("snapshot-name-list", ("snapshot", "s1", "--list"),
         "error: NAME and --list do not go together"),
    Case("snapshot-json-alone", ("snapshot", "s1", "--json"), "error: --json goes with --list"),
    Case("snapshot-description-huge", ("snapshot", "s1", "--description", "x" * 2000),
         "error: --description must be one line of at most 1000 printable characters"),
    Case("snapshot-description-newline", ("snapshot", "s1", "--description", "a\nb"),
         "error: --description must be one line of at most 1000 printable characters"),
    Case("snapshot-bad-name", ("--uri", "test:///default", "snapshot", "../x"),
         "error: '../x' is not a valid snapshot name"),
    Case("snapshot-name-newline", ("--uri", "test:///default", "snapshot", "s1\n"),
         "error: 's1\\n' is not a valid snapshot name"),
    Case("snapshot-no-lab", ("--uri", "test:///default", "snapshot", "s1"),
         "error: lab oslab has no nodes in libvirt"),
    Case("revert-no-lab", ("--uri", "test:///default", "revert", "s1"),
         "error: lab oslab has no nodes in libvirt"),
    Case("stop-no-lab", ("--uri", "test:///default", "stop"),
         "error: lab oslab has no nodes in libvirt", hint="build it with `oslab up`"),
    Case("start-no-lab-node", ("--uri", "test:///default", "start", "ctl"),
         "error: lab oslab has no nodes in libvirt"),
    Case("suspend-no-lab", ("--uri", "test:///default", "--lab", "other", "suspend"),
         "error: lab other has no nodes in libvirt"),
    Case("resume-no-lab", ("--uri", "test:///default", "resume"),
         "error: lab oslab has no nodes in libvirt"),
    Case("stop-timeout-zero", ("stop", "--timeout", "0"),
         "error: Invalid value for '--timeout': 0 is not in the range 10<=x<=3600."),
    Case("stop-timeout-word", ("stop", "--timeout", "soon"),
         "error: Invalid value for '--timeout': 'soon' is not a valid integer range."),
    Case("stop-timeout-nan", ("stop", "--timeout", "nan"),  # no range holds nan: not a bound
         "error: Invalid value for '--timeout': 'nan' is not a valid integer range."),
    Case("ssh-config-no-lab", ("--uri", "test:///default", "ssh-config"),
         "error: lab oslab has no nodes in libvirt"),
    Case("inventory-no-lab", ("--uri", "test:///default", "--lab", "other", "inventory"),
         "error: lab other has no nodes in libvirt"),
    Case("inventory-format", ("inventory", "--format", "toml"),
         "error: Invalid value for '--format': 'toml' is not one of 'ini', 'yaml', 'json'."),
    Case("start-no-libvirt", ("--uri", "{root}/cwd/none", "start"),
         "error: cannot connect to libvirt at {root}/cwd/none: "),
    Case("snapshot-delete-no-lab", ("--uri", "test:///default", "snapshot", "--delete", "s1"),
         "error: lab oslab has no nodes in libvirt"),
    Case("destroy-no-tty", ("--uri", "{root}/cwd/none", "destroy"),
         "error: cannot connect to libvirt at {root}/cwd/none: "),
    Case("init-missing-dir", ("init", "{root}/nowhere/lab.toml"),
         "error: cannot write {root}/nowhere/lab.toml: the directory {root}/nowhere does not "
         "exist"),
    Case("init-exists", ("init", "{root}/other/precious.txt"),
         "error: {root}/other/precious.txt exists already", hint="--force"),
    Case("init-directory", ("init", "--force", "{root}/other"),
         "error: Invalid value for '[PATH]': File '{root}/other' is a directory."),
    Case("openrc-no-lab", ("openrc", "admin"),
         "error: lab oslab has no admin password on this host: its install has not run "
         "(state directory {root}/state/oslab/oslab)"),
    Case("openrc-print-no-lab", ("openrc", "demo", "--print"),
         "error: lab oslab has no demo password on this host: its install has not run "
         "(state directory {root}/state/oslab/oslab)"),
    Case("render-out-under-file", ("render", "--out", "{root}/cwd/afile/out"),
         "error: cannot write into the output directory {root}/cwd/afile/out: Not a directory",
         setup=_a_file),
    Case("render-out-proc", ("render", "--out", "/proc/oslab-out"),
         "error: cannot write into the output directory /proc/oslab-out: "
         "No such file or directory"),
    Case("render-out-proc-itself", ("render", "--out", "/proc/self"),
         "error: cannot write into the output directory /proc/{pid}: .*"),
    Case("state-dir-is-a-file", ("render", "--out", "{root}/cwd/out"),
         "error: the lab's state directory {root}/state/oslab/oslab is not a directory",
         setup=_state_file),
    Case("passwords-corrupt", ("openrc", "admin"),
         "error: {root}/state/oslab/oslab/passwords.json is damaged: Expecting value: line 1 "
         "column 20 (char 19)", setup=_bad_passwords),
    Case("passwords-wrong-shape", ("openrc", "admin"),
         "error: {root}/state/oslab/oslab/passwords.json is damaged: not an object of name: "
         "password strings", setup=_wrong_passwords),
    Case("key-truncated", ("render", "--out", "{root}/cwd/out"),
         "error: {root}/state/oslab/oslab/id_ed25519 is damaged: ", setup=_truncated_key),
    Case("key-pub-mismatch", ("render", "--out", "{root}/cwd/out"),
         "error: {root}/state/oslab/oslab/id_ed25519.pub is damaged: it does not match "
         "id_ed25519", setup=_mismatched_pub),
    Case("up-stage-bogus", ("up", "--stage", "everything"),
         "error: Invalid value for '--stage': 'everything' is not one of 'provision', "
         "'install', 'verify', 'all'.", hint="`oslab up --help`"),
    Case("up-fresh-image-centos", ("--uri", "qemu+unix:///system?socket=/nonexistent", "up",
                                   "--stage", "provision", "--fresh-image"),
         "error: --fresh-image: lab oslab (centos-stream9) installs its nodes from the "
         "installer, not from a cached base image", hint="drop --fresh-image"),
    Case("images-dry-run-alone", ("images", "--dry-run"),
         "error: --dry-run and --all only go with --prune", hint="add --prune"),
    Case("images-manifest-damaged", ("--uri", "test:///default", "images"),
         "error: the base image manifest {root}/cache/oslab/debian/images/aaaaaaaaaaaaaaaa/"
         "manifest.json cannot be read: Expecting property name enclosed in double quotes: "
         "line 1 column 2 (char 1)", setup=_bad_manifest,
         hint="(the next `oslab up` builds it again)"),
    Case("unknown-command", ("explode",), "error: No such command 'explode'.",
         hint="`oslab --help`"),
    Case("ssh-no-lab", ("--uri", "test:///default", "ssh", "ctl"),
         "error: lab oslab has no node 'ctl'", hint="nodes: none"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(world: World, case: Case) -> None:
    check_case(world, case)


def check_case(world: World, case: Case) -> None:
    """Run ``case`` through the real entry point and check all a bad input must give."""
    spec = ""
    if case.spec is not None:
        path = world.root / "cwd" / "lab.toml"
        if isinstance(case.spec, bytes):
            path.write_bytes(case.spec)
        else:
            path.write_text(case.spec)
        spec = str(path)
    if case.setup is not None:
        case.setup(world)
    before = tree(world.root)
    args = [a.replace(SPEC, spec).replace("{root}", str(world.root)) for a in case.args]
    result = world.run(*args)
    expected = case.error.format(spec=spec, root=world.root, pid="[0-9]+")
    lines = result.stderr.splitlines()
    assert result.returncode == case.code, result.stderr
    assert "Traceback" not in result.stderr
    assert lines, result
    if "{pid}" in case.error:
        import re
        assert re.fullmatch(expected, lines[0]), lines
    elif expected.endswith(": "):
        assert lines[0].startswith(expected), lines
    else:
        assert lines[0] == expected, lines
    assert len(lines) >= 2 and lines[-1].startswith("hint: "), lines
    if case.hint:
        assert case.hint in result.stderr
    assert tree(world.root) == before


def test_check_and_up_refuse_a_missing_iso_the_same_way(world: World) -> None:
    text = "\n".join(line for line in DEFAULT.splitlines()
                     if not line.startswith(("url = ", "sha256_url = ")))
    spec = world.spec(text.replace("[iso]\n", '[iso]\npath = "/nonexistent/boot.iso"\n'))
    host = world.root / "cwd" / "host.xml"
    host.write_text(EMPTY_HOST)
    before = tree(world.root)
    line = "iso: iso.path /nonexistent/boot.iso: No such file or directory"
    check = world.run("-f", spec, "--uri", f"test://{host}", "check")
    assert check.returncode == 1
    assert f"block  {line}" in check.stdout.splitlines()
    up = world.run("-f", spec, "--uri", f"test://{host}", "up", "--stage", "provision")
    assert up.returncode == 2
    assert up.stderr.startswith("error: the host cannot run this lab:\n")
    assert f"  - {line}" in up.stderr.splitlines()
    assert "Traceback" not in up.stderr
    assert tree(world.root) == before


def test_a_lab_without_compute_node_is_for_provisioning_only(world: World) -> None:
    text = DEFAULT[:DEFAULT.index('[[nodes]]\nname = "compute1"')]
    spec = world.spec(text)
    host = world.root / "cwd" / "host.xml"
    host.write_text(EMPTY_HOST)
    before = tree(world.root)
    line = "roles: the lab has no compute node, so OpenStack cannot run instances"
    check = world.run("-f", spec, "--uri", f"test://{host}", "check")
    assert f"block  {line}" in check.stdout.splitlines()
    assert check.returncode == 1
    up = world.run("-f", spec, "--uri", f"test://{host}", "up")
    assert f"  - {line}" in up.stderr.splitlines()
    provision = world.run("-f", spec, "--uri", f"test://{host}", "check", "--stage", "provision")
    assert "block  roles" not in provision.stdout
    assert tree(world.root) == before


def test_a_keystone_only_lab_needs_no_compute_node(world: World) -> None:
    text = DEFAULT[:DEFAULT.index('[[nodes]]\nname = "compute1"')]
    spec = world.spec(text.replace('timezone = "UTC"', 'timezone = "UTC"\nscope = "identity"'))
    host = world.root / "cwd" / "host.xml"
    host.write_text(EMPTY_HOST)
    before = tree(world.root)
    check = world.run("-f", spec, "--uri", f"test://{host}", "check")
    assert "   ok  roles: scope identity: Keystone on the controller; compute nodes are not " \
        "needed" in check.stdout.splitlines()
    assert check.returncode == 0, check.stdout
    assert tree(world.root) == before


def one_node_host(world: World) -> Path:
    """A libvirt test-driver host holding lab "lab"'s node ctl at a loopback address nobody
    serves SSH on."""
    meta = ('<metadata><oslab:lab xmlns:oslab="https://oslab.dev/xmlns/lab/1">'
            "<oslab:name>lab</oslab:name><oslab:kind>domain</oslab:kind>"
            "<oslab:role>controller</oslab:role><oslab:spec>x</oslab:spec>"
            "<oslab:node>ctl</oslab:node><oslab:address>127.0.0.1</oslab:address>"
            "<oslab:phase>final</oslab:phase></oslab:lab></metadata>")
    host = world.root / "cwd" / "host.xml"
    host.write_text(f"<node><domain type='test'><name>lab-ctl</name>{meta}<memory>65536</memory>"
                    "<os><type>hvm</type></os></domain></node>\n")
    return host


def test_ssh_to_a_node_that_does_not_answer_fails_fast(world: World) -> None:
    """A lab node in libvirt (the test driver) at a loopback address nobody serves SSH on."""
    LabState("lab", root=world.state_root).host_key("ctl")
    LabState("lab", root=world.state_root).ssh_key()
    host = one_node_host(world)
    before = tree(world.root)
    start = time.monotonic()
    result = world.run("--uri", f"test://{host}", "--lab", "lab", "ssh", "ctl", "--", "true")
    assert time.monotonic() - start < 30
    assert result.returncode == 2
    assert result.stderr.startswith("error: ctl: ")
    assert "Traceback" not in result.stderr
    assert tree(world.root) == before


def test_an_unwritable_state_directory(world: World) -> None:
    """Root ignores permission bits, so the directory is made immutable (chattr +i)."""
    state = LabState("oslab", root=world.state_root).ensure()
    (state.dir / "hostkeys").rmdir()
    subprocess.run(["chattr", "+i", str(state.dir)], check=True)
    try:
        before = tree(world.root)
        result = world.run("render", "--out", str(world.root / "cwd" / "out"))
        after = tree(world.root)
    finally:
        subprocess.run(["chattr", "-i", str(state.dir)], check=True)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        f"error: cannot make the lab's state directory {state.dir}: Operation not permitted")
    assert result.stderr.splitlines()[1].startswith("hint: ")
    assert after == {**before, "cwd/out": after["cwd/out"]}  # only the --out asked for


def test_destroy_without_a_terminal_asks_for_yes(world: World) -> None:
    """With objects to remove, no --yes and no terminal to ask on: refused, nothing removed."""
    host = one_node_host(world)
    before = tree(world.root)
    result = world.run("--uri", f"test://{host}", "--lab", "lab", "destroy")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-2:] == [
        "error: destroy asks before it removes anything, and there is no terminal to ask on",
        "hint: pass --yes to remove it all, or --dry-run to list it"]
    assert "domain lab-ctl" in result.stdout
    assert tree(world.root) == before
