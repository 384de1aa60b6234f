package main

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa/dispatcher"
	"github.com/loa-hub/loa/internal/testenv"
)

// TestSettledEpochIsTheDispatchers: the epoch the bench settles is the
// one a dispatcher's claims adopt, starting when the bench said — so a
// run measures a Redis that has kept its claims, not one that just lost
// them.
func TestSettledEpochIsTheDispatchers(t *testing.T) {
	url := testenv.RedisURL(t)
	prefix := "t" + testenv.ID() + ":bench:"
	testenv.DeleteRedisKeysAtEnd(t, url, prefix)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	since := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	if err := settleEpoch(ctx, url, prefix, since); err != nil {
		t.Fatal(err)
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	c := dispatcher.NewClaims(rdb, prefix)
	if _, err := c.ClaimKeys(ctx, []string{prefix + "dk:some-delivery"}, "owner"); err != nil {
		t.Fatal(err)
	}
	if _, start := c.Epoch(); !start.Equal(since) {
		t.Errorf("the claims' epoch starts at %v; want %v", start, since)
	}
}
