// Package direct accepts direct notifications (one message to one person)
// and gets them onto the direct lane: it persists the notification with
// its outbox item, keyed by the client's idempotency key, then publishes
// its event; the outbox (producer.Outbox) publishes any notification
// whose publish failed. A notification
// accepted with 202 is therefore never lost, and a retried request never
// creates a second one.
package direct

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// ErrConflict is returned when an idempotency key is reused with a
// different request.
var ErrConflict = &loa.Error{Code: loa.EIdempotencyConflict, Field: "idempotency_key",
	Detail: "this idempotency key was used with a different request; use a new key for a new notification"}

// PublishGrace is how long after its acceptance the outbox publishes a
// notification whose own publish failed.
const PublishGrace = 30 * time.Second

// ErrNotFound is wrapped by the loa.ENotFound error of Get.
var ErrNotFound = errors.New("direct: notification not found")

// publisher is what the service needs of kafkapub.Publisher.
type publisher interface {
	Publish(ctx context.Context, e producer.Envelope) error
}

// Config bounds what clients may send.
type Config struct {
	// MaxSMSSegments is the most SMS segments a direct notification's
	// body may bill as, when it goes by SMS (LOA_DIRECT_SMS_MAX_SEGMENTS):
	// 153 GSM-7 septets or 67 UCS-2 units a segment once it is longer
	// than one (160 or 70). Gateways charge per segment, so this bounds
	// what one request costs. 1 to 255 (SMPP's most parts).
	MaxSMSSegments int
	// FoldSMS: direct notifications' SMS are folded to ASCII before they
	// are sent (LOA_SMS_FOLD_KINDS names notification.direct), so their
	// segments are counted on the folded text.
	FoldSMS bool
}

// DefaultConfig is 5 segments: 335 characters of Vietnamese with
// diacritics (UCS-2), 765 without.
func DefaultConfig() Config { return Config{MaxSMSSegments: 5} }

// Validate reports a bound that cannot work.
func (c Config) Validate() error {
	if c.MaxSMSSegments < 1 || c.MaxSMSSegments > 255 {
		return fmt.Errorf("direct: MaxSMSSegments %d is not from 1 to 255", c.MaxSMSSegments)
	}
	return nil
}

// Service accepts direct notifications. It is safe for concurrent use.
type Service struct {
	cfg   Config
	store Store
	pub   publisher
	log   *slog.Logger
	now   func() time.Time
}

// New returns a Service bounded by cfg (a cfg that fails Validate is
// replaced by DefaultConfig's bound).
func New(cfg Config, store Store, pub publisher, log *slog.Logger) *Service {
	if cfg.Validate() != nil {
		cfg.MaxSMSSegments = DefaultConfig().MaxSMSSegments
	}
	return &Service{cfg: cfg, store: store, pub: pub, log: log, now: time.Now}
}

// Request is a validated, normalised direct notification.
type Request struct {
	ClientID       string
	IdempotencyKey string
	RequestHash    string // identifies the request's content for key reuse checks
	To             producer.Recipient
	Title, Body    string
	Data           map[string]string
	Channels       []string
	Priority       string
	ExpiresAt      time.Time
	SendAt         time.Time // zero: at once
}

// Accepted is the answer to Submit.
type Accepted struct {
	ID string
	// Replayed is true when the idempotency key matched an earlier request.
	Replayed bool
}

// Submit validates a posted notification, persists it and publishes its
// event. Every wrong field is named in one loa.EInvalid error, and nothing
// invalid is stored or published. With an idempotency key already used by
// the client it returns the earlier id (publishing it if the earlier
// publish had failed), or ErrConflict when the request differs. A failure
// to store or publish is a loa.EUnavailable error; a stored notification
// stays stored for the relay or a retry with the same key.
func (s *Service) Submit(ctx context.Context, in Input) (Accepted, error) {
	r, err := s.validate(ctx, in)
	if err != nil {
		return Accepted{}, err
	}
	r.ClientID = in.ClientID
	acc, err := s.submit(ctx, r)
	if err != nil && !errors.Is(err, ErrConflict) {
		return Accepted{}, loa.Unavailable("the notification could not be queued; retry with the same idempotency key").Wrap(err)
	}
	return acc, err
}

func (s *Service) submit(ctx context.Context, r Request) (Accepted, error) {
	now := s.now().UTC()
	id, err := uuid.NewV7()
	if err != nil {
		return Accepted{}, fmt.Errorf("direct: new id: %w", err)
	}
	n := Notification{
		ID: id.String(), ClientID: r.ClientID, IdempotencyKey: r.IdempotencyKey, RequestHash: r.RequestHash,
		Kind: producer.KindDirect, Lane: string(topics.LaneDirect), RecipientType: r.To.Type, Recipient: r.To.Value,
		Title: r.Title, Body: r.Body, Data: r.Data, Channels: r.Channels, Priority: r.Priority,
		CreatedAt: now, ExpiresAt: r.ExpiresAt, SendAt: r.SendAt,
	}
	// The notification and its outbox item are written together; the item
	// falls due after PublishGrace, so the outbox publishes the
	// notification only if the publish below failed and no retry of the
	// request published it since.
	env, err := Envelope(n)
	if err != nil {
		return Accepted{}, err
	}
	due := now.Add(PublishGrace)
	if !r.SendAt.IsZero() {
		// Scheduled: the outbox publishes it at send_at, durably (the
		// item is a row), unless it is cancelled first.
		due = r.SendAt
	}
	item, err := producer.NewOutboxItem(producer.RecordNotification+":"+n.ID, n.ID, due, env)
	if err != nil {
		return Accepted{}, err
	}
	item.Record = producer.RecordNotification
	n, created, err := s.store.CreateNotification(ctx, n, item)
	if err != nil {
		return Accepted{}, fmt.Errorf("direct: submit: %w", err)
	}
	if !created && n.RequestHash != r.RequestHash {
		return Accepted{}, ErrConflict
	}
	if n.PublishedAt.IsZero() && n.SendAt.IsZero() {
		if err := s.publish(ctx, n); err != nil {
			return Accepted{}, err
		}
	}
	return Accepted{ID: n.ID, Replayed: !created}, nil
}

func (s *Service) publish(ctx context.Context, n Notification) error {
	env, err := Envelope(n)
	if err != nil {
		return err
	}
	if err := s.pub.Publish(ctx, env); err != nil {
		return fmt.Errorf("direct: publish %s: %w", n.ID, err)
	}
	if err := s.store.MarkPublished(ctx, n.ID, s.now()); err != nil {
		// Published but not marked: the relay will publish it again, and
		// the dispatcher's delivery claims absorb the duplicate.
		s.log.Warn("published notification not marked", slog.String("id", n.ID), slog.Any("error", err))
	}
	return nil
}

// Envelope builds the lane event of a stored notification. The event id
// is the notification id, so a republished event is recognisably the same.
func Envelope(n Notification) (producer.Envelope, error) {
	return producer.NewEnvelope(n.ID, producer.KindDirect, topics.Lane(n.Lane), n.Recipient, n.CreatedAt, n.ExpiresAt, n.IdempotencyKey,
		producer.Direct{
			NotificationID: n.ID, To: producer.Recipient{Type: n.RecipientType, Value: n.Recipient},
			Title: n.Title, Body: n.Body, Data: n.Data, Channels: n.Channels, Priority: n.Priority,
		})
}

// Get returns the status of a notification of client (of any client when
// anyClient), rolled up from its ledger rows. Another client's
// notification is not found, as an unknown one is: a loa.ENotFound error
// wrapping ErrNotFound.
func (s *Service) Get(ctx context.Context, id, client string, anyClient bool) (View, error) {
	n, err := s.store.Notification(ctx, id)
	if errors.Is(err, ErrNotFound) || err == nil && n.ClientID != client && !anyClient {
		return View{}, loa.NotFound("notification %s not found", id).Wrap(ErrNotFound)
	}
	if err != nil {
		return View{}, err
	}
	ds, err := s.store.Deliveries(ctx, id)
	if err != nil {
		return View{}, err
	}
	return view(n, ds), nil
}

// ErrNotCancellable is wrapped by the loa.EConflict error of Cancel for a
// notification that was sent (or sent at once).
var ErrNotCancellable = errors.New("direct: not cancellable")

// Cancel cancels a scheduled notification of client (of any client when
// anyClient) before its send_at: nothing of it is sent. Cancelling one
// already cancelled returns its view again. Errors: loa.ENotFound (also
// for another client's), loa.EConflict wrapping ErrNotCancellable (sent
// already, or not scheduled).
func (s *Service) Cancel(ctx context.Context, id, client string, anyClient bool) (View, error) {
	n, err := s.store.Notification(ctx, id)
	if errors.Is(err, ErrNotFound) || err == nil && n.ClientID != client && !anyClient {
		return View{}, loa.NotFound("notification %s not found", id).Wrap(ErrNotFound)
	}
	if err != nil {
		return View{}, err
	}
	if n.SendAt.IsZero() {
		return View{}, loa.Conflict("notification %s was sent at once; only notifications with a send_at can be cancelled", id).Wrap(ErrNotCancellable)
	}
	n, err = s.store.CancelNotification(ctx, id, s.now())
	if errors.Is(err, ErrAlreadyPublished) {
		return View{}, loa.Conflict("notification %s was already sent at %s; it can no longer be cancelled", id, n.SendAt.UTC().Format(time.RFC3339)).Wrap(ErrNotCancellable)
	}
	if err != nil {
		return View{}, err
	}
	return view(n, nil), nil
}
