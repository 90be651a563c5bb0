#!/usr/bin/env bash
# Makes sure a Postgres answers on 127.0.0.1:5432 (or at KOERIER_TEST_DATABASE_URL /
# KOERIER_DATABASE_URL when those point elsewhere): starts the local cluster, and on a
# Debian machine without one installs it. Fails loudly with what to do.
set -euo pipefail

host=127.0.0.1 port=5432
ready() { pg_isready -q -h "$host" -p "$port" 2>/dev/null; }

if [ -n "${KOERIER_TEST_DATABASE_URL:-}${KOERIER_SKIP_POSTGRES_START:-}" ]; then
  exit 0 # the caller brings its own server
fi
if ! command -v pg_isready >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "ensure-postgres: installing PostgreSQL from Debian's packages" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null || {
      apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null; }
  else
    echo "ensure-postgres: PostgreSQL is not installed. Install it (apt-get install postgresql) or set KOERIER_TEST_DATABASE_URL to a server where tests may create databases." >&2
    exit 1
  fi
fi
ready && exit 0

version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1 || true)
if [ -n "$version" ] && command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "ensure-postgres: starting cluster $version/main" >&2
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
fi
for _ in $(seq 1 30); do
  ready && exit 0
  sleep 1
done
echo "ensure-postgres: no Postgres answers on $host:$port. Start it with 'pg_ctlcluster --skip-systemctl-redirect 15 main start' and check /var/log/postgresql/." >&2
exit 1
