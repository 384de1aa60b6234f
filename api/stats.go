package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/phone"
	"github.com/loa-hub/loa/internal/sqlstore"
)

// Stats are the live counters of a planned notification (a broadcast, an
// alert, an outage notice), folded from its receipts while it is sent.
type Stats struct {
	Targeted  int64                   `json:"targeted"`
	Sent      int64                   `json:"sent"`      // accepted by a provider (or confirmed delivered)
	Failed    int64                   `json:"failed"`    // failed for good: permanent errors, dead tokens, undelivered
	Expired   int64                   `json:"expired"`   // past its TTL before it could be sent
	Cancelled int64                   `json:"cancelled"` // not sent because the notification was cancelled
	Pending   int64                   `json:"pending"`   // targeted, no final outcome yet (including retrying)
	Channels  map[string]ChannelStats `json:"channels"`
	// Acknowledged and Escalated are an alert's: the accounts that
	// acknowledged its chain, and the escalation SMS sent to the others.
	Acknowledged *int64 `json:"acknowledged,omitempty"`
	Escalated    *int64 `json:"escalated,omitempty"`
	// Rate is the deliveries per second, when asked for (?rate_since=).
	Rate *Rate `json:"rate,omitempty"`
}

// Rate is how many deliveries reached an outcome in each second, from the
// ledger's times: the curve of a broadcast or an alert being sent, whole
// however long after it was sent it is asked for.
type Rate struct {
	// Since is the Unix second the points start at (0: the whole curve).
	Since int64 `json:"since"`
	// Points are [Unix second, outcomes in it], oldest first; seconds
	// without an outcome are left out.
	Points [][2]int64 `json:"points"`
}

// ChannelStats are the counters of one channel, with the outcome counts
// per provider.
type ChannelStats struct {
	Targeted  int64                       `json:"targeted"`
	Sent      int64                       `json:"sent"`
	Failed    int64                       `json:"failed"`
	Expired   int64                       `json:"expired"`
	Cancelled int64                       `json:"cancelled"`
	Pending   int64                       `json:"pending"`
	Providers map[string]map[string]int64 `json:"providers,omitempty"`
}

// notificationStats reads the counters of a notification: targeted from
// its plan, outcomes from the delivery ledger.
func (h *handler) notificationStats(ctx context.Context, notificationID string) (Stats, error) {
	targeted, err := h.deps.Store.PlanTargeted(ctx, notificationID)
	if err != nil {
		return Stats{}, err
	}
	rows, err := h.deps.Store.DeliveryStats(ctx, notificationID)
	if err != nil {
		return Stats{}, err
	}
	return foldStats(targeted, rows), nil
}

// requestStats is notificationStats with, when the request asks for it
// with ?rate_since=<Unix second> (0: from the start), the deliveries per
// second from that second on, read in the same scan of the ledger.
func (h *handler) requestStats(r *http.Request, notificationID string) (Stats, error) {
	targeted, rows, rate, err := h.requestCounts(r.Context(), r, notificationID)
	if err != nil {
		return Stats{}, err
	}
	st := foldStats(targeted, rows)
	st.Rate = rate
	return st, nil
}

// requestCounts reads what requestStats folds: the planned deliveries
// per channel, the ledger's counts and, when asked for, the rate.
func (h *handler) requestCounts(ctx context.Context, r *http.Request, notificationID string) (map[string]int64, []sqlstore.DeliveryStat, *Rate, error) {
	v := r.URL.Query().Get("rate_since")
	var since int64
	if v != "" {
		var err error
		if since, err = strconv.ParseInt(v, 10, 64); err != nil || since < 0 {
			return nil, nil, nil, loa.InvalidFields(loa.FieldError{Field: "rate_since", Detail: "must be a Unix time in seconds (0 for the whole curve)"})
		}
	}
	targeted, err := h.deps.Store.PlanTargeted(ctx, notificationID)
	if err != nil {
		return nil, nil, nil, err
	}
	if v == "" {
		rows, err := h.deps.Store.DeliveryStats(ctx, notificationID)
		return targeted, rows, nil, err
	}
	rows, points, err := h.deps.Store.DeliveryStatsAndRate(ctx, notificationID, time.Unix(since, 0))
	if err != nil {
		return nil, nil, nil, err
	}
	rate := &Rate{Since: since, Points: make([][2]int64, len(points))}
	for i, p := range points {
		rate.Points[i] = [2]int64{p.At, p.Count}
	}
	return targeted, rows, rate, nil
}

// foldStats sums the ledger's counts per channel and provider.
func foldStats(targeted map[string]int64, rows []sqlstore.DeliveryStat) Stats {
	st := Stats{Channels: map[string]ChannelStats{}}
	for ch, n := range targeted {
		st.Channels[ch] = ChannelStats{Targeted: n}
	}
	for _, r := range rows {
		c := st.Channels[r.Channel]
		switch {
		case r.Status.Succeeded():
			c.Sent += r.Count
		case r.Status.Failed():
			c.Failed += r.Count
		case r.Status == loa.StatusExpired:
			c.Expired += r.Count
		case r.Status == loa.StatusCancelled:
			c.Cancelled += r.Count
		}
		if r.Provider != "" {
			if c.Providers == nil {
				c.Providers = map[string]map[string]int64{}
			}
			if c.Providers[r.Provider] == nil {
				c.Providers[r.Provider] = map[string]int64{}
			}
			c.Providers[r.Provider][string(r.Status)] += r.Count
		}
		st.Channels[r.Channel] = c
	}
	for ch, c := range st.Channels {
		c.Pending = max(c.Targeted-c.Sent-c.Failed-c.Expired-c.Cancelled, 0)
		st.Channels[ch] = c
		st.Targeted += c.Targeted
		st.Sent += c.Sent
		st.Failed += c.Failed
		st.Expired += c.Expired
		st.Cancelled += c.Cancelled
		st.Pending += c.Pending
	}
	return st
}

type recipientOutcome struct {
	Channel   string     `json:"channel"`
	Recipient string     `json:"recipient"`
	Status    loa.Status `json:"status"`
	Provider  string     `json:"provider,omitempty"`
	Reason    string     `json:"reason,omitempty"`
	Attempts  int        `json:"attempts"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// notificationRecipients answers support's question "did this person get
// it?": the outcomes of one notification for a phone number (its SMS and
// the pushes to the devices of its accounts), a device token or an e-mail
// address.
func (h *handler) notificationRecipients(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	q := r.URL.Query()
	var recipients []string
	switch {
	case q.Get("phone") != "":
		p, err := phone.Normalize(q.Get("phone"))
		if err != nil {
			return loa.InvalidFields(loa.FieldError{Field: "phone", Detail: "not a Vietnamese mobile number"})
		}
		tokens, err := h.deps.Store.TokensOfPhone(r.Context(), p)
		if err != nil {
			return err
		}
		recipients = append([]string{p}, tokens...)
		auditDetail(r, "lookup", "phone "+phone.Mask(p))
	case q.Get("device_token") != "":
		recipients = []string{q.Get("device_token")}
		auditDetail(r, "lookup", "device_token "+maskToken(q.Get("device_token")))
	case q.Get("email") != "":
		recipients = []string{q.Get("email")}
		auditDetail(r, "lookup", "email "+maskEmail(q.Get("email")))
	default:
		return loa.InvalidFields(loa.FieldError{Field: "phone", Detail: "give phone, device_token or email"})
	}
	ds, err := h.deps.Store.DeliveriesTo(r.Context(), id, recipients)
	if err != nil && !errors.Is(err, sqlstore.ErrNotFound) {
		return err
	}
	out := []recipientOutcome{}
	for _, d := range ds {
		rcpt := d.Recipient
		if d.Channel == "sms" {
			rcpt = phone.Mask(rcpt)
		}
		out = append(out, recipientOutcome{Channel: d.Channel, Recipient: rcpt, Status: d.Status, Provider: d.Provider,
			Reason: d.Reason, Attempts: d.Attempts, UpdatedAt: d.UpdatedAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"notification_id": id, "items": out})
	return nil
}
