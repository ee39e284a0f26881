#!/usr/bin/env bash
# The README's first command: install dependencies, build, and show
# enforcement on a small demo network that this script builds itself.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
make
make demo
