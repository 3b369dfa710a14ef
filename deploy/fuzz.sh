#!/usr/bin/env bash
# GraphQL fuzzing with Schemathesis (from PyPI) as the demo administrator: every query and
# mutation of the schema with generated arguments; fails on any 5xx and on any GraphQL
# error coded INTERNAL. deploy/test.sh runs it for 3 minutes; for a long run:
#   ./deploy/fuzz.sh 1800          # seconds of fuzzing (default 180)
# The server is built in debug if target/debug/wuye is missing; its log is target/fuzz/server.log.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/services.sh
ensure_postgres
ensure_redis
ensure_mosquitto

secs=${1:-180}
out=target/fuzz
mkdir -p "$out"
venv=target/fuzz-venv
if [ ! -x "$venv/bin/st" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==4.32.5"
fi
bin=${WUYE_BIN:-target/debug/wuye}
[ -x "$bin" ] || cargo build -q -p wuye-api

db=wuye_fuzz_$$
port=$((20000 + $$ % 10000))
export WUYE_DATABASE_URL=postgres://postgres@127.0.0.1:5432/$db
export WUYE_REDIS_PREFIX="fuzz:$$:"
export WUYE_HTTP_ADDR=127.0.0.1:$port
export WUYE_MQTT_TOPIC_ROOT="fuzz$$"
export WUYE_MQTT_CLIENT_PREFIX="wuye-fuzz-$$"
export WUYE_MQTT_CLEAN_SESSION=true
export WUYE_STORAGE_DIR="$out/files"
export WUYE_AUTH__ACCESS_TOKEN_TTL_SECS=86400
export WUYE_IOT__JOBS=false
export RUST_LOG=${RUST_LOG:-warn}
psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE $db"
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  redis-cli --scan --pattern "fuzz:$$:*" | xargs -r redis-cli del >/dev/null || true
}
trap cleanup EXIT
"$bin" migrate >/dev/null
"$bin" seed-demo >/dev/null
"$bin" serve >"$out/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
token=$(curl -fsS "http://127.0.0.1:$port/graphql" -H 'content-type: application/json' \
  -d '{"query":"mutation { signIn(input: {login: \"admin\", password: \"Wuye@2026\"}) { accessToken } }"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["signIn"]["accessToken"])')

# the administrator stays signed in: nothing that ends its own session is fuzzed
SCHEMATHESIS_HOOKS=deploy.fuzz.hooks "$venv/bin/st" run "http://127.0.0.1:$port/graphql" \
  --header "Authorization: Bearer $token" \
  --checks no_server_error,no_internal_error \
  --exclude-name-regex '^Mutation\.(signOut|changePassword|setUserStatus|resetUserPassword|revokeRole|deleteRole|updateRole)$' \
  --phases examples,coverage,fuzzing \
  --max-time "$secs" \
  --workers 2 \
  --suppress-health-check all \
  --report junit --report-dir "$out" \
  --no-color
