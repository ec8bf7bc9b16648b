#!/usr/bin/python3
"""oslab-identity check|ensure: Keystone objects from a JSON document on stdin, in one process.

One `openstack` process per object costs 16-24 s of Python imports on a node without KVM; the
install guide makes 60-80 of them. This makes them all with one import of openstacksdk (which
python3-openstackclient brings) and one token, from the admin openrc's OS_* variables.

The document: {"projects": [{"name", "description"}], "roles": [name],
"users": [{"name", "project", "role", "password"?}],
"services": [{"name", "type", "description", "url", "region"}]}; all in the default domain, each
service with a public, internal and admin endpoint at its url. A password is only ever read from
stdin, never from the command line.

check: exit 0 when every object is there, else exit 1 naming what is missing.
ensure: create what is missing (a new user gets its password) and print what it made.
"""

import json
import sys

import openstack  # type: ignore[import-not-found]  # on the node, with the client

INTERFACES = ("public", "internal", "admin")


def main() -> int:
    if len(sys.argv) != 2 or sys.argv[1] not in ("check", "ensure"):
        print("usage: oslab-identity check|ensure < objects.json", file=sys.stderr)
        return 2
    make = sys.argv[1] == "ensure"
    want = json.load(sys.stdin)
    cloud = openstack.connect()
    domain = cloud.get_domain(name_or_id="default")
    if domain is None:
        print("the default domain is missing: has keystone-manage bootstrap run?",
              file=sys.stderr)
        return 1
    missing = []

    def note(what: str) -> None:
        missing.append(what)
        if make:
            print(f"created {what}")

    projects = {}
    for p in want.get("projects", []):
        project = cloud.get_project(p["name"], domain_id=domain.id)
        if project is None:
            note(f"project {p['name']}")
            if make:
                project = cloud.create_project(p["name"], domain_id=domain.id,
                                               description=p.get("description", ""))
        projects[p["name"]] = project

    roles = {}
    for name in want.get("roles", []):
        role = cloud.get_role(name)
        if role is None:
            note(f"role {name}")
            if make:
                role = cloud.create_role(name)
        roles[name] = role

    for u in want.get("users", []):
        user = cloud.get_user(u["name"], domain_id=domain.id)
        if user is None:
            note(f"user {u['name']}")
            if make:
                user = cloud.create_user(u["name"], password=u.get("password"),
                                         domain_id=domain.id)
        project = projects.get(u["project"]) or cloud.get_project(u["project"],
                                                                  domain_id=domain.id)
        role = roles.get(u["role"]) or cloud.get_role(u["role"])
        granted = (user is not None and project is not None and role is not None
                   and cloud.list_role_assignments(filters={
                       "user": user.id, "project": project.id, "role": role.id}))
        if not granted:
            note(f"role {u['role']} for user {u['name']} on project {u['project']}")
            if make:
                cloud.grant_role(role.id, user=user.id, project=project.id, wait=False)

    for s in want.get("services", []):
        service = cloud.get_service(s["name"])
        if service is None:
            note(f"service {s['name']} ({s['type']})")
            if make:
                service = cloud.create_service(s["name"], type=s["type"],
                                               description=s.get("description", ""))
        have = set()
        if service is not None:
            have = {(e.interface, e.url) for e in cloud.list_endpoints()
                    if e.service_id == service.id and e.region_id == s["region"]}
        for interface in INTERFACES:
            if (interface, s["url"]) not in have:
                note(f"{interface} endpoint of {s['type']}: {s['url']}")
                if make:
                    cloud.create_endpoint(service.id, url=s["url"], interface=interface,
                                          region=s["region"])

    if missing and not make:
        print("missing: " + "; ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
