package outage

import (
	"context"
	"errors"
	"time"

	"github.com/loa-hub/loa/producer"
)

// Record is the stored current version of a power-outage schedule.
type Record struct {
	Client    string // the API client that posted it; ids are the client's own
	ID        string
	Version   int
	Hash      string
	Areas     []string
	Location  string
	Start     time.Time
	End       time.Time
	Reason    string
	Cancelled bool
	// Notified: this version's notices were all scheduled or sent.
	Notified  bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// NoticeRecord is one stored notice of an outage version: a reminder, a
// change or a cancellation notice. Its ID is the notification id (and,
// for a scheduled reminder, the outbox item's id).
type NoticeRecord struct {
	ID       string
	Client   string
	OutageID string
	Version  int
	Kind     string // KindReminder, KindChange or KindCancel
	Lead     time.Duration
	DueAt    time.Time
	// Status as recorded: NoticeScheduled, NoticeSent or NoticeSkipped.
	// Read back, a scheduled notice shows its outbox item's fate:
	// scheduled (still pending), sent (published) or cancelled.
	Status string
	Detail string
}

// Notice statuses.
const (
	NoticeScheduled = "scheduled"
	NoticeSent      = "sent"
	NoticeSkipped   = "skipped"
	NoticeCancelled = "cancelled"
)

// ErrConflict is wrapped by the store's error when an outage changed
// between reading and writing it; the service reads it again and retries.
var ErrConflict = errors.New("outage: changed concurrently")

// Store is the durable state the service uses. internal/sqlstore
// implements it; a missing outage is an error wrapping ErrNotFound.
type Store interface {
	// The outbox of the reminders and of the notices whose publish
	// failed.
	producer.OutboxStore
	// CancelScheduled cancels the pending outbox items of subject.
	CancelScheduled(ctx context.Context, subject string) (int, error)
	// CancelPlan marks every channel of a notice's plan cancelled
	// (creating the rows if planning has not started).
	CancelPlan(ctx context.Context, notificationID string, channels []string, now time.Time) error
	// UnknownAreas returns the codes that name no area.
	UnknownAreas(ctx context.Context, codes []string) ([]string, error)
	// AreaSubtree returns the codes that name an area at or below one of
	// codes.
	AreaSubtree(ctx context.Context, codes []string) ([]string, error)

	// Outage returns the current version of an outage.
	Outage(ctx context.Context, client, id string) (Record, error)
	// SaveOutage stores o (with Notified false) as the version after
	// prevVersion: a new row when prevVersion is 0, else an update of
	// the row still at prevVersion; an error wrapping ErrConflict when
	// another writer got there first.
	SaveOutage(ctx context.Context, o Record, prevVersion int, now time.Time) error
	// MarkOutageNotified records that the notices of a version are all
	// scheduled or sent.
	MarkOutageNotified(ctx context.Context, client, id string, version int) error
	// AddOutageNotice records a notice; recording one with the same id
	// again updates its status and detail.
	AddOutageNotice(ctx context.Context, n NoticeRecord, now time.Time) error
	// OutageNotices returns every notice of an outage, oldest version
	// first, then by due time.
	OutageNotices(ctx context.Context, client, id string) ([]NoticeRecord, error)
}
