#!/usr/bin/env bash
# deploy/backup/pg-restore.sh - restore a pg-backup.sh file into an EMPTY database.
#
#   pg-restore.sh FILE URL
#
# URL names a database that exists and holds no tables (createdb it
# first). The restore runs in one transaction: it either completes or
# leaves the database as empty as it found it. Then point
# LOA_DATABASE_URL at it and start Loa; `loa migrate` afterwards applies
# any migration newer than the backup. Set PG_BIN as for pg-backup.sh.
# See docs/operations.md, "Backups".
set -euo pipefail

file=${1:?usage: pg-restore.sh FILE URL}
url=${2:?usage: pg-restore.sh FILE URL}
bin=${PG_BIN:+$PG_BIN/}

tables=$("${bin}psql" --no-psqlrc --quiet --tuples-only --no-align --dbname="$url" \
	--command="SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
if [[ $tables != 0 ]]; then
	echo "pg-restore: the target database holds $tables tables; restore only into an empty database" >&2
	exit 1
fi
"${bin}pg_restore" --exit-on-error --single-transaction --no-owner --no-privileges --dbname="$url" "$file"
echo "pg-restore: restored $file"
