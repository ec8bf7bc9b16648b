"""`oslab.virt.at_once`: every node is tried, and every node's error is kept and named."""

from __future__ import annotations

import libvirt
import pytest

from oslab.errors import OslabError
from oslab.virt import at_once


class Boom(OslabError):
    pass


def act(item: str) -> str:
    if item == "lv":
        raise libvirt.libvirtError("domain is not running")
    if item == "os":
        raise OslabError("its disk is gone", hint="look at the pool")
    if item == "bug":
        raise ValueError("a bug")
    return item.upper()


def test_each_keeps_every_result_and_error_in_order() -> None:
    got = at_once.each(act, ["a", "lv", "b", "os"])
    assert [item for item, _r in got] == ["a", "lv", "b", "os"]
    assert got[0][1] == "A" and got[2][1] == "B"
    assert isinstance(got[1][1], libvirt.libvirtError) and isinstance(got[3][1], OslabError)


def test_every_names_each_failure_with_the_first_ones_hint() -> None:
    tried: list[str] = []

    def fn(item: str) -> str:
        tried.append(item)
        return act(item)

    with pytest.raises(Boom) as caught:
        at_once.every(fn, ["lv", "a", "os"], who=lambda i: f"node-{i}",
                      doing=lambda i: f"pausing {i}", error=Boom, hint="the default hint")
    assert sorted(tried) == ["a", "lv", "os"]  # a failure stops no other node
    assert caught.value.message == ("node-lv: libvirt failed while pausing lv: domain is not "
                                    "running; node-os: its disk is gone")
    assert caught.value.hint == "look at the pool"
    assert at_once.every(act, ["a", "b"], who=str, doing=str, error=Boom, hint="") == ["A", "B"]


def test_a_bug_is_not_swallowed() -> None:
    with pytest.raises(ValueError, match="a bug"):
        at_once.each(act, ["a", "bug"])
