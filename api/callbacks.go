package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/channels/sms"
	"github.com/loa-hub/loa/internal/phone"
	"github.com/loa-hub/loa/producer"
)

// Delivery-report formats of CallbackConfig.Type (see channels/sms).
const (
	CallbackESMS     = sms.ReportESMS
	CallbackSpeedSMS = sms.ReportSpeedSMS
	CallbackWebhook  = sms.ReportWebhook
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
	Record(ctx context.Context, rep producer.DeliveryReport) (matched bool, err error)
}

type callbackAnswer struct {
	Matched bool       `json:"matched"`
	Status  loa.Status `json:"status,omitempty"` // delivered, undelivered, held, pending or ignored
}

// reportHeld answers a report whose delivery is not recorded yet.
const reportHeld loa.Status = "held"

// smsCallback takes a gateway's delivery report and records it through
// Deps.Reports: applied to the delivery it names by the gateway's message
// id, or held until the ledger has that delivery — `loa api` hands every
// report to the ledger on loa.receipts (dispatcher.Reports.ViaLedger).
// A report recorded but not applied yet is acknowledged with 202
// {"matched": false, "status": "held"}, so the gateway does not send it
// again; one not recorded is a 503, which it retries.
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
	if err := checkJSONText(body); err != nil {
		return err
	}
	rep, err := sms.ParseReport(sms.ReportFormat{Kind: cfg.Type, IDField: cfg.IDField, StatusField: cfg.StatusField}, body)
	if err != nil {
		return err
	}
	if rep.Status == "" {
		// Not final (or not a report): nothing to record, nothing to wait for.
		ans := callbackAnswer{Status: "ignored"}
		if rep.ProviderID != "" {
			_, err := h.deps.Store.DeliveryByProviderID(r.Context(), name, rep.ProviderID)
			ans = callbackAnswer{Matched: err == nil, Status: "pending"}
		}
		writeJSON(w, http.StatusAccepted, ans)
		return nil
	}
	matched, err := h.deps.Reports.Record(r.Context(), producer.DeliveryReport{Provider: name, ProviderID: rep.ProviderID,
		Status: rep.Status, Reason: rep.Reason})
	if err != nil {
		// The gateway retries a 5xx, which is what a store or Kafka outage needs.
		h.log.Error("recording a delivery report failed", slog.String("provider", name), slog.Any("error", err))
		return loa.Unavailable("the delivery report could not be recorded; send it again")
	}
	if !matched {
		// Not a warning: a gateway that reports at once does so before
		// the ledger has the send, nearly every time; one reported held
		// for too long is dropped with a warning (dispatcher.Reports).
		if h.log.Enabled(r.Context(), slog.LevelDebug) {
			h.log.Debug("delivery report matches no delivery yet; held until its send is recorded", slog.String("provider", name),
				slog.String("provider_id", rep.ProviderID), slog.String("phone", phone.Mask(rep.Phone)),
				slog.String("status", string(rep.Status)))
		}
		writeJSON(w, http.StatusAccepted, callbackAnswer{Matched: false, Status: reportHeld})
		return nil
	}
	if h.log.Enabled(r.Context(), slog.LevelDebug) {
		h.log.Debug("delivery report", slog.String("provider", name), slog.String("provider_id", rep.ProviderID),
			slog.String("status", string(rep.Status)))
	}
	writeJSON(w, http.StatusAccepted, callbackAnswer{Matched: true, Status: rep.Status})
	return nil
}

// envName is how a provider name appears in LOA_SMS_<NAME>_… variables.
func envName(name string) string {
	return strings.ToUpper(name)
}
