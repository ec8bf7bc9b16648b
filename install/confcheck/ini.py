"""Parse a config file the way oslo.config parses it (``oslo_config.iniparser``):

* ``#`` and ``;`` start a comment only at the start of a line, so
  ``server_listen = #my_ip`` sets the value ``#my_ip``;
* a key and its value are split on the first ``=`` or ``:``; the value is
  stripped, and one pair of matching surrounding quotes is removed;
* an indented line continues the previous value (joined with a newline), a
  blank line ends it;
* section names other than ``DEFAULT`` are lower-cased, option names are
  case-sensitive;
* a key may repeat: a multi-valued option (``MultiStrOpt``) collects every
  value, any other option takes the last one.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Entry:
    section: str  # normalised: DEFAULT, or lower-cased
    key: str
    value: str
    line: int


@dataclass
class ParsedIni:
    entries: list[Entry] = field(default_factory=list)
    section_lines: dict[str, int] = field(default_factory=dict)
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # line, section, message


def normalize_section(name: str) -> str:
    return name if name == "DEFAULT" else name.lower()


def parse(text: str) -> ParsedIni:
    """oslo_config.iniparser.BaseParser, collecting errors instead of raising."""
    parsed = ParsedIni()
    section: str | None = None
    key: str | None = None
    key_line = 0
    value: list[str] = []

    def flush() -> None:
        nonlocal key, value
        if key is not None:
            if section is None:
                parsed.errors.append((key_line, "", f"{key!r} is set before any [section] header"))
            else:
                parsed.entries.append(Entry(section, key, "\n".join(value), key_line))
        key, value = None, []

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not line:
            flush()
            continue
        if line.startswith((" ", "\t")):
            if key is None:
                parsed.errors.append(
                    (
                        lineno,
                        section or "",
                        "indented line continues no option (unexpected continuation line)",
                    )
                )
            else:
                value.append(line.lstrip())
            continue
        flush()
        if line.startswith("["):
            if not line.endswith("]"):
                parsed.errors.append((lineno, section or "", "section header must end with ']'"))
            elif len(line) <= 2:
                parsed.errors.append((lineno, section or "", "empty section name"))
            else:
                section = normalize_section(line[1:-1])
                parsed.section_lines.setdefault(section, lineno)
        elif line.startswith(("#", ";")):
            continue
        else:
            colon, equal = line.find(":"), line.find("=")
            if colon < 0 and equal < 0:
                parsed.errors.append((lineno, section or "", f"no '=' or ':' in {line.strip()!r}"))
                continue
            if colon < 0 or (0 <= equal < colon):
                name, rest = line[:equal], line[equal + 1 :]
            else:
                name, rest = line[:colon], line[colon + 1 :]
            rest = rest.strip()
            if rest and rest[0] == rest[-1] and rest.startswith(('"', "'")):
                rest = rest[1:-1]
            if not name.strip():
                parsed.errors.append((lineno, section or "", "empty option name"))
                continue
            key, key_line, value = name.strip(), lineno, [rest]
    flush()
    return parsed
