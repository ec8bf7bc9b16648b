"""Fixtures of the integration tests (the rest are in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.conftest import Lab, LabFactory


@pytest.fixture(scope="module")
def lab(make_module_lab: LabFactory) -> Lab:
    """A 2-node lab of the test guest, provisioned (no OpenStack), shared by a module's tests."""
    lab = make_module_lab(nodes=2)
    lab.run("up", "--stage", "provision")
    return lab
