#!/usr/bin/env bash
# Checks the deployment files without a container engine or a cluster:
# - every Kubernetes manifest against the API schemas of Kubernetes 1.30 (kubernetes-validate, strict)
# - the nginx server block with `nginx -t` (upstream host names rewritten to loopback, since
#   compose's service names resolve only inside compose)
set -euo pipefail
cd "$(dirname "$0")/.."
for f in deploy/k8s/*.yaml; do
  case "$f" in */kustomization.yaml) continue ;; esac
  kubernetes-validate --strict -k 1.30.0 "$f"
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed -e 's/server api-1:8080/server 127.0.0.1:8081/' -e 's/server api-2:8080/server 127.0.0.1:8082/' \
  deploy/nginx/wuye.conf > "$tmp/wuye.conf"
cat > "$tmp/nginx.conf" <<CONF
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events { worker_connections 64; }
http {
  client_body_temp_path $tmp/body;
  proxy_temp_path $tmp/proxy;
  fastcgi_temp_path $tmp/fastcgi;
  uwsgi_temp_path $tmp/uwsgi;
  scgi_temp_path $tmp/scgi;
  include $tmp/wuye.conf;
}
CONF
nginx=$(command -v nginx || echo /usr/sbin/nginx)
"$nginx" -t -q -p "$tmp" -c "$tmp/nginx.conf"
echo "deployment files: ok"
