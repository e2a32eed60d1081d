#!/usr/bin/env bash
# Makes sure the two servers ses-report needs are up, idempotently, and prints the environment
# to use them:  eval "$(scripts/services.sh)"
#
# - MariaDB on 127.0.0.1:3306 (root, empty password): started if installed but stopped,
#   installed with apt-get when missing.
# - A MongoDB wire-protocol server on 127.0.0.1:27017: nx-27017 from PyPI (a stand-in backed by
#   SQLite; production uses real MongoDB), installed into the git-ignored .services/venv.
# Progress goes to stderr; only the `export` lines go to stdout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state="$root/.services"
mkdir -p "$state"
say() { echo "services: $*" >&2; }

MYSQL_HOST=127.0.0.1 MYSQL_PORT=${SES_REPORT_TEST_MYSQL_PORT:-3306}
MONGO_HOST=127.0.0.1 MONGO_PORT=${SES_REPORT_TEST_MONGO_PORT:-27017}
NX_VERSION=0.8.1

mysql_cli() { command -v mariadb || command -v mysql || true; }

mysql_up() {
  local cli; cli=$(mysql_cli)
  [ -n "$cli" ] && "$cli" -h"$MYSQL_HOST" -P"$MYSQL_PORT" -uroot --connect-timeout=2 -e 'SELECT 1' >/dev/null 2>&1
}

ensure_mariadb() {
  if mysql_up; then say "MariaDB is up on $MYSQL_HOST:$MYSQL_PORT"; return; fi
  if [ ! -x /usr/sbin/mariadbd ] && [ ! -x /usr/sbin/mysqld ]; then
    say "installing mariadb-server with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq mariadb-server mariadb-client >&2
  fi
  local daemon=/usr/sbin/mariadbd
  [ -x "$daemon" ] || daemon=/usr/sbin/mysqld
  say "starting $daemon"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec "$daemon" >&2 || "$daemon" --user=mysql >/dev/null 2>&1 &
  for _ in $(seq 1 60); do
    if mysql_up; then break; fi
    # A fresh Debian install lets root in through the socket only: allow the empty password over TCP.
    "$(mysql_cli)" -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket; FLUSH PRIVILEGES" >/dev/null 2>&1 || true
    sleep 1
  done
  mysql_up || { say "MariaDB did not come up on $MYSQL_HOST:$MYSQL_PORT"; exit 1; }
  say "MariaDB is up"
}

mongo_up() {
  "$state/venv/bin/python" - "$MONGO_HOST" "$MONGO_PORT" >/dev/null 2>&1 <<'PY'
import sys, pymongo
pymongo.MongoClient(sys.argv[1], int(sys.argv[2]), serverSelectionTimeoutMS=1500).admin.command("ping")
PY
}

ensure_mongo() {
  if [ ! -x "$state/venv/bin/nx-27017" ]; then
    say "installing nx-27017 $NX_VERSION into .services/venv"
    python3 -m venv "$state/venv" >&2
    "$state/venv/bin/pip" install -q --disable-pip-version-check "nx-27017==$NX_VERSION" >&2
  fi
  if mongo_up; then say "Mongo wire server is up on $MONGO_HOST:$MONGO_PORT"; return; fi
  say "starting nx-27017 on $MONGO_HOST:$MONGO_PORT (data in .services/mongo-data)"
  mkdir -p "$state/mongo-data"
  "$state/venv/bin/nx-27017" -d --host "$MONGO_HOST" -p "$MONGO_PORT" --data-dir "$state/mongo-data" \
    --log-file "$state/nx-27017.log" --pid-file "$state/nx-27017.pid" >&2
  for _ in $(seq 1 60); do mongo_up && break; sleep 0.5; done
  mongo_up || { say "nx-27017 did not come up; see $state/nx-27017.log"; exit 1; }
  say "Mongo wire server is up"
}

ensure_mariadb
ensure_mongo
cat <<ENV
export SES_REPORT_MYSQL_URL=\${SES_REPORT_MYSQL_URL:-mysql://root@$MYSQL_HOST:$MYSQL_PORT/ses_report}
export SES_REPORT_MONGO_URL=\${SES_REPORT_MONGO_URL:-mongodb://$MONGO_HOST:$MONGO_PORT}
export SES_REPORT_TEST_MYSQL_URL=mysql://root@$MYSQL_HOST:$MYSQL_PORT
export SES_REPORT_TEST_MONGO_URL=mongodb://$MONGO_HOST:$MONGO_PORT
ENV
