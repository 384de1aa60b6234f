package api

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/producer/feedback"
)

// Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2) over the
// feedback service: categories are services, matters are service
// requests. Reads are public and show the public view (no personal data
// of a citizen who did not agree); posting needs an integrating system's
// key with feedback:write as the api_key parameter (or a Bearer header).
// Every endpoint answers JSON or XML by its suffix; errors are Open311's
// [{code, description}] (or <errors>), the description naming the field.

const open311Spec = "http://wiki.open311.org/GeoReport_v2"

// open311Format splits "name.json" / "name.xml"; ok false for another
// suffix.
func open311Format(s string) (name, format string, ok bool) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return s, "", false
	}
	name, format = s[:i], s[i+1:]
	return name, format, format == "json" || format == "xml"
}

type o311Error struct {
	XMLName     xml.Name `json:"-" xml:"error"`
	Code        int      `json:"code" xml:"code"`
	Description string   `json:"description" xml:"description"`
}

type o311Errors struct {
	XMLName xml.Name    `json:"-" xml:"errors"`
	Errors  []o311Error `xml:"error"`
}

// open311Write writes v as JSON, or as XML with its root element.
func open311Write(w http.ResponseWriter, format string, status int, jsonV, xmlV any) {
	if format == "xml" {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.WriteHeader(status)
		io.WriteString(w, xml.Header)
		enc := xml.NewEncoder(w)
		enc.Encode(xmlV)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(jsonV)
}

// open311Err writes err in Open311's error format.
func (h *handler) open311Err(w http.ResponseWriter, r *http.Request, format string, err error) {
	p := problemOf(err)
	if p.Status >= 500 {
		h.log.Error("open311 request failed", "path", r.URL.Path, "error", err)
	}
	desc := p.Detail
	if p.Field != "" {
		desc = open311Field(p.Field) + ": " + p.Detail
	}
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="loa"`)
	}
	list := []o311Error{{Code: p.Status, Description: desc}}
	for _, f := range p.Errors[min(1, len(p.Errors)):] {
		list = append(list, o311Error{Code: p.Status, Description: open311Field(f.Field) + ": " + f.Detail})
	}
	open311Write(w, format, p.Status, list, o311Errors{Errors: list})
}

// open311Field names a feedback field as Open311 does.
func open311Field(f string) string {
	switch f {
	case "category":
		return "service_code"
	case "address":
		return "address_string"
	case "name":
		return "first_name"
	case "photos[0]", "photos":
		return "media"
	}
	return f
}

// open311 wraps an Open311 handler: the format comes from the route.
func (h *handler) open311(f func(w http.ResponseWriter, r *http.Request, name, format string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// {name}.{format} splits at the first dot; codes may hold dots, so
		// split again at the last.
		name, format, ok := open311Format(chi.URLParam(r, "name") + "." + chi.URLParam(r, "format"))
		if !ok {
			h.open311Err(w, r, "json", loa.NotFound("Open311 answers .json or .xml"))
			return
		}
		if h.deps.Feedback == nil {
			h.open311Err(w, r, format, errNoFeedback)
			return
		}
		if err := f(w, r, name, format); err != nil {
			h.open311Err(w, r, format, err)
		}
	}
}

type o311Endpoint struct {
	Specification string   `json:"specification" xml:"specification"`
	URL           string   `json:"url" xml:"url"`
	Changeset     string   `json:"changeset" xml:"changeset"`
	Type          string   `json:"type" xml:"type"`
	Formats       []string `json:"formats" xml:"formats>format"`
}

type o311Discovery struct {
	XMLName    xml.Name       `json:"-" xml:"discovery"`
	Changeset  string         `json:"changeset" xml:"changeset"`
	Contact    string         `json:"contact" xml:"contact"`
	KeyService string         `json:"key_service" xml:"key_service"`
	Endpoints  []o311Endpoint `json:"endpoints" xml:"endpoints>endpoint"`
}

// open311Discovery: GET /open311/v2/discovery.{format}.
func (h *handler) open311Discovery(w http.ResponseWriter, _ *http.Request, _, format string) error {
	d := o311Discovery{Changeset: "2026-11-29T00:00:00Z", Contact: "Sở Thông tin và Truyền thông — the DoIC runs this endpoint",
		KeyService: "API keys with the scope feedback:write are issued by the DoIC (loa admin apikey create)",
		Endpoints: []o311Endpoint{{Specification: open311Spec, URL: h.deps.PublicURL + "/open311/v2", Changeset: "2026-11-29T00:00:00Z",
			Type: "production", Formats: []string{"application/json", "text/xml"}}}}
	open311Write(w, format, http.StatusOK, d, d)
	return nil
}

type o311Service struct {
	XMLName     xml.Name `json:"-" xml:"service"`
	ServiceCode string   `json:"service_code" xml:"service_code"`
	ServiceName string   `json:"service_name" xml:"service_name"`
	Description string   `json:"description" xml:"description"`
	Metadata    bool     `json:"metadata" xml:"metadata"`
	Type        string   `json:"type" xml:"type"`
	Keywords    string   `json:"keywords" xml:"keywords"`
	Group       string   `json:"group" xml:"group"`
}

type o311Services struct {
	XMLName  xml.Name      `json:"-" xml:"services"`
	Services []o311Service `xml:"service"`
}

// open311Services: GET /open311/v2/services.{format}.
func (h *handler) open311Services(w http.ResponseWriter, r *http.Request, _, format string) error {
	cs, err := h.deps.Feedback.Categories(r.Context(), false)
	if err != nil {
		return err
	}
	list := []o311Service{}
	for _, c := range cs {
		desc := c.Name
		if c.NameEN != "" {
			desc += " (" + c.NameEN + ")"
		}
		desc += fmt.Sprintf(". Thời hạn xử lý: %d ngày làm việc.", c.HandlingDays)
		list = append(list, o311Service{ServiceCode: c.Code, ServiceName: c.Name, Description: desc, Metadata: true,
			Type: "realtime", Keywords: strings.ToLower(c.Group), Group: c.Group})
	}
	open311Write(w, format, http.StatusOK, list, o311Services{Services: list})
	return nil
}

type o311Value struct {
	Key  string `json:"key" xml:"key"`
	Name string `json:"name" xml:"name"`
}

type o311Attribute struct {
	Variable            bool        `json:"variable" xml:"variable"`
	Code                string      `json:"code" xml:"code"`
	Datatype            string      `json:"datatype" xml:"datatype"`
	Required            bool        `json:"required" xml:"required"`
	DatatypeDescription string      `json:"datatype_description" xml:"datatype_description"`
	Order               int         `json:"order" xml:"order"`
	Description         string      `json:"description" xml:"description"`
	Values              []o311Value `json:"values" xml:"values>value"`
}

type o311Definition struct {
	XMLName     xml.Name        `json:"-" xml:"service_definition"`
	ServiceCode string          `json:"service_code" xml:"service_code"`
	Attributes  []o311Attribute `json:"attributes" xml:"attributes>attribute"`
}

// publicAttribute is every service's one attribute: whether the citizen
// agrees to be named publicly (default no).
var publicAttribute = o311Attribute{Variable: true, Code: "public", Datatype: "singlevaluelist", Required: false, Order: 1,
	DatatypeDescription: "yes or no; without it the citizen is not named",
	Description:         "Đồng ý công khai họ tên, địa chỉ và hình ảnh (Agree to be named publicly)",
	Values:              []o311Value{{Key: "yes", Name: "Có (yes)"}, {Key: "no", Name: "Không (no)"}}}

// open311Definition: GET /open311/v2/services/{code}.{format}.
func (h *handler) open311Definition(w http.ResponseWriter, r *http.Request, code, format string) error {
	c, err := h.deps.Feedback.Category(r.Context(), code)
	if err != nil {
		return err
	}
	d := o311Definition{ServiceCode: c.Code, Attributes: []o311Attribute{publicAttribute}}
	open311Write(w, format, http.StatusOK, d, d)
	return nil
}

type o311Request struct {
	XMLName           xml.Name `json:"-" xml:"request"`
	ServiceRequestID  string   `json:"service_request_id" xml:"service_request_id"`
	Status            string   `json:"status" xml:"status"`
	StatusNotes       string   `json:"status_notes" xml:"status_notes"`
	ServiceName       string   `json:"service_name" xml:"service_name"`
	ServiceCode       string   `json:"service_code" xml:"service_code"`
	Description       string   `json:"description" xml:"description"`
	AgencyResponsible string   `json:"agency_responsible" xml:"agency_responsible"`
	ServiceNotice     string   `json:"service_notice" xml:"service_notice"`
	RequestedDatetime string   `json:"requested_datetime" xml:"requested_datetime"`
	UpdatedDatetime   string   `json:"updated_datetime" xml:"updated_datetime"`
	ExpectedDatetime  string   `json:"expected_datetime" xml:"expected_datetime"`
	Address           string   `json:"address" xml:"address"`
	AddressID         string   `json:"address_id" xml:"address_id"`
	Zipcode           string   `json:"zipcode" xml:"zipcode"`
	Lat               *float64 `json:"lat,omitempty" xml:"lat,omitempty"`
	Long              *float64 `json:"long,omitempty" xml:"long,omitempty"`
	MediaURL          string   `json:"media_url" xml:"media_url"`
}

type o311Requests struct {
	XMLName  xml.Name      `json:"-" xml:"service_requests"`
	Requests []o311Request `xml:"request"`
}

func o311Time(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(feedback.ICT).Format(time.RFC3339)
}

var rejectNotes = map[string]string{
	feedback.ReasonDuplicate:  "Không xử lý: trùng với phản ánh đã có (duplicate)",
	feedback.ReasonOutOfScope: "Không xử lý: không thuộc phạm vi tiếp nhận (out of scope)",
	feedback.ReasonAbusive:    "Không xử lý: nội dung không phù hợp (abusive)",
}

// o311Of is the Open311 form of a public view.
func o311Of(v feedback.PublicView, base string) o311Request {
	q := o311Request{ServiceRequestID: v.ID, Status: "open", StatusNotes: v.Answer, ServiceName: v.CategoryName, ServiceCode: v.Category,
		Description: v.Description, AgencyResponsible: v.Agency, RequestedDatetime: o311Time(v.CreatedAt),
		UpdatedDatetime: o311Time(v.UpdatedAt), ExpectedDatetime: o311Time(v.DueAt), Address: v.Address, MediaURL: v.MediaURL}
	if !v.Status.Open() {
		q.Status = "closed"
	}
	if v.RejectReason != "" {
		q.StatusNotes = rejectNotes[v.RejectReason]
	}
	q.ServiceNotice = "Thời hạn xử lý: " + v.DueAt.In(feedback.ICT).Format("02/01/2006")
	if v.Address == "" && v.AreaName != "" {
		q.Address = v.AreaName // the commune, when the citizen is not named
	}
	if v.HasPoint {
		lat, lon := v.Lat, v.Lon
		q.Lat, q.Long = &lat, &lon
	}
	if v.Photos > 0 {
		q.MediaURL = fmt.Sprintf("%s/v1/feedback/%s/photos/0", base, v.ID)
	}
	return q
}

// open311Requests: GET /open311/v2/requests.{format}.
func (h *handler) open311Requests(w http.ResponseWriter, r *http.Request, _, format string) error {
	q := r.URL.Query()
	f := feedback.Filter{Limit: 1000}
	if ids := q.Get("service_request_id"); ids != "" {
		for _, id := range strings.Split(ids, ",") {
			if id = strings.TrimSpace(id); id != "" {
				f.IDs = append(f.IDs, id)
			}
		}
		if len(f.IDs) > 100 {
			return loa.Invalid("service_request_id", "at most 100 ids")
		}
	} else {
		f.Category = q.Get("service_code")
		for _, p := range []struct {
			name string
			t    *time.Time
		}{{"start_date", &f.From}, {"end_date", &f.To}} {
			if s := q.Get(p.name); s != "" {
				t, err := time.Parse(time.RFC3339, s)
				if err != nil {
					return loa.Invalid(p.name, "must be a W3C date-time such as 2026-11-01T00:00:00Z")
				}
				*p.t = t
			}
		}
		// The range is the last 90 days by default, and at most 90 days.
		switch {
		case f.From.IsZero() && f.To.IsZero():
			f.From = h.now().Add(-90 * 24 * time.Hour)
		case f.From.IsZero():
			f.From = f.To.Add(-90 * 24 * time.Hour)
		case f.To.IsZero():
			f.To = f.From.Add(90 * 24 * time.Hour)
		case f.To.Before(f.From) || f.To.Sub(f.From) > 90*24*time.Hour:
			return loa.Invalid("end_date", "the range may span at most 90 days, ending after start_date")
		}
		switch st := q.Get("status"); st {
		case "":
		case "open":
			f.Statuses = []feedback.Status{feedback.StatusReceived, feedback.StatusAssigned, feedback.StatusInProgress, feedback.StatusTransferred, feedback.StatusEscalated}
		case "closed":
			f.Statuses = []feedback.Status{feedback.StatusAnswered, feedback.StatusClosed, feedback.StatusRejected}
		default:
			if st != "open,closed" && st != "closed,open" {
				return loa.Invalid("status", "must be open or closed")
			}
		}
	}
	list, err := h.deps.Feedback.PublicList(r.Context(), f)
	if err != nil {
		return err
	}
	out := []o311Request{}
	for _, v := range list {
		out = append(out, o311Of(v, h.deps.PublicURL))
	}
	open311Write(w, format, http.StatusOK, out, o311Requests{Requests: out})
	return nil
}

// open311Request: GET /open311/v2/requests/{id}.{format}.
func (h *handler) open311Request(w http.ResponseWriter, r *http.Request, id, format string) error {
	v, err := h.deps.Feedback.Public(r.Context(), id)
	if err != nil {
		return err
	}
	out := []o311Request{o311Of(v, h.deps.PublicURL)}
	open311Write(w, format, http.StatusOK, out, o311Requests{Requests: out})
	return nil
}

type o311Token struct {
	XMLName          xml.Name `json:"-" xml:"request"`
	ServiceRequestID string   `json:"service_request_id" xml:"service_request_id"`
	Token            string   `json:"token" xml:"token"`
}

type o311Tokens struct {
	XMLName  xml.Name    `json:"-" xml:"service_requests"`
	Requests []o311Token `xml:"request"`
}

// open311Token: GET /open311/v2/tokens/{token}.{format}. Loa assigns the
// id at once; the token it returns is the id.
func (h *handler) open311Token(w http.ResponseWriter, r *http.Request, token, format string) error {
	if _, err := h.deps.Feedback.Public(r.Context(), token); err != nil {
		return err
	}
	out := []o311Token{{ServiceRequestID: token, Token: token}}
	open311Write(w, format, http.StatusOK, out, o311Tokens{Requests: out})
	return nil
}

type o311Posted struct {
	XMLName          xml.Name `json:"-" xml:"request"`
	ServiceRequestID string   `json:"service_request_id" xml:"service_request_id"`
	Token            string   `json:"token,omitempty" xml:"token,omitempty"`
	ServiceNotice    string   `json:"service_notice" xml:"service_notice"`
	// GeoReport v2's optional account_id is never given: it would tell a
	// key holder which phone numbers belong to Loa's citizens.
}

type o311PostedList struct {
	XMLName  xml.Name     `json:"-" xml:"service_requests"`
	Requests []o311Posted `xml:"request"`
}

// open311Key authenticates the api_key (or Bearer) and checks its scope.
func (h *handler) open311Key(r *http.Request, key string) (Principal, error) {
	if key != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+key)
	}
	p, err := h.authenticate(r)
	if err != nil {
		if errors.Is(err, errNoCredentials) {
			return p, &loa.Error{Code: loa.EUnauthorized, Field: "api_key", Detail: "send the API key as the api_key parameter"}
		}
		return p, err
	}
	if p.AccountID != "" || !p.Has(ScopeFeedbackWrite) {
		return p, &loa.Error{Code: loa.EForbidden, Field: "api_key", Detail: fmt.Sprintf("this API key lacks the scope %q", ScopeFeedbackWrite)}
	}
	return p, nil
}

// open311Post: POST /open311/v2/requests.{format}. Form-encoded (or
// multipart with a "media" photo after the fields); the key is checked
// before any photo is read.
func (h *handler) open311Post(w http.ResponseWriter, r *http.Request, _, format string) error {
	svc := h.deps.Feedback
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	form := url.Values{}
	var mr *multipart.Reader
	var photoPart *multipart.Part
	limit := h.deps.MaxBodyBytes + MaxPhotoBytes + 16<<10
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	// A key in the query or the header is checked before the body is read.
	key := r.URL.Query().Get("api_key")
	if key != "" || r.Header.Get("Authorization") != "" {
		if _, err := h.open311Key(r, key); err != nil {
			return err
		}
	}
	switch mt {
	case "multipart/form-data":
		mr = multipart.NewReader(r.Body, params["boundary"])
		read := int64(0)
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return &loa.Error{Code: loa.EMalformed, Detail: "malformed multipart body: " + err.Error()}
			}
			if part.FileName() != "" || part.FormName() == "media" {
				photoPart = part
				break
			}
			b, err := io.ReadAll(io.LimitReader(part, h.deps.MaxBodyBytes-read+1))
			if err != nil {
				return bodyError(err, limit)
			}
			if read += int64(len(b)); read > h.deps.MaxBodyBytes {
				return loa.Errorf(loa.ETooLarge, "the fields are over the limit of %d bytes", h.deps.MaxBodyBytes)
			}
			form.Add(part.FormName(), string(b))
		}
	default:
		b, err := io.ReadAll(io.LimitReader(r.Body, h.deps.MaxBodyBytes+1))
		if err != nil {
			return bodyError(err, limit)
		}
		if int64(len(b)) > h.deps.MaxBodyBytes {
			return loa.Errorf(loa.ETooLarge, "the request body is over the limit of %d bytes", h.deps.MaxBodyBytes)
		}
		if form, err = url.ParseQuery(string(b)); err != nil {
			return &loa.Error{Code: loa.EMalformed, Detail: "the body must be application/x-www-form-urlencoded"}
		}
	}
	if key == "" {
		key = form.Get("api_key")
	}
	p, err := h.open311Key(r, key)
	if err != nil {
		return err
	}
	in := feedback.Input{Category: form.Get("service_code"), Description: form.Get("description"), Address: form.Get("address_string"),
		Phone: form.Get("phone"), MediaURL: form.Get("media_url"), Source: "open311",
		Name: strings.TrimSpace(form.Get("first_name") + " " + form.Get("last_name"))}
	in.Public = form.Get("attribute[public]") == "yes"
	var v loa.Validation
	for _, c := range []struct {
		name string
		dst  **float64
	}{{"lat", &in.Lat}, {"long", &in.Lon}} {
		if s := form.Get(c.name); s != "" {
			x, err := strconv.ParseFloat(s, 64)
			if err != nil {
				v.Add(c.name, "must be a number")
				continue
			}
			*c.dst = &x
		}
	}
	if err := v.Err(feedback.ErrInvalid); err != nil {
		return err
	}
	a := feedback.Actor{APIKeyID: p.ID, IP: h.clientIP(r)}
	d, err := svc.Prepare(r.Context(), a, in)
	if err != nil {
		return err
	}
	var f feedback.Feedback
	if photoPart != nil {
		if h.deps.Blobs == nil {
			return loa.Unavailable("photos cannot be stored on this server (no blob store configured)")
		}
		ph, err := h.storePhoto(r.Context(), fmt.Sprintf("feedback/%s/0", strings.ToLower(d.ID())), photoPart, "media")
		if err != nil {
			return err
		}
		if err := svc.AddPhoto(d, ph); err != nil {
			return err
		}
		if f, err = svc.Submit(r.Context(), a, d); err != nil {
			h.deps.Blobs.Delete(r.Context(), ph.Key)
			return err
		}
	} else if f, err = svc.Submit(r.Context(), a, d); err != nil {
		return err
	}
	notice := "Đã tiếp nhận; thời hạn xử lý: " + f.DueAt.In(feedback.ICT).Format("02/01/2006")
	out := []o311Posted{{ServiceRequestID: f.ID, ServiceNotice: notice}}
	open311Write(w, format, http.StatusOK, out, o311PostedList{Requests: out})
	return nil
}
