#!/usr/bin/env bash
# Measures ses-report against the old Node job on the same generated day.
#
# usage: scripts/bench.sh [N] [--no-baseline] [--large M] [--runs K] [--compare FILE]
#   (N notifications, default 100000)
#
# Generates N realistic notifications (ses-fixtures generate: every event type, ~2.5 per mail,
# half with a user_id header, SNS retries, a 10k-user auth_users, 6 malformed records), loads them
# into the Mongo wire server with Timestamp as a BSON date, and times, each on a freshly migrated
# database (release build):
#   (a) ingest from Mongo                 (b) ingest from the NDJSON file, (b2) its rerun
#   (c) a rerun of (a): all duplicates    (d) a bare scan of the same cursor, writing nothing
#   (e) the baseline (../shared/baseline), unless --no-baseline
#   (f) (a) with 5 mails poisoned by a MySQL trigger: exactly their events must fail
#   (g) the write floor: the rows (b) wrote, copied into a fresh database of the same schema by
#       the plainest bulk path (INSERT ... SELECT on the server: no parsing, no dedup, no client)
#   (j) the prepared write floor: the same rows copied by the mysql crate's prepared multi-row
#       INSERTs (`ses-fixtures copy`: 250 rows each, read first, only the writes timed), the least
#       an ingest that writes through prepared statements, as ses-report does, can spend on them
#   (h) (b) as 2 partitions at once (`--partition 1/2` and `2/2`, two processes): wall time of
#       both, and their tables checked against (b)'s
#   (i) with --large M: an M-notification day (e.g. 1000000) from its NDJSON file, on a fresh
#       database: its events/s against (b)'s, the large-day ratio (MariaDB as configured)
# Prints wall time, events/s and peak RSS (from /usr/bin/time) per run, and the ratios.
# --runs K: runs (b), (g), (j), (h), (a) and (d) K times each, each time on a fresh database, and
# keeps the median wall time (and the highest RSS): one run can swing by 30% on a busy machine.
# --compare FILE (BENCHMARKS.md): checks this run's ratios against the "Guarded ratios" table
# there (rows `| key | ratio | lower or higher is better | commit |`), names each that regressed
# by more than 10%, and exits 1 if any did. Ratios compare runs of one invocation, so they hold
# across machines of a kind where seconds do not.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
caller=$PWD
n=100000; baseline=1; large=0; compare=""; runs=1
usage() { echo "usage: scripts/bench.sh [N] [--no-baseline] [--large M] [--runs K] [--compare FILE]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --no-baseline) baseline=0 ;;
    --large) [ $# -ge 2 ] && [[ $2 =~ ^[0-9]+$ ]] || usage; large=$2; shift ;;
    --runs) [ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]*$ ]] || usage; runs=$2; shift ;;
    --compare) [ $# -ge 2 ] || usage; compare=$2; shift
      [[ $compare == /* ]] || compare="$caller/$compare"
      [ -r "$compare" ] || { echo "bench.sh: --compare $compare: no such readable file" >&2; exit 2; }
      grep -q '^| `[a-z/_-]*` | [0-9.]* | \(lower\|higher\) |' "$compare" || {
        echo "bench.sh: --compare $compare has no Guarded ratios table (| \`key\` | ratio | lower/higher | commit |)" >&2; exit 2; } ;;
    ''|*[!0-9]*) usage ;;
    *) n=$1 ;;
  esac
  shift
done
cd "$root"
eval "$(scripts/services.sh)"
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >&2; }
mysql_cli=$(command -v mariadb || command -v mysql)
export SES_REPORT_MONGO_DB=ses_bench SES_REPORT_MONGO_COLLECTION=sesevents
day=2026-11-27 from=2026-11-27T00:00:00Z to=2026-11-28T00:00:00Z
work="$root/.services/bench"
mkdir -p "$work"
data="$work/day-$n.ndjson" users="$work/auth_users.sql"

echo "== building (release)" >&2
cargo build --release --quiet --bins
cargo build --release --quiet -p ses-fixtures
bin="${CARGO_TARGET_DIR:-$root/target}/release"

echo "== generating and loading $n notifications" >&2
[ -s "$data" ] || "$bin/ses-fixtures" generate --notifications "$n" --users 10000 --string-timestamps 0 \
  --malformed 6 --seed 1 --date "$day" --out "$data" --users-sql "$users" >&2
"$bin/ses-fixtures" load --file "$data" --drop >&2
events=$(grep -c . "$data")

fresh_db() {  # a migrated database with the users loaded, and optionally poisoned mails
  "$mysql_cli" -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS $1"
  SES_REPORT_MYSQL_URL="mysql://root@127.0.0.1:3306/$1" RUST_LOG=warn "$bin/ses-report" migrate >/dev/null
  "$mysql_cli" -h127.0.0.1 -uroot "$1" < "$users"
}

rows=()
run_once() {  # label, command...: runs it, leaving its wall time and peak RSS in $wall and $rss
  local label=$1; shift
  local stats="$work/time.txt"
  set +e
  /usr/bin/time -f '%e %M' -o "$stats" "$@" >"$work/out.txt" 2>"$work/err.txt"
  local code=$?
  set -e
  if [ "$code" -ne 0 ] && [ "$code" -ne 3 ]; then
    echo "$label failed with exit code $code:" >&2; tail -5 "$work/err.txt" >&2; exit 1
  fi
  read -r wall rss < <(tail -1 "$stats")
  echo "   $label: $(tail -1 "$work/out.txt")" >&2
}
measure() {  # label, command...: runs it once, records "label wall rss"
  run_once "$@"
  rows+=("$1|$wall|$rss")
}
settle() {  # waits until InnoDB has purged the history of what was written and dropped before
  # (MariaDB 10.5+: https://mariadb.com/docs/reference/mdb/system-variables/innodb_max_purge_lag_wait/;
  # elsewhere a no-op), so that a run does not pay for the previous one's cleanup
  "$mysql_cli" -h127.0.0.1 -uroot -e "SET GLOBAL innodb_max_purge_lag_wait = 0" 2>/dev/null || true
}
median() {  # seconds...: their median, to 2 decimals
  printf '%s\n' "$@" | sort -n | awk '{ w[NR] = $1 } END {
    printf "%.2f", (NR % 2) ? w[(NR + 1) / 2] : (w[NR / 2] + w[NR / 2 + 1]) / 2 }'
}
measure_runs() {  # setup, label, command...: `setup; command` --runs times, records the median
  local setup=$1 label=$2; shift 2
  local walls=() top=0 i
  for ((i = 1; i <= runs; i++)); do
    $setup
    settle
    run_once "$label" "$@"
    walls+=("$wall"); [ "$rss" -gt "$top" ] && top=$rss
  done
  wall=$(median "${walls[@]}")
  [ "$runs" -gt 1 ] && echo "   $label: median of ${walls[*]} s: $wall s" >&2
  rows+=("$label|$wall|$top")
}

echo "== (b) ingest from the NDJSON file" >&2
export SES_REPORT_MYSQL_URL=mysql://root@127.0.0.1:3306/ses_report_bench_file
measure_runs "fresh_db ses_report_bench_file" "(b) ingest, NDJSON" "$bin/ses-report" ingest --file "$data"
measure "(b2) rerun, NDJSON" "$bin/ses-report" ingest --file "$data"

echo "== (g) the write floor: (b)'s rows into the same schema, INSERT ... SELECT" >&2
floor_sql="SET unique_checks = 1;"
for table in aws_reports aws_report_details aws_report_daily aws_report_suppressions; do
  floor_sql="$floor_sql INSERT INTO ses_report_bench_floor.$table SELECT * FROM ses_report_bench_file.$table;"
done
measure_runs "fresh_db ses_report_bench_floor" "(g) write floor" "$mysql_cli" -h127.0.0.1 -uroot -e "$floor_sql"

echo "== (j) the prepared write floor: (b)'s rows by prepared multi-row INSERTs" >&2
copies=() top=0
for ((i = 1; i <= runs; i++)); do
  fresh_db ses_report_bench_copy
  settle
  run_once "(j) prepared writes" "$bin/ses-fixtures" copy \
    --from mysql://root@127.0.0.1:3306/ses_report_bench_file --to mysql://root@127.0.0.1:3306/ses_report_bench_copy
  # The tool's own time of the writes (it reads the rows first): not the process's wall time.
  copies+=("$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' "$work/out.txt")")
  [ "$rss" -gt "$top" ] && top=$rss
done
copy=$(median "${copies[@]}")
[ "$runs" -gt 1 ] && echo "   (j) prepared writes: the writes took ${copies[*]} s: median $copy s" >&2
rows+=("(j) prepared writes|$copy|$top")

echo "== (h) ingest from the NDJSON file as 2 partitions at once" >&2
export SES_REPORT_MYSQL_URL=mysql://root@127.0.0.1:3306/ses_report_bench_parts
measure_runs "fresh_db ses_report_bench_parts" "(h) 2 partitions, NDJSON" bash -c '
    "$1" ingest --file "$2" --partition 1/2 & one=$!
    "$1" ingest --file "$2" --partition 2/2 & two=$!
    wait $one; a=$?; wait $two; b=$?
    [ $a -gt $b ] && exit $a; exit $b' partitions "$bin/ses-report" "$data"
tables_of() {  # what a reader sees, independent of row ids and write times
  "$mysql_cli" -h127.0.0.1 -uroot -N "$1" -e "
    SELECT COUNT(*), SUM(open_count), SUM(human_open_count), SUM(click_count), COUNT(user_id) FROM aws_reports;
    SELECT COUNT(*), COUNT(automated) FROM aws_report_details;
    SELECT COUNT(*), SUM(sent), SUM(delivered), SUM(permanent_bounces), SUM(human_unique_opens) FROM aws_report_daily;
    SELECT COUNT(*), SUM(evidence_count) FROM aws_report_suppressions;
    SELECT COUNT(*) FROM aws_report_failures"
}
if [ "$(tables_of ses_report_bench_parts)" = "$(tables_of ses_report_bench_file)" ]; then
  partitions="ok: the 2 partitions left (b)'s tables (counts and sums of every report table)"
else
  partitions="FAILED: the 2 partitions' tables differ from (b)'s"
fi
echo "   $partitions" >&2

if [ "$large" -gt 0 ]; then
  echo "== (i) a $large-notification day from its NDJSON file" >&2
  large_data="$work/day-$large.ndjson"
  [ -s "$large_data" ] || "$bin/ses-fixtures" generate --notifications "$large" --users 10000 --string-timestamps 0 \
    --malformed 6 --seed 1 --date "$day" --out "$large_data" >&2  # the same 10,000 users: --users and --seed make them
  large_events=$(grep -c . "$large_data")
  fresh_db ses_report_bench_large
  export SES_REPORT_MYSQL_URL=mysql://root@127.0.0.1:3306/ses_report_bench_large
  measure "(i) $large-day, NDJSON" "$bin/ses-report" ingest --file "$large_data"
fi

echo "== (a) ingest from Mongo, (c) its rerun" >&2
export SES_REPORT_MYSQL_URL=mysql://root@127.0.0.1:3306/ses_report_bench_mongo
measure_runs "fresh_db ses_report_bench_mongo" "(a) ingest, Mongo" "$bin/ses-report" ingest --date "$day"
measure "(c) rerun, Mongo" "$bin/ses-report" ingest --date "$day"

echo "== (f) ingest from Mongo with 5 mails MySQL refuses (per-event isolation)" >&2
fresh_db ses_report_bench_poison
poison=$("$mysql_cli" -h127.0.0.1 -uroot -N -e "SELECT DISTINCT message_id FROM ses_report_bench_file.aws_reports ORDER BY message_id LIMIT 5" | sed "s/.*/'&'/" | paste -sd,)
"$mysql_cli" -h127.0.0.1 -uroot ses_report_bench_poison <<SQL
DELIMITER //
CREATE TRIGGER bench_poison BEFORE INSERT ON aws_report_details FOR EACH ROW
BEGIN IF NEW.message_id IN ($poison) THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'bench poison'; END IF; END //
SQL
export SES_REPORT_MYSQL_URL=mysql://root@127.0.0.1:3306/ses_report_bench_poison
measure "(f) ingest, 5 poisoned" "$bin/ses-report" ingest --date "$day"

echo "== (d) bare scan of the Mongo cursor" >&2
measure_runs true "(d) bare scan, Mongo" "$bin/ses-fixtures" scan --from "$from" --to "$to"

echo "== isolation check" >&2
q() { "$mysql_cli" -h127.0.0.1 -uroot -N -e "$1"; }
poisoned_events=$(q "SELECT COUNT(DISTINCT notification_message_id) FROM ses_report_bench_file.aws_report_details WHERE message_id IN ($poison)")
want=$(( $(q "SELECT COUNT(*) FROM ses_report_bench_file.aws_report_details") - $(q "SELECT COUNT(*) FROM ses_report_bench_file.aws_report_details WHERE message_id IN ($poison)") ))
got=$(q "SELECT COUNT(*) FROM ses_report_bench_poison.aws_report_details")
failed=$(q "SELECT COUNT(*) FROM ses_report_bench_poison.aws_report_failures WHERE error LIKE '%bench poison%'")
if [ "$want" = "$got" ] && [ "$failed" = "$poisoned_events" ]; then
  isolation="ok: the $failed events of the 5 poisoned mails failed alone, the other $got detail rows landed"
else
  isolation="FAILED: $got detail rows (want $want), $failed poison failures (want $poisoned_events)"
fi
echo "   $isolation" >&2

if [ "$baseline" = 1 ] && [ -x "$root/../shared/baseline/run.sh" ]; then
  echo "== (e) baseline: the old Node job on the same data" >&2
  export MONGO_URL=$SES_REPORT_MONGO_URL MONGO_DB=$SES_REPORT_MONGO_DB MONGO_COLLECTION=$SES_REPORT_MONGO_COLLECTION
  BASELINE_MYSQL_DB=ses_report_bench_baseline AUTH_USERS_SQL="$users" BASELINE_WORKDIR="$work/baseline" \
    "$root/../shared/baseline/run.sh" "$from" "$to" >"$work/baseline.txt" 2>&1 || { tail -5 "$work/baseline.txt" >&2; exit 1; }
  read -r bwall brss < <(sed -n 's/^baseline: wall \([0-9.]*\) s, peak RSS \([0-9]*\) KB$/\1 \2/p' "$work/baseline.txt")
  rows+=("(e) baseline, Node|$bwall|$brss")
fi

echo
runs_note=""; [ "$runs" -gt 1 ] && runs_note=", median of $runs runs for (b) (g) (j) (h) (a) (d)"
echo "ses-report benchmark: N=$n notifications ($events lines), $(nproc) cores, $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$runs_note"
printf '%-22s %10s %12s %14s\n' run "wall s" "events/s" "peak RSS MB"
declare -A wall_of
for row in "${rows[@]}"; do
  IFS='|' read -r label wall rss <<<"$row"
  wall_of[$label]=$wall
  e=$events; [[ $label == "(i) "* ]] && e=$large_events
  awk -v l="$label" -v w="$wall" -v r="$rss" -v e="$e" \
    'BEGIN { printf "%-22s %10.2f %12.0f %14.1f\n", l, w, (w > 0 ? e / w : 0), r / 1024 }'
done
declare -A ratio_of  # by the key of BENCHMARKS.md's Guarded ratios table
ratio() {  # ratio KEY TITLE A B: prints A/B, keeps it under KEY
  local value
  value=$(awk -v a="$3" -v b="$4" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b }')
  [ -n "$value" ] || return 0
  ratio_of[$1]=$value
  printf '%-44s %6sx\n' "$2" "$value"
}
echo
ratio ndjson-vs-baseline "ses-report NDJSON ingest speed / baseline" "${wall_of["(e) baseline, Node"]:-0}" "${wall_of["(b) ingest, NDJSON"]}"
ratio mongo-vs-baseline "ses-report Mongo ingest speed / baseline" "${wall_of["(e) baseline, Node"]:-0}" "${wall_of["(a) ingest, Mongo"]}"
ratio mongo/scan "Mongo ingest time / bare scan time" "${wall_of["(a) ingest, Mongo"]}" "${wall_of["(d) bare scan, Mongo"]}"
ratio ndjson/floor "NDJSON ingest time / write floor time" "${wall_of["(b) ingest, NDJSON"]}" "${wall_of["(g) write floor"]}"
ratio prepared/floor "prepared write floor time / write floor time" "${wall_of["(j) prepared writes"]}" "${wall_of["(g) write floor"]}"
ratio partitions/one "2 partitions at once, wall / one run (NDJSON)" "${wall_of["(h) 2 partitions, NDJSON"]}" "${wall_of["(b) ingest, NDJSON"]}"
if [ "$large" -gt 0 ]; then  # events/s of the large day over events/s of (b)
  ratio large/100k "$large-event day events/s / $n-event events/s" \
    "$(awk -v e="$large_events" -v w="${wall_of["(i) $large-day, NDJSON"]}" 'BEGIN { print e / w }')" \
    "$(awk -v e="$events" -v w="${wall_of["(b) ingest, NDJSON"]}" 'BEGIN { print e / w }')"
fi
echo "per-event isolation: $isolation"
echo "partitions: $partitions"

if [ -n "$compare" ]; then
  # Each guarded key this run measured, against the committed figure: worse by more than 10% in
  # the key's direction is a regression.
  echo
  echo "against $compare (a regression: more than 10% worse than the committed figure)"
  regressed=0
  while IFS='|' read -r _ key committed better commit _; do
    key=$(echo "$key" | tr -d ' `'); committed=$(echo "$committed" | tr -d ' ')
    better=$(echo "$better" | tr -d ' '); commit=$(echo "$commit" | tr -d ' ')
    now=${ratio_of[$key]:-}
    if [ -z "$now" ]; then
      printf '%-16s committed %6s (%s)   not measured in this run\n' "$key" "$committed" "$commit"
      continue
    fi
    verdict=$(awk -v c="$committed" -v n="$now" -v b="$better" 'BEGIN {
      change = (n - c) / c * 100
      worse = (b == "lower") ? change > 10 : change < -10
      printf "%+.0f%% %s", change, (worse ? "REGRESSED" : "ok") }')
    printf '%-16s committed %6s (%s)   now %6s   %s\n' "$key" "$committed" "$commit" "$now" "$verdict"
    [[ $verdict == *REGRESSED ]] && regressed=1
  done < <(grep '^| `[a-z/_-]*` | [0-9.]* | \(lower\|higher\) |' "$compare")
  exit $regressed
fi
