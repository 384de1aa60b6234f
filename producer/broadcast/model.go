package broadcast

import (
	"errors"
	"fmt"
	"time"
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
}

// SMSEstimate is the SMS segment count of a broadcast that uses SMS.
type SMSEstimate struct {
	Encoding           string `json:"encoding"`
	SegmentsPerMessage int    `json:"segments_per_message"`
	TotalSegments      int    `json:"total_segments"`
}

// Errors of the service; compare with errors.Is.
var (
	// ErrNotFound: no such broadcast.
	ErrNotFound = errors.New("broadcast: not found")
	// ErrForbidden: the actor lacks the role for this.
	ErrForbidden = errors.New("broadcast: forbidden")
	// ErrFourEyes: the approver created or submitted the request.
	ErrFourEyes = errors.New("broadcast: the approver must not be the submitter")
	// ErrState: the request is not in a state that allows this (for
	// example cancelling once sending started).
	ErrState = errors.New("broadcast: not allowed in the current state")
	// ErrInvalid is wrapped by *ValidationError.
	ErrInvalid = errors.New("broadcast: invalid input")
)

// FieldError is one invalid request field.
type FieldError struct {
	Field  string
	Detail string
}

// ValidationError lists every invalid field of a request; it wraps
// ErrInvalid.
type ValidationError struct{ Fields []FieldError }

func (e *ValidationError) Error() string {
	if len(e.Fields) == 0 {
		return "broadcast: invalid input"
	}
	return fmt.Sprintf("broadcast: invalid %s: %s", e.Fields[0].Field, e.Fields[0].Detail)
}

// Unwrap returns ErrInvalid.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

type validation struct{ fields []FieldError }

func (v *validation) add(field, format string, args ...any) {
	v.fields = append(v.fields, FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
}

func (v *validation) err() error {
	if len(v.fields) == 0 {
		return nil
	}
	return &ValidationError{Fields: v.fields}
}

// StateError says which state refused an action; it wraps ErrState.
type StateError struct {
	Action string
	Status Status
}

func (e *StateError) Error() string {
	return fmt.Sprintf("broadcast: cannot %s a broadcast that is %s", e.Action, e.Status)
}

// Unwrap returns ErrState.
func (e *StateError) Unwrap() error { return ErrState }
