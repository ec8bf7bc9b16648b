"""The controller's infrastructure: MariaDB, RabbitMQ, memcached and etcd."""

from __future__ import annotations

from oslab.install.model import Guarded, StepDef, Where
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


# RabbitMQ stores a password as base64(salt + sha256(salt + password)) with a 4-byte salt
# (rabbit_password_hashing_sha256, the default). The password never reaches a command line:
# the check recomputes the stored hash from `rabbitmqctl export_definitions`, the run gives
# rabbitmqctl a hash computed from the password (--pre-hashed-password). Both scripts reach
# python3 as here-documents; rabbitmqctl's stdin is /dev/null and it never reads a password
# (an earlier form that piped the password to rabbitmqctl's stdin hung past the engine's
# timeout on a real Debian 13 node; why was not found).
RABBIT_CHECK = """python3 - <<'PY'
import base64, hashlib, json, subprocess, sys
done = subprocess.run(["rabbitmqctl", "-q", "export_definitions", "-"],
                      stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240)
if done.returncode != 0:
    sys.exit(done.stderr.strip() or "rabbitmqctl export_definitions failed")
users = {u["name"]: u for u in json.loads(done.stdout).get("users", [])}
user = users.get("openstack")
if user is None:
    sys.exit("no RabbitMQ user openstack")
stored = base64.b64decode(user["password_hash"])
algorithm = user.get("hashing_algorithm") or "rabbit_password_hashing_sha256"
digest = {"rabbit_password_hashing_sha256": "sha256",
          "rabbit_password_hashing_sha512": "sha512"}.get(algorithm)
if digest is None:
    sys.exit("unknown hashing algorithm " + algorithm)
ok = hashlib.new(digest, stored[:4] + b"{password:rabbit_openstack}").digest() == stored[4:]
sys.exit(0 if ok else "the RabbitMQ user openstack has another password")
PY"""
RABBIT_RUN = """hash=$(python3 - <<'PY'
import base64, hashlib, os
salt = os.urandom(4)
digest = hashlib.sha256(salt + b"{password:rabbit_openstack}").digest()
print(base64.b64encode(salt + digest).decode())
PY
) || exit 1
if rabbitmqctl -q list_users </dev/null | awk '$1 == "openstack" {found = 1} END {exit !found}'
then
    rabbitmqctl -q delete_user openstack </dev/null || exit 1
fi
rabbitmqctl -q add_user openstack "$hash" --pre-hashed-password </dev/null"""


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


def rabbitmq(site: Site) -> list[StepDef]:
    user = Guarded(
        description="RabbitMQ user openstack",
        check=RABBIT_CHECK,
        run=RABBIT_RUN,
    )
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
            commands=(user, permissions),
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
