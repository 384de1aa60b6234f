package broadcast

import (
	"errors"
	"time"

	"github.com/loa-hub/loa"
)

// Status is where a broadcast request is in its life.
type Status string

// Statuses. draft → submitted → approved (→ scheduled when send_at is in
// the future) → sending → done; submitted → rejected; draft, submitted,
// approved and scheduled → cancelled.
const (
	StatusDraft     Status = "draft"
	StatusSubmitted Status = "submitted"
	StatusApproved  Status = "approved"
	StatusScheduled Status = "scheduled"
	StatusSending   Status = "sending"
	StatusDone      Status = "done"
	StatusRejected  Status = "rejected"
	StatusCancelled Status = "cancelled"
)

// Statuses lists every status.
func Statuses() []Status {
	return []Status{StatusDraft, StatusSubmitted, StatusApproved, StatusScheduled, StatusSending, StatusDone, StatusRejected, StatusCancelled}
}

// Channels a broadcast may use.
const (
	ChannelPush = "push"
	ChannelSMS  = "sms"
)

// Draft is a broadcast request as its submitter writes it.
type Draft struct {
	Title    string // Vietnamese
	Body     string // Vietnamese
	TitleEN  string // optional
	BodyEN   string // optional
	Topic    string
	Audience Audience
	Channels []string
	SendAt   time.Time // zero: as soon as approved
	Document Document
}

// Audience is who a broadcast is for: everyone, or the union of areas
// (with the units below them), topics and accounts.
type Audience struct {
	Everyone bool
	Areas    []string
	Topics   []string
	Accounts []string
	// AreaTopics sends the push as one FCM topic message per area (topic
	// "area-<code>", for the area and every unit below it) instead of one
	// per device: one request per area, but no per-device outcome.
	AreaTopics bool
}

// Document is the official request document a broadcast rests on.
type Document struct {
	Number string
	Date   string // YYYY-MM-DD
}

// Actor is the official acting.
type Actor struct {
	AccountID string
	IP        string
}

// Estimate is what a broadcast would reach and cost, shown to the
// approver before deciding.
type Estimate struct {
	Devices int          `json:"devices"`
	Phones  int          `json:"phones"`
	SMS     *SMSEstimate `json:"sms,omitempty"`
	// CountedAt is when Devices and Phones were counted: a count is
	// reused for up to Config.CountTTL, and a decided broadcast's is
	// the one stored at its decision.
	CountedAt time.Time `json:"counted_at"`
}

// Reach is the audience size stored with a decided broadcast: the
// active devices of the app and the verified phones, counted at
// CountedAt.
type Reach struct {
	Devices, Phones int
	CountedAt       time.Time
}

// SMSEstimate is the SMS segment count of a broadcast that uses SMS.
type SMSEstimate struct {
	Encoding           string `json:"encoding"`
	SegmentsPerMessage int    `json:"segments_per_message"`
	TotalSegments      int    `json:"total_segments"`
}

// Errors of the service; compare with errors.Is.
var (
	// ErrNotFound: no such broadcast; wrapped by a loa.ENotFound
	// *loa.Error naming it.
	ErrNotFound = errors.New("broadcast: not found")
	// ErrForbidden: the actor lacks the role for this. Refusals that say
	// which role wrap it.
	ErrForbidden = loa.Forbidden("broadcasts are drafted, approved and read by signed-in officials")
	// ErrFourEyes: the approver created or submitted the request.
	ErrFourEyes = &loa.Error{Code: loa.EFourEyes,
		Detail: "a broadcast is approved or rejected by an official who neither drafted nor submitted it"}
	// ErrState: the request is not in a state that allows this (for
	// example cancelling once sending started); wrapped by a
	// loa.EBroadcastState *loa.Error saying which state.
	ErrState = errors.New("broadcast: not allowed in the current state")
	// ErrInvalid is wrapped by every loa.EInvalid *loa.Error of the
	// package.
	ErrInvalid = errors.New("broadcast: invalid input")
)

func notFound(id string) error { return loa.NotFound("broadcast %s not found", id).Wrap(ErrNotFound) }

func forbidden(format string, args ...any) error {
	return loa.Forbidden(format, args...).Wrap(ErrForbidden)
}

// stateError says which state refused an action; it wraps ErrState.
func stateError(action, id string, st Status) error {
	return loa.Errorf(loa.EBroadcastState, "cannot %s broadcast %s: it is %s", action, id, st).Wrap(ErrState)
}
