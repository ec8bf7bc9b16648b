"""Lab spec parsing: the default lab, and one clear error per kind of mistake."""

from __future__ import annotations

import ipaddress

import pytest

from oslab import spec as specmod
from oslab import spec_file
from oslab.errors import SpecError
from oslab.spec import NetMode, Role


def test_default_lab_follows_the_install_guide() -> None:
    s = spec_file.load_default()
    assert s.name == "oslab" and s.distro == "centos-stream9" and s.release == "epoxy"
    ctl = s.node("controller")
    cmp1 = s.node("compute1")
    assert (ctl.role, str(ctl.address)) == (Role.CONTROLLER, "10.0.0.11")
    assert (cmp1.role, str(cmp1.address)) == (Role.COMPUTE, "10.0.0.31")
    assert s.management.cidr == ipaddress.IPv4Network("10.0.0.0/24")
    assert s.provider.cidr == ipaddress.IPv4Network("203.0.113.0/24")
    assert s.management.mode is NetMode.NAT and s.provider.mode is NetMode.NAT
    assert ctl.memory_mib >= 6144 and ctl.vcpus == 2 and ctl.extra_disks_gib == (20,)
    assert cmp1.memory_mib >= 4096 and cmp1.vcpus == 2
    assert ctl.disk_gib == cmp1.disk_gib == 40


def test_default_spec_text_parses_to_the_default() -> None:
    assert spec_file.parse(spec_file.default_spec_text()) == spec_file.load_default()


def test_macs_are_fixed_unique_and_local() -> None:
    s = spec_file.load_default()
    macs = [s.mac(n, i) for n in s.nodes for i in (0, 1)]
    assert len(set(macs)) == 4
    assert all(m.startswith("52:54:00:") for m in macs)
    assert macs == [spec_file.load_default().mac(n, i) for n in s.nodes for i in (0, 1)]


def test_digest_changes_with_the_spec() -> None:
    a = spec_file.load_default()
    b = spec_file.parse(spec_file.default_spec_text().replace("memory_mib = 4096",
                                                              "memory_mib = 4608"))
    assert a.digest() == spec_file.load_default().digest()
    assert a.digest() != b.digest()


BASE = spec_file.default_spec_text()

BAD = [
    ("unknown top key", BASE + "\n[extra]\nx = 1\n", "extra: unknown key"),
    ("unknown lab key", BASE.replace('timezone = "UTC"', 'timezone = "UTC"\nflavour = 1'),
     "lab.flavour: unknown key"),
    ("unknown node key", BASE.replace("vcpus = 2\ndisk_gib = 40\n", "vcpus = 2\ncpus = 2\n"),
     "nodes[1] (compute1).cpus: unknown key"),
    ("duplicate name", BASE.replace('name = "compute1"', 'name = "controller"'),
     "duplicate node name 'controller'"),
    ("duplicate address", BASE.replace('"10.0.0.31"', '"10.0.0.11"'),
     "duplicate address 10.0.0.11 (also used by controller)"),
    ("address outside", BASE.replace('"10.0.0.31"', '"10.0.1.31"'),
     "10.0.1.31 is not a usable address of the management network 10.0.0.0/24"),
    ("address is gateway", BASE.replace('"10.0.0.31"', '"10.0.0.1"'),
     "10.0.0.1 is not a usable address"),
    ("overlap", BASE.replace('cidr = "203.0.113.0/24"', 'cidr = "10.0.0.128/25"'),
     "10.0.0.128/25 overlaps the management network 10.0.0.0/24"),
    ("bad hostname", BASE.replace('name = "compute1"', 'name = "Compute_1"'),
     "'Compute_1' is not a valid hostname"),
    ("bad lab name", BASE.replace('name = "oslab"', 'name = "a-very-long-lab"'),
     "'a-very-long-lab' is not a valid lab name"),
    ("bad cidr", BASE.replace('cidr = "10.0.0.0/24"', 'cidr = "10.0.0.1/24"'),
     "networks.management.cidr: '10.0.0.1/24' is not an IPv4 network"),
    ("bad mode", BASE.replace('mode = "nat"\n\n[networks.provider]', 'mode = "isolated"\n\n'
                              '[networks.provider]'), "networks.management.mode"),
    ("bad role", BASE.replace('role = "compute"', 'role = "storage"'), "unknown role 'storage'"),
    ("no controller", BASE.replace('role = "controller"', 'role = "compute"'),
     "exactly one controller"),
    ("bad distro", BASE.replace('distro = "centos-stream9"', 'distro = "arch"'),
     "unknown distro 'arch'"),
    ("bad release", BASE.replace('release = "epoxy"', 'release = "zed"'),
     "unknown OpenStack release 'zed'"),
    ("memory type", BASE.replace("memory_mib = 4096", 'memory_mib = "4G"'),
     "memory_mib: must be an integer"),
    ("memory range", BASE.replace("memory_mib = 4096", "memory_mib = 16"), "out of range"),
    ("url without sum", BASE.replace('sha256_url = "', 'x_ = "').replace("x_ = ", "# "),
     "a url needs its sha256"),
    ("path and url", BASE.replace('# path = "', 'path = "'), "give either path or url"),
    ("not toml", BASE + "\n[[nodes]\n", "not valid TOML"),
    ("unknown packages key", BASE + '\n[packages]\nproxy = "x"\n', "packages.proxy: unknown key"),
    ("mirror not http", BASE + '\n[packages]\nmirror = "ftp://m/debian"\n',
     "packages.mirror: 'ftp://m/debian' is not an http(s) URL"),
    ("bad package source", BASE + '\n[packages]\nsource = "cdrom"\n',
     "packages.source: 'cdrom' is not a package source"),
    ("bake not bool", BASE + '\n[packages]\nbake = "yes"\n', "packages.bake: must be a bool"),
    ("unknown verify key", BASE + '\n[verify]\nflavor = "x"\n', "verify.flavor: unknown key"),
]


def test_debian13_lab_with_packages_and_verify_tables() -> None:
    s = spec_file.parse(BASE.replace('distro = "centos-stream9"', 'distro = "debian13"')
                        + '\n[packages]\nmirror = "http://mirror.example/debian/"\n'
                          'source = "local"\nbake = false\n\n[verify]\nimage = "/srv/tiny.qcow2"\n')
    assert s.distro == "debian13"
    assert s.packages == specmod.Packages(mirror="http://mirror.example/debian",
                                          source=specmod.PackageSource.LOCAL, bake=False)
    assert s.verify.image == "/srv/tiny.qcow2"
    default = spec_file.load_default()
    assert default.packages == specmod.Packages() and default.verify.image == ""


@pytest.mark.parametrize(("case", "text", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_spec_names_the_field_and_problem(case: str, text: str, message: str) -> None:
    with pytest.raises(SpecError) as err:
        spec_file.parse(text, source="lab.toml")
    assert message in str(err.value)
    assert str(err.value).startswith("lab.toml: ")


def test_unknown_key_hint_lists_known_keys() -> None:
    with pytest.raises(SpecError) as err:
        spec_file.parse(BASE.replace('timezone = "UTC"', 'timezone = "UTC"\nflavour = 1'))
    assert err.value.hint is not None and "release" in err.value.hint


def test_load_missing_file_hints_init(tmp_path: object) -> None:
    with pytest.raises(SpecError) as err:
        spec_file.load("/nonexistent/lab.toml")
    assert "oslab init" in (err.value.hint or "")


def test_debian13_built_in_spec_parses_to_the_install_guides_lab_on_debian() -> None:
    s = spec_file.parse(spec_file.default_spec_text("debian13"))
    default = spec_file.load_default()
    assert s.distro == "debian13" and s.scope is specmod.Scope.ALL
    assert s.packages == specmod.Packages(source=specmod.PackageSource.LOCAL, bake=True)
    assert [(n.name, n.role, n.address, n.memory_mib) for n in s.nodes] == \
        [(n.name, n.role, n.address, n.memory_mib) for n in default.nodes]
    assert (s.management, s.provider) == (default.management, default.provider)
