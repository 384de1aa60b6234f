package smsfake

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/loa-hub/loa/internal/fakes/fault"
)

// WebhookOptions configures the generic webhook fake.
type WebhookOptions struct {
	Options
	// PhoneField is the JSON field holding the phone number, used to
	// count per recipient and to apply per-recipient faults; "phone" when
	// empty.
	PhoneField string
	// ContentField is the JSON field holding the text; "content" when
	// empty.
	ContentField string
	// IDField is the JSON field holding the sender's message id, echoed
	// in delivery reports; "id" when empty.
	IDField string
}

// Webhook is a fake generic JSON webhook gateway. It accepts a JSON object
// POSTed to any path, records it, and answers 200 {"id": "<its own id>",
// "status": "accepted"}. A fault's Error is read as the HTTP status to
// answer with. After accepting it posts to Options.CallbackURL:
//
//	{"id": <the request's IDField value>, "gateway_id": "…", "status": "delivered"}
//
// Also served: /_fault and GET /_messages. Safe for concurrent use.
type Webhook struct {
	*gateway
	opts WebhookOptions
}

// NewWebhook starts a webhook fake on 127.0.0.1 at a free port.
func NewWebhook(opts WebhookOptions) (*Webhook, error) {
	if opts.PhoneField == "" {
		opts.PhoneField = "phone"
	}
	if opts.ContentField == "" {
		opts.ContentField = "content"
	}
	if opts.IDField == "" {
		opts.IDField = "id"
	}
	h := &Webhook{opts: opts}
	g, err := newGateway("webhook", opts.Options, func(mux *http.ServeMux) {
		mux.HandleFunc("POST /", h.send)
	})
	if err != nil {
		return nil, err
	}
	h.gateway = g
	return h, nil
}

func (h *Webhook) send(w http.ResponseWriter, r *http.Request) {
	h.requests.Add(1)
	body, _, err := decodeBody(r)
	if err != nil {
		http.Error(w, "body must be a JSON object", http.StatusBadRequest)
		return
	}
	phone, _ := body[h.opts.PhoneField].(string)
	d, ok := h.hold(r, phone)
	if !ok || h.failHTTP(w, d) {
		return
	}
	if d.Error != "" {
		status, err := strconv.Atoi(d.Error)
		if err != nil || status < 400 || status > 599 {
			status = http.StatusInternalServerError
		}
		if d.RetryAfter > 0 {
			w.Header().Set("Retry-After", fault.RetryAfterHeader(d.RetryAfter))
		}
		http.Error(w, http.StatusText(status), status)
		return
	}
	content, _ := body[h.opts.ContentField].(string)
	id := fmt.Sprintf("wh-%08d", h.nextID())
	h.accept(Message{ID: id, Phone: phone, Content: content, Path: r.URL.Path, Body: body})
	writeJSON(w, http.StatusOK, map[string]string{"id": id, "status": "accepted"})
	h.report("", map[string]any{"id": body[h.opts.IDField], "gateway_id": id, "status": "delivered"})
}
