#!/usr/bin/env bash
# Runs every test, including those against the real MySQL and Mongo servers (which it starts).
# usage: scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/services.sh)"
cargo test --all-targets "$@"
