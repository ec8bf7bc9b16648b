#!/usr/bin/env bash
# mypy --strict over the `oslab` namespace. The repo's folders map into it through setuptools'
# package-dir (lab/ -> oslab, networks/ -> oslab.networks, ...), which mypy cannot follow in an
# editable install, so check a temporary link tree with the same shape.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir "$tree/oslab"
for f in "$repo"/lab/*.py; do ln -s "$f" "$tree/oslab/"; done
for sub in networks kickstart install; do ln -s "$repo/$sub" "$tree/oslab/$sub"; done
for d in "$repo"/lab/*/; do
    if [ -e "$d/__init__.py" ]; then ln -s "${d%/}" "$tree/oslab/"; fi
done
cd "$tree"
exec "${MYPY:-mypy}" --config-file "$repo/pyproject.toml" -p oslab "$@"
