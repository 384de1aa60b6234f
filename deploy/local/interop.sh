#!/usr/bin/env bash
# deploy/local/interop.sh STATE_DIR - install the third-party SMPP
# implementations Loa's interoperability tests run against, and print the
# variables that point the tests at them (up.sh adds them to .state/env):
#   LOA_TEST_SMPPLIB_PYTHON  a Python with smpplib (PyPI), an SMPP client
#                            that talks to Loa's fake SMSC
#   LOA_TEST_NODE_SMPP       node_modules holding the npm package smpp, an
#                            SMPP server that Loa's client talks to
# Idempotent: what is installed at the pinned version is left alone. A tool
# that cannot be installed is reported and left out; the tests then fail
# under LOA_REQUIRE_SERVICES=1 (and skip without it).
set -euo pipefail

STATE="$1"
SMPPLIB_VERSION=2.2.4
NODE_SMPP_VERSION=0.5.1

log() { echo "local: $*" >&2; }

VENV="$STATE/smpplib"
PY="$VENV/bin/python"
if "$PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('smpplib') != '$SMPPLIB_VERSION')" 2>/dev/null; then
	echo "export LOA_TEST_SMPPLIB_PYTHON=$PY"
elif command -v python3 >/dev/null 2>&1 &&
	{ [[ -x $PY ]] || python3 -m venv "$VENV" >>"$STATE/interop.log" 2>&1; } &&
	"$VENV/bin/pip" install -q "smpplib==$SMPPLIB_VERSION" >>"$STATE/interop.log" 2>&1; then
	log "smpplib $SMPPLIB_VERSION installed in $VENV"
	echo "export LOA_TEST_SMPPLIB_PYTHON=$PY"
else
	log "WARNING: could not install smpplib $SMPPLIB_VERSION (log: $STATE/interop.log)"
fi

NODE_DIR="$STATE/node-smpp"
installed() { node -e "process.exit(require('$NODE_DIR/node_modules/smpp/package.json').version === '$NODE_SMPP_VERSION' ? 0 : 1)" 2>/dev/null; }
if installed; then
	echo "export LOA_TEST_NODE_SMPP=$NODE_DIR/node_modules"
elif command -v npm >/dev/null 2>&1 && mkdir -p "$NODE_DIR" &&
	npm install --prefix "$NODE_DIR" --no-audit --no-fund --no-save "smpp@$NODE_SMPP_VERSION" >>"$STATE/interop.log" 2>&1 && installed; then
	log "npm smpp $NODE_SMPP_VERSION installed in $NODE_DIR"
	echo "export LOA_TEST_NODE_SMPP=$NODE_DIR/node_modules"
else
	log "WARNING: could not install the npm package smpp $NODE_SMPP_VERSION (log: $STATE/interop.log)"
fi
