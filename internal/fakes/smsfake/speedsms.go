package smsfake

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// SpeedSMSPath is where the SpeedSMS-style gateway takes messages.
const SpeedSMSPath = "/index.php/sms/send"

// SpeedSMS error codes the fake knows by name; any other name is answered
// with the generic message.
const (
	SpeedSMSOK            = "00"
	SpeedSMSIPLocked      = "007"
	SpeedSMSAccountLocked = "008"
	SpeedSMSAPINotAllowed = "009"
	SpeedSMSBadParams     = "101"
	SpeedSMSInvalidPhone  = "105"
	SpeedSMSNoBalance     = "300"
	SpeedSMSInternalError = "500"
)

var speedMessages = map[string]string{
	SpeedSMSIPLocked:      "ip is locked",
	SpeedSMSAccountLocked: "account is locked",
	SpeedSMSAPINotAllowed: "account not allowed to call api",
	SpeedSMSBadParams:     "invalid or missing parameters",
	SpeedSMSInvalidPhone:  "phone number is invalid",
	SpeedSMSNoBalance:     "not enough balance",
	SpeedSMSInternalError: "internal error",
}

// SpeedSMSDelivered is the status of a delivery report for a delivered
// message.
const SpeedSMSDelivered = 0

// SpeedSMSOptions configures the SpeedSMS-style fake.
type SpeedSMSOptions struct {
	Options
	// AccessToken, when set, must be the Basic-auth user name, or the
	// answer is HTTP 401.
	AccessToken string
}

// SpeedSMS is a fake SpeedSMS-style gateway. It takes
//
//	POST /index.php/sms/send   (Basic auth: access token, any password)
//	{"to": ["84…"], "content": "…", "sms_type": 2, "sender": "…"}
//
// and answers {"status": "success", "code": "00", "data": {"tranId": n,
// "totalSMS": 1, "totalPrice": 250, "invalidPhone": []}}, or
// {"status": "error", "code": "<code>", "message": "…"}. A request to
// several numbers is recorded once per number. After accepting it posts
// one delivery report per number to Options.CallbackURL (SpeedSMS
// configures the URL per account, not per request):
//
//	{"type": "report", "tranId": n, "phone": "84…", "status": 0}
//
// status 0 means delivered. Also served: /_fault and GET /_messages. Safe
// for concurrent use.
type SpeedSMS struct {
	*gateway
	opts SpeedSMSOptions
}

// NewSpeedSMS starts a SpeedSMS-style fake on 127.0.0.1 at a free port.
func NewSpeedSMS(opts SpeedSMSOptions) (*SpeedSMS, error) {
	s := &SpeedSMS{opts: opts}
	g, err := newGateway("speedsms", opts.Options, func(mux *http.ServeMux) {
		mux.HandleFunc("POST "+SpeedSMSPath, s.send)
	})
	if err != nil {
		return nil, err
	}
	s.gateway = g
	return s, nil
}

type speedRequest struct {
	To      []string `json:"to"`
	Content string   `json:"content"`
	SMSType int      `json:"sms_type"`
	Sender  string   `json:"sender"`
}

func speedError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"status": "error", "code": code, "message": msg})
}

func (s *SpeedSMS) send(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	user, _, ok := r.BasicAuth()
	if !ok || (s.opts.AccessToken != "" && user != s.opts.AccessToken) {
		w.Header().Set("WWW-Authenticate", `Basic realm="speedsms"`)
		speedError(w, http.StatusUnauthorized, "401", "access token is invalid")
		return
	}
	body, raw, err := decodeBody(r)
	var req speedRequest
	if err == nil {
		err = json.Unmarshal(raw, &req)
	}
	if err != nil || len(req.To) == 0 || req.Content == "" {
		speedError(w, http.StatusOK, SpeedSMSBadParams, speedMessages[SpeedSMSBadParams])
		return
	}
	d, ok := s.hold(r, req.To[0])
	if !ok || s.failHTTP(w, d) {
		return
	}
	if d.Error != "" && d.Error != SpeedSMSOK {
		msg := speedMessages[d.Error]
		if msg == "" {
			msg = esmsDefaultErrorText
		}
		speedError(w, http.StatusOK, d.Error, msg)
		return
	}
	tran := s.nextID()
	id := strconv.FormatUint(tran, 10)
	for _, to := range req.To {
		s.accept(Message{
			ID: id, Phone: to, Content: req.Content, Sender: req.Sender,
			SMSType: strconv.Itoa(req.SMSType), Path: r.URL.Path, Body: body,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "success", "code": SpeedSMSOK, "data": map[string]any{
		"tranId": tran, "totalSMS": len(req.To), "totalPrice": 250 * len(req.To), "invalidPhone": []string{},
	}})
	for _, to := range req.To {
		s.report("", map[string]any{"type": "report", "tranId": tran, "phone": to, "status": SpeedSMSDelivered})
	}
}
