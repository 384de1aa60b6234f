package dispatcher

import (
	"context"
	"fmt"
	"hash/fnv"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/loa-hub/loa/channels"
)

// gatedPhone holds the sends to one phone until released and records
// which phones were sent to.
type gatedPhone struct {
	channels.Channel
	phone   string
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	sent    map[string]bool
}

func (g *gatedPhone) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	if m.To == g.phone {
		g.once.Do(func() { close(g.entered) })
		select {
		case <-g.release:
		case <-ctx.Done():
		}
	}
	res, err := g.Channel.Send(ctx, m)
	g.mu.Lock()
	g.sent[m.To] = true
	g.mu.Unlock()
	return res, err
}

func (g *gatedPhone) wasSent(phone string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sent[phone]
}

// TestCodeDoesNotWaitBehindAnotherPhonesCode: while one code's send hangs
// at the provider, a code to another phone — one whose key a fixed worker
// per hash would have given the same worker of the lane's four — is sent.
// Only codes to the same phone wait for each other.
func TestCodeDoesNotWaitBehindAnotherPhonesCode(t *testing.T) {
	oneBackend(t, func(t *testing.T, r *rig) {
		const held = "84911110000"
		bucket := func(s string) uint32 { h := fnv.New32a(); h.Write([]byte(s)); return h.Sum32() % 4 }
		other := ""
		for i := 1; other == ""; i++ {
			if p := fmt.Sprintf("849111%05d", i); bucket(p) == bucket(held) {
				other = p
			}
		}
		sms := &gatedPhone{Channel: r.chans[channels.SMS], phone: held, entered: make(chan struct{}), release: make(chan struct{}), sent: map[string]bool{}}
		r.chans[channels.SMS] = sms
		r.start(t, nil) // the otp lane's 4 workers (newRig)
		ctx := waitCtx(t)
		r.publishCode(t, "code-held", held)
		select {
		case <-sms.entered:
		case <-ctx.Done():
			t.Fatal("the first code never reached the provider")
		}
		r.publishCode(t, "code-other", other)
		pollUntil(ctx, t, "the other phone's code was sent while the first hung", func() bool { return sms.wasSent(other) })
		close(sms.release)
		pollUntil(ctx, t, "the first code was sent once released", func() bool { return sms.wasSent(held) })
	})
}

// TestKeyedPool: messages of one key run one after the other in order,
// other keys beside them up to the pool's size, and a message that finds
// every worker busy waits for one.
func TestKeyedPool(t *testing.T) {
	var (
		mu    sync.Mutex
		order []string
	)
	gates := map[string]chan struct{}{"a": make(chan struct{}), "b": make(chan struct{})}
	started := make(chan string, 10)
	p := newKeyedPool(2, func(f fetched) {
		k := string(f.m.Key)
		started <- k + fmt.Sprint(f.m.Offset)
		if g := gates[k]; g != nil && f.m.Offset == 0 {
			<-g
		}
		mu.Lock()
		order = append(order, k+fmt.Sprint(f.m.Offset))
		mu.Unlock()
	})
	msg := func(key string, off int64) fetched { return fetched{m: kafka.Message{Key: []byte(key), Offset: off}} }
	ctx := context.Background()
	p.add(ctx, msg("a", 0))
	p.add(ctx, msg("a", 1)) // waits behind a0
	p.add(ctx, msg("b", 0))
	for _, want := range []string{"a0", "b0"} {
		if got := <-started; got != want && got != "a0" && got != "b0" {
			t.Fatalf("started %s, want %s", got, want)
		}
	}
	// Both workers busy: a third key waits for one.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if p.add(short, msg("c", 0)) {
		t.Fatal("a third key started with both workers busy")
	}
	close(gates["b"])
	if !p.add(ctx, msg("c", 0)) {
		t.Fatal("c was not taken once b finished")
	}
	close(gates["a"])
	p.wait()
	mu.Lock()
	defer mu.Unlock()
	ai := map[string]int{}
	for i, s := range order {
		ai[s] = i
	}
	if len(order) != 4 || ai["a0"] > ai["a1"] || ai["b0"] > ai["c0"] {
		t.Fatalf("order %v", order)
	}
}

// goroutineID is the id of the calling goroutine, from its stack's
// header ("goroutine 42 [running]:").
func goroutineID() string {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return ""
	}
	return f[1]
}

// TestKeyedPoolReusesItsWorkers: a key goes to the worker that went idle
// last, not to a goroutine of its own (which starts with the smallest
// stack and grows it on the way of every message): keys that come one
// after the other all run on one worker; three at once on three, and
// those that follow on one of these.
func TestKeyedPoolReusesItsWorkers(t *testing.T) {
	var (
		mu  sync.Mutex
		ids = map[string]map[string]bool{} // phase → goroutines that ran its keys
	)
	phase := "one after the other"
	gate := make(chan struct{})
	started := make(chan struct{}, 8)
	p := newKeyedPool(8, func(f fetched) {
		mu.Lock()
		ph := phase
		if ids[ph] == nil {
			ids[ph] = map[string]bool{}
		}
		ids[ph][goroutineID()] = true
		mu.Unlock()
		if strings.HasPrefix(string(f.m.Key), "held-") {
			started <- struct{}{}
			<-gate
		}
	})
	ctx := context.Background()
	msg := func(key string) fetched { return fetched{m: kafka.Message{Key: []byte(key)}} }
	for i := range 20 {
		p.add(ctx, msg(fmt.Sprint("key-", i)))
		p.wait() // its worker has let the key go
	}
	mu.Lock()
	phase = "three at once"
	mu.Unlock()
	for i := range 3 {
		p.add(ctx, msg(fmt.Sprint("held-", i)))
	}
	for range 3 {
		<-started
	}
	close(gate)
	p.wait()
	mu.Lock()
	phase = "after"
	mu.Unlock()
	for i := range 20 {
		p.add(ctx, msg(fmt.Sprint("later-", i)))
		p.wait()
	}
	mu.Lock()
	defer mu.Unlock()
	if n := len(ids["one after the other"]); n != 1 {
		t.Errorf("20 keys one after the other ran on %d goroutines, want 1", n)
	}
	if n := len(ids["three at once"]); n != 3 {
		t.Errorf("3 keys at once ran on %d goroutines, want 3", n)
	}
	for id := range ids["after"] {
		if !ids["three at once"][id] {
			t.Errorf("a later key ran on a new goroutine %s, not on an idle worker", id)
		}
	}
}
