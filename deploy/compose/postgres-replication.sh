#!/bin/bash
# Run once by the postgres image when it creates the primary's cluster: let
# the standby stream WAL as loa, with a password, from the compose network,
# and make every commit wait for a standby from the next start on (not
# during this initialisation, when there is none yet).
set -euo pipefail
echo "host replication loa all scram-sha-256" >>"$PGDATA/pg_hba.conf"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
	-c "ALTER SYSTEM SET synchronous_standby_names = '*'"
