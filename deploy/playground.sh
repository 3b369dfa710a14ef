#!/usr/bin/env bash
# Bundles the GraphiQL playground (api/playground → api/playground/dist) from the npm
# registry's packages pinned in package-lock.json. The wuye binary embeds the result at
# build time; run this before `cargo build` (dev.sh, test.sh and the Dockerfile do).
set -euo pipefail
cd "$(dirname "$0")/../api/playground"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
# reinstall only when the lockfile changed
stamp=node_modules/.wuye-lock
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
node build.mjs
