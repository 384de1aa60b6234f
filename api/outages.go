package api

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/producer/outage"
)

// outageJSON is one outage as posted in JSON.
type outageJSON struct {
	ID        string   `json:"id"`
	Areas     []string `json:"areas"`
	Location  string   `json:"location"`
	Start     string   `json:"start"`
	End       string   `json:"end"`
	Reason    string   `json:"reason"`
	Cancelled bool     `json:"cancelled"`
}

// outagesBody is either {"outages": [...]} or one outage. The fields are
// spelt out rather than embedded so that a type error names the field as
// the client wrote it.
type outagesBody struct {
	Outages   *[]outageJSON `json:"outages"`
	ID        string        `json:"id"`
	Areas     []string      `json:"areas"`
	Location  string        `json:"location"`
	Start     string        `json:"start"`
	End       string        `json:"end"`
	Reason    string        `json:"reason"`
	Cancelled bool          `json:"cancelled"`
}

func (b outagesBody) one() outageJSON {
	return outageJSON{ID: b.ID, Areas: b.Areas, Location: b.Location, Start: b.Start, End: b.End, Reason: b.Reason, Cancelled: b.Cancelled}
}

func (o outageJSON) input() outage.Input {
	return outage.Input{ID: o.ID, Areas: o.Areas, Location: o.Location, Start: o.Start, End: o.End, Reason: o.Reason, Cancelled: o.Cancelled}
}

func (h *handler) outagesService() (*outage.Service, error) {
	if h.deps.Outages == nil {
		return nil, loa.Unavailable("outage schedules are not configured on this server")
	}
	return h.deps.Outages, nil
}

// clientOf names the caller that owns outage ids: its API key.
func clientOf(r *http.Request) string {
	p, _ := principalFrom(r.Context())
	return p.ID
}

// postOutages serves POST /v1/outages: JSON (one outage, or
// {"outages": [...]}) or text/csv. Good rows are kept and bad rows
// reported: 200 {accepted, rejected}. When every row is bad the answer
// is a 400 problem naming the first wrong field.
func (h *handler) postOutages(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.outagesService()
	if err != nil {
		return err
	}
	var (
		in     []outage.Input
		prefix func(row int) string // how a row's fields are named in a 400
	)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "text/csv" {
		if in, err = readOutagesCSV(http.MaxBytesReader(w, r.Body, h.deps.MaxBodyBytes), h.deps.MaxBodyBytes); err != nil {
			return err
		}
		prefix = func(int) string { return "" }
	} else {
		var body outagesBody
		if err := decodeJSON(w, r, h.deps.MaxBodyBytes, &body); err != nil {
			return err
		}
		single := body.ID != "" || len(body.Areas) > 0 || body.Location != "" || body.Start != "" || body.End != "" ||
			body.Reason != "" || body.Cancelled
		switch {
		case body.Outages != nil && single:
			return loa.InvalidFields(loa.FieldError{Field: "outages", Detail: "give either a list of outages or one outage, not both"})
		case body.Outages != nil:
			for _, o := range *body.Outages {
				in = append(in, o.input())
			}
			prefix = func(row int) string { return fmt.Sprintf("outages[%d].", row-1) }
		case single:
			in = []outage.Input{body.one().input()}
			prefix = func(int) string { return "" }
		}
	}
	if len(in) == 0 {
		return loa.InvalidFields(loa.FieldError{Field: "outages", Detail: "no outages given"})
	}
	if len(in) > 1000 {
		return loa.InvalidFields(loa.FieldError{Field: "outages", Detail: fmt.Sprintf("%d outages in one request; at most 1,000", len(in))})
	}
	p, _ := principalFrom(r.Context())
	res, err := svc.Post(r.Context(), outage.Client{ID: p.ID, Areas: p.Areas, AnyArea: p.Has("*")}, in)
	var ae *outage.AreaError
	if errors.As(err, &ae) {
		return &loa.Error{Code: loa.EForbidden, Field: prefix(ae.Row) + "areas", Detail: ae.Error(), Err: err}
	}
	if err != nil {
		return err
	}
	if len(res.Accepted) == 0 {
		var errs []loa.FieldError
		for _, rej := range res.Rejected {
			for _, e := range rej.Errors {
				detail := e.Detail
				if mt == "text/csv" {
					detail = fmt.Sprintf("row %d: %s", rej.Row, detail)
				}
				errs = append(errs, loa.FieldError{Field: prefix(rej.Row) + e.Field, Detail: detail})
			}
		}
		return loa.InvalidFields(errs...)
	}
	auditDetail(r, "accepted", fmt.Sprint(len(res.Accepted)))
	auditDetail(r, "rejected", fmt.Sprint(len(res.Rejected)))
	writeJSON(w, http.StatusOK, res)
	return nil
}

// readOutagesCSV reads a header line (id, areas, location, start, end,
// reason and optionally cancelled, in any order) and one outage a line;
// areas are separated by ";" or spaces.
func readOutagesCSV(body io.Reader, maxBytes int64) ([]outage.Input, error) {
	cr := csv.NewReader(body)
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, csvError(err, maxBytes)
	}
	cols := map[string]int{}
	for _, h := range header {
		if fe := checkText("(header)", h); fe != nil {
			return nil, loa.InvalidFields(*fe)
		}
	}
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		switch name {
		case "id", "areas", "location", "start", "end", "reason", "cancelled":
		default:
			return nil, loa.InvalidFields(loa.FieldError{Field: h, Detail: "unknown column; the columns are id, areas, location, start, end, reason[, cancelled]"})
		}
		if _, dup := cols[name]; dup {
			return nil, loa.InvalidFields(loa.FieldError{Field: name, Detail: "column given twice"})
		}
		cols[name] = i
	}
	for _, c := range []string{"id", "areas", "location", "start", "end"} {
		if _, ok := cols[c]; !ok {
			return nil, loa.InvalidFields(loa.FieldError{Field: c, Detail: "missing column; the header must name id, areas, location, start, end, reason"})
		}
	}
	get := func(rec []string, c string) string {
		if i, ok := cols[c]; ok {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var out []outage.Input
	for row := 1; ; row++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, csvError(err, maxBytes)
		}
		for i, cell := range rec {
			if fe := checkText(strings.ToLower(strings.TrimSpace(strings.TrimPrefix(header[i], "\ufeff"))), cell); fe != nil {
				fe.Detail = fmt.Sprintf("row %d: %s", row, fe.Detail)
				return nil, loa.InvalidFields(*fe)
			}
		}
		if strings.TrimSpace(strings.Join(rec, "")) == "" {
			continue
		}
		c := strings.ToLower(get(rec, "cancelled"))
		out = append(out, outage.Input{
			ID: get(rec, "id"), Areas: strings.FieldsFunc(get(rec, "areas"), func(r rune) bool { return r == ';' || r == ' ' || r == '\t' }),
			Location: get(rec, "location"), Start: get(rec, "start"), End: get(rec, "end"), Reason: get(rec, "reason"),
			Cancelled: c == "true" || c == "1" || c == "yes",
		})
	}
}

// csvError says what is wrong with a CSV body the reader refused.
func csvError(err error, maxBytes int64) error {
	if errors.Is(err, io.EOF) {
		return loa.InvalidFields(loa.FieldError{Field: "(body)", Detail: "the CSV is empty; it needs a header line"})
	}
	if cut(err) {
		return bodyError(err, maxBytes)
	}
	return &loa.Error{Code: loa.EMalformed, Detail: err.Error()}
}

// getOutage serves GET /v1/outages/{id}: the schedule, its version and
// its notices with their status.
func (h *handler) getOutage(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.outagesService()
	if err != nil {
		return err
	}
	o, err := svc.Get(r.Context(), clientOf(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, o)
	return nil
}

// cancelOutage serves DELETE /v1/outages/{id}.
func (h *handler) cancelOutage(w http.ResponseWriter, r *http.Request) error {
	svc, err := h.outagesService()
	if err != nil {
		return err
	}
	o, err := svc.Cancel(r.Context(), clientOf(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, o)
	return nil
}
