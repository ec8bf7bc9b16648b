"""What `oslab up` reports it changed in a file someone edited on a node (``confdiff``): option
by option for INI files, a count of lines for the others, never a secret."""

from __future__ import annotations

import pytest

from oslab.install.confdiff import WHOLE_FILE, changes, parse_ini

OURS = """[DEFAULT]
my_ip = 10.0.0.31
transport_url = rabbit://openstack:Rabbit1pw@controller

[placement]
auth_url = http://controller:5000/v3
password = Placement1pw
"""


@pytest.mark.parametrize(("yours", "expect"), [
    (OURS, []),  # the same options (comments and spacing aside): nothing to say
    ("# mine\n" + OURS.replace(" = ", "=") , []),
    # the example: a trailing slash fixed
    (OURS.replace("controller:5000/v3", "controller:5000/v3/"),
     ["/etc/nova/nova.conf: [placement] auth_url: yours 'http://controller:5000/v3/', fixed "
      "to 'http://controller:5000/v3'"]),
    # an option the user left out is set; one only the user has is dropped, and says why
    (OURS.replace("my_ip = 10.0.0.31\n", "debug = true\n"),
     ["/etc/nova/nova.conf: [DEFAULT] debug: yours 'true', " + WHOLE_FILE,
      "/etc/nova/nova.conf: [DEFAULT] my_ip: missing, set to '10.0.0.31'"]),
    # secrets: by the option's name, inside a URL, and a known lab password anywhere
    (OURS.replace("Placement1pw", "mine").replace("Rabbit1pw", "hunter2"),
     ["/etc/nova/nova.conf: [DEFAULT] transport_url: yours "
      "'rabbit://openstack:***@controller', fixed to 'rabbit://openstack:***@controller'",
      "/etc/nova/nova.conf: [placement] password: yours ***, fixed to ***"]),
    # a user's [placement] section missing entirely
    (OURS.split("[placement]")[0],
     ["/etc/nova/nova.conf: [placement] auth_url: missing, set to "
      "'http://controller:5000/v3'",
      "/etc/nova/nova.conf: [placement] password: missing, set to ***"]),
    # names keep their case; a repeated option counts as oslo.config reads it (the last)
    (OURS + "[placement]\nAuth_URL = x\nauth_url = http://controller:5000/v3\n",
     ["/etc/nova/nova.conf: [placement] Auth_URL: yours 'x', " + WHOLE_FILE]),
])
def test_what_changed_option_by_option(yours: str, expect: list[str]) -> None:
    assert changes("/etc/nova/nova.conf", yours, OURS) == expect


def test_a_known_password_is_masked_wherever_it_stands() -> None:
    ours = "[DEFAULT]\nnote = Sekret99\n"
    out = changes("/etc/x.conf", "[DEFAULT]\nnote = Sekret98\n", ours,
                  mask=lambda text: text.replace("Sekret99", "***"))
    assert out == ["/etc/x.conf: [DEFAULT] note: yours 'Sekret98', fixed to '***'"]


@pytest.mark.parametrize(("yours", "ours", "expect"), [
    ("a\nb\n", "a\nc\n", ["/etc/f: replaced (2 lines differ from oslab's)"]),
    ("[x]\na = 1\n", "not ini\n", ["/etc/f: replaced (3 lines differ from oslab's)"]),
    ("<VirtualHost *:80>\n", "<VirtualHost *:80>\n", []),
])
def test_other_files_are_counted_not_shown(yours: str, ours: str, expect: list[str]) -> None:
    assert changes("/etc/f", yours, ours) == expect


@pytest.mark.parametrize("text", ["", "no section = 1\n", "<Directory /usr/bin>\n"])
def test_what_is_not_ini(text: str) -> None:
    assert parse_ini(text) is None


def test_up_prints_each_change_under_its_node(capsys: pytest.CaptureFixture[str]) -> None:
    from oslab import cli_print, spec_file
    from oslab.install.apply import StepOutcome
    from oslab.install.engine import NodeRun, RunResult
    from oslab.up import Installed

    step = StepOutcome("compute1", "nova.compute", commands=2,
                       edits=changes("/etc/nova/nova.conf",
                                     OURS.replace("5000/v3", "5000/v3/"), OURS))
    run = RunResult([NodeRun("controller"), NodeRun("compute1", [step])], 12.0)
    cli_print.print_installed(Installed(spec_file.load_default(), run))
    out = capsys.readouterr().out
    assert "files on the nodes that differed from oslab's, and what it changed:" in out
    assert ("  compute1: /etc/nova/nova.conf: [placement] auth_url: yours "
            "'http://controller:5000/v3/', fixed to 'http://controller:5000/v3'") in out
