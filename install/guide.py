"""Where the install guide teaches each service, and which `oslab verify` group proves it.

For `oslab up --until STEP`: the lab stops before STEP, and its summary points the user at the
guide's page for what comes next, to do by hand, and at the check that tells them it works.
The pages are the guide's index pages, which list the page of each distro (Debian, RDO, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

GUIDE = "https://docs.openstack.org"


@dataclass(frozen=True)
class Lesson:
    service: str
    page: str  # the install guide's page for it
    check: str  # the `oslab verify --only` group that proves it, or "" for none of its own


# the shared environment's pages are in the install guide; each service's in its own project
_ENVIRONMENT = {"env": "environment.html", "mariadb": "environment-sql-database.html",
                "rabbitmq": "environment-messaging.html",
                "memcached": "environment-memcached.html", "etcd": "environment-etcd.html"}
_CHECK = {"keystone": "identity", "glance": "image", "placement": "services",
          "nova": "services", "neutron": "network", "horizon": "dashboard", "cinder": "volume"}


def lesson(step: str, release: str) -> Lesson:
    """The guide's page for ``step``'s service in ``release`` (a version such as "2025.1")."""
    service = step.split(".", 1)[0]
    if service in _ENVIRONMENT:
        page = f"{GUIDE}/install-guide/{_ENVIRONMENT[service]}"
    else:
        page = f"{GUIDE}/{service}/{release}/install/"
    return Lesson(service, page, _CHECK.get(service, ""))
