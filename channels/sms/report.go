package sms

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/loa-hub/loa"
)

// Delivery-report formats, one per gateway kind.
const (
	// ReportESMS: {"SMSID", "RequestId", "Phone", "SendStatus", "SendDate"};
	// SendStatus 5 is delivered, 1 to 3 still on the way, any other not
	// delivered.
	ReportESMS = "esms"
	// ReportSpeedSMS: {"type": "report", "tranId", "phone", "status"};
	// status 0 is delivered, any other not delivered. Other types (an
	// incoming message) are not reports.
	ReportSpeedSMS = "speedsms"
	// ReportWebhook: a JSON object whose IDField holds the gateway's
	// message id and whose StatusField holds a word such as "delivered",
	// "DELIVRD", "undelivered", "failed" or "UNDELIV".
	ReportWebhook = "webhook"
)

// ReportFormat says how a gateway posts its delivery reports: Kind is
// ReportESMS, ReportSpeedSMS or ReportWebhook; IDField and StatusField name
// a webhook report's fields (default "gateway_id" and "status") and are
// ignored for the other kinds.
type ReportFormat struct {
	Kind                 string
	IDField, StatusField string
}

// Report is one delivery report in Loa's terms.
type Report struct {
	ProviderID string // the gateway's message id, as its send answered
	Phone      string // as the gateway wrote it; may be empty
	// Status is loa.StatusDelivered or loa.StatusUndelivered, or "" for a
	// report that is not final (or not a report at all).
	Status loa.Status
	Reason string // what the gateway said, for the ledger
}

// ParseReport reads one delivery report in format f. A body that is not
// one JSON object is a loa.EMalformed error; fields missing or of the
// wrong kind are loa.EInvalid errors naming the field. An unknown kind is
// a plain error (a configuration mistake, not the gateway's).
func ParseReport(f ReportFormat, body []byte) (Report, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		if len(bytes.TrimSpace(body)) == 0 {
			return Report{}, loa.Errorf(loa.EMalformed, "the request body is empty")
		}
		return Report{}, loa.Errorf(loa.EMalformed, "a delivery report must be one JSON object: %v", err)
	}
	r := reportFields(m)
	switch f.Kind {
	case ReportESMS:
		return parseESMSReport(r)
	case ReportSpeedSMS:
		return parseSpeedSMSReport(r)
	case ReportWebhook:
		return parseWebhookReport(r, f)
	}
	return Report{}, fmt.Errorf("sms: delivery-report kind %q is not esms, speedsms or webhook", f.Kind)
}

// reportFields are a report's JSON fields.
type reportFields map[string]json.RawMessage

// get returns a field as text: a JSON string or number. A missing
// required field, or one of another kind, is an EInvalid error naming it.
func (m reportFields) get(name string, required bool) (string, error) {
	raw, ok := m[name]
	if !ok || string(raw) == "null" {
		if required {
			return "", loa.Invalid(name, "is required in a delivery report")
		}
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s), nil
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), nil
	}
	return "", loa.Invalid(name, "must be a string or a number")
}
