"""Real OpenStack services on every run of the suite: a one-node Debian 13 lab with
``scope = "identity"`` is built by `oslab up --until keystone` (a base image with Debian's own
packages baked in on the host, a node booted from it, the environment, MariaDB, RabbitMQ,
memcached and etcd installed by the engine, a snapshot), then Keystone is installed by hand
from the install guide as a learner does it, `verify --only identity` and `lint` judge it, and
`oslab up` goes on: it keeps what the learner did, says what it added, and runs `oslab
verify`'s identity and catalog checks against that real Keystone. A rerun changes nothing; lint
finds a mistake made by hand and the next `up` reports how it put it right; the Keystone and
MariaDB exercises are started, found unsolved, fixed by their documented fix and found solved;
and destroy leaves nothing.

The scripts/e2e.sh run proves the whole two-node cloud; this is the part that fits in CI.
The image cache is the invoking user's, so reruns reuse the base image (cached by hash).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.debian_specs import identity_spec
from tests.integration.test_provision import assert_nothing_left

pytestmark = pytest.mark.integration


def identity_lab(make_lab: Any) -> Any:
    lab = make_lab(nodes=1)
    lab.spec_path.write_text(identity_spec(lab.spec_path.read_text()))
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    lab.env["XDG_CACHE_HOME"] = cache
    return lab


def verification_rows(output: str) -> dict[str, str]:
    """The rows of the verification table `oslab up` (indented) or `oslab verify` prints:
    check name -> result."""
    rows = {}
    for line in output.splitlines():
        match = re.match(r"^\s*(\S.*?)\s{2,}(pass|FAIL|fail|skip)\b", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def exercise(lab: Any, name: str, end: str, unsolved: list[str]) -> None:
    """`oslab exercise` NAME through: start, check (unsolved, each of ``unsolved`` a line of
    it), a hint, the documented fix (`solve`), check (solved), then ``end`` (reset or giveup):
    the lab is back, the snapshot gone."""
    started = lab.run("exercise", "start", name, timeout=1800)
    print(started.stdout)
    assert f"snapshot exercise-{name} taken" in started.stdout, started.stdout
    assert f"exercise {name} " in started.stdout and "\nsymptom: " in started.stdout
    before = lab.run("exercise", "check", check=False, timeout=1800)
    print(before.stdout)
    assert before.returncode == 1, before.stdout + before.stderr
    assert "not solved yet" in before.stdout
    for line in unsolved:
        assert re.search(line, before.stdout, re.M), (line, before.stdout)
    assert lab.run("exercise", "hint").stdout.startswith("hint 1 of 3: ")
    lab.run("exercise", "solve", timeout=1800)
    after = lab.run("exercise", "check", timeout=1800)
    print(after.stdout)
    assert f"solved: exercise {name}, with 1 hint(s)" in after.stdout, after.stdout
    assert "FAIL" not in after.stdout
    ended = lab.run("exercise", end, timeout=1800).stdout
    assert f"reverted to exercise-{name}" in ended and f"exercise {name} ended" in ended, ended
    if end == "giveup":
        assert ended.startswith("the fix: "), ended
    assert "exercise-" not in lab.run("snapshot", "--list").stdout
    assert "no exercise is in progress" in lab.run("exercise", "hint", check=False).stderr


# The install guide's Keystone pages, as a learner types them on Debian 13 (the package runs
# Keystone under uwsgi, so no Apache step), with the passwords oslab keeps for the lab: the
# database, two options in the package's keystone.conf, db_sync, the key repositories,
# bootstrap, the service restart, the client environment scripts, and the projects, user and
# role of "Create a domain, projects, users, and roles".
BY_HAND = r"""set -e
mysql <<SQL
CREATE DATABASE keystone;
GRANT ALL PRIVILEGES ON keystone.* TO 'keystone'@'localhost' IDENTIFIED BY '{db}';
GRANT ALL PRIVILEGES ON keystone.* TO 'keystone'@'%' IDENTIFIED BY '{db}';
SQL
DEBIAN_FRONTEND=noninteractive apt-get install -y keystone
python3 - <<'PY'
# what an editor does: set each option in its section, over a commented-out line if there is one
import re
path = "/etc/keystone/keystone.conf"
lines = open(path).read().splitlines()
for section, option, value in (("database", "connection",
                                 "mysql+pymysql://keystone:{db}@ctl/keystone"),
                                ("token", "provider", "fernet")):
    start = lines.index(f"[{{section}}]") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("[")), len(lines))
    found = [i for i in range(start, end) if re.match(rf"#?\s*{{option}}\s*=", lines[i])]
    line = f"{{option}} = {{value}}"
    if found:
        lines[found[-1]] = line
    else:
        lines.insert(start, line)
open(path, "w").write("\n".join(lines) + "\n")
PY
su -s /bin/sh -c "keystone-manage db_sync" keystone
keystone-manage fernet_setup --keystone-user keystone --keystone-group keystone
keystone-manage credential_setup --keystone-user keystone --keystone-group keystone
keystone-manage bootstrap --bootstrap-password '{admin}' \
  --bootstrap-admin-url http://ctl:5000/v3/ --bootstrap-internal-url http://ctl:5000/v3/ \
  --bootstrap-public-url http://ctl:5000/v3/ --bootstrap-region-id RegionOne
systemctl restart keystone
cat > /root/admin-openrc <<'RC'
{admin_rc}RC
cat > /root/demo-openrc <<'RC'
{demo_rc}RC
. /root/admin-openrc
for _ in $(seq 90); do openstack token issue -f value -c id >/dev/null 2>&1 && break; sleep 10; done
openstack project create --domain default --description "Service Project" service
openstack project create --domain default --description "Demo Project" demo
openstack user create --domain default --password '{demo}' demo
openstack role add --project demo --user demo member
"""


def keystone_by_hand(lab: Any) -> None:
    """Keystone installed on ctl from the guide (BY_HAND), with the lab's passwords read where a
    learner finds them: in the files `oslab render` writes."""
    out = lab.home / "render"
    lab.run("render", "--out", str(out))
    conf = (out / "ctl/etc/keystone/keystone.conf").read_text()
    db = re.search(r"//keystone:([^@]+)@", conf)
    rc = {who: (out / f"ctl/root/{who}-openrc").read_text() for who in ("admin", "demo")}
    passwords = {who: re.search(r"OS_PASSWORD=(\S+)", rc[who]) for who in rc}
    assert db and passwords["admin"] and passwords["demo"], (conf, rc)
    script = BY_HAND.format(db=db.group(1), admin=passwords["admin"].group(1),
                            demo=passwords["demo"].group(1), admin_rc=rc["admin"],
                            demo_rc=rc["demo"])
    done = lab.run("ssh", "ctl", "--", script, timeout=2400)
    print(done.stdout[-3000:])


def test_identity_lab_on_debian13_runs_a_real_keystone(make_lab: Any) -> None:
    lab = identity_lab(make_lab)
    # `up --until keystone`: every step before Keystone, a snapshot, and where to go on
    until = lab.run("up", "--until", "keystone", timeout=3600)
    print(until.stdout)
    assert "lab tst" in until.stdout and "stopped before keystone; every step before it is " \
        "done." in until.stdout, until.stdout
    assert "next: keystone.install on ctl" in until.stdout
    assert "the install guide: https://docs.openstack.org/keystone/2025.1/install/" in until.stdout
    assert "then check it: `oslab --lab " in until.stdout and "verify --only identity`" in \
        until.stdout
    assert "before-keystone" in lab.run("snapshot", "--list").stdout
    databases = lab.run("ssh", "ctl", "--", "mysql -N -B -e 'show databases'").stdout.split()
    assert "mysql" in databases and "keystone" not in databases, databases  # MariaDB runs
    assert "verification:" not in until.stdout  # a cloud without Keystone is not verified

    # the learner installs Keystone by hand from the guide; verify says it works, lint finds
    # nothing wrong in their keystone.conf
    keystone_by_hand(lab)
    mine = lab.run("verify", "--only", "identity", timeout=1800)
    print(mine.stdout)
    rows = verification_rows(mine.stdout)
    assert rows and set(rows.values()) == {"pass"}, mine.stdout
    assert any(name.startswith("identity: demo") for name in rows), rows
    linted = lab.run("lint", "--service", "keystone", timeout=1800).stdout
    assert re.search(r": 0 errors, \d+ warnings$", linted, re.M), linted

    # a later `up` goes on from there: it keeps what the learner did right (their options are
    # oslab's, so none is "fixed"), sets what only oslab adds, and says so, option by option
    # (the rest of the package's keystone.conf is named as not kept)
    start = time.monotonic()
    up = lab.run("up", timeout=3600)
    took = time.monotonic() - start
    print(f"oslab up of a one-node debian13 identity lab: {took:.0f}s")
    print(up.stdout)
    conf = "/etc/keystone/keystone.conf"
    assert f"  ctl: {conf}: [cache] memcache_servers: missing, set to 'ctl:11211'" in up.stdout
    assert not re.search(rf"{conf}: \[(database|token)\] .*fixed to", up.stdout), up.stdout
    rows = verification_rows(up.stdout)
    assert rows, up.stdout
    assert set(rows.values()) == {"pass"}, rows
    # both users authenticate, and the catalog holds Keystone with its three endpoints
    assert any(name.startswith("identity: admin") for name in rows), rows
    assert any(name.startswith("identity: demo") for name in rows), rows
    assert "catalog" in rows and "endpoints" in rows, rows
    assert "time per stage:" in up.stdout
    # verify's calls went through the client server on the node (one load of the client for
    # the run), not each through a client of its own; progress lines are on stderr
    served = re.search(r"verify: (\d+) `openstack` calls went through the client server",
                       up.stderr)
    assert served and int(served.group(1)) > 0, up.stderr
    assert "verify: the client server answers after " in up.stderr, up.stderr

    # both NICs came up at boot from the seed: the provider NIC with no address (a NIC that
    # stays down drops every floating IP's traffic once Open vSwitch takes it as a port)
    nics = lab.run("ssh", "ctl", "--", "for d in /sys/class/net/*; do [ -e $d/device ] && "
                   "echo ${d##*/} $(cat $d/operstate) $(ip -o -4 addr show dev ${d##*/} | "
                   "wc -l); done; true").stdout.split("\n")
    states = sorted(line.split()[1:] for line in nics if line.strip())
    assert states == [["up", "0"], ["up", "1"]], nics

    # Keystone caches in memcached (in an identity lab nothing else uses it), and the node has
    # ping for the install guide's checks
    probe = ("import socket; s = socket.create_connection(('127.0.0.1', 11211)); "
             "s.sendall(b'stats\\r\\n'); f = s.makefile(); "
             "print(''.join(iter(f.readline, 'END\\n')))")
    stats = lab.run("ssh", "ctl", "--", f"python3 -c \"{probe}\"; command -v ping").stdout
    items = re.search(r"STAT curr_items (\d+)", stats)
    assert items and int(items.group(1)) > 0, stats
    assert stats.rstrip().endswith("/ping"), stats

    rerun = lab.run("up", "--stage", "install", timeout=1800)
    assert "no changes; every node answers SSH" in rerun.stdout, rerun.stdout
    assert "install: no changes; every step is done" in rerun.stdout, rerun.stdout

    # the files on the node are oslab's: lint finds nothing. A mistake made by hand is found on
    # its line; the next `up` puts it right and says, option by option, what it changed
    clean = lab.run("lint").stdout
    assert re.search(r"^lint: \d+ files on 1 nodes: 0 errors, 0 warnings$", clean, re.M), clean
    conf = "/etc/keystone/keystone.conf"
    lab.run("ssh", "ctl", "--", f"sed -i 's|@ctl/keystone$|@localhost/keystone|' {conf}")
    broken = lab.run("lint", "--service", "keystone", check=False)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert re.search(rf"^ctl:{conf}:\d+: error: \[database\] connection points at localhost, "
                     "not the controller", broken.stdout, re.M), broken.stdout
    fixed = lab.run("up", "--stage", "install", timeout=1800).stdout
    assert (f"  ctl: {conf}: [database] connection: yours 'mysql+pymysql://keystone:***@"
            "localhost/keystone', fixed to 'mysql+pymysql://keystone:***@ctl/keystone'") in fixed, \
        fixed
    assert "0 errors" in lab.run("lint").stdout

    # break-and-fix exercises on the real node: each is started (a snapshot, then the fault),
    # checked as unsolved, fixed by its documented fix, checked as solved, and undone
    listing = lab.run("exercise", "list").stdout
    assert re.search(r"^  keystone-database +keystone +Keystone fails every request", listing,
                     re.M), listing
    assert re.search(r"^  nova-my-ip .*\(not on this lab: lab tst\w* installs identity only\)$",
                     listing, re.M), listing
    exercise(lab, "keystone-database", "reset", [
        rf"^  FAIL  lint ctl:{conf}: ctl:{conf}:\d+: error: \[database\] connection is empty",
        r"^  skip  verify: identity: not run while the checks above fail$"])
    exercise(lab, "mariadb-bind-address", "giveup", [
        r"^  FAIL  ctl: MariaDB answers on the controller's management address: exit 1: .*"
        r"Connection refused", r"^  skip  verify: identity: not run while"])
    assert "0 errors" in lab.run("lint").stdout

    # the services run with one worker each: keystone's uwsgi is one master and one worker
    workers = lab.run("ssh", "ctl", "--", "pgrep -c -f '[k]eystone-uwsgi'").stdout.strip()
    assert workers == "2", workers

    lab.run("destroy", "--yes")
    assert_nothing_left(lab)
