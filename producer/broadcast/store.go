package broadcast

import (
	"context"
	"errors"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/producer"
)

// Broadcast is one stored broadcast request.
type Broadcast struct {
	ID          string
	Status      string
	Title       string
	Body        string
	TitleEN     string
	BodyEN      string
	Topic       string
	Audience    loa.Audience
	Channels    []string
	SendAt      time.Time // zero: as soon as approved
	DocNumber   string
	DocDate     string // YYYY-MM-DD
	Unit        string // the creator's unit
	CreatedBy   string // account id
	SubmittedBy string
	DecidedBy   string // who approved or rejected it
	Reason      string // the rejection's or the cancellation's reason
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// Reach is the audience size stored once the broadcast was decided
	// (nil until then, and for broadcasts decided before it was kept).
	Reach *Reach
}

// Event is one state change of a broadcast.
type Event struct {
	Seq    int       `json:"seq"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason,omitempty"`
}

// Transition is a compare-and-set of a broadcast's status.
type Transition struct {
	ID     string
	From   []string // the states it may be in
	To     string
	Actor  string // account id, or "system"
	Reason string
	At     time.Time
	IP     string
	// Submitter and Decider, when set, are stored as who submitted and
	// who approved or rejected the request. NotBy, when set, makes the
	// move fail with ErrMoved if the actor created or submitted the
	// request (four eyes, enforced in the same statement).
	Submitter, Decider bool
	NotBy              string
}

// Filter selects broadcasts to list.
type Filter struct {
	// Status, when not empty, is the one status listed.
	Status string
	// Mine, when set, restricts the list to the broadcasts of the units
	// in Units and those Author created: what an agency submitter may
	// read.
	Mine   bool
	Units  []string
	Author string
	Limit  int
}

// ErrMoved is wrapped by the store's error for a Transition whose
// broadcast is not in one of its From states (someone else moved it
// first), or that NotBy refused.
var ErrMoved = errors.New("broadcast: not in the expected state")

// Store is the durable state the service uses. internal/sqlstore
// implements it; a missing broadcast is an error wrapping ErrNotFound.
type Store interface {
	// The outbox of scheduled broadcasts.
	producer.OutboxStore
	// CancelScheduled cancels the pending outbox items of subject.
	CancelScheduled(ctx context.Context, subject string) (int, error)
	// ScheduledStatus returns an outbox item's status
	// (producer.ItemPending, …).
	ScheduledStatus(ctx context.Context, id string) (string, error)

	// CreateBroadcast stores a new broadcast, its first event ("" →
	// b.Status) and an audit entry, in one transaction.
	CreateBroadcast(ctx context.Context, b Broadcast, ip string) error
	// TransitionBroadcast moves a broadcast from one of t.From to t.To,
	// recording the event and an audit entry in the same transaction.
	TransitionBroadcast(ctx context.Context, t Transition) (Broadcast, error)
	Broadcast(ctx context.Context, id string) (Broadcast, error)
	// Broadcasts lists up to f.Limit broadcasts, newest first, that f
	// selects.
	Broadcasts(ctx context.Context, f Filter) ([]Broadcast, error)
	// RecordReach stores a broadcast's audience size unless one is
	// stored already; it reports whether it stored r.
	RecordReach(ctx context.Context, id string, r Reach) (bool, error)
	// BroadcastHistory returns a broadcast's events, oldest first.
	BroadcastHistory(ctx context.Context, id string) ([]Event, error)

	// ExistingAreas returns the codes that name an area.
	ExistingAreas(ctx context.Context, codes []string) ([]string, error)
	// AccountExists reports whether an account exists and is not closed.
	AccountExists(ctx context.Context, id string) (bool, error)
	// CountRecipients returns how many active devices of app and
	// verified phones the audience holds.
	CountRecipients(ctx context.Context, a loa.Audience, app string) (devices, phones int, err error)

	// The progress of a broadcast's plan (its id is the notification's).
	// CancelPlan marks every channel of a plan cancelled, so the planner
	// stops at its next batch.
	CancelPlan(ctx context.Context, notificationID string, channels []string, now time.Time) error
	// PlanDone reports whether every channel was planned to the end.
	PlanDone(ctx context.Context, notificationID string) (bool, error)
	// PlanTargeted returns how many addresses were planned, per channel.
	PlanTargeted(ctx context.Context, notificationID string) (map[string]int64, error)
	// DeliveryStats returns the delivery counts by channel, provider and
	// status.
	DeliveryStats(ctx context.Context, notificationID string) ([]producer.DeliveryStat, error)
}
