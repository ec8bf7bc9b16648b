"""Check one config file's text against its schema.

Before a value is type-checked, ``$name`` and ``${name}`` are replaced as
oslo.config does it: ``name`` is looked up in the option's own section, then in
``[DEFAULT]``; ``$group.name`` names another section; ``$$`` and ``\\$`` are a
literal ``$``. Only values set in the same file are known; a reference to an
option that exists but is not set in the file (its default would be used)
leaves the value unchecked. A reference to no option at all is an error, as
oslo.config fails on it at run time (a ``$`` in a password must be written
``$$``).

Problems reported (``Problem.severity`` is ``"error"`` unless noted):

* a line oslo.config cannot parse;
* an unknown section; an unknown option in a known section (with the closest
  names, or the sections that have such an option, as a hint);
* an option set by a deprecated name (``"warning"``), with a "did you mean"
  hint when the name is close to a current option of the section; when that
  look-alike is not set either, it is an ``"error"``: the classic mistake is
  ``[keystone_authtoken] auth_uri`` (an alias of ``www_authenticate_uri``)
  where ``auth_url`` is meant;
* a single-valued option set more than once (``"warning"``);
* a value its type rejects: integer and float (with min/max and choices),
  boolean (oslo's spellings: true/false, yes/no, on/off, 1/0, any case), port,
  IP address, hostname, host address (IP or hostname), URI (needs a scheme and
  a host, as oslo's rfc3986 check does; it also rejects an empty host, which
  oslo lets through), string with choices or a pattern, list, dict, range;
* a driver name that the release's packages do not register, for driver
  options that load a stevedore entry point (keystone's ``[token] provider``,
  neutron's ``core_plugin``, ``service_plugins``, ``interface_driver``, ml2's
  ``mechanism_drivers``, ...); where the service also takes a class path,
  a dotted class path passes;
* a value without ``scheme://`` in a string option that the service parses as
  a URL (``[database] connection``, ``transport_url``, ``auth_url``,
  ``www_authenticate_uri``): ``mysql+pymysql://``, ``rabbit://``, ``http://``;
* a reference ``$name`` to no option;
* a required option that is missing: ``[placement_database] connection``, or
  keystoneauth's ``auth_url`` in a section whose ``auth_type`` is a password
  plugin;
* with ``warn_deprecated_for_removal=True``, options deprecated for removal
  (``"warning"``).

Dynamic sections: a section named by another option's value is checked
against that option's template. In glance-api.conf each ``NAME:TYPE`` of
``[DEFAULT] enabled_backends`` (e.g. ``fs:file``) makes ``[NAME]`` take
glance_store's options for store ``TYPE`` (for ``file``:
``filesystem_store_datadir`` and friends); glance's reserved
``[os_glance_staging_store]`` and ``[os_glance_tasks_store]`` always take the
file store's options. In cinder.conf each ``NAME`` of ``[DEFAULT]
enabled_backends`` makes ``[NAME]`` take the ``[backend_defaults]`` options. A
section not listed by its owner option is an unknown section.

keystoneauth sections (``[keystone_authtoken]``, nova's ``[placement]``, ...)
take the ``password`` plugin's options; if such a section sets ``auth_type``
to another plugin, options the schema does not list are not reported there.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from oslab.install.confcheck.ini import Entry, ParsedIni, normalize_section, parse
from oslab.install.confcheck.schema import (
    Options,
    OptSpec,
    Schema,
    available_schemas,
    load_schema,
)
from oslab.install.confcheck.values import check_type, describe_type

_PASSWORD_PLUGINS = frozenset({"password", "v3password", "v2password"})


@dataclass(frozen=True)
class Problem:
    """One finding in a config file. ``line`` is 1-based, 0 when not on a line."""

    file: str
    section: str
    option: str
    line: int
    message: str
    severity: str = "error"



# ------------------------------------------------------- interpolation

_TEMPLATE_RE = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<named>[_a-z][._a-z0-9]*)"
    r"|\{(?P<braced>[_a-z][._a-z0-9]*)\}|(?P<invalid>))",
    re.IGNORECASE,
)


class _Unresolved(Exception):
    """A reference to an option that exists but is not set in the file."""


class _BadReference(Exception):
    """A reference that oslo.config would fail on at run time."""


# ------------------------------------------------------------- checker


@dataclass
class _Checker:
    schema: Schema
    filename: str
    parsed: ParsedIni
    warn_deprecated_for_removal: bool
    problems: list[Problem] = field(default_factory=list)
    # (section, canonical option) -> entries setting it, in file order
    values: dict[tuple[str, str], list[Entry]] = field(default_factory=dict)
    dynamic_sections: dict[str, Options] = field(default_factory=dict)

    def report(
        self,
        entry_or_section: Entry | str,
        option: str,
        line: int,
        message: str,
        severity: str = "error",
    ) -> None:
        section = (
            entry_or_section.section if isinstance(entry_or_section, Entry) else entry_or_section
        )
        self.problems.append(Problem(self.filename, section, option, line, message, severity))

    # -- lookup --------------------------------------------------------

    def options_of(self, section: str) -> Options | None:
        found = self.schema.sections.get(section)
        if found is not None:
            return found
        return self.dynamic_sections.get(section)

    def resolve(self, section: str, key: str) -> tuple[str, str, OptSpec, bool] | None:
        """(section, option, spec, via_deprecated_name) for a key, if known.

        A key that is both a current option and a deprecated name of another
        option (``[keystone_authtoken] auth_uri``) counts as the deprecated name
        when the current option is itself deprecated for removal.
        """
        options = self.options_of(section) or {}
        current = options.get(key)
        if current is not None and not current.deprecated_for_removal:
            return section, key, current, False
        alias = self.schema.aliases.get((section, key))
        if alias is not None:
            spec = self.schema.sections[alias[0]][alias[1]]
            return alias[0], alias[1], spec, True
        if current is not None:
            return section, key, current, False
        if section in self.dynamic_sections:
            for name, spec in options.items():
                if any(dname == key for _, dname in spec.deprecated_names):
                    return section, name, spec, True
        return None

    def raw_value(self, section: str, option: str) -> str | None:
        entries = self.values.get((section, option))
        return entries[-1].value if entries else None

    # -- interpolation --------------------------------------------------

    def interpolate(self, value: str, section: str, depth: int = 0) -> str:
        if depth > 20:
            raise _BadReference("interpolation nests too deeply (a reference loop?)")
        value = value.replace("\\$", "$$")

        def substitute(match: re.Match[str]) -> str:
            if match["escaped"] is not None:
                return "$"
            name = match["named"] or match["braced"]
            if name is None:
                return match.group()
            return self.lookup(name, section, depth)

        return _TEMPLATE_RE.sub(substitute, value)

    def lookup(self, name: str, section: str, depth: int) -> str:
        candidates: list[tuple[str, str]] = []
        if "." in name:
            group, option = name.split(".", 1)
            candidates.append((normalize_section(group), option))
        else:
            candidates.append((section, name))
        candidates.append(("DEFAULT", name))
        for group, option in candidates:
            found = self.resolve(group, option)
            if found is None:
                continue
            target_section, target_option, _, _ = found
            raw = self.raw_value(target_section, target_option)
            if raw is None:
                raise _Unresolved(name)
            return self.interpolate(raw, target_section, depth + 1)
        raise _BadReference(
            f"${name} refers to no option of [{section}] or [DEFAULT] (write a literal '$' as '$$')"
        )

    # -- passes ----------------------------------------------------------

    def run(self) -> list[Problem]:
        for line, section, message in self.parsed.errors:
            self.report(section, "", line, message)
        self.collect_values()
        self.find_dynamic_sections()
        if self.dynamic_sections:
            self.collect_values()
        reported_sections: set[str] = set()
        seen: dict[tuple[str, str], Entry] = {}
        for entry in self.parsed.entries:
            if not self.section_known(entry.section):
                if entry.section not in reported_sections:
                    reported_sections.add(entry.section)
                    self.report_unknown_section(entry)
                continue
            found = self.resolve(entry.section, entry.key)
            if found is None:
                self.report_unknown_option(entry)
                continue
            section, option, spec, deprecated = found
            if deprecated:
                self.report_deprecated_name(entry, section, option)
            elif spec.deprecated_for_removal and self.warn_deprecated_for_removal:
                since = f" (since {spec.deprecated_since})" if spec.deprecated_since else ""
                self.report(
                    entry,
                    entry.key,
                    entry.line,
                    f"[{entry.section}] {entry.key} is deprecated for removal{since}",
                    "warning",
                )
            previous = seen.get((section, option))
            if previous is not None and not spec.multi:
                self.report(
                    entry,
                    entry.key,
                    entry.line,
                    f"[{entry.section}] {entry.key} is set more than once (also line "
                    f"{previous.line}); only the last value counts",
                    "warning",
                )
            seen[(section, option)] = entry
            self.check_value(entry, section, spec)
        self.check_required()
        self.problems.sort(key=lambda p: (p.line, p.section, p.option))
        return self.problems

    def collect_values(self) -> None:
        self.values = {}
        for entry in self.parsed.entries:
            found = self.resolve(entry.section, entry.key)
            if found is not None:
                self.values.setdefault((found[0], found[1]), []).append(entry)

    def section_known(self, section: str) -> bool:
        return (
            section in self.schema.sections
            or section in self.dynamic_sections
            or any(group == section for group, _ in self.schema.aliases)
        )

    def find_dynamic_sections(self) -> None:
        for rule in self.schema.dynamic:
            owner_entries = self.values.get(rule.owner)
            if not owner_entries:
                continue
            entry = owner_entries[-1]
            try:
                text = self.interpolate(entry.value, rule.owner[0])
            except (_Unresolved, _BadReference):
                continue
            if rule.item == "name:type":
                pairs = [p.split(":", 1) for p in text.split(",") if p.strip()]
                for pair in pairs:
                    if len(pair) != 2:
                        continue  # the owner's own type check reports it
                    name, kind = pair[0].strip(), pair[1].strip()
                    canonical = rule.aliases.get(kind.lower(), kind.lower())
                    template = rule.templates.get(canonical)
                    if template is None:
                        known = ", ".join(sorted(rule.templates))
                        self.report(
                            entry,
                            entry.key,
                            entry.line,
                            f"[{entry.section}] {entry.key}: backend {name!r} has unknown "
                            f"type {kind!r} (known: {known})",
                        )
                        continue
                    self.dynamic_sections[normalize_section(name)] = template
            else:
                template = (
                    self.schema.sections.get(rule.like_section, {})
                    if rule.like_section
                    else rule.templates.get("*", {})
                )
                for name in text.split(","):
                    if name.strip():
                        self.dynamic_sections[normalize_section(name.strip())] = template

    def report_unknown_section(self, entry: Entry) -> None:
        section = entry.section
        line = self.parsed.section_lines.get(section, entry.line)
        names = list(self.schema.sections)
        by_lower = {n.lower(): n for n in names}
        close = difflib.get_close_matches(section, names, n=2, cutoff=0.75)
        if section.lower() in by_lower and by_lower[section.lower()] != section:
            close = [by_lower[section.lower()]]
        hint = f"; did you mean [{'] or ['.join(close)}]?" if close else ""
        owners = [r for r in self.schema.dynamic if r.owner[0] == "DEFAULT"]
        if owners and not close:
            listed = " or ".join(f"[{r.owner[0]}] {r.owner[1]}" for r in owners)
            hint += f" (a section for a backend must be named in {listed})"
        self.report(
            section,
            "",
            line,
            f"unknown section [{section}] for {self.schema.filename}{hint}",
        )

    def report_unknown_option(self, entry: Entry) -> None:
        options = self.options_of(entry.section) or {}
        if entry.section in self.schema.auth_sections:
            plugin = self.raw_value(entry.section, "auth_type")
            if plugin is not None and plugin not in _PASSWORD_PLUGINS:
                return  # another keystoneauth plugin: options the schema cannot list
        names = list(options)
        close = difflib.get_close_matches(entry.key, names, n=2, cutoff=0.75)
        by_lower = {n.lower(): n for n in names}
        if entry.key.lower() in by_lower:
            close = [by_lower[entry.key.lower()]]
        if close:
            hint = f"; did you mean {' or '.join(close)}?"
        else:
            elsewhere = sorted(
                name for name, opts in self.schema.sections.items() if entry.key in opts
            )
            hint = f"; it is an option of [{'], ['.join(elsewhere[:4])}]" if elsewhere else ""
        self.report(
            entry,
            entry.key,
            entry.line,
            f"[{entry.section}] unknown option {entry.key}{hint}",
        )

    def report_deprecated_name(self, entry: Entry, section: str, option: str) -> None:
        target = option if section == entry.section else f"[{section}] {option}"
        options = self.options_of(entry.section) or {}
        candidates = [n for n in options if n not in (entry.key, option)]
        close = difflib.get_close_matches(entry.key, candidates, n=1, cutoff=0.8)
        severity = "warning"
        if close:
            message = (
                f"[{entry.section}] {entry.key}: did you mean {close[0]}? "
                f"({entry.key} is a deprecated alias of {target})"
            )
            # the look-alike is not set: most likely a typo for it, not a deprecation
            if (entry.section, close[0]) not in self.values:
                severity = "error"
        else:
            message = (
                f"[{entry.section}] {entry.key} is a deprecated alias of {target}; use {target}"
            )
        self.report(entry, entry.key, entry.line, message, severity)

    def check_value(self, entry: Entry, section: str, spec: OptSpec) -> None:
        try:
            value = self.interpolate(entry.value, section)
        except _Unresolved:
            return
        except _BadReference as exc:
            self.report(entry, entry.key, entry.line, f"[{entry.section}] {entry.key}: {exc}")
            return
        error = check_type(spec, value)
        if error is not None:
            shown = "" if value == entry.value else f" (from {entry.value!r})"
            self.report(
                entry,
                entry.key,
                entry.line,
                f"[{entry.section}] {entry.key} ({describe_type(spec)}): {error}{shown}",
            )

    def check_required(self) -> None:
        """Required options: keystoneauth's in auth sections that use a password
        plugin, and oslo's ``required`` ones (``[placement_database] connection``)."""
        keys_by_section: dict[str, set[str]] = {}
        for entry in self.parsed.entries:
            keys_by_section.setdefault(entry.section, set()).add(entry.key)
        for section, options in self.schema.sections.items():
            plugin = self.raw_value(section, "auth_type")
            is_auth = section in self.schema.auth_sections
            if is_auth and (plugin is None or plugin not in _PASSWORD_PLUGINS):
                continue
            for option, spec in options.items():
                if not spec.required or (section, option) in self.values:
                    continue
                line = self.parsed.section_lines.get(section, 0)
                message = f"[{section}] {option} is required"
                if is_auth:
                    message += f" with auth_type = {plugin}"
                    keys = sorted(keys_by_section.get(section, set()))
                    close = difflib.get_close_matches(option, keys, n=1, cutoff=0.8)
                    if close:
                        message += f" ({close[0]} is set: did you mean {option}?)"
                self.report(section, option, line, message)


def check_ini(
    text: str, schema: Schema, filename: str, *, warn_deprecated_for_removal: bool = False
) -> list[Problem]:
    """Check the text of one config file against ``schema``; problems in line order."""
    checker = _Checker(schema, filename, parse(text), warn_deprecated_for_removal)
    return checker.run()


def check_configs(files: Mapping[str, str], release: str) -> tuple[list[str], list[Problem]]:
    """Check each of ``files`` (name -> text) whose base name has a schema for ``release``:
    the names checked, and their problems, file by file in line order. Other files (httpd
    snippets, ``/etc/hosts``, ...) are not oslo.config files and are left out."""
    schemas = set(available_schemas(release))
    checked: list[str] = []
    problems: list[Problem] = []
    for name, text in files.items():
        base = PurePosixPath(name).name
        if base in schemas:
            checked.append(name)
            problems += check_ini(text, load_schema(release, base), name)
    return checked, problems


def format_problem(problem: Problem) -> str:
    where = f"{problem.file}:{problem.line}" if problem.line else problem.file
    return f"{where}: {problem.severity}: {problem.message}"
