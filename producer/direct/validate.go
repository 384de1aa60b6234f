package direct

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/channels/sms"
	"github.com/loa-hub/loa/internal/phone"
	"github.com/loa-hub/loa/producer"
)

// Limits on a direct notification.
const (
	maxTitleRunes   = 256
	maxBodyRunes    = 4000
	maxDataBytes    = 3000 // FCM's 4 KiB payload must also hold title and body
	maxDataKeys     = 32
	maxTokenLen     = 4096
	maxIdemKeyLen   = 255
	defaultTTL      = 24 * time.Hour
	maxSendAhead    = 90 * 24 * time.Hour
	maxTTL          = 30 * 24 * time.Hour
	maxEmailAddrLen = 254
)

// To is the recipient of an Input: exactly one of its fields is set.
type To struct {
	Phone       *string `json:"phone,omitempty"`
	Email       *string `json:"email,omitempty"`
	DeviceToken *string `json:"device_token,omitempty"`
	AccountID   *string `json:"account_id,omitempty"`
	// Topic is an FCM topic: one push to every device subscribed to it,
	// with no per-device ledger.
	Topic *string `json:"topic,omitempty"`
}

// validTopic reports whether name is what FCM accepts as a topic name:
// 1 to 900 of the characters [a-zA-Z0-9-_.~%]. (As a regular expression,
// the bounded repetition compiles to 900 copies of the character class:
// 570 KB of heap, built in every process that links this package.)
func validTopic(name string) bool {
	if len(name) < 1 || len(name) > 900 {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("-_.~%", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// Input is a direct notification as a client posts it, before validation.
type Input struct {
	To             *To               `json:"to"`
	Title          string            `json:"title"`
	Body           *string           `json:"body"`
	Data           map[string]string `json:"data"`
	Channels       []string          `json:"channels"`
	TTLSeconds     *int64            `json:"ttl_seconds"`
	ExpiresAt      *time.Time        `json:"expires_at"`
	SendAt         *time.Time        `json:"send_at"`
	IdempotencyKey string            `json:"idempotency_key"`
	Priority       string            `json:"priority"`
	// IdempotencyHeader is the request's Idempotency-Key header, if any.
	IdempotencyHeader string `json:"-"`
	// ClientID is the calling client; ReceivedAt when the request arrived
	// (the TTL counts from it).
	ClientID   string    `json:"-"`
	ReceivedAt time.Time `json:"-"`
}

// validate checks every field, collecting all errors, and
// returns the normalised request.
func (s *Service) validate(ctx context.Context, req Input) (Request, error) {
	var (
		v   loa.Validation
		out Request
	)
	bad := v.Add

	// Recipient: exactly one address kind.
	if req.To == nil {
		bad("to", "a recipient is required: one of to.phone, to.email, to.device_token, to.account_id, to.topic")
	} else {
		set := 0
		for _, v := range []*string{req.To.Phone, req.To.Email, req.To.DeviceToken, req.To.AccountID, req.To.Topic} {
			if v != nil {
				set++
			}
		}
		switch {
		case set == 0:
			bad("to", "a recipient is required: one of to.phone, to.email, to.device_token, to.account_id, to.topic")
		case set > 1:
			bad("to", "give exactly one of to.phone, to.email, to.device_token, to.account_id, to.topic")
		case req.To.Phone != nil:
			p, err := phone.Normalize(*req.To.Phone)
			if err != nil {
				bad("to.phone", "not a Vietnamese mobile number (for example 0912345678 or 84912345678)")
			}
			out.To = producer.Recipient{Type: producer.ToPhone, Value: p}
		case req.To.Email != nil:
			e := strings.TrimSpace(*req.To.Email)
			a, err := mail.ParseAddress(e)
			if err != nil || a.Address != e || len(e) > maxEmailAddrLen {
				bad("to.email", "not a valid e-mail address")
			}
			out.To = producer.Recipient{Type: producer.ToEmail, Value: strings.ToLower(e)}
		case req.To.DeviceToken != nil:
			t := *req.To.DeviceToken
			if t == "" || len(t) > maxTokenLen || strings.ContainsAny(t, " \t\r\n") {
				bad("to.device_token", "must be a device registration token of 1 to %d characters without spaces", maxTokenLen)
			}
			out.To = producer.Recipient{Type: producer.ToDevice, Value: t}
		case req.To.AccountID != nil:
			id := *req.To.AccountID
			if id == "" {
				bad("to.account_id", "must not be empty")
			} else if ok, err := s.store.AccountExists(ctx, id); err != nil {
				return Request{}, err
			} else if !ok {
				bad("to.account_id", "no active account has this id")
			}
			out.To = producer.Recipient{Type: producer.ToAccount, Value: id}
		case req.To.Topic != nil:
			topic := strings.TrimPrefix(*req.To.Topic, "/topics/")
			if !validTopic(topic) {
				bad("to.topic", "must be an FCM topic name: 1 to 900 of the characters a-z A-Z 0-9 - _ . ~ %%")
			}
			out.To = producer.Recipient{Type: producer.ToTopic, Value: topic}
		}
	}

	// Channels: known, compatible with the recipient, defaulted from it.
	chs := req.Channels
	if len(chs) == 0 && len(v.Fields) == 0 {
		chs = []string{string(defaultChannel(out.To.Type))}
	}
	var seen []string
	for i, c := range chs {
		field := fmt.Sprintf("channels[%d]", i)
		name := channels.Name(c)
		switch {
		case !name.Valid():
			bad(field, "unknown channel %q; use push, sms or email", c)
		case out.To.Type != "" && !compatible(out.To.Type, name):
			bad(field, "channel %s cannot reach a %s recipient", c, out.To.Type)
		case !slices.Contains(seen, c):
			seen = append(seen, c)
		}
	}
	out.Channels = seen

	// Text: NFC (TCVN 6909), bounded.
	out.Title = norm.NFC.String(strings.TrimSpace(req.Title))
	if n := utf8.RuneCountInString(out.Title); n > maxTitleRunes {
		bad("title", "is %d characters; the limit is %d", n, maxTitleRunes)
	}
	if out.Title == "" && (slices.Contains(out.Channels, string(channels.Push)) || slices.Contains(out.Channels, string(channels.Email))) {
		bad("title", "is required for push and email")
	}
	if req.Body == nil || strings.TrimSpace(*req.Body) == "" {
		bad("body", "is required")
	} else {
		out.Body = norm.NFC.String(*req.Body)
		if n := utf8.RuneCountInString(out.Body); n > maxBodyRunes {
			bad("body", "is %d characters, over the limit of %d", n, maxBodyRunes)
		}
	}
	if !utf8.ValidString(req.Title) || (req.Body != nil && !utf8.ValidString(*req.Body)) {
		bad("body", "must be valid UTF-8")
	}
	// By SMS the body is what the gateway bills: at most MaxSMSSegments.
	if slices.Contains(out.Channels, string(channels.SMS)) && out.Body != "" {
		t := sms.Prepare(out.Body, s.cfg.FoldSMS)
		if t.Segments > s.cfg.MaxSMSSegments {
			bad("body", "is %d SMS segments (%d %s units); by SMS the limit is %d segments: %d characters with Vietnamese diacritics or other characters outside GSM-7, %d without",
				t.Segments, t.Units, t.Encoding, s.cfg.MaxSMSSegments, maxUnits(s.cfg.MaxSMSSegments, 70, 67), maxUnits(s.cfg.MaxSMSSegments, 160, 153))
		}
	}

	// Data: string pairs FCM accepts.
	if len(req.Data) > maxDataKeys {
		bad("data", "has %d keys; the limit is %d", len(req.Data), maxDataKeys)
	}
	size := 0
	for k, v := range req.Data {
		size += len(k) + len(v)
		lk := strings.ToLower(k)
		if k == "" || lk == "from" || lk == "notification" || lk == "message_type" || strings.HasPrefix(lk, "google") || strings.HasPrefix(lk, "gcm") {
			bad("data."+k, "is a key reserved by the push provider")
		}
	}
	if size > maxDataBytes {
		bad("data", "is %d bytes; the limit is %d", size, maxDataBytes)
	}
	out.Data = req.Data

	// send_at: at most 90 days ahead. The TTL counts from it, and an
	// expiry before it is refused at once: such a reminder could never be
	// sent.
	now := req.ReceivedAt
	if req.SendAt != nil {
		switch {
		case !req.SendAt.After(now):
			bad("send_at", "must be in the future (leave it out to send at once)")
		case req.SendAt.Sub(now) > maxSendAhead:
			bad("send_at", "must be at most 90 days ahead")
		default:
			out.SendAt = req.SendAt.UTC()
			now = out.SendAt
		}
		if req.ExpiresAt != nil && req.SendAt != nil && !req.ExpiresAt.After(*req.SendAt) {
			bad("expires_at", "is not after send_at: the notification would expire before it is sent")
		}
	}
	// Expiry: ttl_seconds or expires_at, never in the past.
	switch {
	case req.TTLSeconds != nil && req.ExpiresAt != nil:
		bad("ttl_seconds", "give ttl_seconds or expires_at, not both")
	case req.TTLSeconds != nil:
		ttl := time.Duration(*req.TTLSeconds) * time.Second
		if *req.TTLSeconds <= 0 {
			bad("ttl_seconds", "must be positive; a TTL of %d seconds is already past", *req.TTLSeconds)
		} else if ttl > maxTTL {
			bad("ttl_seconds", "must be at most %d (30 days)", int64(maxTTL/time.Second))
		}
		out.ExpiresAt = now.Add(ttl)
	case req.ExpiresAt != nil:
		if !req.ExpiresAt.After(req.ReceivedAt) {
			bad("expires_at", "is in the past")
		} else if req.ExpiresAt.After(now) && req.ExpiresAt.Sub(now) > maxTTL {
			bad("expires_at", "is more than 30 days after it is sent")
		}
		out.ExpiresAt = *req.ExpiresAt
	default:
		out.ExpiresAt = now.Add(defaultTTL)
	}

	switch req.Priority {
	case "", string(channels.Normal):
		out.Priority = string(channels.Normal)
	case string(channels.High):
		out.Priority = string(channels.High)
	default:
		bad("priority", "must be normal or high")
	}

	// Idempotency: the body field or the Idempotency-Key header.
	key := req.IdempotencyKey
	if hk := req.IdempotencyHeader; hk != "" {
		if key != "" && key != hk {
			bad("idempotency_key", "differs from the Idempotency-Key header")
		}
		key = hk
	}
	if len(key) > maxIdemKeyLen {
		bad("idempotency_key", "is longer than %d characters", maxIdemKeyLen)
	}
	out.IdempotencyKey = key

	if err := v.Err(nil); err != nil {
		return Request{}, err
	}
	out.RequestHash = requestHash(out, req)
	return out, nil
}

// maxUnits is how many units fit in n segments of single units alone or
// part units each.
func maxUnits(n, single, part int) int {
	if n == 1 {
		return single
	}
	return n * part
}

// requestHash identifies what was asked, so that a reused idempotency key
// with another request is refused. The expiry counts as asked when the
// client gave it explicitly.
func requestHash(out Request, req Input) string {
	b, _ := json.Marshal(struct {
		To                    producer.Recipient
		Title, Body, Priority string
		Data                  map[string]string
		Channels              []string
		TTLSeconds            *int64
		ExpiresAt             *time.Time
		SendAt                *time.Time `json:",omitempty"`
	}{out.To, out.Title, out.Body, out.Priority, out.Data, out.Channels, req.TTLSeconds, req.ExpiresAt, req.SendAt})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func defaultChannel(recipientType string) channels.Name {
	switch recipientType {
	case producer.ToPhone:
		return channels.SMS
	case producer.ToEmail:
		return channels.Email
	}
	return channels.Push
}

func compatible(recipientType string, ch channels.Name) bool {
	switch recipientType {
	case producer.ToPhone:
		return ch == channels.SMS
	case producer.ToEmail:
		return ch == channels.Email
	case producer.ToDevice, producer.ToTopic:
		return ch == channels.Push
	}
	return true // an account may be reached on any channel it has an address for
}
