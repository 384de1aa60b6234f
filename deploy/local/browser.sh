#!/usr/bin/env bash
# deploy/local/browser.sh STATE_DIR - install the tools of the console's
# browser tests and of the monitoring checks, and print the variables that
# point the tests at them (up.sh adds them to .state/env):
#   LOA_TEST_CHROMIUM  Debian's chromium, driven headless by the console's
#                      browser tests (chromedp)
#   LOA_TEST_AXE_CORE  axe.min.js of the npm package axe-core, the
#                      accessibility check injected into every console page
#   LOA_TEST_PROMTOOL  promtool (Debian's prometheus package), which checks
#                      deploy/prometheus/rules.yml and the dashboard's queries
# Idempotent: what is installed is left alone. A tool that cannot be
# installed is reported and left out; its tests then fail under
# LOA_REQUIRE_SERVICES=1 (and skip without it).
set -euo pipefail

STATE="$1"
AXE_VERSION=4.14.1

log() { echo "local: $*" >&2; }

SUDO=()
[[ $EUID -ne 0 ]] && SUDO=(sudo)
APT_UPDATED=0
apt_install() {
	if [[ $APT_UPDATED -eq 0 ]]; then
		"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >>"$STATE/browser.log" 2>&1 || return 1
		APT_UPDATED=1
	fi
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >>"$STATE/browser.log" 2>&1
}

if command -v chromium >/dev/null 2>&1 || apt_install chromium; then
	echo "export LOA_TEST_CHROMIUM=$(command -v chromium)"
else
	log "WARNING: could not install chromium (log: $STATE/browser.log)"
fi

# promtool comes with the Prometheus server package; nothing here starts
# the server (without systemd its service is not started).
if command -v promtool >/dev/null 2>&1 || apt_install prometheus; then
	echo "export LOA_TEST_PROMTOOL=$(command -v promtool)"
else
	log "WARNING: could not install promtool (log: $STATE/browser.log)"
fi

AXE_DIR="$STATE/axe-core"
AXE="$AXE_DIR/node_modules/axe-core/axe.min.js"
axe_installed() { node -e "process.exit(require('$AXE_DIR/node_modules/axe-core/package.json').version === '$AXE_VERSION' ? 0 : 1)" 2>/dev/null; }
if axe_installed; then
	echo "export LOA_TEST_AXE_CORE=$AXE"
elif command -v npm >/dev/null 2>&1 && mkdir -p "$AXE_DIR" &&
	npm install --prefix "$AXE_DIR" --no-audit --no-fund --no-save "axe-core@$AXE_VERSION" >>"$STATE/browser.log" 2>&1 && axe_installed; then
	log "npm axe-core $AXE_VERSION installed in $AXE_DIR"
	echo "export LOA_TEST_AXE_CORE=$AXE"
else
	log "WARNING: could not install the npm package axe-core $AXE_VERSION (log: $STATE/browser.log)"
fi
