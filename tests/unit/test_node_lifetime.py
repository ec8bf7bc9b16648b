"""What a lab needs to live for weeks, beyond its first build (issue 21's content findings).

Each defect shows only with time, an upgrade or a second node: logs that are never rotated,
identities that a base image shares with every node made from it, an Apache that a package
upgrade breaks, a time zone that never reaches the node. The install content is rendered
for the Debian 13 lab of ``test_debian_content`` and, where EL differs, the default lab.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

import pytest

from oslab import spec_file
from oslab.access.state import LabState
from oslab.images.build import ImageInputs, customize_script
from oslab.images.seed import SeedInput, seed_files
from oslab.install import ops
from oslab.install.facts import ServiceState
from oslab.install.model import Guarded, StepDef
from oslab.resolve import bake
from tests.unit.test_debian_content import debian_spec, plan, spec_text
from tests.unit.test_services import plan as el_plan

# -- log rotation ------------------------------------------------------------------------------


def rotating(steps: list[StepDef]) -> list[StepDef]:
    return [s for s in steps if "logrotate" in s.packages and "logrotate.timer" in s.services]


@pytest.mark.parametrize("node", ["controller", "compute1"])
def test_every_debian_node_installs_logrotate_and_runs_its_timer(node: str) -> None:
    """The controller's packages pull no logrotate in; a compute node has it (libvirt-daemon
    depends on it), but its base image has the timer disabled with every unit its packages
    enabled. Either way the step installs it and enables and starts the timer."""
    steps = plan()[node]
    assert [s.name for s in rotating(steps)] == ["env.logrotate"]
    step = rotating(steps)[0]
    as_baked = {"logrotate.timer": ServiceState("logrotate.timer", "disabled", "inactive")}
    actions, _ = ops.services(step.services, as_baked, restart=False)
    assert [a.command for a in actions] == ["systemctl enable --now logrotate.timer"]


def test_both_debian_base_images_bake_logrotate(tmp_path: Path) -> None:
    spec = debian_spec()
    packages = bake(spec, LabState(spec.name, root=tmp_path), "qemu").packages
    assert all("logrotate" in baked for baked in packages.values()), packages


# -- shared identity: what a base image must not hold, and each node's own ----------------------

INITIATOR = "etc/iscsi/initiatorname.iscsi"
COOKIE = "var/lib/rabbitmq/.erlang.cookie"
# A chroot that runs nothing, except that "installing packages" leaves what open-iscsi's and
# rabbitmq-server's postinsts leave: an initiator name and an Erlang cookie of the build.
FAKE_CHROOT = f"""#!/bin/sh
root="$1"; shift
case "$*" in *apt-get*)
    mkdir -p "$root/etc/iscsi" "$root/var/lib/rabbitmq"
    echo InitiatorName=iqn.1993-08.org.debian:01:built > "$root/{INITIATOR}"
    echo BUILTCOOKIE > "$root/{COOKIE}";;
esac
"""


def stub(bin_dir: Path, name: str, text: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / name).write_text(text)
    (bin_dir / name).chmod(0o755)


@pytest.mark.parametrize("packages", [("open-iscsi", "rabbitmq-server"), ()])
def test_a_base_image_keeps_no_identity_its_packages_made(tmp_path: Path,
                                                          packages: tuple[str, ...]) -> None:
    """The customize hook, run on a scratch root: the packages' identities are gone, and
    open-iscsi's file says GenerateName=yes, without which iscsid would not start."""
    root = tmp_path / "root"
    for d in ("etc/apt", "usr/sbin", "tmp"):
        (root / d).mkdir(parents=True)
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n")
    inputs = ImageInputs("debian13", "trixie", "compute" if packages else "base", "r", packages)
    hook = tmp_path / "customize.sh"
    hook.write_text(customize_script(inputs, tmp_path / "preseed", tmp_path))
    (tmp_path / "preseed").write_text("")
    stub(tmp_path / "bin", "chroot", FAKE_CHROOT)
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin"}
    done = subprocess.run(["sh", str(hook), str(root)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not (root / COOKIE).exists()
    if packages:
        assert (root / INITIATOR).read_text() == "GenerateName=yes\n"
    else:
        assert not (root / INITIATOR).exists()  # no open-iscsi: nothing made up
    assert (root / "etc/machine-id").read_text() == ""


def in_root(command: str, root: Path) -> str:
    """``command`` with the node's absolute paths moved under ``root``."""
    return re.sub(r"(?<![\w/.])/(etc|var|usr)/", lambda m: f"{root}/{m[1]}/", command)


def run_sh(command: str, root: Path, env: dict[str, str] | None = None) -> int:
    return subprocess.run(["sh", "-c", in_root(command, root)], env=env,
                          capture_output=True).returncode


def one_command(steps: list[StepDef], name: str) -> Guarded:
    (command,) = next(s for s in steps if s.name == name).commands
    return command


# Debian's startup-checks.sh, as far as the step relies on it: without the file it fails, and
# GenerateName=yes becomes a new name.
FAKE_STARTUP_CHECKS = """#!/bin/sh
f="$(dirname "$0")/../../../etc/iscsi/initiatorname.iscsi"
[ -f "$f" ] || exit 1
if grep -q '^GenerateName=yes' "$f"; then echo "InitiatorName=iqn.test:$$" > "$f"; fi
"""


@pytest.mark.parametrize(("open_iscsi", "file", "before"), [
    (False, None, True),                               # no open-iscsi yet: its postinst names it
    (True, "GenerateName=yes\n", False),               # a baked base image
    (True, None, False),                               # the file removed by hand
    (True, "InitiatorName=iqn.1993-08.org.debian:01:abc\n", True),  # named already
])
@pytest.mark.parametrize("node", ["controller", "compute1"])
def test_every_debian_node_gets_its_own_initiator_name(tmp_path: Path, node: str,
                                                       open_iscsi: bool, file: str | None,
                                                       before: bool) -> None:
    steps = plan()[node]
    names = [s.name for s in steps]
    assert names.index("env.initiator-name") < min(
        i for i, s in enumerate(steps) if {"iscsid.socket", "nova-compute", "cinder-volume"}
        & set(s.services))
    command = one_command(steps, "env.initiator-name")
    (tmp_path / "etc/iscsi").mkdir(parents=True)
    if open_iscsi:
        stub(tmp_path / "usr/lib/open-iscsi", "startup-checks.sh", FAKE_STARTUP_CHECKS)
    if file is not None:
        (tmp_path / INITIATOR).write_text(file)
    assert (run_sh(command.check, tmp_path) == 0) is before
    if not before:
        assert run_sh(command.run, tmp_path) == 0
        assert run_sh(command.check, tmp_path) == 0
        assert (tmp_path / INITIATOR).read_text().startswith("InitiatorName=iqn.test:")


def test_the_controller_makes_its_own_erlang_cookie_before_rabbitmq_starts(
        tmp_path: Path) -> None:
    step = next(s for s in plan()["controller"] if s.name == "rabbitmq.install")
    assert step.services == ("rabbitmq-server",)  # commands run before services
    (command,) = step.commands
    (tmp_path / "var/lib/rabbitmq").mkdir(parents=True)
    stub(tmp_path / "bin", "chown", "#!/bin/sh\n")  # no rabbitmq user on this host
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"}
    assert run_sh(command.check, tmp_path, env) != 0
    assert run_sh(command.run, tmp_path, env) == 0
    assert run_sh(command.check, tmp_path, env) == 0
    cookie = tmp_path / COOKIE
    assert cookie.stat().st_mode & 0o777 == 0o400
    assert len(base64.b64decode(cookie.read_text())) == 42
    assert not re.fullmatch(r"[A-Z]{20}\n?", cookie.read_text())  # the postinst would replace it


def test_el_nodes_leave_both_identities_to_their_packages() -> None:
    """EL's OpenStack packages install on each node after its first boot, never into a base."""
    steps = el_plan()
    text = " ".join(c.check + c.run for lst in steps.values() for s in lst for c in s.commands)
    assert "initiatorname" not in text and "erlang.cookie" not in text


# -- Apache after an upgrade of openstack-dashboard-apache -------------------------------------

# The shape of trixie's default-ssl.conf: a vhost whose SSL directives need mod_ssl, with no
# <IfModule> around it (older releases had one).
SSL_SITE_TEXT = """<VirtualHost *:443>
\tDocumentRoot /var/www/html
\tSSLEngine on
\t<Directory /usr/lib/cgi-bin>
\t\tSSLOptions +StdEnvVars
\t</Directory>
</VirtualHost>
"""


def test_a_reenabled_default_ssl_site_is_harmless_without_mod_ssl(tmp_path: Path) -> None:
    """The package's postinst enables default-ssl on every upgrade; the site is disabled, and
    its file wrapped in <IfModule mod_ssl.c>, so apache2 still starts when it comes back."""
    step = next(s for s in plan()["controller"] if s.name == "horizon.dashboard")
    guard = next(c for c in step.commands if "sites-available/default-ssl.conf" in c.check)
    assert any(c.run == "a2dissite -q default-ssl" for c in step.commands)
    site = tmp_path / "etc/apache2/sites-available/default-ssl.conf"
    site.parent.mkdir(parents=True)
    site.write_text(SSL_SITE_TEXT)
    assert run_sh(guard.check, tmp_path) != 0
    assert run_sh(guard.run, tmp_path) == 0
    assert run_sh(guard.check, tmp_path) == 0  # so it runs once
    lines = site.read_text().splitlines()
    assert lines[0] == "<IfModule mod_ssl.c>" and lines[-1] == "</IfModule>"
    assert "\n".join(lines[2:-1]) + "\n" == SSL_SITE_TEXT  # a comment, then the site as it was
    site.unlink()
    assert run_sh(guard.check, tmp_path) == 0  # no file: a2ensite fails, nothing to guard


def test_el_dashboards_have_no_debian_apache_sites() -> None:
    step = next(s for s in el_plan()["controller"] if s.name == "horizon.dashboard")
    assert not step.commands


# -- the lab's time zone -------------------------------------------------------------------------


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires",
                                "Etc/GMT+3"])
def test_the_seed_gives_a_node_the_labs_time_zone(tmp_path: Path, tz: str) -> None:
    """EL nodes get it from the kickstart's timezone command; image-booted nodes (Debian, and
    golden clones) from cloud-init's timezone module, which Debian's cloud.cfg runs in its
    config stage, before the node counts as ready."""
    spec = spec_file.parse(spec_text().replace('timezone = "UTC"', f'timezone = "{tz}"'))
    assert spec.timezone == tz
    state = LabState(spec.name, root=tmp_path)
    host = state.host_key("compute1")
    user = seed_files(SeedInput(spec=spec, node=spec.node("compute1"),
                                authorized_key=state.ssh_key().public,
                                host_private=host.private_path.read_text(),
                                host_public=host.public, mirror=""), "trixie")["user-data"]
    (line,) = [x for x in user.splitlines() if x.startswith("timezone:")]
    assert json.loads(line.removeprefix("timezone:")) == tz  # a JSON string is YAML too


# -- cloud-init at later boots -----------------------------------------------------------------


@pytest.mark.parametrize(("etc_cloud", "disabled", "before"), [
    (True, False, False),   # seeded at its first boot; it would run again at the next one
    (True, True, True),     # done already
    (False, False, True),   # a kickstarted node: no cloud-init
])
@pytest.mark.parametrize("lab", ["debian13", "el"])
def test_cloud_init_seeds_a_node_once_and_stays_out_of_its_later_boots(
        tmp_path: Path, lab: str, etc_cloud: bool, disabled: bool, before: bool) -> None:
    """Every later boot would read the seed again, in front of SSH: 37 s of a compute node's
    146 s cold boot under TCG. The file that cloud-init's generator honours is made once, on
    every node of both distros, and only where cloud-init is."""
    steps = plan() if lab == "debian13" else el_plan()
    for node, node_steps in steps.items():
        assert [s.name for s in node_steps].count("env.cloud-init-once") == 1, node
    command = one_command(steps["compute1"], "env.cloud-init-once")
    if etc_cloud:
        (tmp_path / "etc/cloud").mkdir(parents=True)
    if disabled:
        (tmp_path / "etc/cloud/cloud-init.disabled").touch()
    assert (run_sh(command.check, tmp_path) == 0) is before
    if not before:
        assert run_sh(command.run, tmp_path) == 0
        assert run_sh(command.check, tmp_path) == 0
        assert (tmp_path / "etc/cloud/cloud-init.disabled").is_file()
    assert (tmp_path / "etc/cloud").is_dir() is etc_cloud  # made nowhere it was not
