package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	linstance "github.com/loa-hub/loa/internal/instance"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/kafkapub"
)

// TestDispatcherLanesSplitAcrossProcesses: on the real services, a `loa
// dispatcher` given LOA_DISPATCHER_LANES=bulk sends a bulk event and never
// the code published on the otp lane before it; a second one given the
// urgent lanes, started afterwards, sends the code, and no bulk event.
// Each process's sends are read from its own /metrics.
func TestDispatcherLanesSplitAcrossProcesses(t *testing.T) {
	env := backendEnv(t, "real")
	env["LOA_SMS_QUIET_HOURS"] = "off"
	if err := run(context.Background(), []string{"loa", "migrate"}, func(k string) string { return env[k] }, io.Discard); err != nil {
		t.Fatal(err)
	}
	with := func(kv map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range env {
			out[k] = v
		}
		port, err := linstance.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		out["LOA_METRICS_ADDR"] = "127.0.0.1:" + strconv.Itoa(port)
		for k, v := range kv {
			out[k] = v
		}
		return out
	}
	bulkEnv := with(map[string]string{"LOA_DISPATCHER_LANES": "bulk"})
	bulk := startProc(t, "dispatcher", bulkEnv)
	// A dispatcher says it runs before its metrics server listens.
	servingMetrics := func(p *proc) func() bool {
		return func() bool { return strings.Contains(p.logs.String(), "metrics on") }
	}
	waitFor(t, "the bulk dispatcher's metrics", servingMetrics(bulk))

	pub, err := kafkapub.NewPublisher(kafkapub.Config{Brokers: strings.Split(env["LOA_KAFKA_BROKERS"], ","), Names: topics.Names{Prefix: env["LOA_KAFKA_TOPIC_PREFIX"]}})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	publishSMS(t, pub, topics.LaneOTP, "lanes-code", "84910000001")
	publishSMS(t, pub, topics.LaneBulk, "lanes-notice", "84910000002")

	bulkMetrics := "http://" + bulkEnv["LOA_METRICS_ADDR"] + "/metrics"
	waitFor(t, "the bulk dispatcher to send the bulk event", func() bool { return laneSends(t, bulkMetrics)[topics.LaneBulk] == 1 })
	urgentEnv := with(map[string]string{"LOA_DISPATCHER_LANES": "otp,alert,direct", "LOA_DISPATCHER_LEDGER": "off"})
	urgent := startProc(t, "dispatcher", urgentEnv)
	waitFor(t, "the urgent dispatcher's metrics", servingMetrics(urgent))
	urgentMetrics := "http://" + urgentEnv["LOA_METRICS_ADDR"] + "/metrics"
	waitFor(t, "the urgent dispatcher to send the code", func() bool { return laneSends(t, urgentMetrics)[topics.LaneOTP] == 1 })

	if got := laneSends(t, bulkMetrics); got[topics.LaneOTP] != 0 || got[topics.LaneBulk] != 1 {
		t.Errorf("the bulk-only dispatcher sent %v; want the bulk event alone", got)
	}
	if got := laneSends(t, urgentMetrics); got[topics.LaneBulk] != 0 || got[topics.LaneOTP] != 1 {
		t.Errorf("the urgent dispatcher sent %v; want the code alone", got)
	}
	bulk.stop(t)
}

// publishSMS publishes a direct SMS to phone on lane.
func publishSMS(t *testing.T, pub *kafkapub.Publisher, lane topics.Lane, id, phone string) {
	t.Helper()
	now := time.Now()
	env, err := producer.NewEnvelope("ev-"+id, producer.KindDirect, lane, phone, now, now.Add(time.Hour), "",
		producer.Direct{NotificationID: id, To: producer.Recipient{Type: producer.ToPhone, Value: phone},
			Title: "Loa", Body: "Nội dung", Channels: []string{"sms"}, Priority: "high"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pub.Publish(ctx, env); err != nil {
		t.Fatal(err)
	}
}

// laneSends reads a dispatcher's sent deliveries by lane from its
// /metrics (loa_lane_queue_seconds counts each sent delivery).
func laneSends(t *testing.T, url string) map[topics.Lane]int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[topics.Lane]int{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "loa_lane_queue_seconds_count{") {
			continue
		}
		for _, l := range topics.Lanes {
			if strings.Contains(line, fmt.Sprintf(`lane=%q`, l)) {
				n, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
				out[l] += int(n)
			}
		}
	}
	return out
}
