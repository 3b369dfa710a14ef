#!/usr/bin/env bash
# A consistent backup of one wuye deployment into a folder:
#   deploy/backup.sh OUT_DIR
# - database.dump: pg_dump in custom format (one snapshot, restorable in parallel)
# - files.tar: the local file folder (storage.backend = "local"); with a bucket, turn on
#   the bucket's versioning / cross-region replication instead (the runbook)
# - manifest.txt: what was taken, when, from which schema version
# Reads WUYE_DATABASE_URL and WUYE_STORAGE_DIR (defaults as in deploy/dev.sh).
# The test `deploy::backup_and_restore_round_trip` rehearses it with deploy/restore.sh.
set -euo pipefail
out="${1:?usage: deploy/backup.sh OUT_DIR}"
url="${WUYE_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/wuye}"
files="${WUYE_STORAGE_DIR:-data/files}"
mkdir -p "$out"
pg_dump --format=custom --no-owner --no-privileges --file="$out/database.dump" "$url"
version=$(psql "$url" -Atqc "SELECT coalesce(max(version), 0) FROM _sqlx_migrations WHERE success")
if [ -d "$files" ]; then
  tar -C "$files" -cf "$out/files.tar" .
fi
{
  echo "taken_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "schema_version=$version"
  echo "database_bytes=$(stat -c %s "$out/database.dump")"
  [ -f "$out/files.tar" ] && echo "files_bytes=$(stat -c %s "$out/files.tar")"
} > "$out/manifest.txt"
echo "backup written to $out (schema version $version)"
