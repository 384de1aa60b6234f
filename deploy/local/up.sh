#!/usr/bin/env bash
# deploy/local/up.sh - start REAL local services for Loa's integration tests:
#   PostgreSQL 15  127.0.0.1:5432  (role loa/loa, database loa_test)
#   Redis          127.0.0.1:6379
#   Apache Kafka   127.0.0.1:9092  (single-node KRaft, controller on 127.0.0.1:9093)
# install the third-party SMPP implementations of the interoperability tests
# (interop.sh), the console's browser tools (browser.sh), the S3 server and
# Open311 clients of the feedback tests (feedback.sh), and write
# deploy/local/.state/env (source it to get the LOA_TEST_* variables).
#
# Idempotent: services that are already up (and ours) are left alone.
# Works from any cwd; needs root (or sudo) for apt-get and pg_ctlcluster.
# See deploy/local/README.md.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="$HERE/.state"

PG_VERSION=15
PG_CLUSTER=main
PG_PORT=5432
PG_USER=loa
PG_PASSWORD=loa
PG_DB=loa_test

REDIS_PORT=6379
REDIS_PIDFILE="$STATE/redis.pid"
REDIS_LOG="$STATE/redis.log"

KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
KAFKA_POM="$HERE/kafka/pom.xml"
KAFKA_LIBS="$STATE/kafka-libs"
KAFKA_DATA="$STATE/kafka-data"
KAFKA_PROPS="$STATE/server.properties"
KAFKA_LOG4J="$STATE/kafka-log4j2.properties"
KAFKA_LOG="$STATE/kafka.log"
KAFKA_PIDFILE="$STATE/kafka.pid"
KAFKA_CLUSTER_ID_FILE="$STATE/kafka-cluster-id"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"

T0=$SECONDS
log() { echo "local: $*"; }
die() {
	echo "local: ERROR: $*" >&2
	exit 1
}

mkdir -p "$STATE"

# --- helpers -----------------------------------------------------------------

SUDO=()
if [[ $EUID -ne 0 ]]; then
	command -v sudo >/dev/null 2>&1 || die "not root and sudo is missing: run as root"
	SUDO=(sudo)
fi

as_postgres() {
	if [[ $EUID -eq 0 ]]; then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && sudo -u postgres -- "$@")
	fi
}

# port_open PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
	timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

APT_UPDATED=0
apt_install() {
	if [[ $APT_UPDATED -eq 0 ]]; then
		log "apt-get update"
		"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >>"$STATE/apt.log" 2>&1 || {
			tail -n 30 "$STATE/apt.log" >&2
			die "apt-get update failed (log: $STATE/apt.log)"
		}
		APT_UPDATED=1
	fi
	log "apt-get install -y $*"
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" >>"$STATE/apt.log" 2>&1 || {
		tail -n 30 "$STATE/apt.log" >&2
		die "apt-get install $* failed (log: $STATE/apt.log)"
	}
}

# pid_matches PID WORD: PID is alive and its command line contains WORD.
pid_matches() {
	local pid=$1 word=$2
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$word"
}

# close_extra_fds: close every fd above 2 in the current (sub)shell, so that daemons
# started from it do not keep the caller's pipes (e.g. a CI log pipe) open forever.
close_extra_fds() {
	local fd
	for fd in /proc/$BASHPID/fd/*; do
		fd=${fd##*/}
		[[ $fd =~ ^[0-9]+$ && $fd -gt 2 ]] && eval "exec $fd>&-" 2>/dev/null
	done
	return 0
}

# daemon_run CMD...: run CMD with stdin/stdout/stderr detached and no inherited extra fds;
# its output goes to the file in $DAEMON_OUT (default /dev/null).
daemon_run() {
	(
		close_extra_fds
		exec "$@"
	) </dev/null >>"${DAEMON_OUT:-/dev/null}" 2>&1
}

pidfile_pid() { [[ -s $1 ]] && tr -dc '0-9' <"$1"; }

# --- 1. PostgreSQL 15 ----------------------------------------------------------

pg_cluster_line() { pg_lsclusters -h 2>/dev/null | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1==v && $2==c'; }

start_postgres() {
	if ! command -v pg_lsclusters >/dev/null 2>&1 || [[ ! -x /usr/lib/postgresql/$PG_VERSION/bin/postgres ]]; then
		apt_install "postgresql-$PG_VERSION" "postgresql-client-$PG_VERSION"
	fi

	local line port status
	line="$(pg_cluster_line)"
	if [[ -z $line ]]; then
		port_open "$PG_PORT" && die "port $PG_PORT is in use by something that is not PostgreSQL $PG_VERSION/$PG_CLUSTER; stop it first"
		log "postgres: creating cluster $PG_VERSION $PG_CLUSTER on port $PG_PORT"
		"${SUDO[@]}" pg_createcluster "$PG_VERSION" "$PG_CLUSTER" --port "$PG_PORT" >/dev/null
		line="$(pg_cluster_line)"
		[[ -n $line ]] || die "postgres: pg_createcluster $PG_VERSION $PG_CLUSTER did not create a cluster"
	fi
	port="$(awk '{print $3}' <<<"$line")"
	status="$(awk '{print $4}' <<<"$line")"
	[[ $port == "$PG_PORT" ]] || die "postgres: cluster $PG_VERSION/$PG_CLUSTER is configured for port $port, expected $PG_PORT (fix 'port' in /etc/postgresql/$PG_VERSION/$PG_CLUSTER/postgresql.conf)"

	if [[ $status == online* ]]; then
		log "postgres: cluster $PG_VERSION/$PG_CLUSTER already running"
	else
		port_open "$PG_PORT" && die "port $PG_PORT is in use by something that is not PostgreSQL $PG_VERSION/$PG_CLUSTER; stop it first"
		log "postgres: starting cluster $PG_VERSION/$PG_CLUSTER"
		DAEMON_OUT="$STATE/postgres-start.log" daemon_run "${SUDO[@]}" pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start || {
			cat "$STATE/postgres-start.log" >&2
			die "postgres: pg_ctlcluster $PG_VERSION $PG_CLUSTER start failed (see /var/log/postgresql/postgresql-$PG_VERSION-$PG_CLUSTER.log)"
		}
	fi

	# TCP on 127.0.0.1 must be enabled (Debian's default listen_addresses='localhost' does).
	local listen
	listen="$(as_postgres psql -p "$PG_PORT" -Atqc 'SHOW listen_addresses')"
	if ! grep -qE '(^|[ ,])(\*|0\.0\.0\.0|localhost|127\.0\.0\.1)($|[ ,])' <<<"$listen"; then
		local conf="/etc/postgresql/$PG_VERSION/$PG_CLUSTER/conf.d/zz-loa-local.conf"
		log "postgres: listen_addresses='$listen' lacks 127.0.0.1; writing $conf and restarting"
		echo "listen_addresses = '${listen:+$listen,}127.0.0.1'  # added by loa deploy/local/up.sh" |
			"${SUDO[@]}" tee "$conf" >/dev/null
		DAEMON_OUT="$STATE/postgres-start.log" daemon_run "${SUDO[@]}" pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" restart
	fi

	local i
	for ((i = 0; i < 60; i++)); do
		pg_isready -q -h 127.0.0.1 -p "$PG_PORT" && break
		sleep 0.5
	done
	pg_isready -q -h 127.0.0.1 -p "$PG_PORT" ||
		die "postgres: not ready on 127.0.0.1:$PG_PORT after 30 s (see /var/log/postgresql/postgresql-$PG_VERSION-$PG_CLUSTER.log)"

	# Role and database, idempotently. SUPERUSER: tests create/drop schemas and extensions.
	as_postgres psql -p "$PG_PORT" -v ON_ERROR_STOP=1 -Atq >/dev/null <<SQL
SET password_encryption = 'scram-sha-256';
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN SUPERUSER PASSWORD '$PG_PASSWORD';
  ELSE
    ALTER ROLE $PG_USER LOGIN SUPERUSER PASSWORD '$PG_PASSWORD';
  END IF;
END
\$\$;
SQL
	if [[ -z "$(as_postgres psql -p "$PG_PORT" -Atqc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" ]]; then
		log "postgres: creating database $PG_DB owned by $PG_USER"
		as_postgres createdb -p "$PG_PORT" -O "$PG_USER" "$PG_DB"
	else
		as_postgres psql -p "$PG_PORT" -v ON_ERROR_STOP=1 -Atqc "ALTER DATABASE $PG_DB OWNER TO $PG_USER" >/dev/null
	fi

	# Password auth over TCP must work; if pg_hba.conf does not allow it, add a rule on top.
	if ! PGPASSWORD="$PG_PASSWORD" PGCONNECT_TIMEOUT=5 psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" -Atqc 'SELECT 1' >/dev/null 2>&1; then
		local hba
		hba="$(as_postgres psql -p "$PG_PORT" -Atqc 'SHOW hba_file')"
		if ! grep -q 'loa deploy/local' "$hba"; then
			log "postgres: adding a 127.0.0.1 scram-sha-256 rule for $PG_USER to $hba"
			"${SUDO[@]}" sed -i "1i host all $PG_USER 127.0.0.1/32 scram-sha-256  # added by loa deploy/local/up.sh" "$hba"
			"${SUDO[@]}" pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" reload
			sleep 1
		fi
		PGPASSWORD="$PG_PASSWORD" PGCONNECT_TIMEOUT=5 psql -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" -Atqc 'SELECT 1' >/dev/null ||
			die "postgres: password login as $PG_USER over 127.0.0.1:$PG_PORT fails (check $hba)"
	fi
	log "postgres: ready on 127.0.0.1:$PG_PORT (db $PG_DB, user $PG_USER)"
}

# --- 2. Redis ------------------------------------------------------------------

redis_ping() { [[ "$(timeout 3 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

start_redis() {
	if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
		apt_install redis-server
	fi

	if redis_ping; then
		if pid_matches "$(pidfile_pid "$REDIS_PIDFILE")" redis-server; then
			log "redis: already running (pid $(pidfile_pid "$REDIS_PIDFILE"))"
		else
			log "redis: a Redis not started by this script already answers on 127.0.0.1:$REDIS_PORT; using it"
		fi
		return
	fi
	port_open "$REDIS_PORT" && die "port $REDIS_PORT is in use by something that does not answer Redis PING; stop it first"

	log "redis: starting on 127.0.0.1:$REDIS_PORT"
	rm -f "$REDIS_PIDFILE"
	daemon_run redis-server --bind 127.0.0.1 --port "$REDIS_PORT" \
		--save '' --appendonly no \
		--daemonize yes --pidfile "$REDIS_PIDFILE" --dir "$STATE" --logfile "$REDIS_LOG" ||
		die "redis: redis-server failed to start (log: $REDIS_LOG)"
	local i
	for ((i = 0; i < 40; i++)); do
		redis_ping && break
		sleep 0.25
	done
	redis_ping || {
		tail -n 30 "$REDIS_LOG" >&2 2>/dev/null || true
		die "redis: no PONG from 127.0.0.1:$REDIS_PORT after 10 s (log: $REDIS_LOG)"
	}
	log "redis: ready on 127.0.0.1:$REDIS_PORT (pid $(pidfile_pid "$REDIS_PIDFILE"))"
}

# --- 3. Apache Kafka (KRaft, single node) --------------------------------------

kafka_java() { java -cp "$KAFKA_LIBS/*" "$@"; }

fetch_kafka_libs() {
	if ! command -v java >/dev/null 2>&1; then apt_install openjdk-17-jre-headless; fi
	local jv
	jv="$(java -XshowSettings:properties -version 2>&1 | awk -F' = ' '/java.specification.version/ {print $2}')"
	[[ ${jv%%.*} -ge 17 ]] 2>/dev/null || die "kafka: needs Java 17 or newer, found '${jv:-unknown}'"

	# Re-copy only when pom.xml changed since the last successful copy.
	local want have=""
	want="$(sha256sum "$KAFKA_POM" | awk '{print $1}')"
	[[ -f $KAFKA_LIBS/.complete ]] && have="$(cat "$KAFKA_LIBS/.complete")"
	if [[ $want == "$have" ]]; then
		log "kafka: jars already in $KAFKA_LIBS"
		return
	fi
	if ! command -v mvn >/dev/null 2>&1; then apt_install maven; fi
	log "kafka: copying broker jars with Maven into $KAFKA_LIBS (first run downloads from Maven Central)"
	rm -rf "$KAFKA_LIBS"
	mvn -B -f "$KAFKA_POM" -Dstyle.color=never dependency:copy-dependencies -Dkafka.libs.dir="$KAFKA_LIBS" \
		</dev/null >"$STATE/kafka-mvn.log" 2>&1 || {
		grep -E 'ERROR|BUILD' "$STATE/kafka-mvn.log" | tail -n 30 >&2
		die "kafka: mvn dependency:copy-dependencies failed (log: $STATE/kafka-mvn.log)"
	}
	ls "$KAFKA_LIBS"/kafka_2.13-*.jar >/dev/null 2>&1 || die "kafka: no kafka_2.13 jar in $KAFKA_LIBS after Maven ran"
	echo "$want" >"$KAFKA_LIBS/.complete"
}

write_kafka_config() {
	cat >"$KAFKA_PROPS.tmp" <<EOF
# Generated by deploy/local/up.sh - edits are overwritten on the next run.
# Single-node KRaft: this process is both broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA
num.partitions=4
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=24
EOF
	mv "$KAFKA_PROPS.tmp" "$KAFKA_PROPS"

	cat >"$KAFKA_LOG4J.tmp" <<'EOF'
# Generated by deploy/local/up.sh: broker logs go to stdout, i.e. .state/kafka.log
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
	mv "$KAFKA_LOG4J.tmp" "$KAFKA_LOG4J"
}

format_kafka_storage() {
	if [[ -f $KAFKA_DATA/meta.properties ]]; then
		return
	fi
	local id
	if [[ -s $KAFKA_CLUSTER_ID_FILE ]]; then
		id="$(cat "$KAFKA_CLUSTER_ID_FILE")"
	else
		id="$(kafka_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
		[[ $id =~ ^[A-Za-z0-9_-]{22}$ ]] || die "kafka: StorageTool random-uuid printed '$id'"
		echo "$id" >"$KAFKA_CLUSTER_ID_FILE"
	fi
	log "kafka: formatting $KAFKA_DATA (cluster id $id)"
	rm -rf "$KAFKA_DATA"
	kafka_java -Dlog4j2.configurationFile="file:$KAFKA_LOG4J" \
		kafka.tools.StorageTool format -t "$id" -c "$KAFKA_PROPS" --standalone \
		>"$STATE/kafka-format.log" 2>&1 || {
		cat "$STATE/kafka-format.log" >&2
		die "kafka: StorageTool format failed"
	}
}

kafka_fail() {
	echo "local: ---- last 50 lines of $KAFKA_LOG ----" >&2
	tail -n 50 "$KAFKA_LOG" >&2 2>/dev/null || true
	die "$1"
}

wait_kafka() {
	local pid=$1 deadline=$((SECONDS + KAFKA_START_TIMEOUT))
	while :; do
		pid_matches "$pid" kafka.Kafka || kafka_fail "kafka: broker process $pid exited during startup"
		if port_open "$KAFKA_PORT" && grep -q 'Kafka Server started' "$KAFKA_LOG" 2>/dev/null; then
			return
		fi
		((SECONDS < deadline)) || kafka_fail "kafka: broker did not start within ${KAFKA_START_TIMEOUT} s"
		sleep 0.5
	done
}

start_kafka() {
	fetch_kafka_libs

	local pid
	pid="$(pidfile_pid "$KAFKA_PIDFILE" || true)"
	if pid_matches "$pid" kafka.Kafka; then
		log "kafka: already running (pid $pid)"
		wait_kafka "$pid"
		log "kafka: ready on 127.0.0.1:$KAFKA_PORT (pid $pid)"
		return
	fi
	rm -f "$KAFKA_PIDFILE"
	local p
	for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
		port_open "$p" && die "port $p is in use by something that is not our Kafka (no live pid in $KAFKA_PIDFILE); stop it first"
	done

	write_kafka_config
	format_kafka_storage

	log "kafka: starting broker (logs: $KAFKA_LOG)"
	[[ -f $KAFKA_LOG ]] && mv -f "$KAFKA_LOG" "$KAFKA_LOG.1"
	# setsid + nohup: the broker outlives this script and its session. The background
	# subshell execs setsid (no fork: it is not a group leader), the inner bash records its
	# own pid and execs java, so the pid file holds java's pid. No fd of ours is inherited.
	# shellcheck disable=SC2016,SC2086
	(
		cd "$STATE" || exit 1
		close_extra_fds
		exec setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$KAFKA_PIDFILE" \
			java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
			-Dlog4j2.configurationFile="file:$KAFKA_LOG4J" \
			-cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_PROPS"
	) </dev/null >"$KAFKA_LOG" 2>&1 &
	local i
	for ((i = 0; i < 50; i++)); do
		pid="$(pidfile_pid "$KAFKA_PIDFILE" || true)"
		[[ -n $pid ]] && break
		sleep 0.1
	done
	[[ -n $pid ]] || kafka_fail "kafka: broker did not write $KAFKA_PIDFILE"
	wait_kafka "$pid"
	log "kafka: ready on 127.0.0.1:$KAFKA_PORT (pid $pid)"
}

# --- 4. Test tools ---------------------------------------------------------------

# xmlsec1, the XML Security Library's command line: the independent
# implementation CAP signature verification is tested against.
# nghttpd (nghttp2-server), nghttp2's HTTP/2 server: the independent
# implementation the FCM client's own HTTP/2 connections are tested against.
install_tools() {
	if ! command -v xmlsec1 >/dev/null 2>&1; then
		apt_install xmlsec1
	fi
	if ! command -v nghttpd >/dev/null 2>&1 && [[ ! -x /usr/sbin/nghttpd ]]; then
		apt_install nghttp2-server
	fi
}

# --- main ----------------------------------------------------------------------

start_postgres
start_redis
start_kafka
INTEROP_ENV="$(bash "$HERE/interop.sh" "$STATE")"
BROWSER_ENV="$(bash "$HERE/browser.sh" "$STATE")"
FEEDBACK_ENV="$(bash "$HERE/feedback.sh" "$STATE")"
install_tools

cat >"$STATE/env.tmp" <<EOF
export LOA_TEST_DATABASE_URL=postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB?sslmode=disable
export LOA_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
export LOA_TEST_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
$INTEROP_ENV
$BROWSER_ENV
$FEEDBACK_ENV
EOF
mv "$STATE/env.tmp" "$STATE/env"
log "all services up in $((SECONDS - T0)) s; wrote $STATE/env (source it)"
