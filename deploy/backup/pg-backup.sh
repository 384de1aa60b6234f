#!/usr/bin/env bash
# deploy/backup/pg-backup.sh - back up Loa's PostgreSQL database to one file.
#
#   pg-backup.sh FILE            (reads LOA_DATABASE_URL)
#   pg-backup.sh FILE URL
#
# The file is pg_dump's custom format (compressed; restored with
# pg-restore.sh or pg_restore). pg_dump reads one consistent snapshot, so
# Loa keeps running meanwhile: the ledger, accounts, the audit log,
# broadcasts, alerts, schedules and dead letters are all in it. The file
# is written beside FILE first and renamed when pg_restore can read it
# back, so FILE is never half a backup. Set PG_BIN to the directory of a
# pg_dump of the server's major version or newer if the one on PATH is
# older. See docs/operations.md, "Backups".
set -euo pipefail

file=${1:?usage: pg-backup.sh FILE [URL]}
url=${2:-${LOA_DATABASE_URL:?LOA_DATABASE_URL is not set and no URL given}}
bin=${PG_BIN:+$PG_BIN/}

tmp="$file.partial"
trap 'rm -f "$tmp"' EXIT
"${bin}pg_dump" --format=custom --no-owner --no-privileges --file="$tmp" "$url"
# A file pg_restore cannot list is no backup.
"${bin}pg_restore" --list "$tmp" >/dev/null
mv -f "$tmp" "$file"
trap - EXIT
echo "pg-backup: wrote $file ($(wc -c <"$file") bytes)"
