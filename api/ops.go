package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/phone"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/producer"
)

// DeadLetterReplayer sends a dead letter back to its lane, once.
// *dispatcher.DeadLetters implements it; its errors are *loa.Error.
type DeadLetterReplayer interface {
	Replay(ctx context.Context, id, by string) (producer.Envelope, error)
}

const (
	defaultDeadLetterPage = 50
	maxDeadLetterPage     = 500
)

// deadLetterView is a dead letter as operators see it. The event itself
// (which may hold a code) is not shown, only what identifies it.
type deadLetterView struct {
	ID        string `json:"id"`
	Reason    string `json:"reason"`
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
	Channel   string `json:"channel,omitempty"`
	Recipient string `json:"recipient,omitempty"`
	Provider  string `json:"provider,omitempty"`
	Attempts  int    `json:"attempts"`
	// History is the list of failed tries: {at, provider, class, reason}.
	History    json.RawMessage `json:"history"`
	At         time.Time       `json:"at"`
	ReplayedAt *time.Time      `json:"replayed_at"`
	ReplayedBy string          `json:"replayed_by,omitempty"`
	// Replayable: the dead letter holds an event and has not been
	// replayed yet.
	Replayable bool `json:"replayable"`
	// EventID, Kind and Lane describe the event, when it was decodable;
	// only the single-item view carries them.
	EventID string `json:"event_id,omitempty"`
	Kind    string `json:"kind,omitempty"`
	Lane    string `json:"lane,omitempty"`
}

func deadLetterOf(r producer.DeadLetterRecord, mask bool) deadLetterView {
	v := deadLetterView{
		ID: r.ID, Reason: r.Reason, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Channel: r.Channel,
		Recipient: r.Recipient, Provider: r.Provider, Attempts: r.Attempts, History: json.RawMessage("[]"), At: r.At,
		ReplayedBy: r.ReplayedBy, Replayable: r.Envelope != "" && r.ReplayedAt.IsZero(),
	}
	if h := strings.TrimSpace(r.History); h != "" && h != "null" && json.Valid([]byte(h)) {
		v.History = json.RawMessage(h)
	}
	if !r.ReplayedAt.IsZero() {
		t := r.ReplayedAt
		v.ReplayedAt = &t
	}
	if mask {
		if _, err := phone.Normalize(r.Recipient); err == nil {
			v.Recipient = phone.Mask(r.Recipient)
		}
	}
	return v
}

// listDeadLetters lists dead letters newest first, a page at a time:
// ?limit= (default 50, at most 500) and ?before= the previous page's
// next cursor. Phone numbers are masked.
func (h *handler) listDeadLetters(w http.ResponseWriter, r *http.Request) error {
	var v loa.Validation
	p := pageOf(&v, r.URL.Query(), defaultDeadLetterPage, maxDeadLetterPage)
	if err := v.Err(nil); err != nil {
		return err
	}
	rows, err := h.deps.Store.DeadLetters(r.Context(), p.beforeAt, p.beforeID, p.limit+1)
	if err != nil {
		return err
	}
	out := struct {
		Items []deadLetterView `json:"items"`
		// Next is the cursor of the following page; absent on the last.
		Next string `json:"next,omitempty"`
	}{Items: []deadLetterView{}}
	if len(rows) > p.limit {
		rows = rows[:p.limit]
		last := rows[len(rows)-1]
		out.Next = encodeCursor(last.At, last.ID)
	}
	for _, row := range rows {
		out.Items = append(out.Items, deadLetterOf(row, true))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getDeadLetter returns one dead letter, with its recipient in full.
func (h *handler) getDeadLetter(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	row, err := h.deps.Store.DeadLetter(r.Context(), id)
	if errors.Is(err, sqlstore.ErrNotFound) {
		return loa.NotFound("dead letter %s not found", id)
	}
	if err != nil {
		return err
	}
	v := deadLetterOf(row, false)
	if row.Envelope != "" {
		if env, err := producer.Decode([]byte(row.Envelope)); err == nil {
			v.EventID, v.Kind, v.Lane = env.ID, env.Kind, string(env.Lane)
		}
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// replayDeadLetter sends a dead letter back to its lane, once, recording
// the caller as who replayed it.
func (h *handler) replayDeadLetter(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	if h.deps.DeadLetters == nil {
		return loa.Unavailable("dead letters cannot be replayed by this process")
	}
	p, _ := principalFrom(r.Context())
	env, err := h.deps.DeadLetters.Replay(r.Context(), id, p.ID)
	if err != nil {
		return err
	}
	h.log.Info("dead letter replayed", "id", id, "by", p.ID, "event_id", env.ID, "lane", string(env.Lane))
	writeJSON(w, http.StatusAccepted, map[string]string{"id": id, "event_id": env.ID, "lane": string(env.Lane)})
	return nil
}

// listPage is a list's ?limit= and ?before= (the previous page's next
// cursor).
type listPage struct {
	limit    int
	beforeAt time.Time
	beforeID string
}

// pageOf reads a list's page parameters, naming the wrong ones in v.
func pageOf(v *loa.Validation, q url.Values, def, most int) listPage {
	p := listPage{limit: def}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > most {
			v.Add("limit", "must be a whole number from 1 to %d", most)
		} else {
			p.limit = n
		}
	}
	if s := q.Get("before"); s != "" {
		var err error
		if p.beforeAt, p.beforeID, err = decodeCursor(s); err != nil {
			v.Add("before", "is not a cursor from a previous page's next")
		}
	}
	return p
}

// A cursor is base64url("<RFC 3339 nano time> <id>"): opaque to clients,
// exact for the store's (at, id) ordering.
func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + " " + id))
}

func decodeCursor(s string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, "", err
	}
	ts, id, ok := strings.Cut(string(b), " ")
	if !ok || id == "" {
		return time.Time{}, "", errors.New("api: cursor without an id")
	}
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, "", err
	}
	return at, id, nil
}
