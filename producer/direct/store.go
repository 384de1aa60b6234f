package direct

import (
	"context"
	"errors"
	"time"

	"github.com/loa-hub/loa/producer"
)

// Notification is one accepted direct notification as stored.
type Notification struct {
	ID             string
	ClientID       string // API key id (or "dev") that submitted it
	IdempotencyKey string // empty when the client gave none
	RequestHash    string // hash of the request, to detect a reused key with another body
	Kind           string
	Lane           string
	RecipientType  string // phone | email | device_token | account_id
	Recipient      string // normalised
	Title          string
	Body           string
	Data           map[string]string
	Channels       []string
	Priority       string
	CreatedAt      time.Time
	ExpiresAt      time.Time
	PublishedAt    time.Time // zero until the event reached Kafka
	SendAt         time.Time // zero: at once
	CancelledAt    time.Time // zero unless cancelled before it was sent
}

// ErrAlreadyPublished is wrapped by the store's error when a cancelled
// notification was on its lane before the cancel: nothing was cancelled.
var ErrAlreadyPublished = errors.New("direct: notification already published")

// Store is the durable state the service uses. internal/sqlstore
// implements it; a missing notification is an error wrapping ErrNotFound.
type Store interface {
	// CreateNotification inserts n unless a notification with the same
	// client and idempotency key exists, and with it, in the same
	// transaction, the outbox items that publish it. It returns the
	// stored notification and whether this call created it (only then
	// are the items written). Concurrent calls with one key return one
	// notification.
	CreateNotification(ctx context.Context, n Notification, outbox ...producer.OutboxItem) (Notification, bool, error)
	// MarkPublished records that the notification reached its lane, and
	// marks its outbox items published.
	MarkPublished(ctx context.Context, id string, at time.Time) error
	Notification(ctx context.Context, id string) (Notification, error)
	// Deliveries returns the ledger rows of a notification.
	Deliveries(ctx context.Context, notificationID string) ([]producer.Delivery, error)
	// CancelNotification cancels a notification not yet published: its
	// pending outbox items are cancelled and CancelledAt stamped, in one
	// transaction; a notification already published is returned with an
	// error wrapping ErrAlreadyPublished. Cancelling twice is not an
	// error.
	CancelNotification(ctx context.Context, id string, at time.Time) (Notification, error)
	// AccountExists reports whether an account with the id exists and is
	// not closed.
	AccountExists(ctx context.Context, id string) (bool, error)
}
