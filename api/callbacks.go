package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/dispatcher"
	"github.com/loa-hub/loa/internal/phone"
)

// Delivery-report formats of CallbackConfig.Type.
const (
	// CallbackESMS: {"SMSID", "RequestId", "Phone", "SendStatus", "SendDate"};
	// SendStatus 5 is delivered, 1 to 3 still on the way, any other not
	// delivered.
	CallbackESMS = "esms"
	// CallbackSpeedSMS: {"type": "report", "tranId", "phone", "status"};
	// status 0 is delivered, any other not delivered. Other types (an
	// incoming message) are acknowledged and ignored.
	CallbackSpeedSMS = "speedsms"
	// CallbackWebhook: a JSON object whose IDField holds the gateway's
	// message id and whose StatusField holds a word such as "delivered",
	// "DELIVRD", "undelivered", "failed" or "UNDELIV".
	CallbackWebhook = "webhook"
)

// CallbackConfig says how one SMS provider instance posts delivery
// reports to POST /v1/callbacks/sms/{name}, name being the instance's
// configured name (the provider recorded in the ledger).
type CallbackConfig struct {
	// Type is the report format: CallbackESMS, CallbackSpeedSMS or
	// CallbackWebhook.
	Type string
	// Token is the shared secret the gateway sends as ?token= or as the
	// X-Loa-Callback-Token header. Empty refuses the provider's reports
	// with 404: a callback URL nobody can guess is the only thing that
	// keeps forged reports out.
	Token string
	// IDField and StatusField name the webhook report's fields; default
	// "gateway_id" and "status". Ignored for the other types.
	IDField, StatusField string
}

// Validate reports what is wrong with c.
func (c CallbackConfig) Validate() error {
	switch c.Type {
	case CallbackESMS, CallbackSpeedSMS, CallbackWebhook:
	default:
		return fmt.Errorf("api: callback type %q is not esms, speedsms or webhook", c.Type)
	}
	if c.Token != "" && len(c.Token) < 16 {
		return errors.New("api: a callback token must be at least 16 characters")
	}
	return nil
}

// ReportRecorder applies a provider's final delivery report (status
// delivered or undelivered) to the delivery it names by the provider's
// message id, or holds it until that delivery is recorded — gateways
// report within milliseconds of accepting a message, often before the
// receipt of the send has been folded into the ledger. An error means the
// report was neither applied nor held. *dispatcher.Reports implements it.
type ReportRecorder interface {
	Record(ctx context.Context, rep dispatcher.DeliveryReport) (matched bool, err error)
}

// report is one delivery report, in Loa's terms.
type report struct {
	providerID string
	phone      string
	// status is loa.StatusDelivered, loa.StatusUndelivered,
	// or "" for a report that is not final (or not a report at all).
	status loa.Status
	reason string // what the gateway said, for the ledger
}

type callbackAnswer struct {
	Matched bool       `json:"matched"`
	Status  loa.Status `json:"status,omitempty"` // delivered, undelivered, held, pending or ignored
}

// reportHeld answers a report whose delivery is not recorded yet.
const reportHeld loa.Status = "held"

// smsCallback takes a gateway's delivery report, finds the delivery it is
// about by the gateway's message id, and publishes a delivered or
// undelivered receipt that the ledger folds in. A report about no delivery
// recorded yet is held until there is one, and acknowledged with 202
// {"matched": false, "status": "held"}, so the gateway does not send it
// again.
func (h *handler) smsCallback(w http.ResponseWriter, r *http.Request) error {
	name := chi.URLParam(r, "provider")
	cfg, ok := h.deps.SMSCallbacks[name]
	if !ok {
		return loa.NotFound("SMS provider %q (no provider of that name takes delivery reports here) not found", name)
	}
	if cfg.Token == "" {
		return &loa.Error{Code: loa.ENotFound, Detail: fmt.Sprintf("delivery reports from %q are not enabled: set LOA_SMS_%s_CALLBACK_TOKEN", name, envName(name))}
	}
	token := r.Header.Get("X-Loa-Callback-Token")
	if token == "" {
		token = r.URL.Query().Get("token")
	}
	// Hashing first makes the comparison independent of the lengths too.
	got, want := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(cfg.Token))
	if token == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return &loa.Error{Code: loa.EUnauthorized, Detail: "send the provider's callback token as ?token= or X-Loa-Callback-Token"}
	}
	if h.deps.Reports == nil {
		return loa.Unavailable("delivery reports cannot be recorded by this process")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.deps.MaxBodyBytes))
	if err != nil {
		return jsonError(err, h.deps.MaxBodyBytes)
	}
	rep, err := parseReport(cfg, body)
	if err != nil {
		return err
	}
	if rep.status == "" {
		// Not final (or not a report): nothing to record, nothing to wait for.
		ans := callbackAnswer{Status: "ignored"}
		if rep.providerID != "" {
			_, err := h.deps.Store.DeliveryByProviderID(r.Context(), name, rep.providerID)
			ans = callbackAnswer{Matched: err == nil, Status: "pending"}
		}
		writeJSON(w, http.StatusAccepted, ans)
		return nil
	}
	matched, err := h.deps.Reports.Record(r.Context(), dispatcher.DeliveryReport{Provider: name, ProviderID: rep.providerID,
		Status: rep.status, Reason: rep.reason})
	if err != nil {
		// The gateway retries a 5xx, which is what a store or Kafka outage needs.
		h.log.Error("recording a delivery report failed", slog.String("provider", name), slog.Any("error", err))
		return loa.Unavailable("the delivery report could not be recorded; send it again")
	}
	if !matched {
		h.log.Warn("delivery report matches no delivery yet; held until its send is recorded", slog.String("provider", name),
			slog.String("provider_id", rep.providerID), slog.String("phone", phone.Mask(rep.phone)),
			slog.String("status", string(rep.status)))
		writeJSON(w, http.StatusAccepted, callbackAnswer{Matched: false, Status: reportHeld})
		return nil
	}
	h.log.Debug("delivery report", slog.String("provider", name), slog.String("provider_id", rep.providerID),
		slog.String("status", string(rep.status)))
	writeJSON(w, http.StatusAccepted, callbackAnswer{Matched: true, Status: rep.status})
	return nil
}

// parseReport reads one report in cfg's format. Fields missing or of the
// wrong kind are 400 problems naming the field.
func parseReport(cfg CallbackConfig, body []byte) (report, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		if len(bytes.TrimSpace(body)) == 0 {
			return report{}, &loa.Error{Code: loa.EMalformed, Detail: "the request body is empty"}
		}
		return report{}, &loa.Error{Code: loa.EMalformed, Detail: "a delivery report must be one JSON object: " + err.Error()}
	}
	field := func(name string, required bool) (string, error) {
		raw, ok := m[name]
		if !ok || string(raw) == "null" {
			if required {
				return "", loa.InvalidFields(loa.FieldError{Field: name, Detail: "is required in a delivery report"})
			}
			return "", nil
		}
		s, ok := scalar(raw)
		if !ok {
			return "", loa.InvalidFields(loa.FieldError{Field: name, Detail: "must be a string or a number"})
		}
		return s, nil
	}
	var (
		rep report
		err error
	)
	switch cfg.Type {
	case CallbackESMS:
		if rep.providerID, err = field("SMSID", true); err != nil {
			return report{}, err
		}
		rep.phone, _ = field("Phone", false)
		st, err := field("SendStatus", true)
		if err != nil {
			return report{}, err
		}
		n, err := strconv.Atoi(st)
		if err != nil {
			return report{}, loa.InvalidFields(loa.FieldError{Field: "SendStatus", Detail: "must be a whole number"})
		}
		switch {
		case n == 5:
			rep.status = loa.StatusDelivered
		case n >= 1 && n <= 3:
		default:
			rep.status = loa.StatusUndelivered
		}
		rep.reason = "delivery report: SendStatus " + st
	case CallbackSpeedSMS:
		if typ, _ := field("type", false); typ != "" && typ != "report" {
			return report{}, nil // an incoming message or another notice: not ours to record
		}
		if rep.providerID, err = field("tranId", true); err != nil {
			return report{}, err
		}
		rep.phone, _ = field("phone", false)
		st, err := field("status", true)
		if err != nil {
			return report{}, err
		}
		n, err := strconv.Atoi(st)
		if err != nil {
			return report{}, loa.InvalidFields(loa.FieldError{Field: "status", Detail: "must be a whole number"})
		}
		rep.status = loa.StatusUndelivered
		if n == 0 {
			rep.status = loa.StatusDelivered
		}
		rep.reason = "delivery report: status " + st
	case CallbackWebhook:
		idf, stf := or(cfg.IDField, "gateway_id"), or(cfg.StatusField, "status")
		if rep.providerID, err = field(idf, true); err != nil {
			return report{}, err
		}
		rep.phone, _ = field("phone", false)
		st, err := field(stf, true)
		if err != nil {
			return report{}, err
		}
		rep.status = webhookStatus(st)
		rep.reason = "delivery report: " + st
	default:
		return report{}, fmt.Errorf("api: callback type %q", cfg.Type)
	}
	return rep, nil
}

// webhookStatus maps the words gateways use (including SMPP's DLR states)
// to a final status, or "" for one that is not final.
func webhookStatus(s string) loa.Status {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "delivered", "delivrd", "success", "ok":
		return loa.StatusDelivered
	case "undelivered", "undeliv", "failed", "rejected", "rejectd", "expired", "deleted", "unknown", "error":
		return loa.StatusUndelivered
	}
	return ""
}

// scalar returns a JSON string or number as text.
func scalar(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s), true
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), true
	}
	return "", false
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// envName is how a provider name appears in LOA_SMS_<NAME>_… variables.
func envName(name string) string {
	return strings.ToUpper(name)
}
