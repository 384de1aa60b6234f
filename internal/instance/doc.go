// Package instance starts throwaway PostgreSQL, Redis and Kafka servers as
// child processes on free ports of 127.0.0.1, each in its own temporary
// directory, for tests and tools that kill and restart the services Loa
// depends on: the chaos run, failover and backup tests, and CI. They never
// touch the shared services of deploy/local.
//
// Every server can be stopped cleanly, crashed (SIGKILL, or PostgreSQL's
// immediate shutdown, which is a crash with WAL recovery at the next
// start) and started again on the same port and data, so a client
// configured once sees the same address come back. Close stops a server
// and removes its directory. Child processes are started with a parent
// death signal, so a test binary that dies does not leave them running.
//
// What each needs on the machine (deploy/local/up.sh installs all three):
//   - PostgreSQL: initdb and postgres from /usr/lib/postgresql/<v>/bin (the
//     highest version there, or LOA_TEST_PG_BIN). As root they run as the
//     postgres user, which PostgreSQL insists on.
//   - Redis: redis-server on PATH (and redis-sentinel, or redis-server in
//     sentinel mode, for Sentinel).
//   - Kafka: java 17+ and the broker jars deploy/local/up.sh copies into
//     deploy/local/.state/kafka-libs (or LOA_TEST_KAFKA_LIBS).
//
// Servers are safe to control from one goroutine at a time; their
// addresses may be read from any.
package instance
