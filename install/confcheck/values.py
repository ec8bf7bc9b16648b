"""Whether oslo.config would accept a value for an option, and if not, why."""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable

from oslab.install.confcheck.schema import OptSpec

_TRUE = frozenset({"true", "1", "on", "yes"})
_FALSE = frozenset({"false", "0", "off", "no"})


def _num(value: float) -> str:
    return f"{value:g}"


def _check_number(spec: OptSpec, value: str, kind: type[int] | type[float]) -> str | None:
    if value.strip() == "":
        return None  # oslo treats an empty number as unset
    try:
        number = kind(value)
    except ValueError:
        name = {"port": "a port number", "integer": "an integer"}.get(spec.type, "a number")
        return f"{value!r} is not {name}"
    if spec.choices is not None:
        if number not in spec.choices:
            return f"{value!r} is not one of {', '.join(str(c) for c in spec.choices)}"
        return None
    if spec.min is not None and number < spec.min:
        return f"{value!r} is below the minimum {_num(spec.min)}"
    if spec.max is not None and number > spec.max:
        return f"{value!r} is above the maximum {_num(spec.max)}"
    return None


_CLASS_PATH_RE = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*[.:][A-Za-z_]\w*$")


def _check_string(spec: OptSpec, value: str) -> str | None:
    if spec.quotes and value and value[0] in "\"'":
        if len(value) == 1 or value[-1] != value[0]:
            return f"{value!r} has an unclosed quote"
        value = value[1:-1]
    if spec.max_length and len(value) > spec.max_length:
        return f"{value!r} is longer than {spec.max_length} characters"
    if spec.regex is not None:
        flags = re.IGNORECASE if spec.ignore_case else 0
        if not re.search(spec.regex, value, flags):
            return f"{value!r} does not match the pattern {spec.regex!r}"
    if spec.choices is None:
        return None
    choices = [c for c in spec.choices if c is not None]
    found = (
        value.lower() in {str(c).lower() for c in choices} if spec.ignore_case else value in choices
    )
    if found or (spec.class_path_ok and _CLASS_PATH_RE.match(value)):
        return None
    what = "driver names" if spec.entry_points else "choices"
    message = f"{value!r} is not one of the {what} {', '.join(str(c) for c in choices)}"
    close = difflib.get_close_matches(value, [str(c) for c in choices], n=1, cutoff=0.6)
    return message + (f"; did you mean {close[0]}?" if close else "")


def _check_ip(value: str, version: int | None) -> str | None:
    if not value:
        return "an IP address cannot be empty"
    # inet_pton (what oslo.config uses) takes no IPv6 zone index
    try:
        address = ipaddress.ip_address(value) if "%" not in value else None
    except ValueError:
        address = None
    if address is None or (version is not None and address.version != version):
        kind = {4: "an IPv4 address", 6: "an IPv6 address"}.get(version or 0, "an IP address")
        return f"{value!r} is not {kind}"
    return None


_HOSTNAME_SEGMENT = r"(?!-)[A-Z0-9-]{1,63}(?<!-)$"
_DOMAIN_SEGMENT = r"(?!-)[A-Z0-9-_]{1,63}(?<!-)$"  # HostDomain: also "_"


def _check_hostname(value: str, segment: str = _HOSTNAME_SEGMENT) -> str | None:
    if not value:
        return "a hostname cannot be empty"
    if len(value) > 253:
        return f"{value!r} is longer than 253 characters"
    if value.endswith("."):
        value = value[:-1]
    if not re.search("[a-zA-Z-]", value.split(".")[-1]):
        return f"{value!r} has an all-numeric top-level domain: neither an IP nor a hostname"
    allowed = re.compile(segment, re.IGNORECASE)
    if any(not allowed.match(part) for part in value.split(".")):
        return f"{value!r} is not a valid hostname"
    return None


def _check_host_address(spec: OptSpec, value: str) -> str | None:
    if _check_ip(value, spec.version) is None:
        return None
    if _check_hostname(value) is None:
        return None
    if spec.type == "host_domain" and _check_hostname(value, _DOMAIN_SEGMENT) is None:
        return None
    return f"{value!r} is not a valid host address (an IP address or a hostname)"


_URI_RE = re.compile(
    r"^(?:(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*):)?(?://(?P<authority>[^\\/?#]*))?"
    r"(?P<path>[^?#]*)(?:\?(?P<query>[^#]*))?(?:#(?P<fragment>.*))?$",
    re.DOTALL,
)
_USERINFO_RE = re.compile(r"^(?:[A-Za-z0-9._~\-!$&'()*+,;=:]|%[A-Fa-f0-9]{2})+$")
_REG_NAME_RE = re.compile(r"^(?:%[0-9A-Fa-f]{2}|[!$&'()*+,;=A-Za-z0-9._~\-])*$")
_IPV4_SHAPE = re.compile(r"^(?:[0-9]{1,3}\.){3}[0-9]{1,3}$")


def _check_uri(spec: OptSpec, value: str) -> str | None:
    match = _URI_RE.match(value)
    if match is None:  # pragma: no cover - the pattern matches any string
        return f"{value!r} is not a URI"
    # rfc3986 (what oslo.config uses) percent-encodes the path before checking
    # it, all but the reserved characters; of those only [ and ] are invalid.
    scheme, authority, path = match["scheme"], match["authority"], match["path"]
    if not scheme or authority is None:
        return f"{value!r} is not a URI: it needs scheme://host, as in http://controller:5000"
    userinfo, _, hostport = authority.rpartition("@")
    if "@" in authority and not _USERINFO_RE.match(userinfo):
        return f"{value!r} is not a URI: bad user information"
    if hostport.startswith("["):
        host, _, port = hostport.partition("]")
        host += "]"
        if port and not port.startswith(":"):
            return f"{value!r} is not a URI: bad IPv6 host"
        port = port[1:]
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return f"{value!r} is not a URI: bad IPv6 host {host!r}"
    else:
        host, _, port = hostport.partition(":")
        if not _REG_NAME_RE.match(host):
            return f"{value!r} is not a URI: bad host {host!r}"
        if _IPV4_SHAPE.match(host) and any(int(p) > 255 for p in host.split(".")):
            return f"{value!r} is not a URI: bad IPv4 host {host!r}"
    if not host:
        return f"{value!r} is not a URI: it has no host (scheme://host/...)"
    if port and not re.fullmatch(r"[0-9]{1,5}", port):
        return f"{value!r} is not a URI: bad port {port!r}"
    if "[" in path or "]" in path:
        return f"{value!r} is not a URI: [ or ] in the path {path!r}"
    if spec.schemes and scheme not in spec.schemes:
        return f"{value!r}: scheme {scheme!r} is not one of {', '.join(spec.schemes)}"
    if spec.max_length is not None and len(value) > spec.max_length:
        return f"{value!r} is longer than {spec.max_length} characters"
    return None


_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S*$")


def _check_url(value: str) -> str | None:
    """A string option that the service parses as a URL (SQLAlchemy, oslo.messaging,
    keystoneauth): it needs ``scheme://`` (``mysql+pymysql://``, ``rabbit://``)."""
    if not value or _URL_RE.match(value):
        return None
    if re.search(r"\s", value) and _URL_RE.match(re.sub(r"\s", "", value)):
        return f"{value!r} is not a URL: it contains white space"
    return (
        f"{value!r} is not a URL: it needs a scheme:// such as http://, "
        "mysql+pymysql:// or rabbit://"
    )


def _split_items(text: str, check: Callable[[str], str | None]) -> tuple[list[str], str | None]:
    """oslo's List/Dict splitting: on commas, re-joining parts the item rejects."""
    parts = text.split(",") if text else []
    items: list[str] = []
    while parts:
        item = parts.pop(0)
        first_error: str | None = None
        while True:
            error = check(item.strip())
            if error is None:
                break
            first_error = first_error or error
            if not parts:
                return items, first_error
            item += "," + parts.pop(0)
        items.append(item.strip())
    return items, None


def _check_list(spec: OptSpec, value: str) -> str | None:
    text = value.strip().rstrip(",")
    if spec.bounds:
        if not (text.startswith("[") and text.endswith("]")):
            return f"{value!r} must be enclosed in [ ]"
        text = text[1:-1]
    item_spec = spec.item or OptSpec(type="string")
    _, error = _split_items(text, lambda item: check_type(item_spec, item))
    return f"list item: {error}" if error else None


def _check_dict(spec: OptSpec, value: str) -> str | None:
    text = value.strip()
    if spec.bounds:
        if not (text.startswith("{") and text.endswith("}")):
            return f"{value!r} must be enclosed in {{ }}"
        text = text[1:-1]
    value_spec = spec.item or OptSpec(type="string")
    sep = spec.separator

    def check_pair(pair: str) -> str | None:
        if sep not in pair:
            return f"{pair!r} is not a KEY{sep}VALUE pair"
        return check_type(value_spec, pair.split(sep, 1)[1].strip())

    pairs, error = _split_items(text, check_pair)
    if error:
        return error
    keys = [pair.split(sep, 1)[0].strip() for pair in pairs]
    if "" in keys:
        return f"{value!r} has an empty key"
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        return f"{value!r} repeats the key {duplicates[0]!r}"
    return None


def _check_range(spec: OptSpec, value: str) -> str | None:
    match = re.match(r"^(0|-?[1-9][0-9]*)(?:-(0|-?[1-9][0-9]*))?$", value)
    if match is None:
        return f"{value!r} is not a range (N or N-M)"
    bounds = [int(match[1]), int(match[2] if match[2] is not None else match[1])]
    if spec.min is not None and min(bounds) < spec.min:
        return f"{value!r} goes below the minimum {_num(spec.min)}"
    if spec.max is not None and max(bounds) > spec.max:
        return f"{value!r} goes above the maximum {_num(spec.max)}"
    return None


def check_type(spec: OptSpec, value: str) -> str | None:
    """None if oslo.config would accept ``value`` for ``spec``, else why not."""
    if spec.unchecked is not None:
        return None
    kind = spec.type
    if kind == "string":
        error = _check_string(spec, value)
        if error is None and spec.format == "url":
            error = _check_url(value)
        return error
    if kind == "boolean":
        if value.lower() in _TRUE or value.lower() in _FALSE:
            return None
        return f"{value!r} is not a boolean (true/false, yes/no, on/off, 1/0)"
    if kind in ("integer", "port"):
        return _check_number(spec, value, int)
    if kind == "float":
        return _check_number(spec, value, float)
    if kind == "ip":
        return _check_ip(value, spec.version)
    if kind == "hostname":
        return _check_hostname(value)
    if kind in ("host_address", "host_domain"):
        return _check_host_address(spec, value)
    if kind == "uri":
        return _check_uri(spec, value)
    if kind == "list":
        return _check_list(spec, value)
    if kind == "dict":
        return _check_dict(spec, value)
    if kind == "range":
        return _check_range(spec, value)
    return None


def describe_type(spec: OptSpec) -> str:
    names = {
        "ip": "IP address",
        "host_address": "host address",
        "host_domain": "host address",
        "uri": "URI",
    }
    kind = names.get(spec.type, spec.type)
    if spec.type == "list" and spec.item is not None and spec.item.type != "string":
        kind = f"list of {names.get(spec.item.type, spec.item.type)}"
    return kind
