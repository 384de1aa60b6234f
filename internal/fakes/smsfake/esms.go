package smsfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// ESMSPath is where the eSMS-style gateway takes messages, as eSMS's v4
// JSON API does.
const ESMSPath = "/MainService.svc/json/SendMultipleMessage_V4_post_json/"

// eSMS CodeResult values the fake answers with.
const (
	ESMSOK            = "100" // accepted
	ESMSUnknownError  = "99"  // unknown error: retry
	ESMSAuthFailed    = "101" // ApiKey/SecretKey wrong
	ESMSAccountLocked = "102"
	ESMSNoBalance     = "103"
	ESMSBadBrandname  = "104" // brandname not registered
	ESMSBadSMSType    = "118"
)

// ESMSDelivered is the SendStatus of a delivery report for a delivered
// message.
const ESMSDelivered = 5

const esmsDefaultErrorText = "fault injected by smsfake"

var esmsMessages = map[string]string{
	ESMSUnknownError:  "Unknown error",
	ESMSAuthFailed:    "ApiKey or SecretKey is invalid",
	ESMSAccountLocked: "Account is locked",
	ESMSNoBalance:     "Balance is not enough",
	ESMSBadBrandname:  "Brandname is not registered",
	ESMSBadSMSType:    "SmsType is invalid",
}

// ESMSOptions configures the eSMS-style fake.
type ESMSOptions struct {
	Options
	// APIKey and SecretKey, when set, must match the request's, or the
	// answer is CodeResult 101.
	APIKey, SecretKey string
	// Brandnames, when not empty, are the registered brandnames; any
	// other gets CodeResult 104.
	Brandnames []string
}

// ESMS is a fake eSMS-style gateway. It takes
//
//	POST /MainService.svc/json/SendMultipleMessage_V4_post_json/
//	{"ApiKey", "SecretKey", "Phone", "Content", "Brandname", "SmsType",
//	 "IsUnicode", "RequestId", "CallbackUrl", "Sandbox"}
//
// and answers {"CodeResult": "100", "CountRegenerate": 0, "SMSID": "…"},
// or {"CodeResult": "<code>", "ErrorMessage": "…"}. After accepting it
// posts a delivery report to CallbackUrl (or Options.CallbackURL):
//
//	{"SMSID": "…", "RequestId": "…", "Phone": "84…",
//	 "SendStatus": 5, "SendDate": "2006-01-02 15:04:05"}
//
// SendStatus 5 means delivered, the only outcome the fake reports. Also
// served: /_fault (fault.Injector) and GET /_messages. Safe for
// concurrent use.
type ESMS struct {
	*gateway
	opts ESMSOptions
}

// NewESMS starts an eSMS-style fake on 127.0.0.1 at a free port.
func NewESMS(opts ESMSOptions) (*ESMS, error) {
	e := &ESMS{opts: opts}
	g, err := newGateway("esms", opts.Options, func(mux *http.ServeMux) {
		mux.HandleFunc("POST "+ESMSPath, e.send)
	})
	if err != nil {
		return nil, err
	}
	e.gateway = g
	return e, nil
}

type esmsRequest struct {
	APIKey      string `json:"ApiKey"`
	SecretKey   string `json:"SecretKey"`
	Phone       string `json:"Phone"`
	Content     string `json:"Content"`
	Brandname   string `json:"Brandname"`
	SMSType     any    `json:"SmsType"`   // eSMS takes "2" or 2
	IsUnicode   any    `json:"IsUnicode"` // "1"/"0", 1/0 or true/false
	RequestID   string `json:"RequestId"`
	CallbackURL string `json:"CallbackUrl"`
}

func (e *ESMS) send(w http.ResponseWriter, r *http.Request) {
	e.requests.Add(1)
	body, raw, err := decodeBody(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"CodeResult": ESMSUnknownError, "ErrorMessage": "invalid JSON"})
		return
	}
	var req esmsRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"CodeResult": ESMSUnknownError, "ErrorMessage": err.Error()})
		return
	}
	d, ok := e.hold(r, req.Phone)
	if !ok || e.failHTTP(w, d) {
		return
	}
	code := d.Error
	switch {
	case code != "":
	case e.opts.APIKey != "" && (req.APIKey != e.opts.APIKey || req.SecretKey != e.opts.SecretKey):
		code = ESMSAuthFailed
	case len(e.opts.Brandnames) > 0 && !contains(e.opts.Brandnames, req.Brandname):
		code = ESMSBadBrandname
	case req.Phone == "" || req.Content == "":
		code = ESMSUnknownError
	}
	if code != "" && code != ESMSOK {
		msg := esmsMessages[code]
		if msg == "" {
			msg = esmsDefaultErrorText
		}
		writeJSON(w, http.StatusOK, map[string]string{"CodeResult": code, "ErrorMessage": msg})
		return
	}
	id := fmt.Sprintf("esms-%08d", e.nextID())
	e.accept(Message{
		ID: id, Phone: req.Phone, Content: req.Content, Sender: req.Brandname,
		SMSType: fmt.Sprint(req.SMSType), Unicode: truthy(req.IsUnicode), RequestID: req.RequestID,
		CallbackURL: req.CallbackURL, Path: r.URL.Path, Body: body,
	})
	writeJSON(w, http.StatusOK, map[string]any{"CodeResult": ESMSOK, "CountRegenerate": 0, "SMSID": id})
	e.report(req.CallbackURL, map[string]any{
		"SMSID": id, "RequestId": req.RequestID, "Phone": req.Phone,
		"SendStatus": ESMSDelivered, "SendDate": e.Now().Format("2006-01-02 15:04:05"),
	})
}

func truthy(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case float64:
		return v != 0
	case string:
		return v == "1" || strings.EqualFold(v, "true")
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
