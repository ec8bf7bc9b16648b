"""Record the real client's output against a real Keystone into tests/unit/recorded/.

    /work/venv/bin/python -m tests.keystone.record      (from the repo root)

Starts the release's Keystone on 127.0.0.1 (tests/keystone/fixture.py), registers the lab's
services and the demo user as the installer does, and saves what python-openstackclient
prints for the commands oslab's checks run (and their errors). Also records
``keystone-status upgrade check`` (oslo.upgradecheck, the library behind ``nova-status`` and
``placement-status``) and, from the same library, a failing check's table.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from tests.keystone import fixture

OUT = Path(__file__).resolve().parent.parent / "unit" / "recorded"

FAILING_CHECK = """
from oslo_config import cfg
from oslo_upgradecheck import upgradecheck


class Checks(upgradecheck.UpgradeCommands):
    def _cells(self):
        return upgradecheck.Result(upgradecheck.Code.FAILURE,
                                   "No host mappings found but there are compute nodes. "
                                   "Run command 'nova-manage cell_v2 simple_cell_setup'.")

    def _placement(self):
        return upgradecheck.Result(upgradecheck.Code.SUCCESS)

    _upgrade_checks = (("Cells v2", _cells), ("Placement API", _placement))


sys.exit(upgradecheck.main(cfg.CONF, project="nova", upgrade_command=Checks(),
                           argv=["upgrade", "check"]))
"""


def save(name: str, text: str) -> None:
    (OUT / name).write_text(text)
    print(f"recorded {name}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="oslab-ks-") as tmp:
        ks = fixture.start(Path(tmp) / "keystone")
        try:
            record(ks)
        finally:
            ks.stop()


def record(ks: fixture.Keystone) -> None:
    fixture.register_lab_services(ks)
    fixture.create_demo(ks, "demo-secret-1")
    os_ = ks.openstack
    save("catalog_list.json", os_("catalog", "list", "-f", "json").stdout)
    save("endpoint_list.json", os_("endpoint", "list", "-f", "json").stdout)
    save("token_issue.json", os_("token", "issue", "-f", "json").stdout)
    save("project_list.json", os_("project", "list", "-f", "json").stdout)
    save("user_list.json", os_("user", "list", "-f", "json").stdout)
    save("role_list.json", os_("role", "list", "-f", "json").stdout)
    save("role_assignment_list.json", os_("role", "assignment", "list", "--names",
                                          "-f", "json").stdout)
    bad = {**ks.admin_env(), "OS_PASSWORD": "not-the-password"}
    save("error_auth_401.txt", os_("token", "issue", "-f", "json", env=bad, check=False).stderr)
    down = {**ks.admin_env(), "OS_AUTH_URL": "http://127.0.0.1:9/v3"}
    save("error_keystone_down.txt",
         os_("catalog", "list", "-f", "json", env=down, check=False).stderr)
    # compute is in the catalog at 127.0.0.1:8774, where nothing listens
    save("error_service_down.txt",
         os_("compute", "service", "list", "-f", "json", check=False).stderr)
    # a catalog with network gone and volumev3 without its admin endpoint
    os_("service", "delete", "network")
    admin_ep = [e["ID"] for e in json.loads(os_("endpoint", "list", "--service", "volumev3",
                                                "--interface", "admin", "-f", "json").stdout)]
    os_("endpoint", "delete", *admin_ep)
    save("catalog_list_partial.json", os_("catalog", "list", "-f", "json").stdout)
    save("endpoint_list_partial.json", os_("endpoint", "list", "-f", "json").stdout)
    save("error_endpoint_not_found.txt",
         os_("network", "agent", "list", "-f", "json", check=False).stderr)
    status = subprocess.run([str(ks.venv / "bin" / "keystone-status"), "--config-file",
                             str(ks.config), "upgrade", "check"], capture_output=True,
                            text=True, env=ks.base_env(), check=False)
    save("upgrade_check_success.txt", status.stdout)
    failing = subprocess.run([str(ks.venv / "bin" / "python"), "-c", FAILING_CHECK],
                             capture_output=True, text=True, env=ks.base_env(), check=False)
    assert failing.returncode == 2, failing
    save("upgrade_check_failure.txt", failing.stdout)
    versions = subprocess.run([str(ks.venv / "bin" / "pip"), "freeze"], capture_output=True,
                              text=True, check=True).stdout
    keep = [line for line in versions.splitlines() if line.split("==")[0].lower() in
            {"keystone", "python-openstackclient", "openstacksdk", "osc-lib", "cliff",
             "keystoneauth1", "oslo.upgradecheck", "python-cinderclient"}]
    save("VERSIONS.txt", "\n".join(sorted(keep)) + "\n")


if __name__ == "__main__":
    main()
