package producer

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/loa-hub/loa/internal/topics"
)

// SchemaVersion is the envelope version this build writes. Readers accept
// every version up to it.
const SchemaVersion = 1

// Event kinds.
const (
	KindDirect = "notification.direct"
	// KindFanout is one batch of a planned audience: the same message to
	// many addresses on one channel.
	KindFanout = "notification.fanout"
	// KindPlan names an audience to plan into fan-out batches.
	KindPlan = "notification.plan"
)

// Envelope is the one shape of every event on a lane topic.
type Envelope struct {
	ID             string      `json:"id"`
	Kind           string      `json:"kind"`
	Lane           topics.Lane `json:"lane"`
	CreatedAt      time.Time   `json:"created_at"`
	ExpiresAt      time.Time   `json:"expires_at,omitzero"`
	IdempotencyKey string      `json:"idempotency_key,omitempty"`
	// Key orders events: events with one key (a recipient, a job) land on
	// one partition and are handled in order.
	Key           string          `json:"key"`
	SchemaVersion int             `json:"schema_version"`
	Payload       json.RawMessage `json:"payload"`
	// Redelivery, set on an event sent again by a retry tier or a
	// dead-letter replay, narrows it to the one delivery that failed.
	Redelivery *Redelivery `json:"redelivery,omitempty"`
}

// Redelivery names one delivery of an event to try again, with what was
// tried before.
type Redelivery struct {
	Channel   string `json:"channel"`
	Recipient string `json:"recipient"`
	// Targets is the number of recipients the channel had originally, so
	// the ledger keeps counting against the right total.
	Targets int `json:"targets"`
	// Tier is how many retry tiers the delivery has been through.
	Tier int `json:"tier"`
	// DueAt is when a retry tier hands the event back to its lane.
	DueAt   time.Time `json:"due_at,omitzero"`
	History []Attempt `json:"history,omitempty"`
}

// Attempt is one failed try of a delivery.
type Attempt struct {
	At       time.Time `json:"at"`
	Provider string    `json:"provider,omitempty"`
	Class    string    `json:"class"`
	Reason   string    `json:"reason,omitempty"`
}

// ErrUndecodable is wrapped by Decode for bytes that are not a valid
// envelope; such a message goes to the dead-letter topic.
var ErrUndecodable = errors.New("producer: undecodable envelope")

// NewEnvelope builds an envelope carrying payload, marshalled as JSON.
func NewEnvelope(id, kind string, lane topics.Lane, key string, created, expires time.Time, idempotencyKey string, payload any) (Envelope, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return Envelope{}, fmt.Errorf("producer: marshal %s payload: %w", kind, err)
	}
	return Envelope{
		ID: id, Kind: kind, Lane: lane, CreatedAt: created.UTC(), ExpiresAt: expires.UTC(),
		IdempotencyKey: idempotencyKey, Key: key, SchemaVersion: SchemaVersion, Payload: raw,
	}, nil
}

// Validate reports what makes e unusable, or nil.
func (e Envelope) Validate() error {
	switch {
	case e.ID == "":
		return errors.New("missing id")
	case e.Kind == "":
		return errors.New("missing kind")
	case !e.Lane.Valid():
		return fmt.Errorf("unknown lane %q", e.Lane)
	case e.SchemaVersion < 1 || e.SchemaVersion > SchemaVersion:
		return fmt.Errorf("unsupported schema version %d", e.SchemaVersion)
	case e.CreatedAt.IsZero():
		return errors.New("missing created_at")
	case len(e.Payload) == 0:
		return errors.New("missing payload")
	}
	return nil
}

// Expired reports whether the event is past its expiry at now.
func (e Envelope) Expired(now time.Time) bool {
	return !e.ExpiresAt.IsZero() && !now.Before(e.ExpiresAt)
}

// Decode parses and validates an envelope. Errors wrap ErrUndecodable.
func Decode(b []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrUndecodable, err)
	}
	if err := e.Validate(); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrUndecodable, err)
	}
	return e, nil
}

// Recipient names who a direct notification is for: exactly one address
// kind, already normalised.
type Recipient struct {
	Type  string `json:"type"` // phone | email | device_token | account_id
	Value string `json:"value"`
}

// Recipient types.
const (
	ToPhone  = "phone"
	ToEmail  = "email"
	ToDevice = "device_token"
	// ToTopic is an FCM topic: one push reaching every device subscribed
	// to it, without a ledger row per device.
	ToTopic   = "topic"
	ToAccount = "account_id"
)

// Direct is the payload of KindDirect: one notification to one person.
type Direct struct {
	NotificationID string            `json:"notification_id"`
	To             Recipient         `json:"to"`
	Title          string            `json:"title"`
	Body           string            `json:"body"`
	Data           map[string]string `json:"data,omitempty"`
	Channels       []string          `json:"channels"`
	Priority       string            `json:"priority"`
	// Fallback makes Channels an ordered fallback list: the next channel
	// is tried only when none of the recipient's addresses on the previous
	// one was reached (codes for officials: push to the Egov app, then
	// SMS). Without it every channel is sent.
	Fallback bool `json:"fallback,omitempty"`
	// App limits push to an account's devices of one app ("smart",
	// "egov"); empty means all its devices.
	App string `json:"app,omitempty"`
	// Collapse is the notification key: messages with one key replace
	// each other on the phone (channels.Message.Collapse).
	Collapse string `json:"collapse,omitempty"`
	// Ack asks for each device's push to carry its AckToken (data "ack"),
	// with which an app without a session acknowledges the notification.
	Ack bool `json:"ack,omitempty"`
}

// Fanout is the payload of KindFanout: one batch (for example 500 device
// tokens) of a broadcast's or an alert's audience, planned by the
// dispatcher's planner and sent by whichever replica consumes it.
type Fanout struct {
	NotificationID string            `json:"notification_id"`
	Batch          int               `json:"batch"` // sequence number within the plan
	Channel        string            `json:"channel"`
	Recipients     []string          `json:"recipients"`
	Title          string            `json:"title"`
	Body           string            `json:"body"`
	Data           map[string]string `json:"data,omitempty"`
	Priority       string            `json:"priority"`
	Collapse       string            `json:"collapse,omitempty"`
	Ack            bool              `json:"ack,omitempty"`
}

// Audience names who a planned notification is for: everyone, or the
// union of areas (each with all the units below it), topics and accounts.
type Audience struct {
	Everyone bool     `json:"everyone,omitempty"`
	Areas    []string `json:"areas,omitempty"`
	Topics   []string `json:"topics,omitempty"`
	Accounts []string `json:"accounts,omitempty"`
	// Roles are officials' roles: every holder of one (Restricted alerts,
	// the test audience of Test and Exercise alerts).
	Roles []string `json:"roles,omitempty"`
	// Unacknowledged leaves out the accounts that acknowledged this alert
	// chain: the audience of an escalation.
	Unacknowledged string `json:"unacknowledged,omitempty"`
}

// AnyApp, as a plan's App, selects the devices of every app.
const AnyApp = "*"

// Plan is the payload of KindPlan: a broadcast, alert or outage notice
// whose audience the planner streams from the store into Fanout batches
// on the same lane.
type Plan struct {
	NotificationID string            `json:"notification_id"`
	Audience       Audience          `json:"audience"`
	Channels       []string          `json:"channels"` // push and/or sms
	Title          string            `json:"title"`
	Body           string            `json:"body"`
	Data           map[string]string `json:"data,omitempty"`
	Priority       string            `json:"priority"`
	// App limits push to devices of one app; "smart" (the citizens' app)
	// when empty, every app when "*".
	App string `json:"app,omitempty"`
	// BatchSize is how many addresses a Fanout batch carries; 500 when 0.
	BatchSize int `json:"batch_size,omitempty"`
	// AreaTopics sends push for an area audience as one FCM topic message
	// per area ("/topics/area-<code>") instead of per device.
	AreaTopics bool `json:"area_topics,omitempty"`
	// Collapse is the notification key of every message of the plan:
	// messages with one key replace each other on the phone. An alert
	// chain's is its first alert's identifier, an outage schedule's its
	// id, a broadcast's its id.
	Collapse string `json:"collapse,omitempty"`
	// Ack asks for each device's push to carry its AckToken.
	Ack bool `json:"ack,omitempty"`
	// QuietHours makes the plan wait for the end of its subscribers'
	// quiet hours, and its SMS for the end of the province's night, as
	// every plan of the bulk lane does: an alert below the bypass
	// severity.
	QuietHours bool `json:"quiet_hours,omitempty"`
}
