#!/usr/bin/env bash
# Services up, format check, clippy with warnings denied, the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/services.sh
ensure_services

# queries are checked against the committed .sqlx data, not a live database
export SQLX_OFFLINE=true

say "bundling the playground (npm registry, pinned by package-lock.json)"
bash deploy/playground.sh

say "cargo fmt --check"
cargo fmt --all -- --check

say "cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# leftovers of earlier runs: test databases and Redis keys under the test prefix
for db in $(psql -h 127.0.0.1 -U postgres -d postgres -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'wuye_t_%'"); do
  psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
done
redis-cli -h 127.0.0.1 --scan --pattern 't:*' | xargs -r -n 500 redis-cli -h 127.0.0.1 del >/dev/null

say "deployment files: Kubernetes manifests (schema-validated), nginx configuration (nginx -t)"
bash deploy/check-deploy.sh

say "cargo test"
cargo test --workspace --locked

say "the SDK through its Python bindings against a server process (offline queue, replay)"
bash deploy/sdk-test.sh

say "the playground in headless Chromium, network cut off"
bash deploy/playground-test.sh

say "GraphQL fuzzing (Schemathesis, 3 minutes; deploy/fuzz.sh 1800 for a long run)"
WUYE_BIN=target/debug/wuye bash deploy/fuzz.sh "${WUYE_FUZZ_SECS:-180}"
