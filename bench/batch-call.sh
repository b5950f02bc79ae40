#!/usr/bin/env bash
# One session's cost of an append call, without the server: pgbench, one client, prepared statements, and
# synchronous_commit off so that only the call is timed (a call is one transaction). docs/performance.md "Each batch
# planned once". Usage, from the project root:
#   createdb -h 127.0.0.1 -U postgres batch_call
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/batch_call npx tsx src/db/migrate-cli.ts
#   bash bench/batch-call.sh batch_call [seconds per script, default 4]
# Prints the average latency of: append_events() with one event, and append_events_batch() with 1, 4 and 32 appends
# of one event, 16 appends with event ids, and 8 appends of 10 events (existing streams after their first call).
set -euo pipefail
db=${1:?database name}
seconds=${2:-4}
anchors="$(dirname "$0")/../../shared/bench-anchors"
event="{\"type\":\"OrderPlaced\",\"data\":$(cat "$anchors/payload.json"),\"metadata\":$(cat "$anchors/metadata.json")}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

comma() { if [ "$1" -gt 1 ]; then echo ,; fi; }

# $1 name, $2 appends, $3 events per append, $4 1 for event ids
batch_script() {
  local tenants="" streams="" numbers="" kinds="" versions="" counts="" ids="" events="" sep
  for ((i = 1; i <= $2; i++)); do
    sep=$(comma "$i")
    tenants+="$sep'default'"; streams+="$sep's-' || :client_id || '-' || (:n * 64 + $i)"; numbers+="$sep$i"
    kinds+="${sep}any"; versions+="${sep}null"; counts+="$sep$3"; ids+="$sep$(if [ "$4" = 1 ]; then echo "$3"; else echo 0; fi)"
    local run=""
    for ((j = 1; j <= $3; j++)); do
      if [ "$4" = 1 ]; then run+="$(comma "$j"){\"eventId\":\"'||gen_random_uuid()||'\",${event:1}"
      else run+="$(comma "$j")$event"; fi
    done
    events+="$sep[$run]"
  done
  local json="'[$events]'"
  if [ "$4" = 1 ]; then json="('[$events]')::json"; fi
  printf '\\set n random(1, 1000)\nselect * from append_events_batch(array[%s], array[%s], %s, %s, %s, %s, %s, %s, %s);\n' \
    "$tenants" "$streams" "'{$numbers}'" "'{$numbers}'" "'{$kinds}'" "'{$versions}'" "'{$counts}'" "'{$ids}'" "$json" > "$dir/$1.sql"
}

printf '\\set n random(1, 1000)\nselect * from append_events('"'"'default'"'"', '"'"'s-'"'"' || :client_id || '"'"'-'"'"' || :n, '"'"'any'"'"', null, '"'"'[%s]'"'"');\n' "$event" > "$dir/single.sql"
batch_script batch-1 1 1 0
batch_script batch-4 4 1 0
batch_script batch-32 32 1 0
batch_script batch-16-ids 16 1 1
batch_script batch-8x10 8 10 0

for script in single batch-1 batch-4 batch-32 batch-16-ids batch-8x10; do
  latency=$(PGOPTIONS='-c synchronous_commit=off' pgbench -h 127.0.0.1 -U postgres -M prepared -n -c 1 -T "$seconds" -f "$dir/$script.sql" "$db" 2>&1 \
    | sed -n 's/^latency average = //p')
  printf '%-14s %s\n' "$script" "${latency:-failed}"
done
