#!/usr/bin/env bash
# Refreshes .sqlx/, the offline data of the compile-time checked queries, after a query or
# a migration changed: a scratch database gets every migration, then the workspace is
# checked against it with the macros writing their data into .sqlx/ (what
# `cargo sqlx prepare --workspace -- --all-targets` does, without installing sqlx-cli).
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/services.sh
ensure_postgres

db=wuye_sqlx_prepare
psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
for f in migrations/*.sql; do
  psql -h 127.0.0.1 -U postgres -d "$db" -q -v ON_ERROR_STOP=1 -f "$f" >/dev/null
done
rm -rf .sqlx && mkdir .sqlx
# the macros only write what they expand: make them expand again
touch api/src/lib.rs tests/src/lib.rs
find api/src api/tests tests -name '*.rs' -exec touch {} +
SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$PWD/.sqlx" DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db" \
  cargo check --workspace --all-targets --locked
psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
echo ".sqlx: $(ls .sqlx | wc -l) queries"
