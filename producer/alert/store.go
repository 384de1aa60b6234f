package alert

import (
	"context"
	"encoding/json"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/areas"
	"github.com/loa-hub/loa/producer"
)

// StoredAlert is one disaster alert message as Loa keeps it: the parsed
// CAP document and what Loa decided about it.
type StoredAlert struct {
	ID            string
	CAPIdentifier string
	Sender        string
	Sent          time.Time
	MsgType       string          // Alert | Update | Cancel
	References    json.RawMessage // the CAP references, JSON; "[]" when none
	RefIDs        []string        // the Loa ids of the alerts referred to
	Status        string
	Priority      string
	Document      json.RawMessage // the parsed alert, JSON
	Issuer        string          // principal id of the poster
	AreaCodes     []string        // the audience
	Channels      []string
	ExpiresAt     time.Time
	CreatedAt     time.Time
	DecidedBy     string
	DecidedAt     time.Time
	Reason        string
	PublishedAt   time.Time // zero until its plan reached Kafka
	// Distribution is who the alert is for: public (the areas' devices and
	// phones), restricted (holders of roles), private (named accounts),
	// test (the test audience) or none (stored, never distributed).
	Distribution string
	// ChainKey names the chain of an alert and its Updates and Cancel:
	// the CAP identifier of its first alert.
	ChainKey string
	// Audience is who beyond AreaCodes receives it.
	Audience Audience
	// Notes are what Loa could not match: area codes, addresses and
	// references.
	Notes Notes
	// PendingRefs are references to alerts not received yet; each is
	// linked (and dropped from here) when its alert arrives.
	PendingRefs []Ref
}

// Audience is the part of an alert's audience that is not areas.
type Audience struct {
	Roles    []string `json:"roles,omitempty"`
	Accounts []string `json:"accounts,omitempty"`
	// App is the app whose devices get the push; "*" for every app.
	App string `json:"app,omitempty"`
	// AreaTopics sends the push as one FCM topic message per area.
	AreaTopics bool `json:"area_topics,omitempty"`
}

// Notes record what an alert named that Loa could not match.
type Notes struct {
	UnmatchedAreas     []string `json:"unmatched_areas,omitempty"`
	UnmatchedAddresses []string `json:"unmatched_addresses,omitempty"`
	UnmatchedRefs      []string `json:"unmatched_references,omitempty"`
	Restriction        string   `json:"restriction,omitempty"`
	// ForeignSenders are the senders of referenced alerts that the issuer
	// may not post as: the message waits for an approver.
	ForeignSenders []string `json:"foreign_senders,omitempty"`
}

// Ref names an alert by its sender and CAP identifier.
type Ref struct {
	Sender, Identifier string
}

// Link is an alert that refers to another one, with where it stands.
type Link struct {
	ID           string
	MsgType      string
	Status       string
	Distribution string
}

// Store is the durable state the service uses. internal/sqlstore
// implements it; a missing alert (or device) is an error wrapping
// ErrNotFound.
type Store interface {
	// The outbox of alert plans and escalations.
	producer.OutboxStore
	// CancelScheduled cancels the pending outbox items of subject.
	CancelScheduled(ctx context.Context, subject string) (int, error)
	// CancelScheduledExcept cancels them but the one with id keep.
	CancelScheduledExcept(ctx context.Context, subject, keep string) (int, error)

	// CreateAlert inserts a (with its references, and its references to
	// alerts not received yet) unless an alert with the same sender and
	// CAP identifier exists; Updates and Cancels received earlier that
	// referred to a are linked to it. It returns the stored alert and
	// whether this call created it; concurrent calls with one identifier
	// return one alert. The outbox items are written in the same
	// transaction, when it is created.
	CreateAlert(ctx context.Context, a StoredAlert, outbox ...producer.OutboxItem) (StoredAlert, bool, error)
	Alert(ctx context.Context, id string) (StoredAlert, error)
	// AlertByIdentifier returns the alert a sender sent with a CAP
	// identifier.
	AlertByIdentifier(ctx context.Context, sender, identifier string) (StoredAlert, error)
	// AlertsAwaiting returns the alerts (Updates and Cancels, oldest
	// first) that referred to sender's identifier before it was received.
	AlertsAwaiting(ctx context.Context, sender, identifier string) ([]Link, error)
	// AlertsReferring returns the alerts that refer to id, oldest first.
	AlertsReferring(ctx context.Context, id string) ([]Link, error)
	// Alerts returns up to limit alerts with status ("" for every
	// status), newest first.
	Alerts(ctx context.Context, status, issuer string, limit int) ([]StoredAlert, error)
	// DecideAlert moves an alert from status from to to, recording who
	// decided, when and why; false when it was not in from. The outbox
	// items are written in the same transaction, when it moved.
	DecideAlert(ctx context.Context, id, from, to, by, reason string, at time.Time, outbox ...producer.OutboxItem) (bool, error)
	// MarkAlertPublished records that the alert's plan reached Kafka.
	MarkAlertPublished(ctx context.Context, id string, at time.Time) error

	// AckAlert records an account's acknowledgement of a chain (through
	// the alert alertID); true when it was the account's first.
	AckAlert(ctx context.Context, chain, accountID, alertID, via string, at time.Time) (bool, error)
	// AlertAcks returns how many accounts acknowledged a chain.
	AlertAcks(ctx context.Context, chain string) (int64, error)
	// DeviceAccount returns the account of the active device with a
	// token.
	DeviceAccount(ctx context.Context, token string) (string, error)
	// AccountInAudience reports whether the account, not closed, is in
	// the audience.
	AccountInAudience(ctx context.Context, a loa.Audience, accountID string) (bool, error)

	// ExistingAreas returns the codes that name an area.
	ExistingAreas(ctx context.Context, codes []string) ([]string, error)
	// AreaSubtree returns the codes that name an area at or below one of
	// codes.
	AreaSubtree(ctx context.Context, codes []string) ([]string, error)
	// AreaExists reports whether an area with code is loaded.
	AreaExists(ctx context.Context, code string) (bool, error)
	// LeafAreaCentroids returns the units with a centroid and no unit
	// below them.
	LeafAreaCentroids(ctx context.Context) ([]areas.Centroid, error)
	// AccountsByAddress returns the account id of each address (an
	// account id, user name, citizen ID, tax code or, given normalised in
	// phones, a verified phone) that names an account not closed.
	AccountsByAddress(ctx context.Context, addrs, phones []string) (map[string]string, error)
	AppendAudit(ctx context.Context, e accounts.AuditEntry) error

	// CancelPlan marks every channel of a plan cancelled.
	CancelPlan(ctx context.Context, notificationID string, channels []string, now time.Time) error
	// DeliveryStats returns a notification's delivery counts by channel,
	// provider and status.
	DeliveryStats(ctx context.Context, notificationID string) ([]producer.DeliveryStat, error)
}
