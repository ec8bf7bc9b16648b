"""The options every `oslab` command takes (-f/--file, --lab, --uri, --debug) and what they
address: the spec, the lab's state, the libvirt connection, a node's SSH target."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

from oslab import spec as specmod
from oslab import spec_file
from oslab.access.state import LabState
from oslab.errors import OslabError, SpecError

if TYPE_CHECKING:
    from oslab.install.content import Content

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_URI = "qemu:///system"
URI_VARIABLE = "LIBVIRT_DEFAULT_URI"  # honoured as virsh does, when --uri is not given


def default_uri() -> str:
    return os.environ.get(URI_VARIABLE) or DEFAULT_URI


@dataclass
class Options:
    file: str | None = None
    lab: str | None = None
    uri: str = field(default_factory=default_uri)
    debug: bool = False
    content: Content | None = None  # the install content; None: oslab's own

    def spec(self) -> specmod.LabSpec:
        spec = spec_file.load(self.file)
        if self.lab and self.lab != spec.name:
            raise SpecError(f"--lab {self.lab} does not match the spec's lab.name {spec.name}",
                            hint="drop --lab, or pass the spec of that lab with -f")
        return spec

    def lab_name(self) -> str:
        """The lab addressed by --lab, else by the spec (-f, or the built-in default)."""
        return self.lab or self.spec().name

    def state(self) -> LabState:
        return LabState(self.lab_name())

    def connect(self) -> Any:
        from oslab.virt.lab_objects import connect
        return connect(self.uri)

    def install_content(self) -> Content:
        """The content given to these options, else oslab's own (oslab.install.services)."""
        if self.content is not None:
            return self.content
        from oslab.install.services import steps_for
        return steps_for


def global_options(fn: F) -> F:
    """-f/--file, --lab, --uri and --debug, accepted before or after the command name."""

    def store(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        opts = ctx.find_object(Options)
        if opts is None:
            opts = ctx.ensure_object(Options)
        if param.name == "lab" and value is not None and not specmod.valid_lab_name(value):
            # checked while parsing, before any file is read or removed
            raise SpecError(f"--lab {value!r} is not a valid lab name",
                            hint=specmod.LAB_NAME_HINT)
        if param.name == "uri" and value is not None and not value.strip():
            raise OslabError("--uri is empty",
                             hint=f"give a libvirt URI such as {DEFAULT_URI}, or leave --uri out")
        if param.name == "file" and value is not None and not value.strip():
            raise OslabError("-f/--file is empty",
                             hint="name a lab spec file, or leave -f out for the built-in lab")
        if value not in (None, False) and param.name is not None:
            setattr(opts, param.name, value)
        return value

    decorators = [
        click.option("-f", "--file", type=click.Path(dir_okay=False), expose_value=False,
                     callback=store, help="Lab spec (TOML). Default: the built-in lab."),
        click.option("--lab", expose_value=False, callback=store,
                     help="Address an existing lab by name (no spec needed)."),
        click.option("--uri", expose_value=False, callback=store,
                     help=f"libvirt URI. Default: ${URI_VARIABLE}, else {DEFAULT_URI}."),
        click.option("--debug", is_flag=True, expose_value=False, callback=store,
                     help="Show tracebacks."),
    ]
    for deco in reversed(decorators):
        fn = deco(fn)
    return fn


def pass_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(click.get_current_context().ensure_object(Options), *args, **kwargs)
    return wrapper


def lab_node(opts: Options, node: str) -> Any:
    """The addressed lab's ``node`` as libvirt knows it (its domain's facts), and how to SSH
    to it at the address its metadata holds; an error with the lab's nodes if it has none."""
    from oslab.virt.lab_objects import LabObjects

    state = opts.state()
    lab = opts.lab_name()
    domains = LabObjects(opts.connect(), lab).domains()
    found = [d for d in domains if d.meta.node == node]
    if not found:
        raise OslabError(f"lab {lab} has no node {node!r}",
                         hint="nodes: " + (", ".join(d.meta.node for d in domains) or "none"))
    target = state.target(node, found[0].meta.address)
    if target is None:
        raise OslabError(f"no SSH keys for node {node} in {state.dir}",
                         hint="they are made by `oslab up` on this host; pass the lab's spec "
                              "with -f, or the right --lab")
    return found[0], target

