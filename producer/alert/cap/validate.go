package cap

import (
	"encoding/hex"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/loa-hub/loa"
)

// timeLayout is the CAP 1.2 date-time format: no "Z", no fractions.
const timeLayout = "2006-01-02T15:04:05-07:00"

// The raw shape of a CAP document, as encoding/xml fills it. Everything is
// text; validator turns it into the model.
type (
	xmlAlert struct {
		Identifier  string    `xml:"identifier"`
		Sender      string    `xml:"sender"`
		Sent        string    `xml:"sent"`
		Status      string    `xml:"status"`
		MsgType     string    `xml:"msgType"`
		Source      string    `xml:"source"`
		Scope       string    `xml:"scope"`
		Restriction string    `xml:"restriction"`
		Addresses   string    `xml:"addresses"`
		Code        []string  `xml:"code"`
		Note        string    `xml:"note"`
		References  string    `xml:"references"`
		Incidents   string    `xml:"incidents"`
		Infos       []xmlInfo `xml:"info"`
	}
	xmlInfo struct {
		Language     string         `xml:"language"`
		Category     []string       `xml:"category"`
		Event        string         `xml:"event"`
		ResponseType []string       `xml:"responseType"`
		Urgency      string         `xml:"urgency"`
		Severity     string         `xml:"severity"`
		Certainty    string         `xml:"certainty"`
		Audience     string         `xml:"audience"`
		EventCode    []xmlValuePair `xml:"eventCode"`
		Effective    string         `xml:"effective"`
		Onset        string         `xml:"onset"`
		Expires      string         `xml:"expires"`
		SenderName   string         `xml:"senderName"`
		Headline     string         `xml:"headline"`
		Description  string         `xml:"description"`
		Instruction  string         `xml:"instruction"`
		Web          string         `xml:"web"`
		Contact      string         `xml:"contact"`
		Parameter    []xmlValuePair `xml:"parameter"`
		Resource     []xmlResource  `xml:"resource"`
		Area         []xmlArea      `xml:"area"`
	}
	xmlResource struct {
		ResourceDesc string   `xml:"resourceDesc"`
		MimeType     string   `xml:"mimeType"`
		Size         string   `xml:"size"`
		URI          string   `xml:"uri"`
		DerefURI     embedded `xml:"derefUri"`
		Digest       string   `xml:"digest"`
	}
	xmlArea struct {
		AreaDesc string         `xml:"areaDesc"`
		Polygon  []string       `xml:"polygon"`
		Circle   []string       `xml:"circle"`
		Geocode  []xmlValuePair `xml:"geocode"`
		Altitude string         `xml:"altitude"`
		Ceiling  string         `xml:"ceiling"`
	}
	xmlValuePair struct {
		ValueName string `xml:"valueName"`
		Value     string `xml:"value"`
	}
)

var (
	statuses    = []Status{StatusActual, StatusExercise, StatusSystem, StatusTest, StatusDraft}
	msgTypes    = []MsgType{MsgTypeAlert, MsgTypeUpdate, MsgTypeCancel, MsgTypeAck, MsgTypeError}
	scopes      = []Scope{ScopePublic, ScopeRestricted, ScopePrivate}
	urgencies   = []Urgency{UrgencyImmediate, UrgencyExpected, UrgencyFuture, UrgencyPast, UrgencyUnknown}
	severities  = []Severity{SeverityExtreme, SeveritySevere, SeverityModerate, SeverityMinor, SeverityUnknown}
	certainties = []Certainty{CertaintyObserved, CertaintyLikely, CertaintyPossible, CertaintyUnlikely, CertaintyUnknown}
	categories  = []string{"Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra", "CBRNE", "Other"}
	responses   = []string{"Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None"}
)

// validator converts the raw document into the model, remembering the
// first fault; later faults are ignored so the caller sees the earliest in
// document order.
type validator struct {
	knownArea func(string) bool
	err       *loa.Error
	// The polygon points and circles seen so far, against
	// MaxPolygonPoints and MaxCircles.
	points, circles int
}

func (v *validator) fail(class error, elem, format string, args ...any) {
	if v.err == nil {
		v.err = Refusal(elem, fmt.Sprintf(format, args...), class)
	}
}

// required returns the trimmed text of a mandatory element, failing when
// it is absent or blank.
func (v *validator) required(elem, s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		v.fail(ErrInvalid, elem, "is required")
	}
	return s
}

func (v *validator) alert(x *xmlAlert) *Alert {
	a := &Alert{
		Identifier:  v.id("alert/identifier", x.Identifier),
		Sender:      v.id("alert/sender", x.Sender),
		Sent:        v.time("alert/sent", x.Sent, true),
		Status:      oneOf(v, "alert/status", x.Status, statuses),
		MsgType:     oneOf(v, "alert/msgType", x.MsgType, msgTypes),
		Source:      singleLine(x.Source),
		Scope:       oneOf(v, "alert/scope", x.Scope, scopes),
		Restriction: singleLine(x.Restriction),
		Addresses:   splitQuoted(x.Addresses),
		Note:        multiLine(x.Note),
		Incidents:   splitQuoted(x.Incidents),
	}
	if a.Scope == ScopeRestricted && a.Restriction == "" {
		v.fail(ErrInvalid, "alert/restriction", "is required when scope is Restricted")
	}
	if a.Scope == ScopePrivate && len(a.Addresses) == 0 {
		v.fail(ErrInvalid, "alert/addresses", "is required when scope is Private")
	}
	if len(a.Addresses) > MaxAddresses {
		v.fail(ErrInvalid, "alert/addresses", "names %d addresses; an alert may name at most %d", len(a.Addresses), MaxAddresses)
	}
	for i, c := range x.Code {
		a.Code = append(a.Code, v.required(fmt.Sprintf("alert/code[%d]", i), c))
	}
	refs, err := parseReferences(x.References)
	if err != nil {
		v.fail(ErrInvalid, "alert/references", "%v", err)
	} else if len(refs) > MaxReferences {
		v.fail(ErrInvalid, "alert/references", "names %d messages; an alert may name at most %d", len(refs), MaxReferences)
	}
	a.References = refs
	if (a.MsgType == MsgTypeUpdate || a.MsgType == MsgTypeCancel) && len(refs) == 0 && err == nil {
		v.fail(ErrInvalid, "alert/references", "is required when msgType is %s", a.MsgType)
	}
	for i := range x.Infos {
		a.Infos = append(a.Infos, v.info(fmt.Sprintf("alert/info[%d]", i), &x.Infos[i]))
	}
	return a
}

func (v *validator) info(path string, x *xmlInfo) Info {
	in := Info{
		Language:    v.language(path+"/language", x.Language),
		Event:       singleLine(v.required(path+"/event", x.Event)),
		Urgency:     oneOf(v, path+"/urgency", x.Urgency, urgencies),
		Severity:    oneOf(v, path+"/severity", x.Severity, severities),
		Certainty:   v.certainty(path+"/certainty", x.Certainty),
		Audience:    singleLine(x.Audience),
		Effective:   v.time(path+"/effective", x.Effective, false),
		Onset:       v.time(path+"/onset", x.Onset, false),
		Expires:     v.time(path+"/expires", x.Expires, false),
		SenderName:  singleLine(x.SenderName),
		Headline:    singleLine(x.Headline),
		Description: multiLine(x.Description),
		Instruction: multiLine(x.Instruction),
		Web:         v.web(path+"/web", x.Web),
		Contact:     singleLine(x.Contact),
		EventCodes:  v.pairs(path+"/eventCode", x.EventCode),
		Parameters:  v.pairs(path+"/parameter", x.Parameter),
	}
	if len(x.Category) == 0 {
		v.fail(ErrInvalid, path+"/category", "is required")
	}
	for i, c := range x.Category {
		in.Categories = append(in.Categories, oneOf(v, fmt.Sprintf("%s/category[%d]", path, i), c, categories))
	}
	for i, r := range x.ResponseType {
		in.ResponseTypes = append(in.ResponseTypes, oneOf(v, fmt.Sprintf("%s/responseType[%d]", path, i), r, responses))
	}
	for i := range x.Resource {
		in.Resources = append(in.Resources, v.resource(fmt.Sprintf("%s/resource[%d]", path, i), &x.Resource[i]))
	}
	for i := range x.Area {
		in.Areas = append(in.Areas, v.area(fmt.Sprintf("%s/area[%d]", path, i), &x.Area[i]))
	}
	return in
}

func (v *validator) resource(path string, x *xmlResource) Resource {
	r := Resource{
		Desc:     singleLine(v.required(path+"/resourceDesc", x.ResourceDesc)),
		MimeType: v.required(path+"/mimeType", x.MimeType),
		URI:      strings.TrimSpace(x.URI),
		Digest:   strings.TrimSpace(x.Digest),
	}
	if s := strings.TrimSpace(x.Size); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			v.fail(ErrInvalid, path+"/size", "%q is not a size in bytes", s)
		}
		r.Size = n
	}
	if x.DerefURI.err != nil {
		v.fail(ErrInvalid, path+"/derefUri", "is not base64: %v", x.DerefURI.err)
	}
	if x.DerefURI.n > 0 {
		r.Embedded, r.EmbeddedSHA1 = x.DerefURI.n, hex.EncodeToString(x.DerefURI.sum)
	}
	return r
}

func (v *validator) area(path string, x *xmlArea) Area {
	ar := Area{
		Desc:     singleLine(v.required(path+"/areaDesc", x.AreaDesc)),
		Geocodes: v.pairs(path+"/geocode", x.Geocode),
		Altitude: v.float(path+"/altitude", x.Altitude),
		Ceiling:  v.float(path+"/ceiling", x.Ceiling),
	}
	for i, s := range x.Polygon {
		p, err := parsePolygon(s)
		if err != nil {
			v.fail(ErrInvalid, fmt.Sprintf("%s/polygon[%d]", path, i), "%v", err)
		}
		if v.points += len(p); v.points > MaxPolygonPoints {
			v.fail(ErrInvalid, fmt.Sprintf("%s/polygon[%d]", path, i), "an alert's polygons may have at most %d points in all", MaxPolygonPoints)
			break
		}
		ar.Polygons = append(ar.Polygons, p)
	}
	for i, s := range x.Circle {
		c, err := parseCircle(s)
		if err != nil {
			v.fail(ErrInvalid, fmt.Sprintf("%s/circle[%d]", path, i), "%v", err)
		}
		if v.circles++; v.circles > MaxCircles {
			v.fail(ErrInvalid, fmt.Sprintf("%s/circle[%d]", path, i), "an alert may have at most %d circles", MaxCircles)
			break
		}
		ar.Circles = append(ar.Circles, c)
	}
	if ar.Ceiling != nil && ar.Altitude == nil {
		v.fail(ErrInvalid, path+"/ceiling", "is only allowed with altitude")
	}
	if ar.Ceiling != nil && ar.Altitude != nil && *ar.Ceiling < *ar.Altitude {
		v.fail(ErrInvalid, path+"/ceiling", "is below altitude")
	}
	if v.knownArea != nil {
		for i, g := range ar.Geocodes {
			if strings.EqualFold(g.ValueName, GeocodeVNAdmin) && g.Value != "" && !v.knownArea(g.Value) {
				v.fail(ErrUnknownArea, fmt.Sprintf("%s/geocode[%d]/value", path, i), "unknown area code %q", g.Value)
			}
		}
	}
	return ar
}

// id validates an identifier or sender: required, and free of the
// characters that would break a references triple.
func (v *validator) id(elem, s string) string {
	s = v.required(elem, s)
	if strings.ContainsAny(s, ",<&") || strings.IndexFunc(s, unicode.IsSpace) >= 0 {
		v.fail(ErrInvalid, elem, "must not contain spaces, commas, '<' or '&'")
	}
	return s
}

func oneOf[T ~string](v *validator, elem, s string, allowed []T) T {
	s = v.required(elem, s)
	if s != "" && !slices.Contains(allowed, T(s)) {
		v.fail(ErrInvalid, elem, "%q is not one of %v", s, allowed)
	}
	return T(s)
}

func (v *validator) certainty(elem, s string) Certainty {
	if strings.TrimSpace(s) == "Very Likely" {
		return CertaintyLikely
	}
	return oneOf(v, elem, s, certainties)
}

func (v *validator) time(elem, s string, mandatory bool) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		if mandatory {
			v.fail(ErrInvalid, elem, "is required")
		}
		return time.Time{}
	}
	t, err := parseTime(s)
	if err != nil {
		v.fail(ErrInvalid, elem, "%v", err)
	}
	return t
}

func (v *validator) language(elem, s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return DefaultLanguage
	}
	if !validLanguageTag(s) {
		v.fail(ErrInvalid, elem, "%q is not an RFC 3066 language tag", s)
	}
	return s
}

func (v *validator) web(elem, s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if u, err := url.Parse(s); err != nil || !u.IsAbs() {
		v.fail(ErrInvalid, elem, "%q is not an absolute URI", s)
	}
	return s
}

func (v *validator) pairs(path string, xs []xmlValuePair) []ValuePair {
	var ps []ValuePair
	for i, x := range xs {
		elem := fmt.Sprintf("%s[%d]", path, i)
		ps = append(ps, ValuePair{
			ValueName: v.required(elem+"/valueName", x.ValueName),
			Value:     v.required(elem+"/value", x.Value),
		})
	}
	return ps
}

func (v *validator) float(elem, s string) *float64 {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	f, err := parseFinite(s)
	if err != nil {
		v.fail(ErrInvalid, elem, "%q is not a number", s)
		return nil
	}
	return &f
}

// parseTime parses a CAP date-time, refusing "Z" and fractional seconds.
func parseTime(s string) (time.Time, error) {
	if len(s) != len(timeLayout) || (s[19] != '+' && s[19] != '-') {
		return time.Time{}, fmt.Errorf("%q is not a CAP date-time like 2026-11-20T07:00:00+07:00 (no \"Z\", no fractional seconds)", s)
	}
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a valid date-time", s)
	}
	return t, nil
}

// parseReferences splits <references>: whitespace-separated
// "sender,identifier,sent" triples. Empty input gives no references.
func parseReferences(s string) ([]Reference, error) {
	var refs []Reference
	for i, f := range strings.Fields(s) {
		parts := strings.Split(f, ",")
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
			return nil, fmt.Errorf("reference %d %q is not sender,identifier,sent", i+1, f)
		}
		if strings.ContainsAny(parts[0]+parts[1], "<&") {
			return nil, fmt.Errorf("reference %d %q contains '<' or '&'", i+1, f)
		}
		sent, err := parseTime(parts[2])
		if err != nil {
			return nil, fmt.Errorf("reference %d: %v", i+1, err)
		}
		refs = append(refs, Reference{Sender: parts[0], Identifier: parts[1], Sent: sent})
	}
	return refs, nil
}

// splitQuoted splits a space-delimited CAP list in which items containing
// spaces are enclosed in double quotes (<addresses>, <incidents>).
func splitQuoted(s string) []string {
	var items []string
	s = strings.TrimSpace(s)
	for s != "" {
		var item string
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 { // unterminated: take the rest
				item, s = s[1:], ""
			} else {
				item, s = s[1:1+end], s[2+end:]
			}
		} else {
			end := strings.IndexFunc(s, unicode.IsSpace)
			if end < 0 {
				end = len(s)
			}
			item, s = s[:end], s[end:]
		}
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
		s = strings.TrimSpace(s)
	}
	return items
}

// parsePolygon parses "lat,lon lat,lon …": at least four points, the first
// equal to the last.
func parsePolygon(s string) (Polygon, error) {
	fields := strings.Fields(s)
	if len(fields) < 4 {
		return nil, fmt.Errorf("has %d points, want at least 4", len(fields))
	}
	p := make(Polygon, 0, len(fields))
	for i, f := range fields {
		pt, err := parsePoint(f)
		if err != nil {
			return nil, fmt.Errorf("point %d: %v", i+1, err)
		}
		p = append(p, pt)
	}
	if p[0] != p[len(p)-1] {
		return nil, fmt.Errorf("is not closed: first point %s differs from last %s", fields[0], fields[len(fields)-1])
	}
	return p, nil
}

// parseCircle parses "lat,lon radius" with the radius in kilometres.
func parseCircle(s string) (Circle, error) {
	fields := strings.Fields(s)
	if len(fields) != 2 {
		return Circle{}, fmt.Errorf("%q is not \"lat,lon radius\"", strings.TrimSpace(s))
	}
	center, err := parsePoint(fields[0])
	if err != nil {
		return Circle{}, fmt.Errorf("centre: %v", err)
	}
	r, err := parseFinite(fields[1])
	if err != nil || r < 0 {
		return Circle{}, fmt.Errorf("radius %q is not a non-negative number of kilometres", fields[1])
	}
	return Circle{Center: center, RadiusKm: r}, nil
}

// parsePoint parses "lat,lon" in WGS 84 decimal degrees.
func parsePoint(s string) (Point, error) {
	latS, lonS, ok := strings.Cut(s, ",")
	if !ok {
		return Point{}, fmt.Errorf("%q is not lat,lon", s)
	}
	lat, err1 := parseFinite(latS)
	lon, err2 := parseFinite(lonS)
	switch {
	case err1 != nil || err2 != nil:
		return Point{}, fmt.Errorf("%q is not lat,lon", s)
	case lat < -90 || lat > 90:
		return Point{}, fmt.Errorf("latitude in %q is outside [-90, 90]", s)
	case lon < -180 || lon > 180:
		return Point{}, fmt.Errorf("longitude in %q is outside [-180, 180]", s)
	}
	return Point{Lat: lat, Lon: lon}, nil
}

// parseFinite parses a decimal number, refusing NaN and infinities, which
// strconv accepts but no coordinate or altitude can be.
func parseFinite(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not finite", s)
	}
	return f, nil
}

// validLanguageTag checks the RFC 3066 syntax: 1–8 letters, then any
// number of "-" and 1–8 letters or digits.
func validLanguageTag(s string) bool {
	for i, sub := range strings.Split(s, "-") {
		if len(sub) < 1 || len(sub) > 8 {
			return false
		}
		for _, r := range sub {
			letter := r < unicode.MaxASCII && unicode.IsLetter(r)
			digit := r >= '0' && r <= '9'
			if !letter && !(digit && i > 0) {
				return false
			}
		}
	}
	return true
}
