"""The lab's entries in the user's ``clouds.yaml``: ``oslab openrc --clouds-yaml [--out FILE]``.

Two clouds, ``<lab>-admin`` and ``<lab>-demo``, with the same credentials as the openrc files
(:mod:`oslab.install.openrc`), for ``openstack --os-cloud <lab>-admin`` and openstacksdk.

The user's file is theirs: every other entry, comment and blank line stays byte for byte.
:func:`merge` is pure. It edits the text, not a re-dump of the parsed YAML (which would drop
the comments): it replaces the lines of an entry of ours, or adds it at the end of the
top-level ``clouds:`` block (made when missing). Then it parses the result and checks that it
says exactly what the old file said, with only our two entries new or changed; a layout it
cannot edit that way (flow style, anchors, a document marker) is refused, and nothing is
written. :func:`write` writes the file atomically, mode 0600 (it holds the passwords); it
never follows a symbolic link, and the command prints no password.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from oslab.access.state import LabState
from oslab.errors import OslabError
from oslab.files import atomic_file, read_small_if_any
from oslab.install.openrc import (
    ADMIN_PASSWORD_KEY,
    REGION,
    USERS,
    auth_url,
    credentials,
    require_password,
)
from oslab.spec import LabSpec

LIMIT = 1 << 20
# a line that holds one mapping key at some indent: the key (plain, or quoted) and what follows
_KEY = re.compile(
    r"""^(?P<indent> *)"""
    r"""(?P<key>"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'"""  # a quoted key
    r"""|[^\s#'"{}\[\],&*!|>%@`-][^#:]*?|-[^\s#:][^#:]*?)"""  # a plain one
    r"""\s*:(?:\s+(?P<rest>.*))?$""")


class MergeError(OslabError):
    """The file cannot take our entries without a change to what else it says."""


def default_path(env: Mapping[str, str] | None = None) -> Path:
    """Where openstacksdk looks for the user's clouds.yaml: ``$XDG_CONFIG_HOME/openstack/``,
    ``~/.config/openstack/`` by default."""
    env = os.environ if env is None else env
    config = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "openstack" / "clouds.yaml"


def cloud_name(lab: str, who: str) -> str:
    return f"{lab}-{who}"


def entries(spec: LabSpec, password: Callable[[str], str],
            url: str | None = None) -> dict[str, dict[str, Any]]:
    """The lab's clouds, in the order they are written: admin, then demo."""
    clouds: dict[str, dict[str, Any]] = {}
    for who in USERS:
        c = credentials(who)
        clouds[cloud_name(spec.name, who)] = {
            "auth": {"auth_url": url or auth_url(spec), "username": c.user,
                     "password": password(c.password_key), "project_name": c.project,
                     "user_domain_name": c.user_domain,
                     "project_domain_name": c.project_domain},
            "region_name": REGION,
            "identity_api_version": 3,
            "interface": "public",
        }
    return clouds


def _scalar(value: object) -> str:
    # JSON's strings and numbers are YAML's double-quoted scalars and numbers: every character
    # of a password is safe in them
    return json.dumps(value)


def _render(name: str, cloud: Mapping[str, Any], indent: str, step: str = "  ") -> list[str]:
    key = name if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) else _scalar(name)
    lines = [f"{indent}{key}:",
             f"{indent}{step}# written by oslab (`oslab openrc --clouds-yaml`); "
             f"rewritten by its next run"]

    def walk(value: Mapping[str, Any], depth: str) -> None:
        for key, item in value.items():
            if isinstance(item, Mapping):
                lines.append(f"{depth}{key}:")
                walk(item, depth + step)
            else:
                lines.append(f"{depth}{key}: {_scalar(item)}")

    walk(cloud, indent + step)
    return lines


def _content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _key(line: str) -> tuple[int, object, str] | None:
    """(indent, key, what follows the colon) of a ``key:`` line, or None."""
    m = _KEY.match(line)
    if m is None:
        return None
    try:
        key = yaml.safe_load(m.group("key"))
    except yaml.YAMLError:
        return None
    return len(m.group("indent")), key, m.group("rest") or ""


def _is(line: str, indent: int, key: object) -> bool:
    found = _key(line)
    return found is not None and found[:2] == (indent, key)


def _parse(text: str, what: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise MergeError(f"{what} is not valid YAML: {exc}".replace("\n", " "),
                         hint="mend it, or pass --out another file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise MergeError(f"{what} is not a mapping (it holds a {type(data).__name__})",
                         hint="a clouds.yaml is a mapping with a `clouds:` key; pass --out "
                              "another file")
    clouds = data.get("clouds")
    if clouds is not None and not isinstance(clouds, dict):
        raise MergeError(f"{what}: its `clouds` is not a mapping",
                         hint="mend it, or pass --out another file")
    return data


def _edit(lines: list[str], clouds: Mapping[str, Mapping[str, Any]]) -> list[str]:
    top = [i for i, line in enumerate(lines) if _is(line, 0, "clouds")]
    if not top:
        out = [*lines, "clouds:"]
        for name, cloud in clouds.items():
            out += _render(name, cloud, "  ")
        return out
    found = _key(lines[top[0]])
    if found is None or (found[2] and not found[2].startswith("#")):
        return []  # `clouds: {...}` on one line (flow style): refused by merge's check
    start = top[0]
    # the block: every line after `clouds:` up to the next content line at column 0
    end = next((i for i in range(start + 1, len(lines))
                if _content(lines[i]) and _indent(lines[i]) == 0), len(lines))
    body = [i for i in range(start + 1, end) if _content(lines[i])]
    child = _indent(lines[body[0]]) if body else 2
    out = list(lines)
    for name, cloud in clouds.items():
        rendered = _render(name, cloud, " " * child)
        first = next((i for i in range(start + 1, end) if _is(out[i], child, name)), None)
        if first is None:
            last = max((i for i in range(start + 1, end) if _content(out[i])), default=start)
            out[last + 1:last + 1] = rendered
            end += len(rendered)
            continue
        stop = first
        for i in range(first + 1, end):
            if _content(out[i]):
                if _indent(out[i]) <= child:
                    break
                stop = i
        out[first:stop + 1] = rendered
        end += len(rendered) - (stop + 1 - first)
    return out


def merge(text: str, clouds: Mapping[str, Mapping[str, Any]], what: str = "clouds.yaml") -> str:
    """``text`` (a clouds.yaml, or "") with ``clouds`` added or replaced, all else unchanged.
    :class:`MergeError` when the text is not a clouds.yaml or its layout cannot be edited
    without a change to its other entries."""
    return _merge(_parse(text, what), text, clouds, what)


def _merge(old: dict[str, Any], text: str, clouds: Mapping[str, Mapping[str, Any]],
           what: str) -> str:
    """:func:`merge`, given ``text`` already parsed (``old``)."""
    lines = text.splitlines()
    new_lines = _edit(lines, clouds)
    new = "\n".join(new_lines) + "\n" if new_lines else ""
    expected = {**old, "clouds": {**(old.get("clouds") or {}),
                                  **{k: dict(v) for k, v in clouds.items()}}}
    try:
        ok = bool(new_lines) and yaml.safe_load(new) == expected
    except yaml.YAMLError:
        ok = False
    if not ok:
        raise MergeError(f"cannot add the lab's entries to {what} without changing what else "
                         f"it says (its layout: flow style, anchors or a document marker)",
                         hint="pass --out another file and copy the entries across by hand")
    return new


@dataclass(frozen=True)
class Written:
    path: Path
    names: tuple[str, ...]
    kept: int  # the other clouds in the file, unchanged


def write(spec: LabSpec, state: LabState, out: Path | None = None,
          url: str | None = None) -> Written:
    """Merge the lab's clouds into ``out`` (the user's clouds.yaml by default), mode 0600."""
    require_password(spec, state, ADMIN_PASSWORD_KEY, "passwords")
    path = out if out is not None else default_path()
    hint = "pass --out a regular file (the clouds.yaml that a link names, for one)"
    if path.is_symlink():
        raise OslabError(f"{path} is a symbolic link; oslab does not write through one",
                         hint=f"pass --out {path.resolve()}" if path.resolve().exists()
                         else hint)
    data = read_small_if_any(path, LIMIT, "clouds.yaml", hint)
    try:
        text = data.decode() if data is not None else ""
    except UnicodeDecodeError:
        raise OslabError(f"{path} is not UTF-8 text", hint=hint) from None
    clouds = entries(spec, state.password, url)
    old = _parse(text, str(path))
    merged = _merge(old, text, clouds, str(path))
    base = None
    if out is None:
        base = path.parent.parent  # $XDG_CONFIG_HOME: the openstack folder is made if missing
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
    with atomic_file(path, 0o600, base=base) as f:
        f.write(merged.encode())
    others = set(old.get("clouds") or {}) - set(clouds)
    return Written(path, tuple(clouds), len(others))
