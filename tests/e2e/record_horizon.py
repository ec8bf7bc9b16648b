"""Record Horizon's pages for tests/unit/test_horizon.py, from a real lab's dashboard, with the
same cookie-keeping session `oslab verify` uses:

    OS_PASSWORD=... python tests/e2e/record_horizon.py http://10.0.0.11/dashboard/ OUTDIR

writes ``horizon_login_refused_debian13.html`` (a wrong password), ``horizon_project_debian13.html``
(where a login lands) and ``horizon_instances_debian13.html`` (the project's instances page).
The password comes from the environment (``. "$(oslab openrc demo)"``) and is in no page.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from oslab.install.verify.connections import HttpSession
from oslab.install.verify.horizon import INSTANCES_PATH, LOGIN_PATH, login_fields, login_form


def main() -> int:
    base, out = sys.argv[1], Path(sys.argv[2])
    password = os.environ["OS_PASSWORD"]
    user = os.environ.get("OS_USERNAME", "demo")
    for right, name in ((False, "horizon_login_refused_debian13.html"),
                        (True, "horizon_project_debian13.html")):
        web = HttpSession()
        form = login_form(web.get(base + LOGIN_PATH, 600))
        assert form is not None, "no login form"
        page = web.post(form.action, login_fields(form, user, password if right else "x"), 600)
        assert password not in page.body
        (out / name).write_text(page.body)
        print(f"{name}: HTTP {page.status} from {page.url}")
    page = web.get(base + INSTANCES_PATH, 600)
    (out / "horizon_instances_debian13.html").write_text(page.body)
    print(f"horizon_instances_debian13.html: HTTP {page.status} from {page.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
