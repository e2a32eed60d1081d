#!/usr/bin/env bash
# Builds the Debian package (cargo-deb) into target/debian/: /usr/bin/ses-report, the systemd
# units in /lib/systemd/system, /etc/ses-report.env (mode 0600, a conffile) and the README.
# usage: scripts/package.sh          prints the path of the .deb on its last line
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo-deb >/dev/null 2>&1; then
  echo "package.sh: installing cargo-deb" >&2
  cargo install cargo-deb --locked --quiet
fi
# dpkg-deb and dpkg-shlibdeps ($auto dependencies) come from dpkg-dev.
if ! command -v dpkg-shlibdeps >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq dpkg-dev >&2
fi
cargo deb -p ses-report --quiet 2>&1 | tail -1 >&2
# sed reads to the end (no SIGPIPE for ls under pipefail, as `| head` could give).
ls -t "${CARGO_TARGET_DIR:-target}"/debian/ses-report_*.deb | sed -n 1p
