package channels

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// Name identifies a channel kind in requests, receipts and the ledger.
type Name string

// The channel kinds a notification can ask for.
const (
	Push  Name = "push"
	SMS   Name = "sms"
	Email Name = "email"
)

// Valid reports whether n is a channel kind Loa knows.
func (n Name) Valid() bool {
	switch n {
	case Push, SMS, Email:
		return true
	}
	return false
}

// Priority tells a provider how urgently a message must be delivered.
// Alerts and codes are High; everything else Normal.
type Priority string

// Priorities.
const (
	Normal Priority = "normal"
	High   Priority = "high"
)

// Lane is the traffic class a message travels in, from the Kafka lane it
// was consumed from down to the provider. Every resource that lanes share
// (a provider's rate limit, FCM's connections and streams) admits them in
// the order of their Rank, so a code or an alert never waits behind bulk.
type Lane string

// The lanes, as the dispatcher consumes them.
const (
	LaneOTP    Lane = "otp"
	LaneAlert  Lane = "alert"
	LaneDirect Lane = "direct"
	LaneBulk   Lane = "bulk"
)

// Rank is an admission order at a shared resource: lower goes first.
type Rank int

// The ranks. Urgent traffic may also use the share of each provider's
// rate and streams that is reserved for it; the others may not.
const (
	Urgent   Rank = iota // codes and alerts
	Standard             // direct notifications (one person)
	Bulk                 // broadcasts, outage notices
)

// Ranks is the number of ranks, for arrays indexed by Rank.
const Ranks = 3

// Rank returns the lane's admission rank: Urgent for otp and alert, Bulk
// for bulk, Standard for direct and for an unset or unknown lane.
func (l Lane) Rank() Rank {
	switch l {
	case LaneOTP, LaneAlert:
		return Urgent
	case LaneBulk:
		return Bulk
	}
	return Standard
}

type rankKey struct{}

// WithRank returns ctx carrying r, for the resources below a channel's
// Send that see only a context (a protocol session's window).
func WithRank(ctx context.Context, r Rank) context.Context {
	return context.WithValue(ctx, rankKey{}, r)
}

// RankOf returns the rank ctx carries (WithRank), Standard when none.
func RankOf(ctx context.Context) Rank {
	if r, ok := ctx.Value(rankKey{}).(Rank); ok {
		return r
	}
	return Standard
}

// Message is one delivery to one address on one channel.
type Message struct {
	// NotificationID is the notification this delivery belongs to; with To
	// and Channel it forms the delivery key.
	NotificationID string
	// Kind is the event kind that produced the message (for per-kind
	// policy such as diacritics folding).
	Kind     string
	Channel  Name
	To       string // normalised address: 84… phone, e-mail, device token or topic
	Title    string
	Body     string
	Data     map[string]string
	Priority Priority
	// Lane is the lane the message was consumed from; shared resources
	// admit it by Lane.Rank. Empty counts as Standard.
	Lane Lane
	// ExpiresAt is when the message stops being worth sending; zero means
	// no expiry. A channel must not send a message past it.
	ExpiresAt time.Time
	// Collapse, when set, makes messages with the same value replace each
	// other on the device: one notification per alert chain (its first
	// alert's identifier), per outage schedule, per broadcast. Channels
	// that cannot replace a message ignore it.
	Collapse string
}

// Expired reports whether m is past its expiry at now.
func (m Message) Expired(now time.Time) bool {
	return !m.ExpiresAt.IsZero() && !now.Before(m.ExpiresAt)
}

// Result describes a successful send.
type Result struct {
	Provider string // provider instance that accepted the message
	// ProviderID is the provider's id for the message, when it gives one
	// (FCM message name, SMS gateway id), for correlating delivery reports.
	ProviderID string
}

// Channel sends messages to one kind of address.
//
// Send returns a nil error when the provider accepted the message. Any
// other outcome is an error whose class (see ClassOf) tells the dispatcher
// what to do next. Send must return promptly when ctx ends, with a
// transient error. Implementations are safe for concurrent use.
type Channel interface {
	Send(ctx context.Context, m Message) (Result, error)
}

// Class says what a failed send means for the message.
type Class string

// The failure classes.
const (
	// Transient: try again later (timeouts, 5xx, quota, open breaker).
	Transient Class = "transient"
	// Permanent: will never succeed as sent (bad request, auth, content).
	Permanent Class = "permanent"
	// TokenDead: the device token is gone; deactivate the device.
	TokenDead Class = "token_dead"
	// Expired: the message passed its TTL before it could be sent.
	Expired Class = "expired"
)

// Error is a failed send with its class. Adapters translate their
// provider's errors into an *Error; anything else is treated as Transient.
type Error struct {
	Class    Class
	Provider string
	// Code is the provider's error code when there is one
	// ("UNREGISTERED", "429", …).
	Code string
	// RetryAfter is the provider's requested back-off, zero when none.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	s := "channels: " + string(e.Class)
	if e.Provider != "" {
		s += " from " + e.Provider
	}
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of class c wrapping a formatted error.
func Errorf(c Class, provider, format string, args ...any) *Error {
	return &Error{Class: c, Provider: provider, Err: fmt.Errorf(format, args...)}
}

// ErrNotAttempted is wrapped by failures that happened before the
// provider was called — giving up while waiting for a rate-limit token or
// a connection. They say nothing about the provider's health, so a
// circuit breaker does not count them.
var ErrNotAttempted = errors.New("channels: the provider was not called")

// ErrNotTaken is wrapped by Transient failures after which the provider
// surely does not have the message although it was called: it answered
// that it did not take it (a 5xx, a 429, a busy or throttling code), or
// no connection to it could be opened. Any other Transient failure of a
// provider call — no answer within the timeout, a connection lost while
// the request was under way, the caller's context ending during the call
// — leaves the message maybe delivered (see MaybeDelivered).
var ErrNotTaken = errors.New("channels: the provider did not take the message")

// MaybeDelivered reports whether a failed send may nevertheless have
// reached the provider, so that sending it again may deliver it twice: a
// Transient failure that wraps neither ErrNotAttempted nor ErrNotTaken.
// A failure of another class is the provider's answer (or came before the
// call) and is never in doubt.
func MaybeDelivered(err error) bool {
	return err != nil && ClassOf(err) == Transient && !errors.Is(err, ErrNotAttempted) && !errors.Is(err, ErrNotTaken)
}

// AtMostOnce reports whether the lane's messages must never be delivered
// twice, even at the cost of one not delivered: codes and alerts. A
// channel stack does not resend (or fail over) such a message after a
// failure that leaves it maybe delivered.
func (l Lane) AtMostOnce() bool { return l == LaneOTP || l == LaneAlert }

// Refused wraps err, a provider's answer refusing a message or a failure
// to connect to it, so that it reads as not taken (ErrNotTaken).
func Refused(err error) error { return refused{err} }

type refused struct{ err error }

func (r refused) Error() string { return r.err.Error() }

func (r refused) Unwrap() []error { return []error{r.err, ErrNotTaken} }

// DialFailed reports whether err is a failure to open a connection (the
// request never left): such a failure is not taken (see Refused).
func DialFailed(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// ClassOf returns the class of the first *Error in err's chain, or
// Transient for anything else: an unknown failure is retried, never dropped.
func ClassOf(err error) Class {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return Transient
}

// RetryAfterOf returns the back-off a provider asked for, or zero.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

type callingKey struct{}

// WithCalling returns a context carrying f, which the channel stack calls
// (through Calling) right before it calls the provider, after every wait
// for a turn (a rate limit): the moment from which the provider may have
// the message. The dispatcher records a code's or an alert's attempt
// there. f may be called more than once (a send tried again in place). An
// error from f means the message must not be sent now: the layer returns
// it, as a Transient error that wraps ErrNotAttempted, without calling the
// provider.
func WithCalling(ctx context.Context, f func() error) context.Context {
	return context.WithValue(ctx, callingKey{}, f)
}

// Calling calls the function ctx carries from WithCalling, if any, and
// returns its error. The layer of a channel stack nearest the provider
// calls it right before each provider call, and does not call the
// provider when it fails.
func Calling(ctx context.Context) error {
	if f, ok := ctx.Value(callingKey{}).(func() error); ok {
		return f()
	}
	return nil
}
