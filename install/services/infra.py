"""The controller's infrastructure: MariaDB, RabbitMQ, memcached and etcd."""

from __future__ import annotations

from oslab.install.model import Guarded, StepDef, Undecided, Where
from oslab.install.services._base import Site, config

MAX_CONNECTIONS = 4096
# max_connections is only real when mariadbd may open enough files; systemd's LimitNOFILE
# caps it (MariaDB lowers max_connections to fit and says so in its log).
MARIADB_NOFILE = 65535
LIMITS_DROPIN = "/etc/systemd/system/mariadb.service.d/oslab-limits.conf"


def _sql_count(query: str) -> str:
    """A check that the count ``query`` returns is 0."""
    return f'test "$(mysql -N -B -e "{query}")" = 0'


def _drop_users(where: str) -> str:
    return (f'mysql -N -B -e "SELECT CONCAT(\'DROP USER \', QUOTE(User), \'@\', QUOTE(Host), '
            f'\';\') FROM mysql.global_priv WHERE {where}" | mysql')


def mariadb(site: Site) -> list[StepDef]:
    reload = Guarded(
        description=f"systemd sees mariadb's LimitNOFILE={MARIADB_NOFILE} drop-in",
        check=f'test "$(systemctl show -p LimitNOFILE --value mariadb.service)" = '
              f'{MARIADB_NOFILE}',
        run="systemctl daemon-reload",
    )
    cnf = site.layer.path("mariadb.cnf")
    install = StepDef(
        name="mariadb.install",
        where=Where.CONTROLLER,
        title=f"MariaDB on {site.controller.address} (max_connections {MAX_CONNECTIONS})",
        packages=site.layer.pkgs("mariadb"),
        files=(
            config(cnf, "infra/openstack.cnf.j2",
                   site.values(max_connections=MAX_CONNECTIONS)),
            config(LIMITS_DROPIN, "infra/oslab-limits.conf.j2",
                   site.values(nofile=MARIADB_NOFILE)),
        ),
        commands=(reload,),
        services=("mariadb",),
    )
    # mysql_secure_installation, unattended. root keeps unix_socket (root on the node, as the
    # engine connects for databases) and gets the lab's password for mysql_native_password.
    # The SQL holds the password: it goes to mysql as a here-document, never as an argument.
    root_password = Guarded(
        description="MariaDB root password",
        check='test "$(mysql -N -B <<\'SQL\'\n'
              "SELECT COUNT(*) FROM mysql.global_priv WHERE User='root' AND "
              "Host='localhost' AND Priv LIKE CONCAT('%', PASSWORD('{password:mariadb_root}'), "
              "'%')\nSQL\n)\" = 1",
        run="mysql <<'SQL'\nALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR "
            "mysql_native_password USING PASSWORD('{password:mariadb_root}')\nSQL",
    )
    anonymous = Guarded(
        description="no anonymous MariaDB users",
        check=_sql_count("SELECT COUNT(*) FROM mysql.global_priv WHERE User=''"),
        run=_drop_users("User=''"),
    )
    remote_root = Guarded(
        description="MariaDB root only from localhost",
        check=_sql_count("SELECT COUNT(*) FROM mysql.global_priv WHERE User='root' AND "
                         "Host NOT IN ('localhost', '127.0.0.1', '::1')"),
        run=_drop_users("User='root' AND Host NOT IN ('localhost', '127.0.0.1', '::1')"),
    )
    test_db = Guarded(
        description="no test database",
        check=_sql_count("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE "
                         "SCHEMA_NAME='test'") + " && " +
              _sql_count("SELECT COUNT(*) FROM mysql.db WHERE Db LIKE 'test%'"),
        run='mysql -e "DROP DATABASE IF EXISTS test; DELETE FROM mysql.db WHERE '
            "Db LIKE 'test%'; FLUSH PRIVILEGES\"",
    )
    secure = StepDef(
        name="mariadb.secure",
        where=Where.CONTROLLER,
        title="secure MariaDB: root password, no anonymous users, no test database",
        commands=(root_password, anonymous, remote_root, test_db),
    )
    return [install, secure]


# RabbitMQ's user step decides from one fact, read with `rabbitmqctl export_definitions`
# (users with their password_hash: base64(4-byte salt + sha256(salt + password)) under the
# default rabbit_password_hashing_sha256): the user is there with the lab's password, there
# with another one, or missing. The check and the run are one python3 script (a here-document
# inside the engine's `sh -s` script, so the password is on no command line) in two modes:
# - check: exit 0 (there, right password), 1 (missing or another password), or RABBIT_UNDECIDED
#   when rabbitmqctl timed out, failed or said something unreadable: the engine then fails the
#   step (Guarded.undecided) instead of acting on a guess;
# - run: read the fact again (--from runs it without a check) and only then act: nothing, add
#   the user, or change its password in place. It never deletes the user: that would drop
#   every service's connection, and nothing could connect if the add failed after it.
# add_user and change_password read the password from their stdin, and their command lines
# are exactly `add_user openstack` / `change_password openstack`:
# - RabbitMQ 4.0 (Debian 13: 4.0.5): its rabbitmqctl script starts Erlang with -noinput (a read
#   from stdin then waits forever) unless it counts those two arguments; a `-q` more is what
#   made an earlier stdin form hang on a Debian 13 node.
# - RabbitMQ 3.9 (EL9 Epoxy: 3.9.21 from the CentOS Messaging SIG's rabbitmq-38 repository,
#   which centos-release-openstack-epoxy requires): it has no `add_user --pre-hashed-password`
#   (new in 3.12.7), and its rabbitmqctl always runs `erl -noinput -noshell`, where -noshell,
#   the later flag, wins: stdin is read.
RABBITMQCTL_TIMEOUT = 240  # s for one rabbitmqctl call; the engine gives a check 300 s
RABBIT_UNDECIDED = 3
_RABBIT_USER = r"""python3 - <<'PY'
import base64, hashlib, json, subprocess, sys
USER, PASSWORD = "openstack", "{password:rabbit_openstack}"
MODE, TIMEOUT, UNDECIDED = "@MODE@", @TIMEOUT@, @UNDECIDED@
DIGESTS = {"rabbit_password_hashing_sha256": "sha256",
           "rabbit_password_hashing_sha512": "sha512"}
def rabbitmqctl(args, password=False):
    # (exit code, or None if it did not finish in time; stdout; stderr)
    try:
        proc = subprocess.Popen(["rabbitmqctl", *args], text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE,
                                stdin=subprocess.PIPE if password else subprocess.DEVNULL)
    except OSError as exc:
        return 127, "", str(exc)
    try:
        out, err = proc.communicate(PASSWORD + "\n" if password else None, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        return None, "", ""
    return proc.returncode, out, err
def undecided(why):
    print(f"cannot tell whether the RabbitMQ user {USER} has its password: {why}",
          file=sys.stderr)
    sys.exit(UNDECIDED)
def state():
    rc, out, err = rabbitmqctl(["-q", "export_definitions", "-"])
    if rc is None:
        undecided(f"rabbitmqctl export_definitions did not answer within {TIMEOUT} s")
    if rc != 0:
        undecided(f"rabbitmqctl export_definitions failed (exit code {rc}): "
                  + (err.strip() or out.strip() or "no output")[-400:])
    try:
        user = {u["name"]: u for u in json.loads(out)["users"]}.get(USER)
        if user is None:
            return "missing"
        algorithm = user.get("hashing_algorithm") or "rabbit_password_hashing_sha256"
        stored = base64.b64decode(user["password_hash"], validate=True)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        undecided(f"unreadable rabbitmqctl export_definitions output ({exc!r})")
    if algorithm not in DIGESTS:
        undecided("unknown hashing algorithm " + algorithm)
    digest = hashlib.new(DIGESTS[algorithm], stored[:4] + PASSWORD.encode()).digest()
    return "right" if digest == stored[4:] else "other"
now = state()
if MODE == "check":
    if now != "right":
        print(f"no RabbitMQ user {USER}" if now == "missing" else
              f"the RabbitMQ user {USER} has another password", file=sys.stderr)
    sys.exit(0 if now == "right" else 1)
if now == "right":
    print(f"the RabbitMQ user {USER} has its password already")
    sys.exit(0)
verb = "add_user" if now == "missing" else "change_password"
rc, out, err = rabbitmqctl([verb, USER], password=True)
sys.stdout.write(out)
sys.stderr.write(err)
if rc is None:
    print(f"rabbitmqctl {verb} did not finish within {TIMEOUT} s", file=sys.stderr)
sys.exit(rc if rc is not None and rc >= 0 else 1)
PY"""


def rabbit_user_script(mode: str, timeout: int = RABBITMQCTL_TIMEOUT) -> str:
    """The RabbitMQ user step's script: ``mode`` "check" or "run"."""
    if mode not in ("check", "run"):
        raise ValueError(f"mode {mode!r}: check or run")
    return (_RABBIT_USER.replace("@MODE@", mode).replace("@TIMEOUT@", str(timeout))
            .replace("@UNDECIDED@", str(RABBIT_UNDECIDED)))


RABBIT_CHECK = rabbit_user_script("check")
RABBIT_RUN = rabbit_user_script("run")


ERLANG_COOKIE = "/var/lib/rabbitmq/.erlang.cookie"


def erlang_cookie() -> Guarded:
    """Debian: the controller's own Erlang cookie, which RabbitMQ and rabbitmqctl share. A
    baked base image holds none (the image clean-up removes the one rabbitmq-server's postinst
    made at its build, which every lab would share). Made as that postinst makes it (42 random
    bytes, base64, 0400 rabbitmq): a cookie Erlang makes itself (20 capital letters) has less
    entropy, and the postinst replaces such a cookie on an upgrade and restarts RabbitMQ."""
    return Guarded(
        description=f"this node's own Erlang cookie in {ERLANG_COOKIE}",
        check=f"test -s {ERLANG_COOKIE}",
        run=f"(umask 077 && openssl rand -base64 -out {ERLANG_COOKIE} 42) && "
            f"chown rabbitmq:rabbitmq {ERLANG_COOKIE} && chmod 0400 {ERLANG_COOKIE}",
    )


def rabbit_user(controller: str) -> Guarded:
    return Guarded(
        description="RabbitMQ user openstack",
        check=RABBIT_CHECK,
        run=RABBIT_RUN,
        undecided=Undecided(RABBIT_UNDECIDED, (
            "RabbitMQ did not answer or failed, so nothing was changed (on a node that has just "
            "booted under TCG it can take minutes); rerun `oslab up` once "
            f"`oslab ssh {controller} -- rabbitmqctl status` answers")),
    )


def rabbitmq(site: Site) -> list[StepDef]:
    permissions = Guarded(
        description="RabbitMQ user openstack may configure, write and read everything on /",
        check="rabbitmqctl -s list_user_permissions openstack | awk '$1 == \"/\" && "
              "$2 == \".*\" && $3 == \".*\" && $4 == \".*\" {found = 1} END {exit !found}'",
        run="rabbitmqctl -q set_permissions openstack '.*' '.*' '.*'",
    )
    return [
        StepDef(
            name="rabbitmq.install",
            where=Where.CONTROLLER,
            title="RabbitMQ",
            packages=site.layer.pkgs("rabbitmq"),
            # before RabbitMQ first starts (the engine runs commands before services)
            commands=(erlang_cookie(),) if site.layer.debian else (),
            services=("rabbitmq-server",),
        ),
        StepDef(
            name="rabbitmq.user",
            where=Where.CONTROLLER,
            title="RabbitMQ user openstack",
            commands=(rabbit_user(site.controller.name), permissions),
        ),
    ]


def memcached(site: Site) -> StepDef:
    return StepDef(
        name="memcached.install",
        where=Where.CONTROLLER,
        title=f"memcached on localhost and {site.controller.address}",
        packages=site.layer.pkgs("memcached"),
        files=(config(site.layer.path("memcached"), site.layer.memcached_template,
                      site.values()),),
        services=("memcached",),
    )


def etcd(site: Site) -> StepDef:
    return StepDef(
        name="etcd.install",
        where=Where.CONTROLLER,
        title=f"etcd on {site.controller.address}",
        packages=site.layer.pkgs("etcd"),
        files=(config(site.layer.path("etcd"), "infra/etcd.conf.j2", site.values()),),
        services=site.layer.unit("etcd"),
        checkpoint="infra",
    )


def steps(site: Site) -> list[StepDef]:
    return [*mariadb(site), *rabbitmq(site), memcached(site), etcd(site)]
