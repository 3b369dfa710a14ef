#!/usr/bin/env bash
# The SDK through its Python bindings against a real server process (tests/sdk/): offline
# queue, replay, exactly-once, refresh, sign-out. Needs the services of deploy/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/services.sh
bash deploy/sdk.sh debug
cargo build --locked -p wuye-api
db="wuye_sdk_$$"
psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE $db"
trap 'psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null' EXIT
export WUYE_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
export WUYE_BIN="$PWD/target/debug/wuye"
"$WUYE_BIN" migrate >/dev/null
"$WUYE_BIN" seed-demo >/dev/null
WUYE_SDK_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export WUYE_SDK_PORT
PYTHONPATH=target/sdk/python python3 tests/sdk/test_offline_queue.py
