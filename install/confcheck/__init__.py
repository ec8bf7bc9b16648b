"""Check rendered OpenStack service config files against the release's option schema.

``schema`` loads the release's option schema, ``ini`` parses a file the way oslo.config
does, ``values`` checks one value against its option's type, and ``checker`` puts them
together: ``check_ini`` (text) and ``check_configs`` (every file ``oslab render --check``
wrote) return the problems. ``python -m oslab.install.confcheck FILE...`` checks files on disk
from the command line.
"""

from __future__ import annotations

from oslab.install.confcheck.checker import (
    Problem,
    check_configs,
    check_ini,
    format_problem,
)
from oslab.install.confcheck.schema import Schema, available_schemas, load_schema

__all__ = ["Problem", "Schema", "available_schemas", "check_configs", "check_ini",
           "format_problem", "load_schema"]
