package direct

import (
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/producer"
)

// View is the status document of a notification: its status and one
// outcome per channel.
type View struct {
	ID        string            `json:"id"`
	Status    loa.Status        `json:"status"`
	To        map[string]string `json:"to"`
	Channels  []string          `json:"channels"`
	Title     string            `json:"title"`
	CreatedAt time.Time         `json:"created_at"`
	ExpiresAt time.Time         `json:"expires_at"`
	// SendAt and CancelledAt: a scheduled notification's time, and when
	// it was cancelled.
	SendAt      *time.Time       `json:"send_at,omitempty"`
	CancelledAt *time.Time       `json:"cancelled_at,omitempty"`
	Outcomes    []ChannelOutcome `json:"outcomes"`
}

// ChannelOutcome is what became of one channel of a notification.
type ChannelOutcome struct {
	Channel   string             `json:"channel"`
	Status    loa.Status         `json:"status"`
	Targets   int                `json:"targets"`
	Counts    map[loa.Status]int `json:"counts"`
	Provider  string             `json:"provider,omitempty"`
	Reason    string             `json:"reason,omitempty"`
	Attempts  int                `json:"attempts,omitempty"`
	UpdatedAt *time.Time         `json:"updated_at,omitempty"`
}

func view(n Notification, ds []producer.Delivery) View {
	v := View{ID: n.ID, To: map[string]string{n.RecipientType: n.Recipient}, Channels: n.Channels,
		Title: n.Title, CreatedAt: n.CreatedAt, ExpiresAt: n.ExpiresAt, Outcomes: []ChannelOutcome{}}
	rollups := make([]loa.ChannelRollUp, 0, len(n.Channels))
	for _, ch := range n.Channels {
		o := ChannelOutcome{Channel: ch, Counts: map[loa.Status]int{}, Targets: 1}
		for _, d := range ds {
			if d.Channel != ch {
				continue
			}
			o.Counts[d.Status]++
			o.Targets = max(o.Targets, d.Targets)
			o.Attempts = max(o.Attempts, d.Attempts)
			if o.UpdatedAt == nil || d.UpdatedAt.After(*o.UpdatedAt) {
				t := d.UpdatedAt
				o.UpdatedAt, o.Provider, o.Reason = &t, d.Provider, d.Reason
			}
		}
		var complete bool
		o.Status, complete = loa.RollUpChannel(o.Counts, o.Targets)
		rollups = append(rollups, loa.ChannelRollUp{Status: o.Status, Complete: complete})
		v.Outcomes = append(v.Outcomes, o)
	}
	v.Status = loa.RollUpNotification(!n.PublishedAt.IsZero(), len(ds) > 0, rollups)
	if !n.SendAt.IsZero() {
		t := n.SendAt.UTC()
		v.SendAt = &t
		switch {
		case !n.CancelledAt.IsZero():
			c := n.CancelledAt.UTC()
			v.Status, v.CancelledAt = loa.StatusCancelled, &c
		case n.PublishedAt.IsZero():
			v.Status = loa.StatusScheduled
		}
	}
	return v
}
