#!/usr/bin/env bash
# deploy/local/down.sh - stop the services started by deploy/local/up.sh.
#   Kafka, Redis and the feedback tests' S3 server (versitygw): by their pid
#   files in .state/ (TERM, wait up to 20 s, then KILL).
#   PostgreSQL:      pg_ctlcluster 15 main stop.
# Never fails because something is already down.
#   --purge   also delete Kafka's data (.state/kafka-data) so the next up.sh formats afresh.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="$HERE/.state"
PG_VERSION=15
PG_CLUSTER=main

log() { echo "local: $*"; }

PURGE=0
for arg in "$@"; do
	case "$arg" in
	--purge) PURGE=1 ;;
	-h | --help)
		sed -n '2,7p' "$0"
		exit 0
		;;
	*)
		echo "local: ERROR: unknown argument '$arg' (only --purge)" >&2
		exit 2
		;;
	esac
done

SUDO=()
if [[ $EUID -ne 0 ]] && command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi

# pid_matches PID WORD: PID is alive and its command line contains WORD.
pid_matches() {
	local pid=$1 word=$2
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$word"
}

# stop_pidfile NAME PIDFILE WORD: stop the process in PIDFILE if it is alive and its
# command line contains WORD (guards against a stale pid reused by another program).
stop_pidfile() {
	local name=$1 pidfile=$2 word=$3 pid i
	pid="$( ([[ -s $pidfile ]] && tr -dc '0-9' <"$pidfile") || true)"
	if ! pid_matches "$pid" "$word"; then
		log "$name: not running${pid:+ (stale pid $pid)}"
		rm -f "$pidfile"
		return 0
	fi
	log "$name: stopping pid $pid"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 80; i++)); do
		pid_matches "$pid" "$word" || break
		sleep 0.25
	done
	if pid_matches "$pid" "$word"; then
		log "$name: still running after 20 s, sending KILL"
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 20; i++)); do
			pid_matches "$pid" "$word" || break
			sleep 0.25
		done
	fi
	rm -f "$pidfile"
	log "$name: stopped"
}

stop_pidfile kafka "$STATE/kafka.pid" kafka.Kafka
stop_pidfile redis "$STATE/redis.pid" redis-server
stop_pidfile versitygw "$STATE/versitygw.pid" versitygw

if command -v pg_lsclusters >/dev/null 2>&1 &&
	pg_lsclusters -h 2>/dev/null | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1==v && $2==c && $4 ~ /^online/ {f=1} END {exit !f}'; then
	log "postgres: stopping cluster $PG_VERSION/$PG_CLUSTER"
	"${SUDO[@]}" pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" stop -m fast </dev/null ||
		log "postgres: pg_ctlcluster stop reported an error (ignored)"
else
	log "postgres: cluster $PG_VERSION/$PG_CLUSTER not running"
fi

if [[ $PURGE -eq 1 ]]; then
	log "purging $STATE/kafka-data"
	rm -rf "$STATE/kafka-data" "$STATE/kafka-cluster-id"
fi
log "all services down"
