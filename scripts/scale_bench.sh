#!/usr/bin/env bash
# Audited writes per second from N gateway instances on one fresh PostgreSQL database: starts N
# release gateways on loopback, runs one `load_audit` (mutations phase) against each at once with
# CONNECTIONS/N connections apiece, prints each run's figures and their sum, then stops everything
# and drops the database.
#
#   scripts/scale_bench.sh <portcullis binary> <load_audit binary> <instances> [connections] [seconds]
#
# e.g. scripts/scale_bench.sh target/release/portcullis target/release/examples/load_audit 3 64 20
set -euo pipefail
bin=$1; load=$2; instances=$3; connections=${4:-64}; seconds=${5:-20}
pg=${PORTCULLIS_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
db="scale_bench_$$"
email=admin@example.com; password=change-me-please
createdb -h 127.0.0.1 -U postgres "$db"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  dropdb -h 127.0.0.1 -U postgres --if-exists "$db"
}
trap cleanup EXIT
for i in $(seq 1 "$instances"); do
  PORTCULLIS_DATABASE_URL="$pg/$db" PORTCULLIS_ADMIN_EMAIL=$email PORTCULLIS_ADMIN_PASSWORD=$password \
    PORTCULLIS_PUBLIC_URL=http://localhost:18500 PORTCULLIS_LOG=warn \
    "$bin" serve --listen "127.0.0.1:$((18500 + i))" > "/tmp/scale_bench_$i.log" 2>&1 &
  pids+=($!)
  # One at a time: the first creates the schema and the administrator.
  until curl -fs "http://127.0.0.1:$((18500 + i))/readyz" > /dev/null; do sleep 0.05; done
done
per=$(( connections / instances ))
runs=()
for i in $(seq 1 "$instances"); do
  PORTCULLIS_URL="http://127.0.0.1:$((18500 + i))" PORTCULLIS_ADMIN_EMAIL=$email \
    PORTCULLIS_ADMIN_PASSWORD=$password PORTCULLIS_LOAD_PHASES=mutations \
    PORTCULLIS_LOAD_CONNECTIONS=$per PORTCULLIS_LOAD_SECONDS=$seconds \
    "$load" > "/tmp/scale_bench_load_$i.txt" 2>&1 &
  runs+=($!)
done
for run in "${runs[@]}"; do wait "$run"; done
total=0
for i in $(seq 1 "$instances"); do
  echo "instance $i:"; grep -E "audited mutations/s|latency ms|audit log" "/tmp/scale_bench_load_$i.txt" | sed 's/^/  /'
  rate=$(grep -oE "audited mutations/s +[0-9]+" "/tmp/scale_bench_load_$i.txt" | awk '{print $3}')
  total=$(( total + ${rate:-0} ))
done
echo "instances=$instances connections=$connections seconds=$seconds total audited mutations/s=$total"
# Positions dense (no gap, no duplicate), nothing left unpositioned, every chain verifies.
sleep 2
psql -h 127.0.0.1 -U postgres -d "$db" -Atc "SELECT 'events=' || count(*) || ' first=' || min(seq) || ' last=' || max(seq) || ' dense=' || (count(*) = max(seq) - min(seq) + 1) || ' distinct=' || (count(DISTINCT seq) = count(*)) FROM audit_events"
if psql -h 127.0.0.1 -U postgres -d "$db" -Atc "SELECT to_regclass('audit_inbox') IS NOT NULL" | grep -q t; then
  psql -h 127.0.0.1 -U postgres -d "$db" -Atc "SELECT 'waiting in the inbox=' || count(*) FROM audit_inbox"
fi
PORTCULLIS_DATABASE_URL="$pg/$db" PORTCULLIS_LOG=warn "$bin" audit verify | tail -3
