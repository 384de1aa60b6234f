package cap

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa"
)

var ict = time.FixedZone("ICT", 7*3600)

func TestParseReferences(t *testing.T) {
	orig := Reference{Sender: "pctt@quangnam.gov.vn", Identifier: "VN-49-PCTT-2026-0147", Sent: time.Date(2026, 11, 20, 7, 0, 0, 0, ict)}
	upd := Reference{Sender: "pctt@quangnam.gov.vn", Identifier: "VN-49-PCTT-2026-0148", Sent: time.Date(2026, 11, 20, 8, 30, 0, 0, ict)}
	tests := []struct {
		name    string
		in      string
		want    []Reference
		wantErr bool
	}{
		{name: "empty", in: "  \n "},
		{name: "one", in: "pctt@quangnam.gov.vn,VN-49-PCTT-2026-0147,2026-11-20T07:00:00+07:00", want: []Reference{orig}},
		{name: "two across lines and tabs", in: "\n\tpctt@quangnam.gov.vn,VN-49-PCTT-2026-0147,2026-11-20T07:00:00+07:00\n\t\tpctt@quangnam.gov.vn,VN-49-PCTT-2026-0148,2026-11-20T08:30:00+07:00 ", want: []Reference{orig, upd}},
		{name: "UTC as -00:00", in: "a,b,2026-11-20T00:00:00-00:00", want: []Reference{{Sender: "a", Identifier: "b", Sent: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)}}},
		{name: "missing sent", in: "pctt@quangnam.gov.vn,VN-49-PCTT-2026-0147", wantErr: true},
		{name: "four fields", in: "a,b,c,2026-11-20T07:00:00+07:00", wantErr: true},
		{name: "empty sender", in: ",b,2026-11-20T07:00:00+07:00", wantErr: true},
		{name: "empty identifier", in: "a,,2026-11-20T07:00:00+07:00", wantErr: true},
		{name: "Z in sent", in: "a,b,2026-11-20T00:00:00Z", wantErr: true},
		{name: "date only", in: "a,b,2026-11-20", wantErr: true},
		{name: "ampersand", in: "a&b,c,2026-11-20T07:00:00+07:00", wantErr: true},
		{name: "second bad", in: "a,b,2026-11-20T07:00:00+07:00 a,b", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseReferences(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !slices.EqualFunc(got, tt.want, func(a, b Reference) bool {
				return a.Sender == b.Sender && a.Identifier == b.Identifier && a.Sent.Equal(b.Sent)
			}) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time // zero: error expected
	}{
		{"2026-11-20T07:00:00+07:00", time.Date(2026, 11, 20, 7, 0, 0, 0, ict)},
		{"2026-11-20T00:00:00-00:00", time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)},
		{"2026-11-19T19:30:00-05:00", time.Date(2026, 11, 20, 0, 30, 0, 0, time.UTC)},
		{"2026-11-20T00:00:00Z", time.Time{}},
		{"2026-11-20T07:00:00.5+07:00", time.Time{}},
		{"2026-11-20 07:00:00+07:00", time.Time{}},
		{"2026-11-20T07:00:00+0700", time.Time{}},
		{"2026-02-30T07:00:00+07:00", time.Time{}},
		{"2026-11-20T07:00:00", time.Time{}},
	}
	for _, tt := range tests {
		got, err := parseTime(tt.in)
		if tt.want.IsZero() {
			if err == nil {
				t.Errorf("parseTime(%q) = %v, want error", tt.in, got)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestSplitQuoted(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"a b\tc", []string{"a", "b", "c"}},
		{`ubnd-hoian "Trung tâm Y tế Hội An" ubnd-camnam`, []string{"ubnd-hoian", "Trung tâm Y tế Hội An", "ubnd-camnam"}},
		{`"unterminated tail`, []string{"unterminated tail"}},
		{`"" x`, []string{"x"}},
	}
	for _, tt := range tests {
		if got := splitQuoted(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("splitQuoted(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

var (
	hoiAn  = Point{Lat: 15.88, Lon: 108.33}
	daNang = Point{Lat: 16.0544, Lon: 108.2022}
	hue    = Point{Lat: 16.4637, Lon: 107.5909}
	haNoi  = Point{Lat: 21.0285, Lon: 105.8542}
)

func TestPolygonContains(t *testing.T) {
	square := Polygon{{15.80, 108.20}, {16.00, 108.20}, {16.00, 108.45}, {15.80, 108.45}, {15.80, 108.20}}
	// An L: the square without its north-east quarter.
	ell := Polygon{{15.80, 108.20}, {16.00, 108.20}, {16.00, 108.325}, {15.90, 108.325}, {15.90, 108.45}, {15.80, 108.45}, {15.80, 108.20}}
	tests := []struct {
		name string
		p    Polygon
		pt   Point
		want bool
	}{
		{"Hội An in square", square, hoiAn, true},
		{"Đà Nẵng north of square", square, daNang, false},
		{"Huế far away", square, hue, false},
		{"west of square", square, Point{15.9, 108.1}, false},
		{"Hội An in the L's foot", ell, hoiAn, true},
		{"in the L's cut-out corner", ell, Point{15.95, 108.40}, false},
		{"in the L's upright", ell, Point{15.95, 108.25}, true},
		{"unclosed ring treated as closed", square[:4], hoiAn, true},
		{"degenerate", Polygon{hoiAn, hoiAn}, hoiAn, false},
		{"empty", nil, hoiAn, false},
	}
	for _, tt := range tests {
		if got := tt.p.Contains(tt.pt); got != tt.want {
			t.Errorf("%s: Contains(%v) = %v, want %v", tt.name, tt.pt, got, tt.want)
		}
	}
}

func TestCircleContains(t *testing.T) {
	// Hội An is 23.7 km from the centre of Đà Nẵng and 161 km from the
	// storm centre of testdata/storm_circle.xml.
	tests := []struct {
		name string
		c    Circle
		pt   Point
		want bool
	}{
		{"Hội An within 25 km of Đà Nẵng", Circle{daNang, 25}, hoiAn, true},
		{"Hội An not within 23 km of Đà Nẵng", Circle{daNang, 23}, hoiAn, false},
		{"storm reaches Hội An", Circle{Point{16.2, 109.8}, 250}, hoiAn, true},
		{"storm does not reach Hà Nội", Circle{Point{16.2, 109.8}, 250}, haNoi, false},
		{"zero radius holds its centre", Circle{hoiAn, 0}, hoiAn, true},
		{"across the antimeridian", Circle{Point{0, 179.9}, 50}, Point{0, -179.9}, true},
	}
	for _, tt := range tests {
		if got := tt.c.Contains(tt.pt); got != tt.want {
			t.Errorf("%s: Contains = %v (distance %.1f km), want %v", tt.name, got, distanceKm(tt.c.Center, tt.pt), tt.want)
		}
	}
}

func TestAreaContains(t *testing.T) {
	a := Area{
		Polygons: []Polygon{{{15.80, 107.95}, {15.92, 107.95}, {15.92, 108.15}, {15.80, 108.15}, {15.80, 107.95}}},
		Circles:  []Circle{{daNang, 10}},
	}
	for _, tt := range []struct {
		pt   Point
		want bool
	}{{Point{15.85, 108.0}, true}, {daNang, true}, {hoiAn, false}} {
		if got := a.Contains(tt.pt); got != tt.want {
			t.Errorf("Contains(%v) = %v, want %v", tt.pt, got, tt.want)
		}
	}
}

func TestInfoFor(t *testing.T) {
	alert := func(langs ...string) *Alert {
		a := &Alert{}
		for _, l := range langs {
			a.Infos = append(a.Infos, Info{Language: l})
		}
		return a
	}
	tests := []struct {
		name  string
		alert *Alert
		lang  string
		want  string // language of the picked info; "" for nil
	}{
		{"vi finds vi-VN", alert("en-US", "vi-VN"), "vi", "vi-VN"},
		{"case-insensitive", alert("en-US", "VI-vn"), "vi", "VI-vn"},
		{"vi-VN finds vi", alert("en", "vi"), "vi-VN", "vi"},
		{"exact beats prefix", alert("vi", "vi-VN"), "vi-VN", "vi-VN"},
		{"first of equals", alert("en", "vi-VN", "vi-VN"), "vi", "vi-VN"},
		{"vie is not vi", alert("en", "vie"), "vi", "en"},
		{"fallback to first", alert("en-US", "fr"), "vi", "en-US"},
		{"en finds en-US", alert("vi-VN", "en-US"), "en", "en-US"},
		{"no infos", alert(), "vi", ""},
	}
	for _, tt := range tests {
		got := tt.alert.InfoFor(tt.lang)
		switch {
		case tt.want == "" && got != nil:
			t.Errorf("%s: got %q, want nil", tt.name, got.Language)
		case tt.want != "" && (got == nil || got.Language != tt.want):
			t.Errorf("%s: got %v, want %q", tt.name, got, tt.want)
		}
	}
	// The result points into the alert, not at a copy.
	a := alert("vi-VN")
	if a.InfoFor("vi") != &a.Infos[0] {
		t.Error("InfoFor returned a copy")
	}
}

func TestPriority(t *testing.T) {
	info := func(s Severity, u Urgency) Info { return Info{Severity: s, Urgency: u} }
	tests := []struct {
		name  string
		infos []Info
		want  Priority
	}{
		{"extreme future", []Info{info(SeverityExtreme, UrgencyFuture)}, PriorityHigh},
		{"severe past", []Info{info(SeveritySevere, UrgencyPast)}, PriorityHigh},
		{"moderate immediate", []Info{info(SeverityModerate, UrgencyImmediate)}, PriorityHigh},
		{"minor expected", []Info{info(SeverityMinor, UrgencyExpected)}, PriorityHigh},
		{"unknown immediate", []Info{info(SeverityUnknown, UrgencyImmediate)}, PriorityHigh},
		{"moderate future", []Info{info(SeverityModerate, UrgencyFuture)}, PriorityNormal},
		{"minor past", []Info{info(SeverityMinor, UrgencyPast)}, PriorityNormal},
		{"unknown unknown", []Info{info(SeverityUnknown, UrgencyUnknown)}, PriorityNormal},
		{"any high info wins", []Info{info(SeverityMinor, UrgencyFuture), info(SeverityExtreme, UrgencyFuture)}, PriorityHigh},
		{"no infos", nil, PriorityNormal},
	}
	for _, tt := range tests {
		if got := (&Alert{Infos: tt.infos}).Priority(); got != tt.want {
			t.Errorf("%s: Priority() = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestExpiresAndExpired(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 11, 21, h, 0, 0, 0, ict) }
	tests := []struct {
		name        string
		expires     []time.Time // one per info; zero: no <expires>
		now         time.Time
		wantExpires time.Time
		wantExpired bool
	}{
		{"no infos", nil, at(12), time.Time{}, false},
		{"one live", []time.Time{at(10)}, at(9), at(10), false},
		{"one at its expiry", []time.Time{at(10)}, at(10), at(10), true},
		{"earliest is the TTL, latest decides expiry", []time.Time{at(19), at(7)}, at(8), at(7), false},
		{"all expired", []time.Time{at(19), at(7)}, at(20), at(7), true},
		{"an info without expires never expires", []time.Time{at(7), {}}, at(20), at(7), false},
		{"none has expires", []time.Time{{}, {}}, at(20), time.Time{}, false},
	}
	for _, tt := range tests {
		a := &Alert{}
		for _, e := range tt.expires {
			a.Infos = append(a.Infos, Info{Expires: e})
		}
		if got := a.Expires(); !got.Equal(tt.wantExpires) {
			t.Errorf("%s: Expires() = %v, want %v", tt.name, got, tt.wantExpires)
		}
		if got := a.Expired(tt.now); got != tt.wantExpired {
			t.Errorf("%s: Expired(%v) = %v, want %v", tt.name, tt.now, got, tt.wantExpired)
		}
	}
}

func TestAreaCodesAndKnownArea(t *testing.T) {
	doc, err := os.ReadFile("testdata/flood_vi_en.xml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		known     []string // nil: no KnownArea
		wantCodes []string
		wantElem  string // "": no error
	}{
		{"no KnownArea accepts all", nil, []string{"20194", "20197", "20227"}, ""},
		{"all known", []string{"20194", "20197", "20227"}, []string{"20194", "20197", "20227"}, ""},
		{"unknown in the lower-case vn-admin geocode", []string{"20194", "20197"}, nil, "alert/info[0]/area[1]/geocode[0]/value"},
		{"first unknown in document order", []string{"20227"}, nil, "alert/info[0]/area[0]/geocode[0]/value"},
		{"unknown only in the second info", []string{"20194", "20227"}, nil, "alert/info[0]/area[0]/geocode[1]/value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked []string // a fake that records its calls
			opts := Options{Now: testNow}
			if tt.known != nil {
				opts.KnownArea = func(code string) bool {
					asked = append(asked, code)
					return slices.Contains(tt.known, code)
				}
			}
			a, err := Parse(strings.NewReader(string(doc)), opts)
			if tt.wantElem != "" {
				var ve *loa.Error
				if !errors.As(err, &ve) || ve.Field != tt.wantElem || !errors.Is(err, ErrUnknownArea) {
					t.Fatalf("err = %v, want ErrUnknownArea on %s", err, tt.wantElem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := a.AreaCodes(); !slices.Equal(got, tt.wantCodes) {
				t.Errorf("AreaCodes() = %q, want %q", got, tt.wantCodes)
			}
			if slices.Contains(asked, "VN-27") {
				t.Errorf("KnownArea was asked about a non-VN-ADMIN geocode: %q", asked)
			}
		})
	}
}

// minimal is a valid alert that the validation table edits.
const minimal = `<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>VN-49-PCTT-2026-0400</identifier>
  <sender>pctt@quangnam.gov.vn</sender>
  <sent>2026-11-20T07:00:00+07:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <language>vi-VN</language>
    <category>Met</category>
    <event>Mưa lớn</event>
    <urgency>Expected</urgency>
    <severity>Moderate</severity>
    <certainty>Likely</certainty>
    <area>
      <areaDesc>Hội An</areaDesc>
    </area>
  </info>
</alert>
`

func TestParseValidation(t *testing.T) {
	tests := []struct {
		name     string
		old, new string // edit of minimal
		wantElem string // "": valid
		wantErr  error
	}{
		{"minimal", "", "", "", nil},
		{"utf-8 BOM", "<?xml", "\uFEFF<?xml", "", nil},
		{"no xml declaration", `<?xml version="1.0" encoding="UTF-8"?>`, "", "", nil},
		{"Very Likely read as Likely", "<certainty>Likely", "<certainty>Very Likely", "", nil},
		{"no language", "<language>vi-VN</language>", "", "", nil},
		{"wrong root", "<alert xmlns", "<alarm xmlns", "alert", ErrInvalid},
		{"no namespace", ` xmlns="urn:oasis:names:tc:emergency:cap:1.2"`, "", "alert", ErrInvalid},
		{"latin-1", `encoding="UTF-8"`, `encoding="ISO-8859-1"`, "alert", ErrMalformed},
		{"second root", "</alert>\n", "</alert>\n<alert/>", "alert", ErrMalformed},
		{"text after root", "</alert>\n", "</alert>\ntrailing", "alert", ErrMalformed},
		{"empty document", minimal, "", "alert", ErrMalformed},
		{"truncated", minimal, minimal[:200], "alert/sent", ErrMalformed},
		{"undefined entity", "<event>Mưa lớn", "<event>&nbsp;", "alert/info[0]/event", ErrMalformed},
		{"predefined entity is fine", "<event>Mưa lớn", "<event>Mưa &amp; gió", "", nil},
		{"comma in sender", "<sender>pctt@", "<sender>a,pctt@", "alert/sender", ErrInvalid},
		{"escaped < in identifier", "<identifier>VN", "<identifier>&lt;VN", "alert/identifier", ErrInvalid},
		{"missing sent", "<sent>2026-11-20T07:00:00+07:00</sent>", "", "alert/sent", ErrInvalid},
		{"fractional sent", "07:00:00+07:00</sent>", "07:00:00.250+07:00</sent>", "alert/sent", ErrInvalid},
		{"bad status", "<status>Actual", "<status>Real", "alert/status", ErrInvalid},
		{"lower-case msgType", "<msgType>Alert", "<msgType>alert", "alert/msgType", ErrInvalid},
		{"missing scope", "<scope>Public</scope>", "", "alert/scope", ErrInvalid},
		{"restricted without restriction", "<scope>Public", "<scope>Restricted", "alert/restriction", ErrInvalid},
		{"restricted with restriction", "<scope>Public</scope>", "<scope>Restricted</scope><restriction>Chỉ cơ quan PCTT</restriction>", "", nil},
		{"private without addresses", "<scope>Public", "<scope>Private", "alert/addresses", ErrInvalid},
		{"private with addresses", "<scope>Public</scope>", `<scope>Private</scope><addresses>ubnd-hoian "Trung tâm Y tế"</addresses>`, "", nil},
		{"cancel without references", "<msgType>Alert", "<msgType>Cancel", "alert/references", ErrInvalid},
		{"ack without references is allowed", "<msgType>Alert", "<msgType>Ack", "", nil},
		{"missing category", "<category>Met</category>", "", "alert/info[0]/category", ErrInvalid},
		{"unknown category", "<category>Met", "<category>Weather", "alert/info[0]/category[0]", ErrInvalid},
		{"unknown responseType", "<event>", "<responseType>Run</responseType><event>", "alert/info[0]/responseType[0]", ErrInvalid},
		{"missing event", "<event>Mưa lớn</event>", "", "alert/info[0]/event", ErrInvalid},
		{"missing urgency", "<urgency>Expected</urgency>", "", "alert/info[0]/urgency", ErrInvalid},
		{"bad certainty", "<certainty>Likely", "<certainty>Sure", "alert/info[0]/certainty", ErrInvalid},
		{"bad language", "<language>vi-VN", "<language>tiếng Việt", "alert/info[0]/language", ErrInvalid},
		{"Z in expires", "<certainty>Likely</certainty>", "<certainty>Likely</certainty><expires>2026-11-21T00:00:00Z</expires>", "alert/info[0]/expires", ErrInvalid},
		{"relative web", "<area>", "<web>/canh-bao/1</web><area>", "alert/info[0]/web", ErrInvalid},
		{"parameter without value", "<area>", "<parameter><valueName>x</valueName></parameter><area>", "alert/info[0]/parameter[0]/value", ErrInvalid},
		{"missing areaDesc", "<areaDesc>Hội An</areaDesc>", "", "alert/info[0]/area[0]/areaDesc", ErrInvalid},
		{"polygon of three points", "</areaDesc>", "</areaDesc><polygon>15.8,108.2 16.0,108.2 15.8,108.2</polygon>", "alert/info[0]/area[0]/polygon[0]", ErrInvalid},
		{"polygon latitude out of range", "</areaDesc>", "</areaDesc><polygon>95.8,108.2 16.0,108.2 16.0,108.4 95.8,108.2</polygon>", "alert/info[0]/area[0]/polygon[0]", ErrInvalid},
		{"polygon longitude out of range", "</areaDesc>", "</areaDesc><polygon>15.8,188.2 16.0,108.2 16.0,108.4 15.8,188.2</polygon>", "alert/info[0]/area[0]/polygon[0]", ErrInvalid},
		{"polygon NaN", "</areaDesc>", "</areaDesc><polygon>NaN,108.2 16.0,108.2 16.0,108.4 NaN,108.2</polygon>", "alert/info[0]/area[0]/polygon[0]", ErrInvalid},
		{"polygon space after comma", "</areaDesc>", "</areaDesc><polygon>15.8, 108.2 16.0,108.2 16.0,108.4 15.8,108.2</polygon>", "alert/info[0]/area[0]/polygon[0]", ErrInvalid},
		// A point-in-polygon test per unit and vertex: bounded per alert.
		{"polygons at the point limit", "</areaDesc>", "</areaDesc>" + polygons(MaxPolygonPoints/2, MaxPolygonPoints/2), "", nil},
		{"polygons past the point limit", "</areaDesc>", "</areaDesc>" + polygons(MaxPolygonPoints/2, MaxPolygonPoints/2, 4), "alert/info[0]/area[0]/polygon[2]", ErrInvalid},
		{"circles at the limit", "</areaDesc>", "</areaDesc>" + strings.Repeat("<circle>16.2,109.8 5</circle>", MaxCircles), "", nil},
		{"circles past the limit", "</areaDesc>", "</areaDesc>" + strings.Repeat("<circle>16.2,109.8 5</circle>", MaxCircles+1), fmt.Sprintf("alert/info[0]/area[0]/circle[%d]", MaxCircles), ErrInvalid},
		// A store look-up per address and per reference: bounded per alert.
		{"addresses at the limit", "<scope>Public</scope>", "<scope>Private</scope><addresses>" + strings.Repeat("a ", MaxAddresses) + "</addresses>", "", nil},
		{"addresses past the limit", "<scope>Public</scope>", "<scope>Private</scope><addresses>" + strings.Repeat("a ", MaxAddresses+1) + "</addresses>", "alert/addresses", ErrInvalid},
		{"references at the limit", "<msgType>Alert</msgType>", "<msgType>Update</msgType><references>" + strings.Repeat("s,i,2026-11-20T07:00:00+07:00 ", MaxReferences) + "</references>", "", nil},
		{"references past the limit", "<msgType>Alert</msgType>", "<msgType>Update</msgType><references>" + strings.Repeat("s,i,2026-11-20T07:00:00+07:00 ", MaxReferences+1) + "</references>", "alert/references", ErrInvalid},
		{"second polygon bad", "</areaDesc>", "</areaDesc><polygon>15.8,108.2 16.0,108.2 16.0,108.4 15.8,108.2</polygon><polygon>1,1</polygon>", "alert/info[0]/area[0]/polygon[1]", ErrInvalid},
		{"circle without radius", "</areaDesc>", "</areaDesc><circle>16.2,109.8</circle>", "alert/info[0]/area[0]/circle[0]", ErrInvalid},
		{"circle negative radius", "</areaDesc>", "</areaDesc><circle>16.2,109.8 -5</circle>", "alert/info[0]/area[0]/circle[0]", ErrInvalid},
		{"circle infinite radius", "</areaDesc>", "</areaDesc><circle>16.2,109.8 +Inf</circle>", "alert/info[0]/area[0]/circle[0]", ErrInvalid},
		{"geocode without valueName", "</areaDesc>", "</areaDesc><geocode><value>20194</value></geocode>", "alert/info[0]/area[0]/geocode[0]/valueName", ErrInvalid},
		{"ceiling without altitude", "</areaDesc>", "</areaDesc><ceiling>100</ceiling>", "alert/info[0]/area[0]/ceiling", ErrInvalid},
		{"ceiling below altitude", "</areaDesc>", "</areaDesc><altitude>100</altitude><ceiling>50</ceiling>", "alert/info[0]/area[0]/ceiling", ErrInvalid},
		{"altitude not a number", "</areaDesc>", "</areaDesc><altitude>cao</altitude>", "alert/info[0]/area[0]/altitude", ErrInvalid},
		{"duplicate identifier", "<sender>", "<identifier>x</identifier><sender>", "alert/identifier", ErrInvalid},
		{"second info is indexed", "</info>", "</info><info><category>Met</category><event>e</event><urgency>Past</urgency><severity>Huge</severity><certainty>Likely</certainty></info>", "alert/info[1]/severity", ErrInvalid},
		{"foreign extension element ignored", "<scope>", `<ext:x xmlns:ext="urn:example:ext"><ext:y/><ext:y/></ext:x><scope>`, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(minimal, tt.old, tt.new, 1)
			if doc == minimal && tt.old != "" {
				t.Fatalf("edit %q does not apply", tt.old)
			}
			a, err := Parse(strings.NewReader(doc), Options{Now: testNow})
			if tt.wantElem == "" {
				if err != nil || a == nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			var ve *loa.Error
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v (%T), want *loa.Error", err, err)
			}
			if ve.Field != tt.wantElem || !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v (class %v), want element %s class %v", err, ve.Err, tt.wantElem, tt.wantErr)
			}
			if a != nil {
				t.Error("an alert was returned with the error")
			}
		})
	}
}

func TestParseDefaults(t *testing.T) {
	doc := strings.Replace(minimal, "<language>vi-VN</language>", "", 1)
	doc = strings.Replace(doc, "<certainty>Likely", "<certainty>Very Likely", 1)
	a, err := Parse(strings.NewReader(doc), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if in := a.Infos[0]; in.Language != DefaultLanguage || in.Certainty != CertaintyLikely {
		t.Errorf("language %q certainty %q, want %q %q", in.Language, in.Certainty, DefaultLanguage, CertaintyLikely)
	}
}

func TestParseAlertWithoutInfo(t *testing.T) {
	start, end := strings.Index(minimal, "  <info>"), strings.Index(minimal, "</info>\n")+len("</info>\n")
	doc := strings.Replace(minimal[:start]+minimal[end:], "<msgType>Alert</msgType>",
		"<msgType>Cancel</msgType><references>pctt@quangnam.gov.vn,VN-49-PCTT-2026-0147,2026-11-20T07:00:00+07:00</references>", 1)
	a, err := Parse(strings.NewReader(doc), Options{Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if a.InfoFor("vi") != nil || !a.Expires().IsZero() || a.Expired(testNow) || a.Priority() != PriorityNormal || a.AreaCodes() != nil {
		t.Errorf("alert without info: InfoFor %v, Expires %v, Expired %v, Priority %v, AreaCodes %v",
			a.InfoFor("vi"), a.Expires(), a.Expired(testNow), a.Priority(), a.AreaCodes())
	}
}

func TestMaxBytes(t *testing.T) {
	n := int64(len(minimal))
	if _, err := Parse(strings.NewReader(minimal), Options{MaxBytes: n}); err != nil {
		t.Errorf("document of exactly MaxBytes: %v", err)
	}
	_, err := Parse(strings.NewReader(minimal), Options{MaxBytes: n - 1})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("document one byte over MaxBytes: err = %v, want ErrTooLarge", err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestReadError(t *testing.T) {
	_, err := Parse(failingReader{}, Options{})
	var ve *loa.Error
	if err == nil || errors.As(err, &ve) || !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("err = %v, want the reader's error, not a refusal", err)
	}
}

// TestHostileInputBoundedMemory checks that an entity bomb and a 10 MiB
// body are refused having read no more than the limit and allocated a small
// multiple of it, rather than anything in proportion to what they claim.
func TestHostileInputBoundedMemory(t *testing.T) {
	bomb, err := os.ReadFile("testdata/invalid_doctype_bomb.xml")
	if err != nil {
		t.Fatal(err)
	}
	const budget = 4 << 20 // bytes allocated; DefaultMaxBytes is 256 KiB
	tests := []struct {
		name    string
		reader  *patternReader
		wantErr error
	}{
		{"billion laughs", newPatternReader(string(bomb), int64(len(bomb))), ErrMalformed},
		{"10 MiB body", newPatternReader("<alert><code>x</code>", 10<<20), ErrTooLarge},
		{"10 MiB of open tags", newPatternReader("<a>", 10<<20), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := Parse(tt.reader, Options{})
			runtime.ReadMemStats(&after)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			t.Logf("read %d bytes, allocated %d bytes", tt.reader.read, after.TotalAlloc-before.TotalAlloc)
			if tt.reader.read > DefaultMaxBytes+1 {
				t.Errorf("read %d bytes, want at most %d", tt.reader.read, DefaultMaxBytes+1)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > budget {
				t.Errorf("allocated %d bytes, want at most %d", alloc, budget)
			}
		})
	}
}

// polygons returns <polygon> elements of the numbers of points given.
func polygons(points ...int) string {
	var b strings.Builder
	for _, n := range points {
		b.WriteString("<polygon>15.8,108.2")
		for range n - 2 {
			b.WriteString(" 16.0,108.3")
		}
		b.WriteString(" 15.8,108.2</polygon>")
	}
	return b.String()
}

// BenchmarkShapesAtTheLimit is the work of finding the units of an alert
// with the most polygon points Parse admits, per 1,000 unit centroids
// (none inside: every edge is tested). Run with -benchtime 3x.
func BenchmarkShapesAtTheLimit(b *testing.B) {
	doc := strings.Replace(minimal, "</areaDesc>", "</areaDesc>"+polygons(MaxPolygonPoints), 1)
	a, err := Parse(strings.NewReader(doc), Options{})
	if err != nil {
		b.Fatal(err)
	}
	ar := a.Infos[0].Areas[0]
	for b.Loop() {
		for i := range 1000 {
			if ar.Contains(Point{Lat: 17 + float64(i)/1e4, Lon: 107}) {
				b.Fatal("inside")
			}
		}
	}
}
