#!/usr/bin/env bash
# Counts ses-report's own CPU work on a fixed day, deterministically: the instructions of the
# ses-report process (valgrind's callgrind; MariaDB is another process and is not counted) for
# an NDJSON ingest of a generated day into a fresh database. Machine noise does not move the
# count, so a change's cost shows even where wall time cannot (BENCHMARKS.md, "CPU per event").
#
# usage: scripts/cpu.sh [N] [--keep FILE]   (N notifications, default 10000)
#   --keep FILE: keep the callgrind profile there (callgrind_annotate FILE shows where it goes)
# Note: valgrind's CPU hides SHA extensions, so SHA-256 (the detail rows' key digests) runs in
# software here and counts several times what it costs on a CPU with them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
caller=$PWD
n=10000; keep=""
usage() { echo "usage: scripts/cpu.sh [N] [--keep FILE]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --keep) [ $# -ge 2 ] || usage; keep=$2; [[ $keep == /* ]] || keep="$caller/$keep"; shift ;;
    ''|*[!0-9]*) usage ;;
    *) n=$1 ;;
  esac
  shift
done
cd "$root"
eval "$(scripts/services.sh)"
command -v valgrind >/dev/null 2>&1 || {
  echo "cpu.sh: installing valgrind" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq valgrind >&2
}
mysql_cli=$(command -v mariadb || command -v mysql)
work="$root/.services/cpu"
mkdir -p "$work"
data="$work/day-$n.ndjson" users="$work/auth_users.sql"

echo "== building (release)" >&2
cargo build --release --quiet --bins
cargo build --release --quiet -p ses-fixtures
bin="${CARGO_TARGET_DIR:-$root/target}/release"
[ -s "$data" ] || "$bin/ses-fixtures" generate --notifications "$n" --users 10000 --string-timestamps 0 \
  --malformed 6 --seed 1 --date 2026-11-27 --out "$data" --users-sql "$users" >&2

db=ses_report_cpu
"$mysql_cli" -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS $db"
export SES_REPORT_MYSQL_URL="mysql://root@127.0.0.1:3306/$db" RUST_LOG=warn
# Under valgrind a batch takes many times longer: give MySQL reads room.
export SES_REPORT_IO_TIMEOUT_SECS=600
"$bin/ses-report" migrate >/dev/null
"$mysql_cli" -h127.0.0.1 -uroot "$db" < "$users"
profile="${keep:-$work/callgrind.out}"
echo "== callgrind: ses-report ingest --file $(basename "$data")" >&2
set +e
valgrind --tool=callgrind --callgrind-out-file="$profile" \
  "$bin/ses-report" ingest --file "$data" --quiet >/dev/null 2>"$work/err.txt"
code=$?
set -e
if [ "$code" -ne 0 ] && [ "$code" -ne 3 ]; then
  echo "cpu.sh: the ingest failed with exit code $code:" >&2; tail -5 "$work/err.txt" >&2; exit 1
fi
"$mysql_cli" -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS $db"
total=$(sed -n 's/^summary: \([0-9]*\)$/\1/p' "$profile")
events=$(grep -c . "$data")
echo "ses-report CPU: N=$n notifications ($events lines), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
awk -v t="$total" -v e="$events" 'BEGIN { printf "instructions %d (%.1f M), per notification %.0f\n", t, t / 1e6, t / e }'
