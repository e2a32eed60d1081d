#!/usr/bin/env bash
# Runs every test, including those against the real MySQL and Mongo servers (which it starts),
# after fuzzing the notification parser briefly.
# usage: scripts/test.sh [extra cargo test arguments]
#   SES_REPORT_FUZZ_SECONDS (default 30): how long to fuzz each of the two targets; 0 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/services.sh)"
# Debian packages some tests need, installed under Debian's policy-rc.d convention (exit 101:
# no service may start), so that a package with a daemon (prometheus, stunnel4) starts nothing
# that would have to be stopped. An existing policy file is left as it is.
install_quietly() {
  echo "test.sh: installing $* for the tests" >&2
  export DEBIAN_FRONTEND=noninteractive
  local policy=/usr/sbin/policy-rc.d ours=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && ours=1
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq >&2 && apt-get install -y -qq "$@" >&2
  if [ -n "$ours" ]; then rm -f "$policy"; trap - EXIT; fi
}
# The HTML report test renders the page in headless Chromium.
command -v chromium >/dev/null 2>&1 || install_quietly chromium
# The metrics test validates the textfile with Prometheus's own promtool.
command -v promtool >/dev/null 2>&1 || install_quietly prometheus
# The TLS tests make their own CA (openssl) and put a TLS terminator (stunnel) in front of the
# Mongo stand-in; their private MariaDB comes with mariadb-server (services.sh).
command -v openssl >/dev/null 2>&1 || install_quietly openssl
command -v stunnel4 >/dev/null 2>&1 || command -v stunnel >/dev/null 2>&1 || install_quietly stunnel4
fuzz_seconds=${SES_REPORT_FUZZ_SECONDS:-30}
if [ "$fuzz_seconds" -gt 0 ]; then
  # cargo-fuzz with --sanitizer none builds on stable Rust; new inputs go to a scratch corpus.
  command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
  corpus=$(mktemp -d)
  trap 'rm -rf "$corpus"' EXIT
  # Two targets: the whole reading path must never panic; the two record parsers must agree.
  for target in parse_notification parsers_agree; do
    echo "test.sh: fuzzing $target for ${fuzz_seconds}s" >&2
    mkdir -p "$corpus/$target"
    cargo fuzz run "$target" --sanitizer none \
      "$corpus/$target" "fuzz/corpus/$target" -- -max_total_time="$fuzz_seconds" 2>&1 | tail -3
    echo "fuzz $target: ok (no crash in ${fuzz_seconds}s)"
  done
fi

# Last, so that the test runner's summary closes the output.
cargo test --workspace --all-targets "$@"
