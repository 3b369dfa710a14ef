#!/usr/bin/env bash
# Runs every benchmark against the real services and rewrites the generated block of the
# README's performance section (between the bench.sh markers) with what they printed, the
# machine they ran on and the commit, headed by the issues' targets (deploy/bench-targets.toml)
# each judged met / not met:
#   ./deploy/bench.sh                 (all: foundation notify ingest workorders bills attendance)
#   ./deploy/bench.sh foundation ingest
# Takes ~30 minutes on 2 cores (release build included); leave the machine idle meanwhile.
# Raw outputs stay in target/bench/<name>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/services.sh
ensure_services
export SQLX_OFFLINE=true
benches=("$@")
[ ${#benches[@]} -eq 0 ] && benches=(foundation notify ingest workorders bills attendance)
mkdir -p target/bench
say "building the benchmarks (release)"
cargo bench --locked -p wuye-tests --no-run
for b in "${benches[@]}"; do
  say "benchmark: $b"
  cargo bench --locked -p wuye-tests --bench "$b" 2>/dev/null | tee "target/bench/$b.txt"
done
python3 deploy/bench_readme.py README.md "${benches[@]}"
say "README.md performance block rewritten (git diff README.md); the targets:"
python3 deploy/bench_readme.py --check README.md "${benches[@]}" || true
