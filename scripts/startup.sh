#!/usr/bin/env bash
# Measures time from exec to the first 200 from /readyz, and the idle RSS, for one database URL.
set -u
bin=$1; url=$2; port=$3
start=$(date +%s%N)
PORTCULLIS_DATABASE_URL=$url PORTCULLIS_LOG=warn "$bin" --listen 127.0.0.1:$port > /dev/null 2>&1 &
pid=$!
until curl -fs "http://127.0.0.1:$port/readyz" > /dev/null; do sleep 0.002; done
ready=$(date +%s%N)
sleep 2
rss=$(grep VmRSS /proc/$pid/status | awk '{print $2}')
echo "ready_ms=$(( (ready - start) / 1000000 )) idle_rss_kib=$rss"
kill -TERM $pid; wait $pid
