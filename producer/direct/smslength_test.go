package direct_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/producer/direct"
	"github.com/loa-hub/loa/producer/producertest"
)

// TestSMSBodyIsBoundedBySegments: a body going by SMS may bill as at most
// MaxSMSSegments segments, counted in the encoding it is sent in: 67
// UCS-2 units a segment for Vietnamese with diacritics (70 alone), 153
// GSM-7 septets without (160 alone). One unit over is refused naming
// body (invalid-field, 400 like every field error);
// a push of the same body is not bounded by it, and folded text counts
// as GSM-7.
func TestSMSBodyIsBoundedBySegments(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := newMemStore()
	store.accounts["acc-1"] = true
	now := time.Now()
	vi := func(n int) string { return strings.Repeat("ệ", n) } // one UCS-2 unit, outside GSM-7
	ascii := func(n int) string { return strings.Repeat("a", n) }
	n := 0
	submit := func(cfg direct.Config, body string, to direct.To, chans ...string) error {
		n++
		_, err := direct.New(cfg, store, &producertest.Recorder{}, log).Submit(ctx, direct.Input{To: &to, Title: "t", Body: &body,
			Channels: chans, ClientID: "c", IdempotencyKey: "k" + string(rune('a'+n%26)) + strings.Repeat("x", n), ReceivedAt: now})
		return err
	}
	phone := direct.To{Phone: ptr("0912345678")}
	def := direct.DefaultConfig()
	one := direct.Config{MaxSMSSegments: 1}
	for _, c := range []struct {
		name string
		cfg  direct.Config
		body string
		ok   bool
	}{
		{"UCS-2 at 5 segments", def, vi(5 * 67), true},
		{"UCS-2 one over", def, vi(5*67 + 1), false},
		{"GSM-7 at 5 segments", def, ascii(5 * 153), true},
		{"GSM-7 one over", def, ascii(5*153 + 1), false},
		{"an extension character counts two septets", def, ascii(5*153-2) + "€", true},
		{"... one over", def, ascii(5*153-1) + "€", false},
		{"one UCS-2 segment", one, vi(70), true},
		{"one UCS-2 segment, one over", one, vi(71), false},
		{"one GSM-7 segment", one, ascii(160), true},
		{"one GSM-7 segment, one over", one, ascii(161), false},
		{"one character outside GSM-7 makes it UCS-2", one, ascii(70) + "ệ", false},
		{"the 4,000-character limit", def, vi(4000), false},
		{"folded, Vietnamese counts as GSM-7", direct.Config{MaxSMSSegments: 5, FoldSMS: true}, vi(5 * 153), true},
	} {
		err := submit(c.cfg, c.body, phone)
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok {
			le, _ := err.(*loa.Error)
			if le == nil || le.Code != loa.EInvalid || len(fields(err)) != 1 || fields(err)[0] != "body" {
				t.Errorf("%s: %v; want an invalid body", c.name, err)
			}
		}
	}
	// An account reached by push only is not bounded by SMS segments; by
	// SMS it is.
	acc := direct.To{AccountID: ptr("acc-1")}
	if err := submit(def, vi(4000), acc, "push"); err != nil {
		t.Errorf("push: %v", err)
	}
	if err := submit(def, vi(400), acc, "push", "sms"); len(fields(err)) != 1 || fields(err)[0] != "body" {
		t.Errorf("push and sms: %v", err)
	}
}
