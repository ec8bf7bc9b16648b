"""`oslab openrc --clouds-yaml`: the lab's two clouds merged into a user's clouds.yaml, with
every other entry, comment and blank line kept, read back by PyYAML (the parser openstacksdk
uses). The real client against a real Keystone is in tests/integration/test_keystone_verify.py.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from oslab import spec_file
from oslab.access.state import LabState
from oslab.errors import OslabError
from oslab.install import clouds_yaml
from oslab.install.clouds_yaml import MergeError, merge

# passwords as the lab makes them are letters and digits; these are worse, to show the quoting
NASTY = "p\"a'ss: #x\\n{y}[z]&*!|>%@`-\t é"


def clouds(lab: str, password: str = NASTY) -> dict[str, dict[str, Any]]:
    return {f"{lab}-{who}": {"auth": {"auth_url": "http://10.0.0.11:5000/v3",
                                      "username": who, "password": password + who,
                                      "project_name": who, "user_domain_name": "Default",
                                      "project_domain_name": "Default"},
                             "region_name": "RegionOne", "identity_api_version": 3,
                             "interface": "public"}
            for who in ("admin", "demo")}


DEVSTACK = """\
# my clouds, by hand
clouds:
    # the devstack one
    devstack:
        auth:
            auth_url: http://192.0.2.4/identity   # keep me
            password: 'it''s'
        region_name: RegionOne

    prod:   # another
        auth: {auth_url: "https://example.com:5000", username: me}
        regions: [One, Two]
# the end
ansible:
  use_hostnames: true
"""


@dataclass(frozen=True)
class Existing:
    id: str
    text: str
    lab: str = "oslab"


EXISTING = [
    Existing("missing", ""),
    Existing("only-comments", "# nothing here yet\n\n# really\n"),
    Existing("others-and-comments", DEVSTACK),
    Existing("every-lab-name-character", DEVSTACK, lab="a-9z"),
    Existing("one-letter-lab", DEVSTACK, lab="z"),
    Existing("no-clouds-key", "ansible:\n  use_hostnames: true\n# trailing\n"),
    Existing("empty-clouds", "clouds:\n# none yet\nother: 1\n"),
    Existing("clouds-last-no-newline", "x: 1\nclouds:\n  a:\n    region_name: R"),
    Existing("document-markers", "---\nclouds:\n  a:\n    region_name: R\n...\n"),
    Existing("ours-already-there", DEVSTACK.replace(
        "# the end", "    oslab-admin:\n        auth:\n            password: old\n"
                     "        extra: [1, 2]\n    oslab-demo: {auth: {password: old}}\n# the end")),
    Existing("quoted-keys-of-ours", "clouds:\n  'oslab-admin':\n    auth: {password: old}\n"
                                    "  \"other\": {}\n"),
]


def subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(line in it for line in small)


@pytest.mark.parametrize("case", EXISTING, ids=[c.id for c in EXISTING])
def test_merge_adds_ours_and_keeps_everything_else(case: Existing) -> None:
    ours = clouds(case.lab)
    out = merge(case.text, ours)
    old = yaml.safe_load(case.text) or {}
    assert yaml.safe_load(out) == {**old, "clouds": {**(old.get("clouds") or {}), **ours}}
    # every line that was not one of ours is still there, in its order, byte for byte
    names = {f"{case.lab}-admin", f"{case.lab}-demo"}
    kept: list[str] = []
    inside = False
    for line in case.text.splitlines():
        key = clouds_yaml._key(line)
        if key is not None and key[1] in names:
            inside, indent = True, key[0]
            continue
        if inside and (not line.strip() or line.startswith(" " * (indent + 1))):
            continue
        inside = False
        kept.append(line)
    assert subsequence(kept, out.splitlines())
    assert merge(out, ours) == out  # a rerun changes nothing
    # a new password replaces the old one in place, and nothing else moves
    again = merge(out, clouds(case.lab, "other"))
    assert len(again.splitlines()) == len(out.splitlines())
    assert yaml.safe_load(again)["clouds"][f"{case.lab}-demo"]["auth"]["password"] == "otherdemo"


REFUSED = [
    ("flow-style", "clouds: {a: {region_name: R}}\n", "without changing what else it says"),
    ("top-level-flow", "{clouds: {a: 1}}\n", "without changing what else it says"),
    ("a-list", "- clouds\n", "is not a mapping (it holds a list)"),
    ("a-string", "just text\n", "is not a mapping (it holds a str)"),
    ("clouds-a-list", "clouds:\n  - a\n", "its `clouds` is not a mapping"),
    ("not-yaml", "clouds:\n  a: [\n", "is not valid YAML"),
    ("tabs", "clouds:\n\ta: 1\n", "is not valid YAML"),
]


@pytest.mark.parametrize(("text", "message"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_merge_refuses_what_it_cannot_edit(text: str, message: str) -> None:
    with pytest.raises(MergeError, match=message.replace("(", r"\(").replace(")", r"\)")) as exc:
        merge(text, clouds("oslab"))
    assert exc.value.hint


def built_lab(tmp_path: Path) -> tuple[Any, LabState]:
    spec = spec_file.load_default()
    state = LabState(spec.name, root=tmp_path / "state" / "oslab").ensure()
    state.password("keystone_admin")
    state.password("keystone_demo")
    return spec, state


def test_write_is_0600_and_merges_into_the_existing_file(tmp_path: Path) -> None:
    spec, state = built_lab(tmp_path)
    out = tmp_path / "clouds.yaml"
    out.write_text(DEVSTACK)
    out.chmod(0o644)
    done = clouds_yaml.write(spec, state, out)
    assert (done.names, done.kept) == (("oslab-admin", "oslab-demo"), 2)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    data = yaml.safe_load(out.read_text())
    assert data["clouds"]["oslab-demo"]["auth"]["password"] == state.password("keystone_demo")
    assert data["clouds"]["oslab-admin"]["auth"]["auth_url"] == "http://10.0.0.11:5000/v3"


def test_write_makes_the_xdg_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec, state = built_lab(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    done = clouds_yaml.write(spec, state)
    assert done.path == tmp_path / "config" / "openstack" / "clouds.yaml"
    assert stat.S_IMODE(done.path.stat().st_mode) == 0o600
    assert clouds_yaml.default_path({"HOME": "/h"}).parent.name == "openstack"


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory", "not-utf8", "flow"])
def test_write_refuses_and_leaves_the_file(tmp_path: Path, kind: str) -> None:
    spec, state = built_lab(tmp_path)
    real = tmp_path / "real.yaml"
    real.write_text(DEVSTACK)
    out = tmp_path / "clouds.yaml"
    if kind == "symlink":
        out.symlink_to(real)
    elif kind == "fifo":
        os.mkfifo(out)
    elif kind == "directory":
        out.mkdir()
    elif kind == "not-utf8":
        out.write_bytes(b"clouds:\n  a: \xff\n")
    else:
        out.write_text("clouds: {a: 1}\n")
    before = {p.name: (p.lstat().st_mode, p.read_bytes() if p.is_file() else b"")
              for p in tmp_path.iterdir() if p.name != "state"}
    with pytest.raises(OslabError) as exc:
        clouds_yaml.write(spec, state, out)
    assert exc.value.hint
    if kind == "symlink":
        assert f"--out {real}" in exc.value.hint
    after = {p.name: (p.lstat().st_mode, p.read_bytes() if p.is_file() else b"")
             for p in tmp_path.iterdir() if p.name != "state"}
    assert after == before


def test_write_before_the_install_made_passwords(tmp_path: Path) -> None:
    spec = spec_file.load_default()
    state = LabState(spec.name, root=tmp_path / "state")
    with pytest.raises(OslabError, match="has no passwords on this host"):
        clouds_yaml.write(spec, state, tmp_path / "clouds.yaml")
    assert not (tmp_path / "clouds.yaml").exists()


def test_command_prints_no_password(tmp_path: Path) -> None:
    _spec, state = built_lab(tmp_path)
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"),
               XDG_CONFIG_HOME=str(tmp_path / "config"), HOME=str(tmp_path / "home"))
    proc = subprocess.run([sys.executable, "-m", "oslab", "openrc", "--clouds-yaml"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / "config" / "openstack" / "clouds.yaml"
    assert proc.stdout.splitlines() == [
        f"wrote oslab-admin and oslab-demo into {path} (mode 0600: it holds the lab's "
        "passwords)", "use: openstack --os-cloud oslab-admin token issue",
        "note: the catalog names the controller `controller`; for the other services from "
        "this host it must resolve here (10.0.0.11 controller in /etc/hosts)"]
    for key in ("keystone_admin", "keystone_demo"):
        assert state.password(key) not in proc.stdout + proc.stderr
        assert state.password(key) in path.read_text()
