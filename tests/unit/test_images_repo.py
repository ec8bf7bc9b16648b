"""The host's Debian mirror from its apt sources, apt's own configuration for the suite, the
closure read from apt's simulation, and the flat repository's Release options."""

from __future__ import annotations

from pathlib import Path

import pytest

from oslab.errors import HostError
from oslab.images import sources
from oslab.images.repo import AptRoot, Planned, RepoInputs, parse_simulation, release_options

DEB822_HOST = """\
Types: deb
# a comment line
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""

CASES = [
    # (what, files {name: text}, expected mirror)
    ("deb822 file", {"sources.list.d/debian.sources": DEB822_HOST},
     "http://mirror.example/debian"),
    ("one-line sources.list with options and a trailing slash",
     {"sources.list": "# deb http://old.example/debian sid main\n"
                      "deb-src http://src.example/debian bookworm main\n"
                      "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian/ bookworm "
                      "main contrib\n"},
     "http://one.example/debian"),
    ("security and updates suites are not the archive",
     {"sources.list": "deb http://sec.example/debian-security bookworm-security main\n"
                      "deb http://upd.example/debian bookworm-updates main\n"
                      "deb http://arc.example/debian bookworm main\n"},
     "http://arc.example/debian"),
    ("a third-party repo first, then Debian",
     {"sources.list.d/a-vendor.sources": "Types: deb\nURIs: https://vendor.example/apt\n"
                                         "Suites: nodistro\nComponents: main\n",
      "sources.list.d/b-debian.list": "deb http://b.example/debian trixie main\n"},
     "http://b.example/debian"),
    ("disabled stanza and deb-src only are skipped",
     {"sources.list.d/x.sources": "Types: deb\nURIs: http://off.example/debian\n"
                                  "Suites: trixie\nComponents: main\nEnabled: no\n\n"
                                  "Types: deb-src\nURIs: http://src.example/debian\n"
                                  "Suites: trixie\nComponents: main\n\n"
                                  "Types: deb deb-src\nURIs: http://on.example/debian\n"
                                  "Suites: trixie\nComponents: main contrib\n"},
     "http://on.example/debian"),
    ("files that apt ignores are ignored",
     {"sources.list.d/x.list.disabled": "deb http://no.example/debian bookworm main\n",
      "sources.list.d/y.list": "deb http://yes.example/debian stable main\n"},
     "http://yes.example/debian"),
    ("a suite without main is not enough",
     {"sources.list": "deb http://nf.example/debian bookworm non-free\n"
                      "deb http://m.example/debian bookworm main\n"},
     "http://m.example/debian"),
]


@pytest.mark.parametrize(("what", "files", "expected"), CASES, ids=[c[0] for c in CASES])
def test_host_mirror_from_apt_sources(tmp_path: Path, what: str, files: dict[str, str],
                                      expected: str) -> None:
    (tmp_path / "sources.list.d").mkdir()
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert sources.host_mirror(tmp_path) == expected


def test_no_debian_mirror_is_an_error_with_a_hint(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("deb https://vendor.example/apt nodistro main\n")
    with pytest.raises(HostError) as err:
        sources.host_mirror(tmp_path)
    assert str(err.value) == (
        f"no Debian mirror in this host's apt sources ({tmp_path}/sources.list, "
        f"{tmp_path}/sources.list.d/*.sources)\n"
        "  hint: set [packages] mirror in the lab spec to a Debian mirror's URL")


def test_deb822_continuation_lines_and_several_uris() -> None:
    text = "Types: deb\nURIs: http://a.example/debian\n http://b.example/debian\n" \
           "Suites: trixie\nComponents: main\n"
    assert [s.uri for s in sources.parse_deb822(text)] == ["http://a.example/debian",
                                                            "http://b.example/debian"]


def test_apt_root_is_apart_from_the_hosts_apt(tmp_path: Path) -> None:
    apt = AptRoot("trixie", "http://m.example/debian", tmp_path)
    apt.prepare()
    conf = apt.config.read_text()
    root = apt.dir
    for line in (f'Dir::Etc::SourceList "{root}/sources.list";',
                 'Dir::Etc::SourceParts "/dev/null";',
                 f'Dir::State::Lists "{root}/lists";',
                 f'Dir::Cache "{root}/cache";',
                 f'Dir::State::status "{root}/status";',
                 'APT::Install-Recommends "false";'):
        assert line in conf.splitlines()
    assert (root / "status").read_text() == ""
    assert (root / "sources.list").read_text() == (
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
        "http://m.example/debian trixie main\n")
    assert apt.environ["APT_CONFIG"] == str(apt.config)


def test_repo_key_depends_on_suite_mirror_and_the_set_not_its_order() -> None:
    a = RepoInputs.of("trixie", "http://m.example/debian/", ["b", "a", "a"])
    assert a.packages == ("a", "b") and a.mirror == "http://m.example/debian"
    assert a.key() == RepoInputs.of("trixie", "http://m.example/debian", ["a", "b"]).key()
    assert a.key() != RepoInputs.of("forky", a.mirror, ["a", "b"]).key()
    assert a.key() != RepoInputs.of("trixie", "http://n.example/debian", ["a", "b"]).key()
    assert a.key() != RepoInputs.of("trixie", a.mirror, ["a"]).key()


# Recorded from `apt-get install --simulate` with the oslab apt root on a Debian 12 host.
SIMULATION = """\
NOTE: This is only a simulation!
Inst libc6 (2.41-12+deb13u5 Debian:13.2/stable [amd64])
Inst bsdutils (1:2.41.5-0+deb13u1 Debian:13.2/stable [amd64])
Inst adduser (3.152 Debian:13.2/stable [all])
Conf libc6 (2.41-12+deb13u5 Debian:13.2/stable [amd64])
Inst tzdata [2024a-0+deb12u1] (2025b-4+deb13u1 Debian:13.2/stable [all])
"""


def test_the_closure_comes_from_the_inst_lines() -> None:
    planned = parse_simulation(SIMULATION)
    assert planned == [Planned("libc6", "2.41-12+deb13u5", "amd64"),
                       Planned("bsdutils", "1:2.41.5-0+deb13u1", "amd64"),
                       Planned("adduser", "3.152", "all"),
                       Planned("tzdata", "2025b-4+deb13u1", "all")]
    assert planned[1].deb_name == "bsdutils_1%3a2.41.5-0+deb13u1_amd64.deb"


def test_release_names_suite_and_codename() -> None:
    opts = release_options("trixie")
    assert "-oAPT::FTPArchive::Release::Suite=trixie" in opts
    assert "-oAPT::FTPArchive::Release::Codename=trixie" in opts


def test_a_missing_tool_says_how_to_get_it() -> None:
    from oslab.images.common import run

    with pytest.raises(HostError) as err:
        run(["oslab-no-such-tool", "x"], lambda _m: None, "index the debs")
    assert str(err.value) == (
        "index the debs: oslab-no-such-tool is not installed\n"
        "  hint: run scripts/setup-host.sh (it installs mmdebstrap, apt-utils, e2fsprogs and "
        "qemu-utils)")
