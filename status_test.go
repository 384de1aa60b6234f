package loa_test

import (
	"testing"

	"github.com/loa-hub/loa"
)

func TestRollUpChannel(t *testing.T) {
	for _, tc := range []struct {
		name     string
		counts   map[loa.Status]int
		targets  int
		want     loa.Status
		complete bool
	}{
		{"nothing yet", nil, 1, loa.StatusPending, false},
		{"retrying only", map[loa.Status]int{loa.StatusRetrying: 1}, 1, loa.StatusSending, false},
		{"some of the targets", map[loa.Status]int{loa.StatusSent: 2}, 3, loa.StatusSending, false},
		{"all sent", map[loa.Status]int{loa.StatusSent: 2, loa.StatusDelivered: 1}, 3, loa.StatusSent, true},
		{"sent and failed", map[loa.Status]int{loa.StatusSent: 1, loa.StatusUndelivered: 1}, 2, loa.StatusPartial, true},
		{"sent, one still retrying", map[loa.Status]int{loa.StatusSent: 2, loa.StatusRetrying: 1}, 2, loa.StatusPartial, true},
		{"all expired", map[loa.Status]int{loa.StatusExpired: 2}, 2, loa.StatusExpired, true},
		{"all skipped", map[loa.Status]int{loa.StatusSkipped: 1}, 1, loa.StatusSkipped, true},
		{"dead and expired", map[loa.Status]int{loa.StatusTokenDead: 1, loa.StatusExpired: 1}, 2, loa.StatusFailed, true},
	} {
		got, complete := loa.RollUpChannel(tc.counts, tc.targets)
		if got != tc.want || complete != tc.complete {
			t.Errorf("%s: got %s, %v; want %s, %v", tc.name, got, complete, tc.want, tc.complete)
		}
	}
}

func TestRollUpNotification(t *testing.T) {
	done := func(s loa.Status) loa.ChannelRollUp { return loa.ChannelRollUp{Status: s, Complete: true} }
	for _, tc := range []struct {
		name               string
		published, started bool
		chans              []loa.ChannelRollUp
		want               loa.Status
	}{
		{"not published", false, false, []loa.ChannelRollUp{{Status: loa.StatusPending}}, loa.StatusAccepted},
		{"published, nothing recorded", true, false, []loa.ChannelRollUp{{Status: loa.StatusPending}}, loa.StatusQueued},
		{"one channel done", true, true, []loa.ChannelRollUp{done(loa.StatusSent), {Status: loa.StatusSending}}, loa.StatusSending},
		{"all sent", true, true, []loa.ChannelRollUp{done(loa.StatusSent), done(loa.StatusSent)}, loa.StatusSent},
		{"all expired", true, true, []loa.ChannelRollUp{done(loa.StatusExpired)}, loa.StatusExpired},
		{"failed and expired", true, true, []loa.ChannelRollUp{done(loa.StatusFailed), done(loa.StatusExpired)}, loa.StatusFailed},
		{"sent and failed", true, true, []loa.ChannelRollUp{done(loa.StatusSent), done(loa.StatusFailed)}, loa.StatusPartial},
		{"a partial channel", true, true, []loa.ChannelRollUp{done(loa.StatusPartial)}, loa.StatusPartial},
	} {
		if got := loa.RollUpNotification(tc.published, tc.started, tc.chans); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestStatusClasses(t *testing.T) {
	for _, s := range []loa.Status{loa.StatusSent, loa.StatusDelivered, loa.StatusFailed, loa.StatusUndelivered,
		loa.StatusTokenDead, loa.StatusSkipped, loa.StatusExpired, loa.StatusCancelled} {
		if !s.Final() {
			t.Errorf("%s is not final", s)
		}
		if s.Succeeded() && s.Failed() {
			t.Errorf("%s both succeeded and failed", s)
		}
	}
	for _, s := range []loa.Status{loa.StatusRetrying, loa.StatusPending, loa.StatusSending, loa.StatusPartial} {
		if s.Final() {
			t.Errorf("%s is final", s)
		}
	}
	ranked := loa.Ranked()
	for i := 1; i < len(ranked); i++ {
		if ranked[i].Rank() >= ranked[i-1].Rank() || ranked[i].Rank() <= 0 {
			t.Errorf("Ranked() out of order at %d: %v", i, ranked)
		}
	}
}
