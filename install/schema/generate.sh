#!/usr/bin/env bash
# Regenerate install/schema/epoxy/*.json: the option schema of the OpenStack
# 2025.1 (Epoxy) service config files that oslab renders, used by
# oslab.install.confcheck to check rendered files before they are uploaded.
#
# Usage: install/schema/generate.sh [UPPER_CONSTRAINTS_FILE]
#
#   UPPER_CONSTRAINTS_FILE  the release's upper-constraints file; default
#                           install/schema/upper-constraints-2025.1.txt (a copy of
#                           ../shared/data/upper-constraints-2025.1.txt, kept in the repository).
#
# Environment:
#   PYTHON   interpreter for the throwaway venv (default python3; Epoxy
#            supports 3.9 to 3.12)
#   OUT_DIR  where the JSON goes (default install/schema/epoxy)
#   KEEP_TMP set to 1 to keep the temp dir (venv, raw YAML, logs) for debugging
#   SCHEMA_VENV  use this existing venv (with the packages above installed)
#            instead of creating one: for working on the post-processing
#
# What it does:
#   1. creates a throwaway venv in a temp dir (removed on exit);
#   2. pip-installs the Epoxy service packages (nova 31.x, keystone 27.x,
#      glance 30.x, placement 13.x, neutron 26.x, cinder 26.x) under the
#      release's upper-constraints, which pin all of their library deps
#      (oslo.*, keystonemiddleware, keystoneauth1, glance_store, ...). The
#      services themselves are not in upper-constraints, hence the ==N.*
#      specifiers. No system headers are needed on Python 3.11/x86_64: the
#      few sdists pip builds (ovs, rtslib-fb, ncclient, ...) are pure Python
#      or fall back to pure Python;
#   3. runs `oslo-config-generator --format yaml` once per config file with the
#      namespace list that the file's own project uses for its sample config
#      (copied from each project's oslo-config-generator config on the
#      stable/2025.1 branch, see NAMESPACES below);
#   4. post-processes the YAML into compact JSON (no help text, no defaults):
#      section -> option -> {type, choices, min, max, multi, required,
#      deprecated_names, deprecated_for_removal, ...}. Type details that the
#      YAML flattens into a display name (URI schemes, list item types, IP
#      version, string regex) are read from the same option objects;
#   5. adds keystoneauth1's `password` plugin options (auth_url, username,
#      password, project_name, user_domain_name, ...) plus auth_type and
#      auth_section to every section that registers keystoneauth's auth_type
#      or plugin options (e.g. [keystone_authtoken], nova's [placement],
#      [neutron], [cinder], [service_user], neutron's [nova] and [placement],
#      cinder's [nova]): those options are registered at run time for the
#      chosen plugin, so the generator cannot list them all;
#   6. records dynamic sections: a section named in glance's
#      [DEFAULT] enabled_backends (`name:type`) takes glance_store's options
#      for that store type (namespace glance.multi_store), glance's reserved
#      stores take the file store's options, a section named in cinder's
#      [DEFAULT] enabled_backends takes cinder's [backend_defaults] options,
#      and oslo.config's config_source sections take the sample source
#      options;
#   7. gives driver options (keystone's [token] provider, neutron's ml2
#      mechanism_drivers, interface_driver, ...) the entry point names that
#      the release's packages register as their choices (DRIVER_CHOICES);
#   8. marks string options that the services parse as URLs ([database]
#      connection, transport_url, auth_url, ...) with "format": "url".
#
# It takes a few minutes, most of it in pip.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
release="epoxy"
constraints="${1:-$repo/install/schema/upper-constraints-2025.1.txt}"
out_dir="${OUT_DIR:-$here/$release}"
python="${PYTHON:-python3}"

if [[ ! -r "$constraints" ]]; then
    echo "generate.sh: cannot read upper-constraints file: $constraints" >&2
    exit 2
fi
constraints="$(cd "$(dirname "$constraints")" && pwd)/$(basename "$constraints")"

# The release's service packages (not in upper-constraints: pin the series).
SERVICES=(
    'nova==31.*'
    'keystone==27.*'
    'glance==30.*'
    'openstack-placement==13.*'
    'neutron==26.*'
    'cinder==26.*'
)

# Config file -> oslo.config namespaces, in the order of each project's own
# generator config on stable/2025.1 (read from the sdists of nova 31.3.1,
# keystone 27.1.0, glance 30.2.0, placement 13.0.1, neutron 26.0.6 and
# cinder 26.3.0):
#   keystone: config-generator/keystone.conf
#   glance:   etc/oslo-config-generator/glance-api.conf
#   placement: etc/placement/config-generator.conf
#   nova:     etc/nova/nova-config-generator.conf (oslo.db deliberately left
#             out by nova: nova.conf registers [database]/[api_database])
#   neutron:  etc/oslo-config-generator/{neutron.conf,ml2_conf.ini,
#             openvswitch_agent.ini,l3_agent.ini,dhcp_agent.ini,
#             metadata_agent.ini}
#   cinder:   tools/config/cinder-config-generator.conf
FILES=(
    keystone.conf
    glance-api.conf
    placement.conf
    nova.conf
    neutron.conf
    ml2_conf.ini
    openvswitch_agent.ini
    l3_agent.ini
    dhcp_agent.ini
    metadata_agent.ini
    cinder.conf
)
declare -A NAMESPACES=(
    [keystone.conf]="keystone oslo.cache oslo.log oslo.messaging oslo.policy
        oslo.db oslo.middleware osprofiler"
    [glance-api.conf]="castellan.config glance.api glance.store os_brick
        glance.multi_store oslo.concurrency oslo.messaging oslo.db oslo.policy
        keystonemiddleware.auth_token oslo.limit oslo.log
        oslo.middleware.cors oslo.middleware.healthcheck
        oslo.middleware.http_proxy_to_wsgi oslo.reports"
    [placement.conf]="placement.conf keystonemiddleware.auth_token oslo.log
        oslo.middleware.cors oslo.middleware.http_proxy_to_wsgi oslo.policy
        osprofiler"
    [nova.conf]="nova.conf oslo.limit oslo.log oslo.messaging oslo.policy
        oslo.privsep oslo.service.periodic_task oslo.service.service
        oslo.middleware oslo.concurrency oslo.reports oslo.versionedobjects
        keystonemiddleware.auth_token osprofiler os_vif os_brick"
    [neutron.conf]="neutron neutron.agent neutron.db neutron.experimental
        neutron.extensions nova.auth ironic.auth placement.auth designate.auth
        oslo.log oslo.cache oslo.db oslo.policy oslo.privsep oslo.concurrency
        oslo.messaging oslo.middleware.cors oslo.middleware.healthcheck
        oslo.middleware.http_proxy_to_wsgi oslo.reports
        oslo.service.periodic_task oslo.service.service oslo.service.sslutils
        oslo.service.wsgi oslo.versionedobjects keystonemiddleware.auth_token
        osprofiler"
    [ml2_conf.ini]="neutron.ml2 neutron.ml2.ovn oslo.log"
    [openvswitch_agent.ini]="neutron.ml2.ovs.agent oslo.log"
    [l3_agent.ini]="neutron.az.agent neutron.base.agent neutron.l3.agent
        oslo.log"
    [dhcp_agent.ini]="neutron.az.agent neutron.base.agent neutron.dhcp.agent
        oslo.log"
    [metadata_agent.ini]="neutron.metadata.agent oslo.log oslo.cache"
    [cinder.conf]="castellan.config cinder keystonemiddleware.auth_token
        osprofiler oslo.config oslo.concurrency oslo.db oslo.log oslo.messaging
        oslo.middleware oslo.policy oslo.privsep oslo.reports
        oslo.service.periodic_task oslo.service.service oslo.service.sslutils
        oslo.service.wsgi oslo.versionedobjects os_brick"
)

# Sections that must come out of post-processing with keystoneauth's password
# plugin options; post-processing fails if one is missing.
declare -A AUTH_SECTIONS=(
    [nova.conf]="keystone_authtoken placement neutron cinder service_user keystone"
    [neutron.conf]="keystone_authtoken nova placement"
    [cinder.conf]="keystone_authtoken nova service_user"
    [glance-api.conf]="keystone_authtoken"
    [placement.conf]="keystone_authtoken"
)

# Driver options whose value names a stevedore entry point: the names the
# release's packages register become the option's choices (entry points of
# test modules left out). "class" marks options that also take a Python class
# path (neutron's load_class_by_alias_or_classname). Columns: file section
# option entry-point-group [class].
DRIVER_CHOICES=(
    "keystone.conf token provider keystone.token.provider"
    "keystone.conf credential provider keystone.credential.provider"
    "keystone.conf receipt provider keystone.receipt.provider"
    "keystone.conf identity driver keystone.identity"
    "keystone.conf assignment driver keystone.assignment"
    "keystone.conf resource driver keystone.resource"
    "keystone.conf catalog driver keystone.catalog"
    "keystone.conf credential driver keystone.credential"
    "keystone.conf role driver keystone.role"
    "keystone.conf federation driver keystone.federation"
    "keystone.conf oauth1 driver keystone.oauth1"
    "keystone.conf policy driver keystone.policy"
    "keystone.conf revoke driver keystone.revoke"
    "keystone.conf trust driver keystone.trust"
    "keystone.conf application_credential driver keystone.application_credential"
    "keystone.conf unified_limit driver keystone.unified_limit"
    "keystone.conf endpoint_filter driver keystone.endpoint_filter"
    "keystone.conf endpoint_policy driver keystone.endpoint_policy"
    "keystone.conf identity_mapping driver keystone.identity.id_mapping"
    "keystone.conf identity_mapping generator keystone.identity.id_generator"
    "keystone.conf shadow_users driver keystone.identity.shadow_users"
    "keystone.conf domain_config driver keystone.resource.domain_config"
    "neutron.conf DEFAULT core_plugin neutron.core_plugins class"
    "neutron.conf DEFAULT service_plugins neutron.service_plugins class"
    "neutron.conf DEFAULT interface_driver neutron.interface_drivers class"
    "ml2_conf.ini ml2 type_drivers neutron.ml2.type_drivers"
    "ml2_conf.ini ml2 mechanism_drivers neutron.ml2.mechanism_drivers"
    "ml2_conf.ini ml2 extension_drivers neutron.ml2.extension_drivers"
    "ml2_conf.ini securitygroup firewall_driver neutron.agent.firewall_drivers class"
    "openvswitch_agent.ini securitygroup firewall_driver neutron.agent.firewall_drivers class"
    "openvswitch_agent.ini agent extensions neutron.agent.l2.extensions"
    "l3_agent.ini DEFAULT interface_driver neutron.interface_drivers class"
    "l3_agent.ini agent extensions neutron.agent.l3.extensions"
    "dhcp_agent.ini DEFAULT interface_driver neutron.interface_drivers class"
)

# String options (for oslo.config) that the service parses as a URL, so a
# missing scheme:// breaks it (SQLAlchemy's database URL, oslo.messaging's
# transport URL, keystoneauth's endpoints). They get "format": "url".
URL_OPTIONS="connection slave_connection transport_url auth_url www_authenticate_uri
    auth_uri endpoint_override"

if ! "$python" -c 'import sys; sys.exit(not ((3, 9) <= sys.version_info[:2] <= (3, 12)))'; then
    echo "generate.sh: $python is not Python 3.9-3.12, which Epoxy supports; set PYTHON" >&2
    exit 2
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/oslab-schema.XXXXXX")"
cleanup() {
    if [[ "${KEEP_TMP:-0}" == 1 ]]; then
        echo "generate.sh: kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT

start=$SECONDS
if [[ -n "${SCHEMA_VENV:-}" ]]; then
    venv="$SCHEMA_VENV"
    echo "generate.sh: reusing $venv (SCHEMA_VENV)" >&2
else
    venv="$tmp/venv"
    echo "generate.sh: creating venv in $venv" >&2
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    echo "generate.sh: installing ${SERVICES[*]} under $(basename "$constraints")" >&2
    if ! "$venv/bin/python" -m pip install --disable-pip-version-check \
            -c "$constraints" "${SERVICES[@]}" >"$tmp/pip.log" 2>&1; then
        tail -n 40 "$tmp/pip.log" >&2
        echo "generate.sh: pip install failed (log above)" >&2
        exit 1
    fi
    echo "generate.sh: installed in $((SECONDS - start))s" >&2
fi
venv_python="$venv/bin/python"

# Post-processor: one process per config file, since importing several
# projects' option modules into one interpreter collides on oslo.config's
# global CONF (nova and neutron both register [DEFAULT] backlog, ...).
cat >"$tmp/postprocess.py" <<'PY'
"""Post-process oslo-config-generator YAML into compact schema JSON."""

import importlib.metadata as md
import json
import os
import platform
import sys

import oslo_config.types as T
import yaml
from keystoneauth1 import loading as ks_loading
from oslo_config import generator

(filename, ns_text, auth_text, drivers_path, url_text, yaml_path, out_dir,
 release, constraints_name) = sys.argv[1:10]
URL_OPTIONS = set(url_text.split())

FORMAT = 1
# glance/common/wsgi_app.py RESERVED_STORES: glance always registers these
# stores, with the file store's options.
GLANCE_RESERVED_STORES = {"os_glance_staging_store": "file",
                          "os_glance_tasks_store": "file"}
KSA_PLUGIN = "password"


def norm_group(group):
    if group is None:
        return "DEFAULT"
    name = group if isinstance(group, str) else group.name
    return name if name == "DEFAULT" else name.lower()


def version_of(checker):
    name = getattr(checker, "__name__", "")
    return {"_check_ipv4": 4, "_check_ipv6": 6}.get(name)


def type_info(t):
    """Schema dict for an oslo.config type object (or a bare callable)."""
    if isinstance(t, T.String):  # includes MultiString
        info = {"type": "string"}
        if t.choices is not None:
            info["choices"] = list(t.choices)
        if t.ignore_case:
            info["ignore_case"] = True
        if t.regex is not None:
            info["regex"] = t.regex.pattern
        if t.max_length:
            info["max_length"] = t.max_length
        if t.quotes:
            info["quotes"] = True
        return info
    if isinstance(t, T.Boolean):
        return {"type": "boolean"}
    if isinstance(t, T.Number):
        if isinstance(t, T.Port):
            kind = "port"
        elif isinstance(t, T.Integer):
            kind = "integer"
        else:
            kind = "float"
        info = {"type": kind}
        if t.choices is not None:
            info["choices"] = list(t.choices)
        if t.min is not None:
            info["min"] = t.min
        if t.max is not None:
            info["max"] = t.max
        return info
    if isinstance(t, T.List):
        info = {"type": "list", "item": type_info(t.item_type)}
        if t.bounds:
            info["bounds"] = True
        return info
    if isinstance(t, T.Dict):
        info = {"type": "dict", "value": type_info(t.value_type)}
        if t.bounds:
            info["bounds"] = True
        if t.key_value_separator != ":":
            info["separator"] = t.key_value_separator
        return info
    if isinstance(t, T.Range):
        info = {"type": "range"}
        if t.min is not None:
            info["min"] = t.min
        if t.max is not None:
            info["max"] = t.max
        return info
    if isinstance(t, T.HostAddress):  # includes HostDomain
        kind = "host_domain" if isinstance(t, T.HostDomain) else "host_address"
        info = {"type": kind}
        version = version_of(t.ip_address.version_checker)
        if version:
            info["version"] = version
        return info
    if isinstance(t, T.IPAddress):
        info = {"type": "ip"}
        version = version_of(t.version_checker)
        if version:
            info["version"] = version
        return info
    if isinstance(t, T.Hostname):
        return {"type": "hostname"}
    if isinstance(t, T.URI):
        info = {"type": "uri"}
        if t.schemes:
            info["schemes"] = list(t.schemes)
        if t.max_length:
            info["max_length"] = t.max_length
        return info
    builtin = {str: "string", int: "integer", float: "float", bool: "boolean"}
    if t in builtin:
        return {"type": builtin[t]}
    # A project-specific type the checker cannot reproduce: accept any value.
    name = getattr(t, "type_name", None) or getattr(t, "__qualname__", type(t).__name__)
    return {"type": "string", "unchecked": name}


def opt_entry(opt, group, yaml_entry=None):
    """Schema dict for one option (oslo Opt object + its generator YAML)."""
    info = type_info(opt.type)
    if opt.multi:
        info["multi"] = True
    if opt.required and opt.default is None:
        info["required"] = True
    deprecated = []
    if yaml_entry is not None:
        pairs = [(d["group"], d["name"]) for d in yaml_entry["deprecated_opts"]]
        removal = yaml_entry["deprecated_for_removal"]
        since = yaml_entry["deprecated_since"]
    else:
        pairs = [(d.group or group, d.name) for d in opt.deprecated_opts
                 if d.name and "-" not in d.name]
        removal = opt.deprecated_for_removal
        since = opt.deprecated_since
    for dgroup, dname in pairs:
        pair = [norm_group(dgroup or group), (dname or opt.dest).replace("-", "_")]
        if pair != [group, opt.dest] and pair not in deprecated:
            deprecated.append(pair)
    if deprecated:
        info["deprecated_names"] = deprecated
    if removal:
        info["deprecated_for_removal"] = True
        if since:
            info["deprecated_since"] = str(since)
    return info


def dist_versions(namespaces):
    """namespace -> 'dist==version' for the distributions providing them."""
    found = {}
    for ep in md.entry_points(group="oslo.config.opts"):
        if ep.name in namespaces and ep.dist is not None:
            found[ep.dist.metadata["Name"]] = ep.dist.version
    return found


def glance_store_types():
    """entry name (lower) -> canonical store type, from glance_store.drivers.

    glance_store.multi_backend lists each driver's options under its first
    entry name in sorted order (the YAML section name) and registers them for
    a backend only if the backend's type is a substring of that name: so
    "http" and "glance.store.http.Store" both work, but for the file store
    only "file" does ("glance.store.filesystem.Store" is not in "file").
    """
    by_value = {}
    for ep in md.entry_points(group="glance_store.drivers"):
        if "tests" in ep.value:
            continue
        by_value.setdefault(ep.value, []).append(ep.name)
    names = {}
    for entries in by_value.values():
        key = sorted(entries)[0]
        usable = [n for n in entries if n in key]
        canonical = min(usable, key=lambda n: (len(n), n))
        for name in entries:
            names[name.lower()] = (canonical.lower(), name in usable)
    return names


def dump(schema):
    """Compact JSON with one option per line, for readable diffs."""
    def one(value):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)

    def options_block(options, indent):
        pad = " " * indent
        rows = [f"{pad}{one(name)}:{one(spec)}" for name, spec in options.items()]
        return "{\n" + ",\n".join(rows) + "\n" + " " * (indent - 1) + "}"

    def sections_block(sections, indent):
        pad = " " * indent
        rows = [f"{pad}{one(name)}:{options_block(opts, indent + 1)}"
                for name, opts in sections.items()]
        return "{\n" + ",\n".join(rows) + "\n" + " " * (indent - 1) + "}"

    lines = []
    for key, value in schema.items():
        if key == "sections":
            lines.append(f" {one(key)}:{sections_block(value, 2)}")
        elif key == "dynamic_sections":
            rules = []
            for rule in value:
                head = {k: v for k, v in rule.items() if k != "templates"}
                if "templates" in rule:
                    body = sections_block(rule["templates"], 4)
                    rules.append("  {" + one(head)[1:-1] + ',"templates":' + body + "}")
                else:
                    rules.append("  " + one(head))
            lines.append(f" {one(key)}:[\n" + ",\n".join(rules) + "\n ]")
        else:
            lines.append(f" {one(key)}:{one(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def sort_sections(sections):
    ordered = {}
    for name in sorted(sections, key=lambda n: (n != "DEFAULT", n)):
        ordered[name] = dict(sorted(sections[name].items()))
    return ordered


ksa_opts = (ks_loading.get_auth_common_conf_options()
            + ks_loading.get_auth_plugin_conf_options(KSA_PLUGIN))
store_types = glance_store_types()

namespaces = ns_text.split()
required_auth = auth_text.split()
with open(yaml_path) as handle:
    data = yaml.safe_load(handle)

# The option objects behind the YAML, for the type details it flattens.
objects = {}
for _ns, groups in generator._list_opts(namespaces):
    for group, opts in groups:
        for opt in opts:
            objects.setdefault((norm_group(group), opt.dest), opt)

sections = {}
dynamic_groups = {}   # owner option -> {template name: options}
store_templates = {}  # glance store type -> options
ksa_groups = set()    # sections that load a keystoneauth plugin
for raw_group, group_data in data["options"].items():
    group = norm_group(raw_group)
    for entry in group_data["opts"]:
        dest = entry["dest"]
        opt = objects.get((group, dest))
        if opt is None:
            sys.exit(f"{filename}: [{group}] {dest} in YAML but not in _list_opts")
        spec = opt_entry(opt, group, entry)
        if (dest == "auth_type" and any(
                d["name"] == "auth_plugin" for d in entry["deprecated_opts"])) or (
                dest == "auth_url" and entry["name"] == "auth-url"):
            ksa_groups.add(group)
        if (entry["namespace"] == "glance.multi_store" and group != "glance_store"
                and group in store_types):
            store_templates.setdefault(store_types[group][0], {})[dest] = spec
        elif group_data.get("dynamic_group_owner"):
            owner = group_data["dynamic_group_owner"]
            dynamic_groups.setdefault(owner, {}).setdefault("*", {})[dest] = spec
        else:
            sections.setdefault(group, {})[dest] = spec

# keystoneauth plugin options for every section that loads an auth plugin.
# keystoneauth's options are recognisable: its auth_type has the deprecated
# name auth_plugin and its plugin options are named with dashes (auth-url)
# where castellan's look-alike [key_manager] options are not.
auth_sections = sorted(ksa_groups)
for group in auth_sections:
    for opt in ksa_opts:
        sections[group].setdefault(opt.dest, opt_entry(opt, group))
missing = [g for g in required_auth if g not in auth_sections]
if missing:
    sys.exit(f"{filename}: expected auth sections not found: {missing}")

# Options parsed as URLs by the services.
for opts in [*sections.values(), *store_templates.values()]:
    for dest, spec in opts.items():
        if dest in URL_OPTIONS and spec["type"] == "string" and "choices" not in spec:
            spec["format"] = "url"

# Driver options: the entry point names become the choices.
with open(drivers_path) as handle:
    for line in handle:
        fields = line.split()
        if not fields or fields[0] != filename:
            continue
        _file, section, option, ep_group = fields[:4]
        names = sorted({ep.name for ep in md.entry_points(group=ep_group)
                        if ".tests." not in ep.value})
        spec = sections.get(section, {}).get(option)
        if spec is None or not names:
            sys.exit(f"{filename}: driver option [{section}] {option} or entry "
                     f"points {ep_group} not found")
        target = spec["item"] if spec["type"] == "list" else spec
        if target["type"] != "string" or "choices" in target:
            sys.exit(f"{filename}: [{section}] {option} is not a plain string option")
        target["choices"] = names
        target["entry_points"] = ep_group
        if fields[4:] == ["class"]:
            target["class_path_ok"] = True

dynamic = []
if store_templates:
    for reserved, kind in GLANCE_RESERVED_STORES.items():
        sections[reserved] = dict(store_templates[kind])
    aliases = {name: kind for name, (kind, usable) in store_types.items()
               if usable and name != kind}
    dynamic.append({
        "owner": ["DEFAULT", "enabled_backends"],
        "item": "name:type",
        "doc": ("glance multi-store: each NAME:TYPE of [DEFAULT] enabled_backends "
                "names a section [NAME] that takes glance_store's options for "
                "store TYPE (namespace glance.multi_store)"),
        "aliases": dict(sorted(aliases.items())),
        "templates": sort_sections(store_templates),
    })
if filename == "cinder.conf":
    dynamic.append({
        "owner": ["DEFAULT", "enabled_backends"],
        "item": "name",
        "doc": ("cinder: each NAME in [DEFAULT] enabled_backends names a backend "
                "section [NAME] that takes the [backend_defaults] options"),
        "like_section": "backend_defaults",
    })
for owner, templates in sorted(dynamic_groups.items()):
    dynamic.append({
        "owner": ["DEFAULT", owner],
        "item": "name",
        "doc": (f"oslo.config: each NAME in [DEFAULT] {owner} names a section "
                "[NAME] that takes these options"),
        "templates": sort_sections(templates),
    })

versions = dist_versions(namespaces)
versions["oslo.config"] = md.version("oslo.config")
if auth_sections:
    versions["keystoneauth1"] = md.version("keystoneauth1")
schema = {
    "format": FORMAT,
    "release": release,
    "file": filename,
    "generated_by": dict(sorted(versions.items(), key=lambda kv: kv[0].lower())),
    "constraints": constraints_name,
    "python": platform.python_version(),
    "namespaces": namespaces,
    "auth_sections": auth_sections,
    "auth_plugin": KSA_PLUGIN,
    "sections": sort_sections(sections),
    "dynamic_sections": dynamic,
}
path = os.path.join(out_dir, filename + ".json")
with open(path, "w") as handle:
    handle.write(dump(schema))
count = sum(len(v) for v in sections.values())
print(f"generate.sh: wrote {path} ({len(sections)} sections, {count} options)",
      file=sys.stderr)
PY

mkdir -p "$tmp/yaml" "$out_dir"
printf '%s\n' "${DRIVER_CHOICES[@]}" >"$tmp/drivers.txt"
for file in "${FILES[@]}"; do
    read -r -a namespaces <<<"$(echo "${NAMESPACES[$file]}" | tr -s ' \n' '  ')"
    args=()
    for ns in "${namespaces[@]}"; do
        args+=(--namespace "$ns")
    done
    echo "generate.sh: oslo-config-generator for $file (${#namespaces[@]} namespaces)" >&2
    if ! "$venv/bin/oslo-config-generator" --format yaml "${args[@]}" \
            --output-file "$tmp/yaml/$file.yaml" >"$tmp/yaml/$file.log" 2>&1; then
        cat "$tmp/yaml/$file.log" >&2
        echo "generate.sh: oslo-config-generator failed for $file" >&2
        exit 1
    fi
    if ! "$venv_python" "$tmp/postprocess.py" "$file" "${namespaces[*]}" \
            "${AUTH_SECTIONS[$file]:-}" "$tmp/drivers.txt" "$URL_OPTIONS" \
            "$tmp/yaml/$file.yaml" \
            "$out_dir" "$release" \
            "$(basename "$constraints")" 2>"$tmp/yaml/$file.post.log"; then
        cat "$tmp/yaml/$file.post.log" >&2
        echo "generate.sh: post-processing failed for $file" >&2
        exit 1
    fi
    grep '^generate.sh:' "$tmp/yaml/$file.post.log" >&2 || true
done

echo "generate.sh: done in $((SECONDS - start))s" >&2
