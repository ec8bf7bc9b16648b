"""What `oslab up` changed in a file someone edited on a node: option by option for the INI files
OpenStack reads (``[placement] auth_url: yours ..., fixed to ...``), and a count of lines for
any other file. A learner who installed a service by hand after `up --until` reads here what
oslab kept, fixed and dropped. No secret is shown: passwords by their option's name, the
credentials inside URLs (``transport_url``, ``connection``), and every known lab password.
"""

from __future__ import annotations

import configparser
import difflib
import re
from collections.abc import Callable

MAX_READ = 256 * 1024  # a config file is a few KiB; a larger one is only counted
# option names whose values are secrets wherever they appear
SECRET_NAME = re.compile(r"pass|secret|token|_key$|^key$", re.I)
URL_CREDENTIALS = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
NO_SECTION = "__oslab_no_section__"  # so that [DEFAULT] is read as a section like the others
WHOLE_FILE = "not kept: oslab writes this file whole (`oslab render` shows it)"

Options = dict[tuple[str, str], str]


def parse_ini(text: str) -> Options | None:
    """Every (section, option): value of an INI file as oslo.config reads it (the last of a
    repeated option wins); None when ``text`` is not an INI file."""
    parser = configparser.RawConfigParser(strict=False, allow_no_value=True,
                                          default_section=NO_SECTION, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # names keep their case
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    if not parser.sections():
        return None
    return {(section, option): (value or "").strip()
            for section in parser.sections() for option, value in parser.items(section)}


def shown(option: str, value: str, mask: Callable[[str], str]) -> str:
    if SECRET_NAME.search(option):
        return "***"
    return repr(mask(URL_CREDENTIALS.sub(r"\1***@", value)))


def changes(path: str, yours: str, ours: str,
            mask: Callable[[str], str] = lambda text: text) -> list[str]:
    """One line per option oslab fixed, set or dropped in ``path`` (``yours`` the file on the
    node, ``ours`` what oslab writes); for a file that is not INI, how many lines differ."""
    mine, theirs = parse_ini(ours), parse_ini(yours)
    if mine is None or theirs is None:
        diff = [line for line in difflib.unified_diff(yours.splitlines(), ours.splitlines(),
                                                      lineterm="", n=0)
                if line[:1] in "+-" and not line.startswith(("+++", "---"))]
        return [f"{path}: replaced ({len(diff)} lines differ from oslab's)"] if diff else []
    out = []
    for key in sorted(theirs.keys() | mine.keys()):
        section, option = key
        where = f"{path}: [{section}] {option}"
        if key not in theirs:
            out.append(f"{where}: missing, set to {shown(option, mine[key], mask)}")
        elif key not in mine:
            out.append(f"{where}: yours {shown(option, theirs[key], mask)}, {WHOLE_FILE}")
        elif theirs[key] != mine[key]:
            out.append(f"{where}: yours {shown(option, theirs[key], mask)}, fixed to "
                       f"{shown(option, mine[key], mask)}")
    return out
