#!/usr/bin/env bash
# The whole end-to-end suite against a Redis Cluster: three masters (redis-server in
# cluster mode on 127.0.0.1:7101-7103, slots assigned by redis-cli), every test server
# configured with redis_cluster_nodes. deploy/test.sh runs the cluster's own tests
# (e2e redis_cluster::); this long run proves the rest of the suite keeps to one slot per
# pipeline and script. Usage: deploy/test-redis-cluster.sh [test filter]
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/services.sh
ensure_services

ports=(7101 7102 7103)
dir=$(mktemp -d /tmp/wuye-redis-cluster.XXXXXX)
stop() {
    for p in "${ports[@]}"; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
    rm -rf "$dir"
}
trap stop EXIT
for p in "${ports[@]}"; do
    redis-server --bind 127.0.0.1 --port "$p" --cluster-enabled yes --cluster-config-file "nodes-$p.conf" \
        --cluster-node-timeout 2000 --save "" --appendonly no --dir "$dir" --daemonize yes --logfile "$dir/$p.log"
done
for p in "${ports[@]}"; do
    until redis-cli -p "$p" ping >/dev/null 2>&1; do sleep 0.1; done
done
redis-cli --cluster create "${ports[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >/dev/null
for p in "${ports[@]}"; do
    until redis-cli -p "$p" cluster info | grep -q cluster_state:ok; do sleep 0.1; done
done
say "e2e suite on a Redis Cluster (${ports[*]})"
WUYE_TEST_REDIS_CLUSTER=$(printf 'redis://127.0.0.1:%s,' "${ports[@]}") \
    cargo test -p wuye-tests --test e2e --locked -- "$@"
