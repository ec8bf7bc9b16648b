"""The order of steps: list order on each node, plus ``StepDef.after`` across nodes.

A step instance is ``(node, step name)``. It waits for the instance before it on its node and
for every instance of each step it names in ``after`` (on whichever nodes that step runs).
Before anything runs the graph is checked: duplicate names on a node, ``after`` naming a step
that no node has, and cycles are refused with the names involved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from oslab.errors import OslabError
from oslab.install.model import StepDef

Instance = tuple[str, str]  # (node, step name)


def where(steps: Mapping[str, Sequence[StepDef]]) -> dict[str, set[str]]:
    """Step name → the nodes it runs on."""
    out: dict[str, set[str]] = {}
    for node, lst in steps.items():
        for s in lst:
            out.setdefault(s.name, set()).add(node)
    return out


def edges(steps: Mapping[str, Sequence[StepDef]]) -> dict[Instance, list[Instance]]:
    """Instance → the instances that must wait for it."""
    nodes_of = where(steps)
    out: dict[Instance, list[Instance]] = {}
    for node, lst in steps.items():
        for i, s in enumerate(lst):
            me = (node, s.name)
            out.setdefault(me, [])
            if i + 1 < len(lst):
                out[me].append((node, lst[i + 1].name))
            for dep in s.after:
                for other in sorted(nodes_of.get(dep, ())):
                    out.setdefault((other, dep), []).append(me)
    return out


def check(steps: Mapping[str, Sequence[StepDef]]) -> None:
    """Refuse duplicate step names on a node, unknown ``after`` names and cycles."""
    nodes_of = where(steps)
    for node, lst in steps.items():
        seen: set[str] = set()
        for s in lst:
            if s.name in seen:
                raise OslabError(f"step {s.name} appears twice on node {node}",
                                 hint="step names must be unique on each node")
            seen.add(s.name)
            unknown = [d for d in s.after if d not in nodes_of]
            if unknown:
                raise OslabError(
                    f"step {s.name} (on {node}) waits for unknown step(s) "
                    + ", ".join(unknown),
                    hint="`after` must name steps that some node runs; check the spelling")
    cycle = find_cycle(edges(steps))
    if cycle:
        raise OslabError("the install steps wait for each other in a cycle: "
                         + " -> ".join(f"{s} ({n})" for n, s in cycle),
                         hint="remove one of these `after` names, or reorder the steps")


def find_cycle(graph: Mapping[Instance, Sequence[Instance]]) -> list[Instance]:
    """One cycle (first instance repeated at the end), or [] when there is none."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    for start in graph:
        if color[start] != white:
            continue
        path: list[Instance] = [start]
        iters = [iter(graph.get(start, ()))]
        color[start] = grey
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                color[path.pop()] = black
                iters.pop()
                continue
            state = color.get(nxt, white)
            if state == grey:
                return [*path[path.index(nxt):], nxt]
            if state == white:
                color[nxt] = grey
                path.append(nxt)
                iters.append(iter(graph.get(nxt, ())))
    return []


def forced_from(steps: Mapping[str, Sequence[StepDef]], name: str) -> set[Instance]:
    """``--from NAME``: every instance of step NAME, the steps after it on its nodes, and
    (transitively) every step that waits for one of those, and the steps after that."""
    nodes_of = where(steps)
    if name not in nodes_of:
        known = [s.name for lst in steps.values() for s in lst]
        raise OslabError(f"no install step is named {name!r}",
                         hint="steps: " + ", ".join(dict.fromkeys(known)) + " (`oslab plan`)")
    graph = edges(steps)
    todo = [(n, name) for n in sorted(nodes_of[name])]
    seen: set[Instance] = set(todo)
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def named(steps: Mapping[str, Sequence[StepDef]], name: str) -> list[str]:
    """The steps ``name`` means: the step of that name, or every step of that service
    (``glance`` is glance.keystone and glance.install), in their order on the nodes."""
    order = dict.fromkeys(s.name for lst in steps.values() for s in lst)
    found = [s for s in order if s == name or s.split(".", 1)[0] == name]
    if not found:
        services = dict.fromkeys(s.split(".", 1)[0] for s in order)
        raise OslabError(f"no install step or service is named {name!r}",
                         hint="services: " + ", ".join(services) + "; steps: "
                              + ", ".join(order) + " (`oslab plan`)")
    return found


def until(steps: Mapping[str, Sequence[StepDef]],
          name: str) -> tuple[dict[str, list[StepDef]], list[Instance]]:
    """``--until NAME``: each node's steps without those NAME means (a step, or a service's
    steps) and without every step that comes after one of them or waits for one (as
    ``--from`` would rerun them); and the instances of NAME's first step, which come next."""
    first = named(steps, name)
    cut: set[Instance] = set()
    for step in first:
        cut |= forced_from(steps, step)
    kept = {node: [s for s in lst if (node, s.name) not in cut] for node, lst in steps.items()}
    following = [(node, first[0]) for node in sorted(where(steps)[first[0]])]
    return kept, following
