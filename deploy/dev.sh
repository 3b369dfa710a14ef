#!/usr/bin/env bash
# Run wuye locally: services up, database created and migrated, demo estate seeded,
# server with the GraphQL playground on :8080.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/services.sh
ensure_services

export WUYE_DATABASE_URL="${WUYE_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/wuye}"
export WUYE_ENV="${WUYE_ENV:-development}"
# online payments without a merchant: the development gateway reports orders paid when asked
export WUYE_PAY__DEV_GATEWAY="${WUYE_PAY__DEV_GATEWAY:-true}"
export SQLX_OFFLINE=true

db=$(basename "${WUYE_DATABASE_URL%%\?*}")
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
  say "creating database $db"
  psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE \"$db\""
fi

say "bundling the playground"
bash deploy/playground.sh

say "building"
cargo build -p wuye-api --locked
bin=target/debug/wuye

say "migrating"
$bin migrate
say "seeding the demo estate"
$bin seed-demo

addr="${WUYE_HTTP_ADDR:-127.0.0.1:8080}"
say "playground: http://localhost:${addr##*:}/graphql"
if [ "${WUYE_SIMULATE:-1}" = "1" ]; then
  # live devices for the dashboard: 2 messages/s over the demo estate, a rare fault, one
  # device gone offline (WUYE_SIMULATE=0 to skip)
  say "simulating devices (deviceDashboard, alarms)"
  (sleep 3 && $bin simulate-devices --rate 2 --count 100000000 --faults 0.002 --offline 1 >/dev/null 2>&1) &
fi
exec $bin serve
