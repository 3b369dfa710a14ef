#!/usr/bin/env bash
# The playground in a real headless Chromium (Debian's package, driven by puppeteer-core)
# with the network cut off: the browser runs in a network namespace whose only link is a
# veth pair to the wuye server under test — no route, no DNS, nothing else. It checks that
# the page renders, the docs pane shows the schema, the sign-in box signs in and a query
# runs, and that no request left for another host. Needs root (CI runs as root) for the
# namespace; expects target/debug/wuye built with the bundle (deploy/test.sh does both).
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/services.sh
if ! command -v chromium >/dev/null 2>&1; then
  say "installing Chromium from Debian's packages"
  apt_install chromium
fi
command -v ip >/dev/null 2>&1 || apt_install iproute2
[ -x target/debug/wuye ] || cargo build -p wuye-api --locked
[ -f api/playground/dist/playground.js ] || bash deploy/playground.sh

tag=$$
ns="wuye-pg-$tag"
host_if="wpg${tag}h"; ns_if="wpg${tag}n"
net=$(( tag % 250 + 1 ))
host_ip="10.231.$net.1"; ns_ip="10.231.$net.2"
port=$(( 20000 + tag % 20000 ))
db="wuye_pg_$tag"
work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  ip link del "$host_if" 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

say "playground test: network namespace $ns ($ns_ip, its only link leads to $host_ip)"
ip netns add "$ns"
ip link add "$host_if" type veth peer name "$ns_if"
ip link set "$ns_if" netns "$ns"
ip addr add "$host_ip/30" dev "$host_if"
ip link set "$host_if" up
ip netns exec "$ns" ip addr add "$ns_ip/30" dev "$ns_if"
ip netns exec "$ns" ip link set "$ns_if" up
ip netns exec "$ns" ip link set lo up
# the cut is real: nothing but the server's side of the link is reachable
if ip netns exec "$ns" bash -c 'exec 3<>/dev/tcp/1.1.1.1/443' 2>/dev/null; then
  echo "the browser's namespace reaches the outside: not a cut-off network" >&2
  exit 1
fi

psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE \"$db\""
export WUYE_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
export WUYE_ENV=development WUYE_REDIS_PREFIX="pg$tag:" WUYE_STORAGE_DIR="$work/files"
export WUYE_MQTT_CLIENT_PREFIX="wuye-pg-$tag" WUYE_MQTT_TOPIC_ROOT="pg$tag"
export WUYE_HTTP_ADDR="$host_ip:$port" WUYE_ALLOW_NON_LOOPBACK=true
target/debug/wuye migrate >/dev/null
target/debug/wuye seed-demo >/dev/null
target/debug/wuye serve >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/$host_ip/$port") 2>/dev/null && break
  sleep 0.1
done

cat >"$work/chromium" <<WRAP
#!/usr/bin/env bash
exec ip netns exec "$ns" /usr/bin/chromium "\$@"
WRAP
chmod +x "$work/chromium"

cd api/playground
if ! CHROMIUM="$work/chromium" WUYE_PLAYGROUND_URL="http://$host_ip:$port" SCREENSHOT="${PLAYGROUND_SCREENSHOT:-}" \
  timeout 180 node test/offline.mjs; then
  echo "--- server log ---" >&2
  tail -n 50 "$work/server.log" >&2
  exit 1
fi
