#!/usr/bin/env bash
# Runs ses-report on the bundled demo day (fixtures/demo), starting the servers it needs, and
# shows what it produced. Uses its own databases (MySQL ses_report_demo, Mongo ses_demo), so it
# never touches other data; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/services.sh)"
export SES_REPORT_MYSQL_URL=mysql://root@127.0.0.1:3306/ses_report_demo
export SES_REPORT_MONGO_DB=ses_demo
export SES_REPORT_MONGO_COLLECTION=sesevents
mysql_cli=$(command -v mariadb || command -v mysql)
sql() { "$mysql_cli" -h127.0.0.1 -uroot --table ses_report_demo -e "$1"; }

echo "== building (release)"
cargo build --release --quiet --bins
cargo build --release --quiet -p ses-fixtures   # dev tooling: loads the demo day into Mongo
bin=target/release

echo "== fresh demo databases, schema, users and the day's notifications"
"$mysql_cli" -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS ses_report_demo"
$bin/ses-report migrate
"$mysql_cli" -h127.0.0.1 -uroot ses_report_demo < fixtures/demo/auth_users.sql
$bin/ses-fixtures load --file fixtures/demo/notifications.ndjson --drop

mkdir -p .services/demo
metrics="$PWD/.services/demo/ses_report.prom"
rm -f "$metrics"
echo "== ses-report ingest --date 2026-11-27 --metrics-file $metrics"
set +e
$bin/ses-report ingest --date 2026-11-27 --metrics-file "$metrics"
code=$?
set -e
case $code in
  0) echo "(exit 0: every record applied)" ;;
  3) echo "(exit 3: the demo day contains 6 malformed records on purpose; they are kept in aws_report_failures)" ;;
  *) echo "ingest failed with exit code $code" >&2; exit "$code" ;;
esac

echo "== the same day again: everything is a duplicate, nothing changes"
$bin/ses-report ingest --date 2026-11-27 2>/dev/null || true

echo "== a glance at the tables"
sql "SELECT event_type, COUNT(*) AS details, COUNT(DISTINCT report_id) AS recipients FROM aws_report_details GROUP BY event_type ORDER BY details DESC"
sql "SELECT message_id, user_email, user_id, report_type, send_at, delivery_at, open_count, click_count, bounce_type FROM aws_reports ORDER BY send_at LIMIT 8"
sql "SELECT notification_id, LEFT(error, 70) AS error, attempts FROM aws_report_failures ORDER BY id"
sql "SELECT id, status, scanned, applied, duplicates, skipped, failed FROM aws_report_runs ORDER BY id"

echo "== deliverability: ses-report stats --date 2026-11-27 --format table"
$bin/ses-report stats --date 2026-11-27 --format table
$bin/ses-report stats --date 2026-11-27 --by report-type --format table --min-volume 20
echo "== people or machines: every open and click is kept, classified (NULL = human)"
sql "SELECT event_type, COALESCE(automated, 'human') AS classified_as, COUNT(*) AS \`rows\` FROM aws_report_details WHERE event_type IN ('Open', 'Click') GROUP BY event_type, automated ORDER BY event_type, \`rows\` DESC"
echo "== where mail goes: by mailbox provider, sending IP, and a custom tag"
$bin/ses-report stats --date 2026-11-27 --by provider --format table --min-volume 20
$bin/ses-report stats --date 2026-11-27 --by sending-ip --format table --min-volume 20
$bin/ses-report stats --date 2026-11-27 --by tag:campaign --format table --min-volume 20
echo "== monitoring: stats adds its gauges to the ingest's node_exporter textfile"
$bin/ses-report stats --date 2026-11-27 --by provider --min-volume 20 --metrics-file "$metrics" >/dev/null
# awk reads to the end: `grep | head` under pipefail dies of SIGPIPE (141) when head stops first.
awk '!/^#/ && shown++ < 20' "$metrics"
echo "(... $(grep -vc '^#' "$metrics") samples in $metrics)"
echo "== addresses to stop mailing: ses-report suppressions (from the suppression ledger)"
$bin/ses-report suppressions
sql "SELECT email, kind, evidence_count, last_at, expires_at, lifted_at FROM aws_report_suppressions ORDER BY email, kind"
echo "== what no ingest shows: ses-report doctor --date 2026-11-27"
# Exit 7 here: the demo collection has no index on Timestamp; doctor lists what to fix.
$bin/ses-report doctor --date 2026-11-27 || echo "(doctor exit $?: it found something to fix)"
echo "== the HTML report"
mkdir -p .services/demo
$bin/ses-report report --date 2026-11-27 --html "$PWD/.services/demo/report.html"
echo "open file://$PWD/.services/demo/report.html in a browser"
