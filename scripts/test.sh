#!/usr/bin/env bash
# Runs every test, including those against the real MySQL and Mongo servers (which it starts).
# usage: scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/services.sh)"
# The HTML report test renders the page in headless Chromium (Debian's package).
if ! command -v chromium >/dev/null 2>&1; then
  echo "test.sh: installing chromium for the HTML report test" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq chromium >&2
fi
cargo test --all-targets "$@"
