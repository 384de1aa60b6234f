package instance

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// KafkaOptions configures StartKafka.
type KafkaOptions struct {
	// Port and ControllerPort to listen on; free ones when 0.
	Port, ControllerPort int
	// Libs is the directory of the broker's jars; KafkaLibs() when "".
	Libs string
	// Heap is the JVM's heap options; "-Xmx512m -Xms256m" when "".
	Heap string
	// Properties are extra server.properties lines, "key=value".
	Properties []string
	// StartTimeout bounds each start; 120 s when 0 (a JVM on a busy
	// machine is slow to start).
	StartTimeout time.Duration
}

// Kafka is a throwaway single-node Kafka (KRaft: broker and controller in
// one process) in a temporary directory.
type Kafka struct {
	Port, ControllerPort int
	Dir                  string

	opts KafkaOptions
	p    *Process
}

// KafkaLibs returns the directory of the broker's jars:
// LOA_TEST_KAFKA_LIBS, else deploy/local/.state/kafka-libs of this module
// (where deploy/local/up.sh puts them).
func KafkaLibs() (string, error) {
	if d := os.Getenv("LOA_TEST_KAFKA_LIBS"); d != "" {
		return d, nil
	}
	if d, ok := repoFile("deploy/local/.state/kafka-libs"); ok {
		return d, nil
	}
	return "", fmt.Errorf("%w: Kafka's jars (run deploy/local/up.sh, or set LOA_TEST_KAFKA_LIBS)", ErrMissing)
}

// StartKafka formats a new cluster and starts its broker. Call Close when
// done.
func StartKafka(ctx context.Context, opts KafkaOptions) (*Kafka, error) {
	if opts.Libs == "" {
		libs, err := KafkaLibs()
		if err != nil {
			return nil, err
		}
		opts.Libs = libs
	}
	if m, _ := filepath.Glob(filepath.Join(opts.Libs, "kafka_2.13-*.jar")); len(m) == 0 {
		return nil, fmt.Errorf("%w: no kafka_2.13 jar in %s", ErrMissing, opts.Libs)
	}
	if _, err := exec.LookPath("java"); err != nil {
		return nil, fmt.Errorf("%w: java", ErrMissing)
	}
	if opts.Heap == "" {
		opts.Heap = "-Xmx512m -Xms256m"
	}
	k := &Kafka{opts: opts, Port: opts.Port, ControllerPort: opts.ControllerPort}
	var err error
	for _, p := range []*int{&k.Port, &k.ControllerPort} {
		if *p == 0 {
			if *p, err = FreePort(); err != nil {
				return nil, err
			}
		}
	}
	if k.Dir, err = tempDir("loa-kafka-", nil); err != nil {
		return nil, err
	}
	if err := k.format(ctx); err != nil {
		os.RemoveAll(k.Dir)
		return nil, err
	}
	if err := k.Start(ctx); err != nil {
		k.Close()
		return nil, err
	}
	return k, nil
}

func (k *Kafka) props() string   { return filepath.Join(k.Dir, "server.properties") }
func (k *Kafka) log4j() string   { return filepath.Join(k.Dir, "log4j2.properties") }
func (k *Kafka) dataDir() string { return filepath.Join(k.Dir, "data") }

// LogPath is the broker's log.
func (k *Kafka) LogPath() string { return filepath.Join(k.Dir, "kafka.log") }

// Addr is the broker's host:port.
func (k *Kafka) Addr() string { return "127.0.0.1:" + strconv.Itoa(k.Port) }

// Libs is the directory of the broker's jars (and Kafka's command-line
// tools).
func (k *Kafka) Libs() string { return k.opts.Libs }

// PID is the broker's process id, 0 when it is not running.
func (k *Kafka) PID() int {
	if k.p == nil || k.p.Exited() {
		return 0
	}
	return k.p.PID()
}

func (k *Kafka) format(ctx context.Context) error {
	props := []string{
		"process.roles=broker,controller",
		"node.id=1",
		"controller.quorum.bootstrap.servers=127.0.0.1:" + strconv.Itoa(k.ControllerPort),
		fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", k.Port, k.ControllerPort),
		"advertised.listeners=PLAINTEXT://" + k.Addr(),
		"controller.listener.names=CONTROLLER",
		"inter.broker.listener.name=PLAINTEXT",
		"listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
		"log.dirs=" + k.dataDir(),
		"num.partitions=4",
		"auto.create.topics.enable=true",
		"delete.topic.enable=true",
		"offsets.topic.replication.factor=1",
		"offsets.topic.num.partitions=8",
		"transaction.state.log.replication.factor=1",
		"transaction.state.log.min.isr=1",
		"transaction.state.log.num.partitions=4",
		"share.coordinator.state.topic.replication.factor=1",
		"share.coordinator.state.topic.min.isr=1",
		"group.initial.rebalance.delay.ms=0",
		"num.network.threads=2",
		"num.io.threads=4",
		"log.retention.hours=24",
	}
	props = append(props, k.opts.Properties...)
	if err := os.WriteFile(k.props(), []byte(strings.Join(props, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("instance: %w", err)
	}
	log4j := "status = warn\nappender.stdout.type = Console\nappender.stdout.name = STDOUT\n" +
		"appender.stdout.layout.type = PatternLayout\nappender.stdout.layout.pattern = [%d] %p %m (%c)%n\n" +
		"rootLogger.level = INFO\nrootLogger.appenderRef.stdout.ref = STDOUT\n" +
		"logger.statechange.name = state.change.logger\nlogger.statechange.level = WARN\n" +
		"logger.request.name = kafka.request.logger\nlogger.request.level = WARN\n"
	if err := os.WriteFile(k.log4j(), []byte(log4j), 0o644); err != nil {
		return fmt.Errorf("instance: %w", err)
	}
	cmd := exec.CommandContext(ctx, "java", "-Dlog4j2.configurationFile=file:"+k.log4j(), "-cp", filepath.Join(k.opts.Libs, "*"),
		"kafka.tools.StorageTool", "format", "-t", clusterID(), "-c", k.props(), "--standalone")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("instance: kafka storage format: %w\n%s", err, out)
	}
	return nil
}

// clusterID returns a new cluster id: 16 random bytes in URL-safe base64
// without padding, never beginning with '-', which the storage tool would
// take for an option (one id in 64 did, and the format failed).
func clusterID() string {
	id := make([]byte, 16)
	rand.Read(id)
	id[0] &= 0x7f // the first character is then one of A-Z, a-f
	return base64.RawURLEncoding.EncodeToString(id)
}

// Start starts the broker on its data and waits until it serves clients.
func (k *Kafka) Start(ctx context.Context) error {
	if k.PID() != 0 {
		return nil
	}
	// Each start's log begins afresh: readiness is read from it.
	if b, err := os.ReadFile(k.LogPath()); err == nil {
		_ = os.WriteFile(k.LogPath()+".1", b, 0o644)
		_ = os.Remove(k.LogPath())
	}
	args := []string{"java"}
	args = append(args, strings.Fields(k.opts.Heap)...)
	args = append(args, "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=file:"+k.log4j(), "-cp", filepath.Join(k.opts.Libs, "*"), "kafka.Kafka", k.props())
	p, err := StartProcess(k.LogPath(), nil, nil, args...)
	if err != nil {
		return err
	}
	k.p = p
	timeout := k.opts.StartTimeout
	if timeout == 0 {
		timeout = 120 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return p.WaitReady(ctx, "kafka", k.LogPath(), func(context.Context) error {
		if !portOpen(k.Port) {
			return fmt.Errorf("port %d closed", k.Port)
		}
		b, _ := os.ReadFile(k.LogPath())
		if !strings.Contains(string(b), "Kafka Server started") {
			return fmt.Errorf("no 'Kafka Server started' yet")
		}
		return nil
	})
}

// Kill ends the broker with SIGKILL.
func (k *Kafka) Kill() {
	if k.p != nil {
		k.p.Kill()
	}
}

// Stop shuts the broker down cleanly (SIGTERM; it may take a few seconds).
func (k *Kafka) Stop() {
	if k.p != nil {
		k.p.Stop(syscall.SIGTERM, 30*time.Second)
	}
}

// Restart kills the broker, waits down, and starts it again.
func (k *Kafka) Restart(ctx context.Context, down time.Duration) error {
	k.Kill()
	select {
	case <-time.After(down):
	case <-ctx.Done():
		return ctx.Err()
	}
	return k.Start(ctx)
}

// Close kills the broker and removes its directory.
func (k *Kafka) Close() {
	k.Kill()
	os.RemoveAll(k.Dir)
}
