#!/usr/bin/env bash
# A rolling SIGTERM restart behind HAProxy while live subscribers listen: N release gateways on one
# fresh PostgreSQL database, Debian's haproxy in front (health check on /readyz), `load_audit`'s
# fanout phase through haproxy; meanwhile each instance in turn gets SIGTERM, drains, exits and is
# started again. The fanout report says whether every subscriber received every event exactly once
# (subscribers closed with 1012 reconnect through haproxy and resume after their last cursor).
#
#   scripts/rolling_restart.sh <portcullis binary> <load_audit binary> [instances] [subscribers] [seconds]
set -euo pipefail
bin=$1; load=$2; instances=${3:-3}; subscribers=${4:-1000}; seconds=${5:-40}
pg=${PORTCULLIS_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
db="rolling_restart_$$"
email=admin@example.com; password=change-me-please
front=18600
work=$(mktemp -d)
createdb -h 127.0.0.1 -U postgres "$db"
declare -A pids
haproxy_pid=
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -n "$haproxy_pid" ] && kill "$haproxy_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  dropdb -h 127.0.0.1 -U postgres --if-exists "$db"
  rm -rf "$work"
}
trap cleanup EXIT

start() {
  local i=$1
  PORTCULLIS_DATABASE_URL="$pg/$db" PORTCULLIS_ADMIN_EMAIL=$email PORTCULLIS_ADMIN_PASSWORD=$password \
    PORTCULLIS_PUBLIC_URL="http://127.0.0.1:$front" PORTCULLIS_LOG=warn PORTCULLIS_DRAIN_SECONDS=3 \
    PORTCULLIS_WS_MAX_CONNECTIONS_PER_CLIENT=100000 \
    "$bin" serve --listen "127.0.0.1:$((front + i))" >> "$work/gateway_$i.log" 2>&1 &
  pids[$i]=$!
  until curl -fs "http://127.0.0.1:$((front + i))/readyz" > /dev/null; do sleep 0.05; done
}

for i in $(seq 1 "$instances"); do start "$i"; done
{
  echo "global"
  echo "  maxconn 8000"
  echo "defaults"
  echo "  mode http"
  echo "  timeout connect 2s"
  echo "  timeout client 120s"
  echo "  timeout server 120s"
  echo "  timeout tunnel 1h"
  echo "frontend gateways"
  echo "  bind 127.0.0.1:$front"
  echo "  default_backend instances"
  echo "backend instances"
  echo "  balance roundrobin"
  echo "  option httpchk GET /readyz"
  for i in $(seq 1 "$instances"); do
    echo "  server g$i 127.0.0.1:$((front + i)) check inter 500ms fall 1 rise 2"
  done
} > "$work/haproxy.cfg"
haproxy -f "$work/haproxy.cfg" -db > "$work/haproxy.log" 2>&1 &
haproxy_pid=$!
sleep 1

PORTCULLIS_URL="http://127.0.0.1:$front" PORTCULLIS_ADMIN_EMAIL=$email PORTCULLIS_ADMIN_PASSWORD=$password \
  PORTCULLIS_LOAD_PHASES=fanout PORTCULLIS_SUBSCRIBERS=$subscribers PORTCULLIS_LOAD_SECONDS=$seconds \
  "$load" > "$work/fanout.txt" 2>&1 &
load_pid=$!

# Once the subscribers are in, restart each instance in turn.
sleep $(( seconds / 4 ))
for i in $(seq 1 "$instances"); do
  echo "$(date +%T) SIGTERM to instance $i"
  kill -TERM "${pids[$i]}"
  wait "${pids[$i]}" || true
  start "$i"
  echo "$(date +%T) instance $i is back"
  sleep 2
done
wait "$load_pid" || true
cat "$work/fanout.txt"
