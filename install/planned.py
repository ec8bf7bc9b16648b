"""A plan is data: per node, in order, each step with the commands it would run now, or "no
change" with the reasons. Everything in it is already masked (``***``); ``render`` prints it."""

from __future__ import annotations

from dataclasses import dataclass

from oslab.install.model import StepDef
from oslab.install.ops import Action, Secrets


@dataclass(frozen=True)
class PlannedAction:
    kind: str
    summary: str
    command: str = ""  # "" for uploads: the summary says path, mode, owner and size
    stdin: str = ""  # SQL batches
    unless: str = ""  # the guard whose failure makes the command run


@dataclass(frozen=True)
class PlannedStep:
    name: str
    title: str
    actions: tuple[PlannedAction, ...]
    reasons: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    checkpoint: str = ""
    notes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.actions)


@dataclass(frozen=True)
class NodePlan:
    node: str
    fresh: bool  # True: facts assumed blank; False: read from the node
    steps: tuple[PlannedStep, ...]

    @property
    def changes(self) -> int:
        return sum(len(s.actions) for s in self.steps)


@dataclass(frozen=True)
class Plan:
    lab: str
    nodes: tuple[NodePlan, ...]

    @property
    def changes(self) -> int:
        return sum(n.changes for n in self.nodes)


def planned_action(action: Action, secrets: Secrets) -> PlannedAction:
    return PlannedAction(
        kind=action.kind.value,
        summary=secrets.mask(action.summary),
        command="" if action.upload is not None else secrets.mask(action.command),
        stdin=secrets.mask(action.stdin or ""),
        unless=secrets.mask(action.unless),
    )


def planned_step(step: StepDef, actions: list[Action], reasons: list[str], secrets: Secrets,
                 notes: tuple[str, ...] = ()) -> PlannedStep:
    return PlannedStep(
        name=step.name, title=secrets.mask(step.title),
        actions=tuple(planned_action(a, secrets) for a in actions),
        reasons=tuple(secrets.mask(r) for r in reasons),
        after=step.after, checkpoint=step.checkpoint,
        notes=tuple(secrets.mask(n) for n in notes),
    )


def _block(prefix: str, text: str, indent: str) -> list[str]:
    lines = text.rstrip("\n").splitlines() or [""]
    return [indent + prefix + lines[0]] + [indent + " " * len(prefix) + ln for ln in lines[1:]]


def render(plan: Plan) -> str:
    out: list[str] = []
    for node in plan.nodes:
        changed = sum(1 for s in node.steps if s.changed)
        source = ("fresh: a blank node assumed" if node.fresh
                  else "facts read from the node now")
        out.append(f"{node.node}: {len(node.steps)} steps, {changed} with changes, "
                   f"{node.changes} commands ({source})")
        for i, step in enumerate(node.steps, 1):
            head = f"  {i:>2}. {step.name}: {step.title}"
            if step.after:
                head += f"  [after {', '.join(step.after)}]"
            out.append(head)
            for note in step.notes:
                out.append(f"        note: {note}")
            for a in step.actions:
                out.append(f"      - {a.summary}")
                if a.unless:
                    out += _block("unless: ", a.unless, "          ")
                if a.command:
                    out += _block("$ ", a.command, "          ")
                if a.stdin:
                    out += _block("< ", a.stdin, "          ")
            if not step.actions:
                out.append("      no change: " + ("; ".join(step.reasons) or "nothing to do"))
            if step.checkpoint:
                out.append(f"      then checkpoint auto-{step.checkpoint} (once every node "
                           "has this step)")
        out.append("")
    out.append(f"{plan.changes} commands in all" if plan.changes
               else "no changes: every step is done")
    return "\n".join(out) + "\n"
