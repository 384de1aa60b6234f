package chaos

import (
	"fmt"
	"io"
	"sort"
	"time"
)

// Kind is a kind of fault.
type Kind string

// The faults a schedule may hold.
const (
	// KillDispatcher: SIGKILL a dispatcher replica, start it again after
	// Down.
	KillDispatcher Kind = "kill-dispatcher"
	// KillAPI: SIGKILL `loa api`, start it again after Down.
	KillAPI Kind = "kill-api"
	// RestartKafka: SIGKILL the Kafka broker, start it again after Down.
	RestartKafka Kind = "restart-kafka"
	// RestartRedis: SIGKILL Redis, start it again after Down (with its
	// append-only file when the run has persistence, else empty).
	RestartRedis Kind = "restart-redis"
	// RestartPostgres: immediate shutdown of PostgreSQL (a crash: WAL
	// recovery at the next start), start it again after Down.
	RestartPostgres Kind = "restart-postgres"
	// StallFCM: the FCM fake takes requests and answers none for For;
	// senders give up on them at LOA_SEND_TIMEOUT.
	StallFCM Kind = "stall-fcm"
	// FailSMS: the eSMS gateway fake answers 503 to everything for For.
	FailSMS Kind = "fail-sms"
	// FailoverRedis: SIGKILL the Redis master (Config.RedisSentinel); the
	// Sentinels promote the replica; the old master starts again after
	// Down and rejoins as a replica.
	FailoverRedis Kind = "failover-redis"
	// FailoverPostgres: immediate shutdown of the primary
	// (Config.PostgresStandby); after Down the standby is promoted, as an
	// HA manager would. The old primary stays down.
	FailoverPostgres Kind = "failover-postgres"
)

// Event is one fault at At after the broadcast's approval.
type Event struct {
	At   time.Duration
	Kind Kind
	// Down is how long a killed process or service stays down.
	Down time.Duration
	// For is how long a fake misbehaves.
	For time.Duration
	// Target is the dispatcher replica to kill (from 0).
	Target int
	// AfterPushes, when positive, holds the event after At until the FCM
	// fake has accepted that many pushes: "mid-broadcast" whatever the
	// machine's speed.
	AfterPushes int
}

func (e Event) String() string {
	switch e.Kind {
	case KillDispatcher:
		return fmt.Sprintf("SIGKILL dispatcher-%d, back after %v", e.Target+1, e.Down)
	case KillAPI:
		return fmt.Sprintf("SIGKILL loa api, back after %v", e.Down)
	case RestartKafka:
		return fmt.Sprintf("SIGKILL the Kafka broker, back after %v", e.Down)
	case RestartRedis:
		return fmt.Sprintf("SIGKILL Redis, back after %v", e.Down)
	case RestartPostgres:
		return fmt.Sprintf("PostgreSQL immediate shutdown (crash), back after %v", e.Down)
	case StallFCM:
		return fmt.Sprintf("the FCM fake stalls (takes requests, answers none) for %v", e.For)
	case FailSMS:
		return fmt.Sprintf("the eSMS gateway answers 503 for %v", e.For)
	case FailoverRedis:
		return fmt.Sprintf("SIGKILL the Redis master; the Sentinels promote the replica; the old master back after %v", e.Down)
	case FailoverPostgres:
		return fmt.Sprintf("PostgreSQL primary crashes; the standby is promoted %v later", e.Down)
	}
	return string(e.Kind)
}

// FullSchedule is `make chaos`'s: a dispatcher killed every 10 s (the two
// replicas in turn, each back 2 s later) for the first every seconds of
// the run, and one of each other fault, spread so each can be told apart
// in the progress lines.
func FullSchedule(killsFor time.Duration) []Event {
	var s []Event
	for at, i := 10*time.Second, 0; at <= killsFor; at, i = at+10*time.Second, i+1 {
		s = append(s, Event{At: at, Kind: KillDispatcher, Down: 2 * time.Second, Target: i % 2})
	}
	s = append(s,
		Event{At: 15 * time.Second, Kind: KillAPI, Down: 2 * time.Second},
		Event{At: 22 * time.Second, Kind: StallFCM, For: 60 * time.Second},
		Event{At: 27 * time.Second, Kind: FailSMS, For: 60 * time.Second},
		Event{At: 35 * time.Second, Kind: RestartKafka, Down: 5 * time.Second},
		Event{At: 55 * time.Second, Kind: RestartRedis, Down: 3 * time.Second},
		Event{At: 75 * time.Second, Kind: RestartPostgres, Down: 5 * time.Second},
	)
	return sorted(s)
}

// ShortSchedule is one fault of each kind, for CI, packed into the first
// half-minute (they overlap): the stall and the gateway failure last 10 s.
func ShortSchedule() []Event {
	return sorted([]Event{
		{At: 3 * time.Second, Kind: KillDispatcher, Down: 2 * time.Second, Target: 0},
		{At: 6 * time.Second, Kind: KillAPI, Down: 2 * time.Second},
		{At: 8 * time.Second, Kind: StallFCM, For: 10 * time.Second},
		{At: 9 * time.Second, Kind: FailSMS, For: 10 * time.Second},
		{At: 12 * time.Second, Kind: RestartKafka, Down: 2 * time.Second},
		{At: 20 * time.Second, Kind: RestartRedis, Down: 2 * time.Second},
		{At: 26 * time.Second, Kind: RestartPostgres, Down: 3 * time.Second},
	})
}

func sorted(s []Event) []Event {
	sort.SliceStable(s, func(i, j int) bool { return s[i].At < s[j].At })
	return s
}

// printSchedule writes the schedule, one event a line.
func printSchedule(w io.Writer, s []Event) {
	fmt.Fprintf(w, "schedule (T = the broadcast's approval):\n")
	for _, e := range s {
		when := ""
		if e.AfterPushes > 0 {
			when = fmt.Sprintf(" once the FCM fake has %d pushes", e.AfterPushes)
		}
		fmt.Fprintf(w, "  T+%-5v%s %s\n", e.At, when, e)
	}
}

// Short turns cfg into CI's short run: 20,000 devices, an alert to 500,
// 300 codes at 10 a second, 150 direct notifications at 5 a second and
// one fault of each kind (ShortSchedule), with FCM's rate limited so the
// broadcast is still being sent when the last fault comes, and a shorter
// breaker and retry tiers than `make chaos`'s so that what the faults put
// off is sent again within the minute, and a send timeout of 30 s: on a
// loaded machine a fake that answers late is still a fake that answered
// (a call given up on after the fake took it is a provider's doubt, and
// is sent again).
func Short(cfg Config) Config {
	cfg.Devices, cfg.AlertDevices, cfg.Codes, cfg.CodeRate = 20_000, 500, 300, 10
	cfg.Notices, cfg.NoticeRate = 150, 5
	cfg.AlertAt = 2 * time.Second
	cfg.Schedule = ShortSchedule()
	if cfg.Env == nil {
		cfg.Env = map[string]string{}
	}
	for k, v := range map[string]string{
		"LOA_FCM_RATE": "500", "LOA_FCM_BURST": "100",
		"LOA_SEND_TIMEOUT": "30s", "LOA_BREAKER_OPEN_FOR": "10s", "LOA_RETRY_TIERS": "2s,5s,10s,20s,40s",
	} {
		if cfg.Env[k] == "" {
			cfg.Env[k] = v
		}
	}
	return cfg
}
