#!/usr/bin/env bash
# Restores a folder written by deploy/backup.sh into an EMPTY database:
#   deploy/restore.sh BACKUP_DIR TARGET_DATABASE_URL [FILES_DIR]
# Refuses a database that already has tables (restore next to production, check, then
# switch WUYE_DATABASE_URL). Run the same or a newer `wuye migrate` afterwards: migrations
# only go forward.
set -euo pipefail
dir="${1:?usage: deploy/restore.sh BACKUP_DIR TARGET_DATABASE_URL [FILES_DIR]}"
url="${2:?usage: deploy/restore.sh BACKUP_DIR TARGET_DATABASE_URL [FILES_DIR]}"
files="${3:-}"
[ -f "$dir/database.dump" ] || { echo "restore: $dir/database.dump missing" >&2; exit 2; }
tables=$(psql "$url" -Atqc "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
if [ "$tables" != "0" ]; then
  echo "restore: the target database is not empty ($tables tables)" >&2
  exit 3
fi
pg_restore --no-owner --no-privileges --exit-on-error --jobs=2 --dbname="$url" "$dir/database.dump"
if [ -n "$files" ] && [ -f "$dir/files.tar" ]; then
  mkdir -p "$files"
  tar -C "$files" -xf "$dir/files.tar"
fi
echo "restored $(grep schema_version "$dir/manifest.txt") into $url"
