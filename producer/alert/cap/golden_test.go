package cap

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current output")

// testNow is the fixed reception time of every test alert.
var testNow = time.Date(2026, 11, 20, 9, 0, 0, 0, time.FixedZone("ICT", 7*3600))

// testAreas are the area codes the golden tests' KnownArea knows.
var testAreas = []string{"49", "20194", "20197", "20227"}

func testOptions() Options {
	return Options{Now: testNow, KnownArea: func(code string) bool { return slices.Contains(testAreas, code) }}
}

// goldenCase is one golden input: a file of testdata, or an input built by
// the test because it is too big or too repetitive to keep in the
// repository.
type goldenCase struct {
	name  string
	input func(t *testing.T) io.Reader
	opts  Options
}

const syntheticHead = `<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>VN-49-PCTT-2026-0300</identifier>
  <sender>pctt@quangnam.gov.vn</sender>
  <sent>2026-11-20T07:00:00+07:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
`

func syntheticCases() []goldenCase {
	return []goldenCase{
		{
			// 10 MiB that would be a valid alert but for its size.
			name: "invalid_oversize_10mib",
			input: func(*testing.T) io.Reader {
				return io.MultiReader(strings.NewReader(syntheticHead),
					newPatternReader("  <code>VN-PCTT-1.0</code>\n", 10<<20))
			},
		},
		{
			// A real-feed shape: 700 KB of audio embedded in <derefUri>,
			// as IPAWS documents carry, under the 1 MiB default limit.
			// The model keeps its size and SHA-1, not its content.
			name: "resource_embedded_700kb",
			input: func(*testing.T) io.Reader {
				return strings.NewReader(embeddedResourceDoc(700_000))
			},
		},
		{
			name: "invalid_deep_nesting",
			input: func(*testing.T) io.Reader {
				return strings.NewReader(syntheticHead + `<ext xmlns="urn:example:ext">` +
					strings.Repeat("<a>", 1000) + strings.Repeat("</a>", 1000) + "</ext></alert>")
			},
		},
		{
			// Under the size limit, but 120,000 tokens.
			name: "invalid_token_flood",
			input: func(*testing.T) io.Reader {
				return strings.NewReader(syntheticHead + `<ext xmlns="urn:example:ext">` +
					strings.Repeat("<a/>", 60_000) + "</ext></alert>")
			},
		},
	}
}

func goldenCases(t *testing.T) []goldenCase {
	files, err := filepath.Glob("testdata/*.xml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	var cases []goldenCase
	for _, f := range files {
		cases = append(cases, goldenCase{
			name: strings.TrimSuffix(filepath.Base(f), ".xml"),
			input: func(t *testing.T) io.Reader {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				return bytes.NewReader(b)
			},
		})
	}
	return append(cases, syntheticCases()...)
}

// goldenResult is what a golden file records: the alert and what Loa
// derives from it, or the error.
type goldenResult struct {
	Alert   *Alert       `json:"alert,omitempty"`
	Derived *derived     `json:"derived,omitempty"`
	Error   *goldenError `json:"error,omitempty"`
}

type derived struct {
	Priority     Priority  `json:"priority"`
	Expires      time.Time `json:"expires,omitzero"`
	AreaCodes    []string  `json:"area_codes,omitempty"`
	VILanguage   string    `json:"vi_language,omitempty"`
	VIHeadline   string    `json:"vi_headline,omitempty"`
	ENLanguage   string    `json:"en_language,omitempty"`
	InfoCount    int       `json:"info_count"`
	References   int       `json:"references"`
	ExpiredAtNow bool      `json:"expired_at_now"`
}

type goldenError struct {
	Class   string `json:"class"`
	Element string `json:"element"`
	Reason  string `json:"reason"`
}

func classOf(err error) string {
	for _, c := range []struct {
		err  error
		name string
	}{
		{ErrMalformed, "malformed"}, {ErrTooLarge, "too_large"}, {ErrInvalid, "invalid"},
		{ErrUnknownArea, "unknown_area"}, {ErrExpired, "expired"},
	} {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return "unclassified"
}

func render(t *testing.T, a *Alert, err error) []byte {
	t.Helper()
	var res goldenResult
	if err != nil {
		var ve *loa.Error
		if !errors.As(err, &ve) {
			t.Fatalf("error %v (%T) is not a *loa.Error", err, err)
		}
		res.Error = &goldenError{Class: classOf(err), Element: ve.Field, Reason: ve.Detail}
	} else {
		res.Alert = a
		res.Derived = &derived{
			Priority:     a.Priority(),
			Expires:      a.Expires(),
			AreaCodes:    a.AreaCodes(),
			InfoCount:    len(a.Infos),
			References:   len(a.References),
			ExpiredAtNow: a.Expired(testNow),
		}
		if in := a.InfoFor("vi"); in != nil {
			res.Derived.VILanguage, res.Derived.VIHeadline = in.Language, in.Headline
			res.Derived.ENLanguage = a.InfoFor("en").Language
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			// Refusals of expired alerts and unknown areas are Parse's only
			// when asked; Loa's service stores such alerts instead, so the
			// documents that are not refusals parse as the service parses
			// them.
			var opts Options
			if strings.HasPrefix(c.name, "invalid_") {
				opts = testOptions()
			}
			if c.opts.MaxBytes != 0 {
				opts.MaxBytes = c.opts.MaxBytes
			}
			a, err := Parse(c.input(t), opts)
			wantErr := strings.HasPrefix(c.name, "invalid_")
			if wantErr && err == nil {
				t.Errorf("Parse accepted an invalid document")
			}
			if !wantErr && err != nil {
				t.Errorf("Parse: %v", err)
			}
			got := render(t, a, err)
			path := filepath.Join("testdata", c.name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./producer/alert/cap/ -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (run with -update to accept):\n%s", path, got)
			}
		})
	}
}

// TestGoldenFilesHaveInputs catches a golden file left behind by a renamed
// or deleted input.
func TestGoldenFilesHaveInputs(t *testing.T) {
	names := map[string]bool{}
	for _, c := range goldenCases(t) {
		names[c.name] = true
	}
	goldens, _ := filepath.Glob("testdata/*.golden.json")
	for _, g := range goldens {
		if n := strings.TrimSuffix(filepath.Base(g), ".golden.json"); !names[n] {
			t.Errorf("%s has no input", g)
		}
	}
}

// patternReader yields pattern over and over, n bytes in all, and counts
// what was read from it.
type patternReader struct {
	pattern []byte
	off     int
	left    int64
	read    int64
}

func newPatternReader(pattern string, n int64) *patternReader {
	return &patternReader{pattern: []byte(pattern), left: n}
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.pattern[r.off:])
		n += c
		r.off = (r.off + c) % len(r.pattern)
	}
	r.left -= int64(n)
	r.read += int64(n)
	return n, nil
}

// embeddedResourceDoc is a valid alert embedding n bytes of audio in a
// <derefUri>, in base64 lines of 76 characters as feeds write it.
func embeddedResourceDoc(n int) string {
	payload := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("ID3 audio "), n/10))
	var b strings.Builder
	b.WriteString(syntheticHead)
	b.WriteString(`  <info>
    <category>Met</category><event>Lũ</event><urgency>Immediate</urgency><severity>Extreme</severity><certainty>Observed</certainty>
    <resource>
      <resourceDesc>Bản tin âm thanh</resourceDesc>
      <mimeType>audio/mpeg</mimeType>
      <derefUri>`)
	for i := 0; i < len(payload); i += 76 {
		b.WriteString("\n")
		b.WriteString(payload[i:min(i+76, len(payload))])
	}
	b.WriteString(`
      </derefUri>
    </resource>
    <area><areaDesc>Hội An</areaDesc><geocode><valueName>VN-ADMIN</valueName><value>20194</value></geocode></area>
  </info>
</alert>
`)
	return b.String()
}

// TestEmbeddedResourceIsNotKept: the parsed alert of a document with
// 700 KB embedded holds its size and digest, not its content, so storing
// the alert stores kilobytes.
func TestEmbeddedResourceIsNotKept(t *testing.T) {
	doc := embeddedResourceDoc(700_000)
	a, err := Parse(strings.NewReader(doc), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := a.Infos[0].Resources[0]
	sum := sha1.Sum(bytes.Repeat([]byte("ID3 audio "), 70_000))
	if r.Embedded != 700_000 || r.EmbeddedSHA1 != hex.EncodeToString(sum[:]) {
		t.Errorf("resource %+v", r)
	}
	b, _ := json.Marshal(a)
	if len(b) > 4096 {
		t.Errorf("the parsed alert is %d bytes of JSON: the embedded content was kept", len(b))
	}
}
