#!/usr/bin/env bash
# The scale-out fault suite: release gateways on loopback in front of a private PostgreSQL primary
# with a streaming replica (made with pg_basebackup; the gateways read lists from it), Debian's
# haproxy in front of the gateways, and `load_audit` as the clients. Each scenario gets a fresh
# database and prints what a reviewer checks; figures go to docs/benchmarks.md.
#
#   scripts/fault_suite.sh <portcullis binary> <load_audit binary> [scenario ...]
#
# Scenarios (all when none is named):
#   startup  3 instances started together on an empty database: one signing key, one administrator;
#            a key rotated on one is honoured by the others (time measured).
#   scale    64 connections of audited writes for 60 s (and 100 live subscribers) on 1, then 3
#            instances: writes/s, dense positions, nothing left in the inbox, chains verify.
#   kill     under load (writes, subscribers, refresh-token rotation) through haproxy: kill -9 of one
#            instance, then a restart of the PostgreSQL primary: no acknowledged write lost, no
#            subscriber gap or duplicate, no session revoked by a retried refresh.
#   sigstop  one instance frozen (SIGSTOP) in the middle of audited writes: the longest time the
#            others went without a successful write.
#   purge    a purge while an export downloads and verification runs: the export is exactly its
#            snapshot, verification says OK.
#   rolling  rolling SIGTERM restart of 3 instances with 1,000 subscribers (scripts/rolling_restart.sh
#            on this cluster): nothing lost, every subscriber resumes.
#
# Needs: PostgreSQL's server binaries (/usr/lib/postgresql/*/bin), haproxy, curl, jq; run as root
# (the servers run as the postgres user) or as a user who may run them. `ulimit -n` ≥ 20000 for
# the 1,000 subscribers.
set -euo pipefail
bin=$(realpath "$1"); load=$(realpath "$2"); shift 2
scenarios=("$@"); [ ${#scenarios[@]} -eq 0 ] && scenarios=(startup scale kill sigstop purge rolling)
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
primary_port=55432; replica_port=55433; front=18700
email=admin@example.com; password=change-me-please
work=$(mktemp -d /tmp/fault_suite.XXXXXX); chmod 755 "$work"
declare -A pids
haproxy_pid=

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql_on() { local port=$1 db=$2; shift 2; "$pgbin/psql" -h 127.0.0.1 -p "$port" -U postgres -d "$db" -XAtq "$@"; }
say() { echo "$(date +%T) $*"; }

cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  [ -n "$haproxy_pid" ] && kill "$haproxy_pid" 2>/dev/null || true
  as_pg "$pgbin/pg_ctl" -D "$work/replica" -m immediate stop > /dev/null 2>&1 || true
  as_pg "$pgbin/pg_ctl" -D "$work/primary" -m immediate stop > /dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

pg_start() { # <dir> <port>
  as_pg "$pgbin/pg_ctl" -D "$work/$1" -l "$work/$1.log" -w \
    -o "-p $2 -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work -c max_connections=400 -c hot_standby_feedback=on" \
    start > /dev/null
}

# The primary, and a replica streaming from it.
mkdir -p "$work/sock"; [ "$(id -u)" = 0 ] && chown postgres "$work"
as_pg "$pgbin/initdb" -D "$work/primary" -U postgres --auth=trust --no-sync > /dev/null
printf 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n' \
  | as_pg tee "$work/primary/pg_hba.conf" > /dev/null
pg_start primary $primary_port
as_pg "$pgbin/pg_basebackup" -h 127.0.0.1 -p $primary_port -U postgres -D "$work/replica" -R -X stream --checkpoint=fast
pg_start replica $replica_port
say "PostgreSQL primary on $primary_port, streaming replica on $replica_port"

db=
fresh_database() {
  db="fault_$1"
  psql_on $primary_port postgres -c "CREATE DATABASE $db"
}

start_instance() { # <i> [VAR=value ...]
  local i=$1; shift
  env PORTCULLIS_DATABASE_URL="postgres://postgres@127.0.0.1:$primary_port/$db" \
    PORTCULLIS_DATABASE_REPLICA_URLS="postgres://postgres@127.0.0.1:$replica_port/$db" \
    PORTCULLIS_ADMIN_EMAIL=$email PORTCULLIS_ADMIN_PASSWORD=$password \
    PORTCULLIS_PUBLIC_URL="http://127.0.0.1:$front" PORTCULLIS_LOG=warn PORTCULLIS_DRAIN_SECONDS=3 \
    PORTCULLIS_WS_MAX_CONNECTIONS_PER_CLIENT=100000 PORTCULLIS_DB_POOL_SIZE=32 "$@" \
    "$bin" serve --listen "127.0.0.1:$((front + i))" >> "$work/gateway_$i.log" 2>&1 &
  pids[$i]=$!
}
ready() { until curl -fs "http://127.0.0.1:$((front + $1))/readyz" > /dev/null; do sleep 0.05; done; }
stop_all() {
  for i in "${!pids[@]}"; do kill -9 "${pids[$i]}" 2>/dev/null || true; wait "${pids[$i]}" 2>/dev/null || true; unset "pids[$i]"; done
  if [ -n "$haproxy_pid" ]; then kill "$haproxy_pid" 2>/dev/null || true; wait "$haproxy_pid" 2>/dev/null || true; haproxy_pid=; fi
}
balance() { # <instances>
  {
    printf 'global\n  maxconn 8000\ndefaults\n  mode http\n  retries 3\n  option redispatch\n  timeout check 2s\n'
    printf '  timeout connect 2s\n  timeout client 120s\n  timeout server 120s\n  timeout tunnel 1h\n'
    printf 'frontend gateways\n  bind 127.0.0.1:%s\n  default_backend instances\n' $front
    printf 'backend instances\n  balance roundrobin\n  option httpchk GET /readyz\n'
    for i in $(seq 1 "$1"); do
      printf '  server g%s 127.0.0.1:%s check inter 500ms fall 2 rise 2\n' "$i" $((front + i))
    done
  } > "$work/haproxy.cfg"
  haproxy -f "$work/haproxy.cfg" -db > "$work/haproxy.log" 2>&1 &
  haproxy_pid=$!
  sleep 1
}
cluster() { # <instances>: started one after another, then haproxy
  for i in $(seq 1 "$1"); do start_instance "$i"; ready "$i"; done
  balance "$1"
}
load_run() { # <url> <output> VAR=value ...: load_audit as a client
  local url=$1 out=$2; shift 2
  env PORTCULLIS_URL="$url" PORTCULLIS_ADMIN_EMAIL=$email PORTCULLIS_ADMIN_PASSWORD=$password "$@" \
    "$load" > "$out" 2>&1
}
gql() { # <instance port> <token> <query> [variables json]
  curl -fs "http://127.0.0.1:$1/graphql" -H 'content-type: application/json' ${2:+-H "authorization: Bearer $2"} \
    -d "$(jq -nc --arg q "$3" --argjson v "${4:-{\}}" '{query: $q, variables: $v}')"
}
login() { # <port>
  gql "$1" "" 'mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken } }' \
    "$(jq -nc --arg e $email --arg p $password '{e: $e, p: $p}')" | jq -r .data.login.accessToken
}
log_checks() { # positions dense and distinct, the inbox empty, every chain verifies
  sleep 2
  psql_on $primary_port "$db" -c "SELECT '  positions: ' || count(*) || ' events, dense=' || (count(*) = max(seq) - min(seq) + 1) || ', distinct=' || (count(DISTINCT seq) = count(*)) FROM audit_events"
  psql_on $primary_port "$db" -c "SELECT '  waiting in the inbox: ' || count(*) FROM audit_inbox"
  PORTCULLIS_DATABASE_URL="postgres://postgres@127.0.0.1:$primary_port/$db" PORTCULLIS_LOG=warn \
    "$bin" audit verify | tail -n 2 | sed 's/^/  verify: /'
}

scenario_startup() {
  fresh_database startup
  say "startup: 3 instances at once on an empty database"
  for i in 1 2 3; do start_instance "$i" PORTCULLIS_KEY_PUBLISH_SECONDS=0; done
  for i in 1 2 3; do ready "$i"; done
  echo "  signing keys: $(psql_on $primary_port "$db" -c 'SELECT count(*) FROM signing_keys')"
  echo "  administrators named $email: $(psql_on $primary_port "$db" -c "SELECT count(*) FROM users WHERE email = '$email'")"
  local kids; kids=$(curl -fs "http://127.0.0.1:$((front + 2))/.well-known/jwks.json" | jq -c '[.keys[].kid]')
  PORTCULLIS_DATABASE_URL="postgres://postgres@127.0.0.1:$primary_port/$db" PORTCULLIS_LOG=warn \
    PORTCULLIS_KEY_PUBLISH_SECONDS=0 "$bin" rotate-signing-key > /dev/null
  local rotated; rotated=$(date +%s%N)
  # A token signed with the new key (by instance 1, which signs with it at once) must work on 2 and 3.
  local token; token=$(login $((front + 1)))
  local kid; kid=$(echo "$token" | cut -d. -f1 | tr '_-' '/+' | base64 -d 2>/dev/null | jq -r .kid || true)
  for i in 2 3; do
    until gql $((front + i)) "$token" '{ viewer { user { id } } }' | jq -e ".data.viewer.user.id" > /dev/null; do sleep 0.02; done
    echo "  instance $i honours the new key ($kid; before: $kids) $(( ($(date +%s%N) - rotated) / 1000000 )) ms after the rotation"
  done
  stop_all
}

scenario_scale() {
  for n in 1 3; do
    fresh_database "scale_$n"
    cluster "$n"
    say "scale: $n instance(s), 64 connections of audited writes for 60 s, 100 subscribers"
    load_run "http://127.0.0.1:$front" "$work/scale_fanout_$n.txt" PORTCULLIS_LOAD_PHASES=fanout \
      PORTCULLIS_SUBSCRIBERS=100 PORTCULLIS_LOAD_SECONDS=60 PORTCULLIS_LOAD_CONNECTIONS=1 &
    local fanout=$!
    load_run "http://127.0.0.1:$front" "$work/scale_$n.txt" PORTCULLIS_LOAD_PHASES=mutations \
      PORTCULLIS_LOAD_CONNECTIONS=64 PORTCULLIS_LOAD_SECONDS=60
    wait $fanout || true
    grep -E "audited mutations/s|latency ms|audit log|first failure" "$work/scale_$n.txt" | sed 's/^/  /'
    grep -E "delivered|anomalies|not live" "$work/scale_fanout_$n.txt" | sed 's/^/  /'
    log_checks
    stop_all
  done
}

scenario_kill() {
  fresh_database kill
  cluster 3
  say "kill: 32 writers, 200 subscribers and 8 refreshing clients through haproxy for 45 s"
  load_run "http://127.0.0.1:$front" "$work/kill_fanout.txt" PORTCULLIS_LOAD_PHASES=fanout \
    PORTCULLIS_SUBSCRIBERS=200 PORTCULLIS_LOAD_SECONDS=45 PORTCULLIS_LOAD_CONNECTIONS=1 &
  local fanout=$!
  sleep 5 # the subscribers connect and warm up
  load_run "http://127.0.0.1:$front" "$work/kill_writes.txt" PORTCULLIS_LOAD_PHASES=mutations \
    PORTCULLIS_LOAD_CONNECTIONS=32 PORTCULLIS_LOAD_SECONDS=40 &
  local writes=$!
  load_run "http://127.0.0.1:$front" "$work/kill_refresh.txt" PORTCULLIS_LOAD_PHASES=refresh \
    PORTCULLIS_LOAD_CONNECTIONS=8 PORTCULLIS_LOAD_SECONDS=40 &
  local refresh=$!
  sleep 10
  say "  kill -9 of instance 2"
  kill -9 "${pids[2]}"; wait "${pids[2]}" 2>/dev/null || true
  sleep 5
  start_instance 2; ready 2; say "  instance 2 is back"
  sleep 5
  say "  PostgreSQL primary restarted (fast shutdown) under load"
  as_pg "$pgbin/pg_ctl" -D "$work/primary" -m fast -w stop > /dev/null
  pg_start primary $primary_port
  say "  PostgreSQL is back"
  wait $writes || true; wait $refresh || true; wait $fanout || true
  grep -E "audited mutations/s|audit log|first failure" "$work/kill_writes.txt" | sed 's/^/  /'
  grep -E "refreshes|revoked|first revocation" "$work/kill_refresh.txt" | sed 's/^/  /'
  grep -E "produced|delivered|anomalies|subscriptions ended|not live|first problem" "$work/kill_fanout.txt" | sed 's/^/  /'
  log_checks
  stop_all
}

scenario_sigstop() {
  fresh_database sigstop
  for i in 1 2 3; do start_instance "$i"; ready "$i"; done
  say "sigstop: 16 writers on each of 3 instances for 30 s; instance 2 frozen from 10 s to 25 s"
  for i in 1 2 3; do
    load_run "http://127.0.0.1:$((front + i))" "$work/sigstop_$i.txt" PORTCULLIS_LOAD_PHASES=mutations \
      PORTCULLIS_LOAD_CONNECTIONS=16 PORTCULLIS_LOAD_SECONDS=30 &
    eval "load_$i=\$!"
  done
  sleep 12
  kill -STOP "${pids[2]}"
  say "  instance 2 frozen"
  sleep 0.5
  psql_on $primary_port "$db" -c "SELECT '  sessions idle in a transaction right after the freeze: ' || count(*) FROM pg_stat_activity WHERE datname = '$db' AND state LIKE 'idle in transaction%'"
  sleep 14.5
  kill -CONT "${pids[2]}"
  say "  instance 2 thawed"
  wait "$load_1" "$load_3" || true; wait "$load_2" || true
  for i in 1 3; do
    echo "  instance $i:"; grep -E "audited mutations/s|longest|audit log" "$work/sigstop_$i.txt" | sed 's/^/    /'
  done
  echo "  instance 2 (frozen):"; grep -E "audited mutations/s|longest|audit log|first failure" "$work/sigstop_2.txt" | sed 's/^/    /'
  log_checks
  stop_all
}

scenario_purge() {
  fresh_database purge
  cluster 1
  say "purge: fill the log, then purge while an export downloads and verification runs"
  load_run "http://127.0.0.1:$front" "$work/purge_fill.txt" PORTCULLIS_LOAD_PHASES=mutations \
    PORTCULLIS_LOAD_CONNECTIONS=16 PORTCULLIS_LOAD_SECONDS=15
  local port=$((front + 1)) token; token=$(login $port)
  local held; held=$(gql $port "$token" '{ auditEvents(first: 1) { totalCount } }' | jq .data.auditEvents.totalCount)
  local url; url=$(gql $port "$token" 'mutation { createAuditExport(input: {format: NDJSON, order: OLDEST_FIRST}) { url } }' | jq -r .data.createAuditExport.url)
  # A slow download: the purge and the verification happen while it is being read.
  curl -fs --limit-rate 300K "$url" -H "authorization: Bearer $token" -o "$work/export.ndjson" &
  local download=$!
  sleep 1
  local purged; purged=$(gql $port "$token" 'mutation($b: DateTime!) { purgeAuditEvents(input: {before: $b}) { deletedEvents } }' \
    "$(jq -nc --arg b "$(date -u +%Y-%m-%dT%H:%M:%SZ)" '{b: $b}')" | jq .data.purgeAuditEvents.deletedEvents)
  local verified; verified=$(gql $port "$token" '{ verifyAuditLog { ok checkedEvents } }' | jq -c .data.verifyAuditLog)
  local download_running=no; kill -0 $download 2>/dev/null && download_running=yes
  wait $download
  local rows; rows=$(wc -l < "$work/export.ndjson")
  local distinct; distinct=$(jq -r .id "$work/export.ndjson" | sort -u | wc -l)
  echo "  the log held $held events; the purge deleted $purged while the download was running ($download_running)"
  echo "  export: $rows rows, $distinct distinct events; expected $((held + 1)) (the log at its start, its own audit.exported included)"
  echo "  verification during the purge: $verified"
  echo "  verification after: $(gql $port "$token" '{ verifyAuditLog { ok checkedEvents } }' | jq -c .data.verifyAuditLog)"
  stop_all
}

scenario_rolling() {
  fresh_database rolling
  cluster 3
  say "rolling: SIGTERM restart of each instance in turn, 1,000 subscribers through haproxy"
  load_run "http://127.0.0.1:$front" "$work/rolling.txt" PORTCULLIS_LOAD_PHASES=fanout \
    PORTCULLIS_SUBSCRIBERS=1000 PORTCULLIS_LOAD_SECONDS=40 PORTCULLIS_LOAD_CONNECTIONS=1 &
  local fanout=$!
  sleep 10
  for i in 1 2 3; do
    kill -TERM "${pids[$i]}"; wait "${pids[$i]}" || true
    start_instance "$i"; ready "$i"
    say "  instance $i restarted"
    sleep 2
  done
  wait $fanout || true
  grep -E "produced|delivered|anomalies|subscriptions ended|not live|first problem" "$work/rolling.txt" | sed 's/^/  /'
  log_checks
  stop_all
}

for scenario in "${scenarios[@]}"; do
  "scenario_$scenario"
done
