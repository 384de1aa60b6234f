package kafkaadmin_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/loa-hub/loa/internal/kafkaadmin"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/internal/topics"
)

// TestLag: the lag of a lane's partition is what was written less what
// its group committed; a group that committed nothing lags by everything.
func TestLag(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			brokers := testenv.Kfake(t)
			if b.Name == "real" {
				brokers = testenv.KafkaBrokers(t)
			}
			names := topics.Names{Prefix: "t" + testenv.ID() + "."}
			testenv.DeleteTopicsAtEnd(t, brokers, names.Prefix)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			list := strings.Split(brokers, ",")
			if err := kafkaadmin.Ensure(ctx, list, names, 1); err != nil {
				t.Fatal(err)
			}
			otp := names.Lane(topics.LaneOTP)
			client := &kafka.Client{Addr: kafka.TCP(list...), Timeout: 10 * time.Second}
			recs := make([]kafka.Record, 7)
			for i := range recs {
				recs[i] = kafka.Record{Value: kafka.NewBytes([]byte("x"))}
			}
			for {
				pr, err := client.Produce(ctx, &kafka.ProduceRequest{Topic: otp, Partition: 2, RequiredAcks: kafka.RequireAll,
					Records: kafka.NewRecordReader(recs...)})
				if err == nil {
					err = pr.Error
				}
				if err == nil {
					break
				}
				if !errors.Is(err, kafka.NotLeaderForPartition) || ctx.Err() != nil {
					t.Fatal(err)
				}
			}
			r := kafkaadmin.NewLagReader(list)
			lagOf := func() map[string]int64 {
				t.Helper()
				// Leaders of topics just created may still be moving: a
				// scrape then fails and the next one answers.
				parts, err := r.Lag(ctx, names.Consumers())
				for err != nil && errors.Is(err, kafka.NotLeaderForPartition) && ctx.Err() == nil {
					parts, err = r.Lag(ctx, names.Consumers())
				}
				if err != nil {
					t.Fatal(err)
				}
				out := map[string]int64{}
				for _, p := range parts {
					out[p.Lane+"/"+itoa(p.Partition)] += p.Lag
				}
				return out
			}
			got := lagOf()
			if got["otp/2"] != 7 || got["otp/0"] != 0 || got["bulk/11"] != 0 {
				t.Errorf("before any commit: otp/2 %d (want 7), otp/0 %d, bulk/11 %d", got["otp/2"], got["otp/0"], got["bulk/11"])
			}
			if _, ok := got["receipts/0"]; !ok {
				t.Errorf("the ledger's receipts consumer is missing: %v", got)
			}
			resp, err := client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: names.Group("loa-dispatcher-otp"), GenerationID: -1,
				Topics: map[string][]kafka.OffsetCommit{otp: {{Partition: 2, Offset: 5}}}})
			if err != nil {
				t.Fatal(err)
			}
			for _, ps := range resp.Topics {
				for _, p := range ps {
					if p.Error != nil {
						t.Fatal(p.Error)
					}
				}
			}
			if got := lagOf(); got["otp/2"] != 2 {
				t.Errorf("after committing 5 of 7: otp/2 lag %d, want 2", got["otp/2"])
			}
		})
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}
