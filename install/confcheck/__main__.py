"""``python -m oslab.install.confcheck FILE...``: check config files on disk."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from oslab.install.confcheck.checker import Problem, check_ini, format_problem
from oslab.install.confcheck.schema import load_schema


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m oslab.install.confcheck",
        description="Check OpenStack service config files against the release's option schema.",
    )
    parser.add_argument("--release", default="epoxy")
    parser.add_argument("--as", dest="schema_name", help="schema to use (default: the file's name)")
    parser.add_argument(
        "--warn-deprecated",
        action="store_true",
        help="also warn about options deprecated for removal",
    )
    parser.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    errors = 0
    for name in args.files:
        path = Path(name)
        try:
            schema = load_schema(args.release, args.schema_name or path.name)
        except (FileNotFoundError, ValueError) as exc:
            print(f"{path}: {exc} (use --as NAME)", file=sys.stderr)
            return 2
        problems: Iterable[Problem] = check_ini(
            path.read_text(encoding="utf-8"),
            schema,
            str(path),
            warn_deprecated_for_removal=args.warn_deprecated,
        )
        for problem in problems:
            print(format_problem(problem))
            errors += problem.severity == "error"
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
