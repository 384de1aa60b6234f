package dispatcher

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa/internal/testenv"
)

// claimsOn returns Claims on the backend's Redis under a prefix of their
// own, removed at the end.
func claimsOn(t testing.TB, backend string) *Claims {
	t.Helper()
	url := "redis://" + testenv.Miniredis(t).Addr()
	if backend == "real" {
		url = testenv.RedisURL(t)
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	prefix := "t" + testenv.ID() + ":"
	if backend == "real" {
		testenv.DeleteRedisKeysAtEnd(t, url, prefix)
	}
	return NewClaims(rdb, prefix)
}

// TestMarksEndClaims: deliveries marked sent, or in doubt, are found so
// by every later claim, whoever claims, and the marks live SentTTL; a
// group of marks larger than one script call's keys is marked whole.
func TestMarksEndClaims(t *testing.T) {
	for _, backend := range []string{"miniredis", "real"} {
		t.Run(backend, func(t *testing.T) {
			if backend == "real" && !testenv.Configured("LOA_TEST_REDIS_URL") {
				t.Skip("LOA_TEST_REDIS_URL not set")
			}
			ctx := context.Background()
			c := claimsOn(t, backend)
			rkeys := claimNewKeys(t, c, "n-marks", 3*claimChunk+5)
			sent, doubt := rkeys[:len(rkeys)-2], rkeys[len(rkeys)-2:]
			if err := c.MarkSentKeys(ctx, sent); err != nil {
				t.Fatal(err)
			}
			if err := c.MarkInDoubtKeys(ctx, doubt); err != nil {
				t.Fatal(err)
			}
			states, err := c.ClaimKeys(ctx, rkeys, "owner-2")
			if err != nil {
				t.Fatal(err)
			}
			for i, st := range states {
				want := alreadySent
				if i >= len(sent) {
					want = inDoubt
				}
				if st != want {
					t.Fatalf("claim %d after marking: state %d, want %d", i, st, want)
				}
			}
			for _, k := range []string{sent[0], sent[len(sent)-1], doubt[1]} {
				ttl, err := c.rdb.PTTL(ctx, k).Result()
				if err != nil || ttl <= c.SentTTL-time.Hour || ttl > c.SentTTL {
					t.Fatalf("%s lives %v (%v), want about %v", k, ttl, err, c.SentTTL)
				}
			}
		})
	}
}

// BenchmarkMarkSentKeys marks groups of 64 deliveries sent, as the
// marker's flushers do, on the real Redis: the CPU a mark costs the
// dispatcher, and Redis (the server's whole CPU, other clients' too).
func BenchmarkMarkSentKeys(b *testing.B) {
	c := claimsOn(b, "real")
	ctx := context.Background()
	const group = markGroup
	all := make([]string, b.N*group)
	for i := range all {
		all[i] = c.redisKey(keyOf("n-bench", "push", fmt.Sprintf("tok-%d", i)))
	}
	serverCPU := func() time.Duration {
		info, err := c.rdb.Info(ctx, "cpu").Result()
		if err != nil {
			b.Fatal(err)
		}
		var s float64
		for _, line := range strings.Split(info, "\r\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
				f, _ := strconv.ParseFloat(v, 64)
				s += f
			}
		}
		return time.Duration(s * float64(time.Second))
	}
	cpu0, server0 := processCPU(b), serverCPU()
	b.ResetTimer()
	for n := range b.N {
		if err := c.MarkSentKeys(ctx, all[n*group:(n+1)*group]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	marks := float64(b.N * group)
	b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/marks, "CPU-µs/mark")
	b.ReportMetric(float64((serverCPU()-server0).Microseconds())/marks, "redis-CPU-µs/mark")
}

// TestClaimOfANewDeliveryIsOneRedisCommand: claiming deliveries nobody
// has claimed (nearly every delivery of a broadcast) costs Redis one
// command a delivery inside the script, a SET NX, and no read; watched
// through MONITOR on the real Redis.
func TestClaimOfANewDeliveryIsOneRedisCommand(t *testing.T) {
	c := claimsOn(t, "real")
	ctx := context.Background()
	opt, err := redis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", opt.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cmd := "MONITOR\r\n"
	if opt.Password != "" {
		cmd = fmt.Sprintf("AUTH %s %s\r\n", cmp.Or(opt.Username, "default"), opt.Password) + cmd
	}
	if _, err := conn.Write([]byte(cmd)); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(conn)
	for range strings.Count(cmd, "\r\n") {
		if line, err := rd.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
			t.Fatalf("MONITOR: %q %v", line, err)
		}
	}
	if err := c.refreshEpoch(ctx); err != nil {
		t.Fatal(err)
	}
	rkeys := claimNewKeys(t, c, "n-one-command", 64)
	end := c.prefix + "monitor-end"
	c.rdb.Get(ctx, end) // Redis shows commands to MONITOR in the order it runs them
	var reads, writes int
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(line, `"`+end+`"`) {
			break
		}
		if !strings.Contains(line, `"`+c.prefix+"dk:") {
			continue
		}
		switch {
		case strings.Contains(line, `"GET"`), strings.Contains(line, `"get"`):
			reads++
		case strings.Contains(line, `"SET"`), strings.Contains(line, `"set"`):
			writes++
		}
	}
	if reads != 0 || writes != len(rkeys) {
		t.Errorf("claiming %d new deliveries: %d reads and %d writes of their keys, want 0 and %d", len(rkeys), reads, writes, len(rkeys))
	}
}

// claimNewKeys claims, as owner-1, the keys of n new push deliveries of
// notification id (tokens tok-0 …), fails the test unless each was
// claimed, and returns their Redis keys.
func claimNewKeys(t *testing.T, c *Claims, id string, n int) []string {
	t.Helper()
	var rkeys []string
	for i := range n {
		rkeys = append(rkeys, c.redisKey(keyOf(id, "push", fmt.Sprintf("tok-%d", i))))
	}
	states, err := c.ClaimKeys(context.Background(), rkeys, "owner-1")
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range states {
		if st != claimed {
			t.Fatalf("claim %d: state %d, want claimed", i, st)
		}
	}
	return rkeys
}

// TestDeliveryKeysAreStableAndCheap: a delivery's key and its claim key
// are what every replica, the write-ahead record and Redis already hold
// (the SHA-256 of notification, channel and address, its first 16 bytes
// in hex after the prefix), and a fan-out's pushes make theirs with one
// allocation each (the claim key's string), not a copy of the address
// to hash and two strings for the claim key.
func TestDeliveryKeysAreStableAndCheap(t *testing.T) {
	c := NewClaims(nil, "pfx:")
	token := strings.Repeat("dGVzdC10b2tlbi0", 11) + ":APA91b" // about a push token's length
	for _, tc := range []struct{ id, ch, to string }{
		{"n1", "push", token},
		{"bc-7cc4d911-eb41-4fc4-ba87-6d9ce38abdda", "sms", "84912345678"},
		{"", "", ""},
		{"n2", "push", strings.Repeat("x", 600)}, // longer than the stack buffer
	} {
		sum := sha256.Sum256([]byte(tc.id + "\x00" + tc.ch + "\x00" + tc.to))
		k := keyOf(tc.id, tc.ch, tc.to)
		if !bytes.Equal(k[:], sum[:16]) {
			t.Errorf("keyOf(%q, %q, …) = %x, want %x", tc.id, tc.ch, k, sum[:16])
		}
		if got, want := c.redisKey(k), "pfx:dk:"+hex.EncodeToString(sum[:16]); got != want {
			t.Errorf("redisKey = %q, want %q", got, want)
		}
	}
	allocs := testing.AllocsPerRun(100, func() {
		_ = c.redisKey(keyOf("bc-7cc4d911-eb41-4fc4-ba87-6d9ce38abdda", "push", token))
	})
	if allocs > 1 {
		t.Errorf("%v allocations a delivery's keys, want 1", allocs)
	}
}

// heldTrips is roundTrips whose first round trip waits for release.
type heldTrips struct {
	roundTrips
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (h *heldTrips) hold() {
	h.once.Do(func() {
		close(h.entered)
		<-h.release
	})
}

func (h *heldTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.hold()
		h.add(cmd)
		return next(ctx, cmd)
	}
}

func (h *heldTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.hold()
		h.add(cmds...)
		return next(ctx, cmds)
	}
}

// TestClaimsArrivingTogetherShareARoundTrip: codes' claims that come
// while another's round trip to Redis is under way go together in the
// next — one pipeline, not a round trip each — with the commands each
// queues beside its claim (a code's withdrawal look-up), and each caller
// learns its own claim's state and its commands' answers.
func TestClaimsArrivingTogetherShareARoundTrip(t *testing.T) {
	for _, backend := range []string{"miniredis", "real"} {
		t.Run(backend, func(t *testing.T) {
			ctx := t.Context()
			base := claimsOn(t, backend)
			const n = 10
			key := func(i int) string { return base.redisKey(keyOf(fmt.Sprintf("code-%d", i), "sms", "84912345678")) }
			if err := base.MarkSentKeys(ctx, []string{key(n - 1)}); err != nil {
				t.Fatal(err)
			}
			if err := base.rdb.Set(ctx, base.prefix+"looked-up", "yes", 0).Err(); err != nil {
				t.Fatal(err)
			}
			h := &heldTrips{entered: make(chan struct{}), release: make(chan struct{})}
			rdb := redis.NewClient(base.rdb.(*redis.Client).Options())
			rdb.AddHook(h)
			t.Cleanup(func() { rdb.Close() })
			c := base.on(rdb)
			queued := make(chan struct{}, n)
			c.grp.queued = func() { queued <- struct{}{} }

			type result struct {
				i   int
				st  claimState
				err error
			}
			results := make(chan result, n+1)
			var lookedUp *redis.StringCmd
			claim := func(i int) {
				var also func(redis.Pipeliner)
				if i == 3 {
					also = func(p redis.Pipeliner) { lookedUp = p.Get(ctx, base.prefix+"looked-up") }
				}
				st, err := c.claimOne(ctx, key(i), "owner-a", "p", also)
				results <- result{i, st, err}
			}
			go claim(0) // alone; its round trip waits
			<-h.entered
			for i := 1; i <= n-1; i++ {
				go claim(i)
			}
			deadline := time.After(30 * time.Second)
			for range n - 1 {
				select {
				case <-queued:
				case <-deadline:
					t.Fatal("the claims did not queue behind the round trip under way")
				}
			}
			close(h.release)
			for range n {
				r := <-results
				want := claimed
				if r.i == n-1 {
					want = alreadySent
				}
				if r.err != nil || r.st != want {
					t.Errorf("claim %d: %v, %v; want %v", r.i, r.st, r.err, want)
				}
			}
			if v, err := lookedUp.Result(); err != nil || v != "yes" {
				t.Errorf("the look-up beside claim 3: %q, %v", v, err)
			}
			trips := h.with(key(1))
			if len(trips) != 1 {
				t.Fatalf("the claims that queued went in %d round trips, want 1", len(trips))
			}
			for i := 1; i <= n-1; i++ {
				if !strings.Contains(strings.Join(trips[0], "\n"), key(i)) {
					t.Errorf("claim %d is not in the queued claims' round trip", i)
				}
			}
			if len(h.with(key(0))) == 0 || len(h.with(key(0), key(1))) != 0 {
				t.Error("the first claim did not go alone")
			}
		})
	}
}
