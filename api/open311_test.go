package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
)

func (f *fbFixture) key(t *testing.T, id string, scopes ...string) string {
	t.Helper()
	if err := f.store.CreateAPIKey(context.Background(), sqlstore.APIKey{ID: "k-" + id, Name: id, Hash: api.HashAPIKey(id + "-key"),
		Scopes: scopes, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	return id + "-key"
}

func (f *fbFixture) form(t *testing.T, path string, v url.Values) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.PostForm(f.srv.URL+path, v)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// privateData is what must never appear in a public answer about a
// citizen who did not agree to be named.
var privateData = []string{"Lê Văn Cường", "0912000111", "84912000111", "48 Bạch Đằng", "15.8768", "108.3291", "Cuong"}

func noPrivateData(t *testing.T, what string, b []byte) {
	t.Helper()
	for _, s := range privateData {
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("%s holds %q: %s", what, s, b)
		}
	}
}

// TestOpen311Conformance: every GeoReport v2 endpoint in JSON and XML,
// their errors, and the public view's privacy in the serialized bodies.
func TestOpen311Conformance(t *testing.T) {
	f := newFeedbackFixture(t)
	key := f.key(t, "cong-dvc", api.ScopeFeedbackWrite)
	other := f.key(t, "outages", api.ScopeOutagesWrite)
	post := url.Values{"api_key": {key}, "service_code": {"moi-truong"}, "lat": {"15.8768"}, "long": {"108.3291"},
		"address_string": {"48 Bạch Đằng"}, "first_name": {"Lê Văn"}, "last_name": {"Cường"}, "phone": {"0912000111"},
		"description": {"Cống thoát nước bị tắc, gọi 0912000111 (Cuong)"}, "jurisdiction_id": {"quangnam.gov.vn"}}

	// Posting: no key 401, a key without the scope 403, bad fields 400 naming them.
	for name, c := range map[string]struct {
		v      url.Values
		status int
		field  string
	}{
		"no key":         {url.Values{"service_code": {"moi-truong"}}, 401, "api_key"},
		"other scope":    {url.Values{"api_key": {other}, "service_code": {"moi-truong"}}, 403, "api_key"},
		"unknown code":   {url.Values{"api_key": {key}, "service_code": {"nope"}, "description": {"x"}, "phone": {"0912000111"}, "lat": {"15.8"}, "long": {"108.3"}}, 400, "service_code"},
		"bad lat":        {url.Values{"api_key": {key}, "service_code": {"moi-truong"}, "lat": {"north"}}, 400, "lat"},
		"no phone":       {url.Values{"api_key": {key}, "service_code": {"moi-truong"}, "description": {"x"}, "lat": {"15.8"}, "long": {"108.3"}}, 400, "phone"},
		"no location":    {url.Values{"api_key": {key}, "service_code": {"moi-truong"}, "description": {"x"}, "phone": {"0912000111"}}, 400, "location"},
		"no description": {url.Values{"api_key": {key}, "service_code": {"moi-truong"}, "phone": {"0912000111"}, "lat": {"15.8"}, "long": {"108.3"}}, 400, "description"},
	} {
		for _, format := range []string{"json", "xml"} {
			resp, b := f.form(t, "/open311/v2/requests."+format, c.v)
			var desc string
			if format == "json" {
				var errs []struct {
					Code        int    `json:"code"`
					Description string `json:"description"`
				}
				if err := json.Unmarshal(b, &errs); err != nil || len(errs) == 0 || errs[0].Code != c.status {
					t.Errorf("%s/%s: not Open311 errors: %s", name, format, b)
					continue
				}
				desc = errs[0].Description
			} else {
				var errs struct {
					Errors []struct {
						Code        int    `xml:"code"`
						Description string `xml:"description"`
					} `xml:"error"`
				}
				if err := xml.Unmarshal(b, &errs); err != nil || len(errs.Errors) == 0 || errs.Errors[0].Code != c.status {
					t.Errorf("%s/%s: not Open311 errors: %s", name, format, b)
					continue
				}
				desc = errs.Errors[0].Description
			}
			if resp.StatusCode != c.status || !strings.HasPrefix(desc, c.field+":") {
				t.Errorf("%s/%s: %d %q, want %d naming %s", name, format, resp.StatusCode, desc, c.status, c.field)
			}
		}
	}

	// POST in both formats.
	ids := map[string]string{}
	for _, format := range []string{"json", "xml"} {
		resp, b := f.form(t, "/open311/v2/requests."+format, post)
		if resp.StatusCode != 200 {
			t.Fatalf("post %s: %d %s", format, resp.StatusCode, b)
		}
		if format == "json" {
			var out []map[string]any
			if err := json.Unmarshal(b, &out); err != nil || len(out) != 1 || out[0]["service_request_id"] == "" {
				t.Fatalf("post json: %s", b)
			}
			ids[format] = out[0]["service_request_id"].(string)
		} else {
			var out struct {
				Requests []struct {
					ID     string `xml:"service_request_id"`
					Notice string `xml:"service_notice"`
				} `xml:"request"`
			}
			if err := xml.Unmarshal(b, &out); err != nil || len(out.Requests) != 1 || out.Requests[0].ID == "" || out.Requests[0].Notice == "" {
				t.Fatalf("post xml: %s", b)
			}
			ids[format] = out.Requests[0].ID
		}
	}
	id := ids["json"]
	_, handler := f.official(t, "xu.ly.hoian", "0911000001", "ubnd-hoian", "feedback_handler")
	if resp, b := f.post(t, "/v1/feedback/"+id+"/answer", handler, "application/json", strings.NewReader(`{"text":"Đã nạo vét cống ngày 25/11."}`)); resp.StatusCode != 200 {
		t.Fatalf("answer: %d %s", resp.StatusCode, b)
	}

	// Every read endpoint in both formats.
	type req struct {
		ID                string   `json:"service_request_id" xml:"service_request_id"`
		Status            string   `json:"status" xml:"status"`
		StatusNotes       string   `json:"status_notes" xml:"status_notes"`
		ServiceCode       string   `json:"service_code" xml:"service_code"`
		AgencyResponsible string   `json:"agency_responsible" xml:"agency_responsible"`
		RequestedDatetime string   `json:"requested_datetime" xml:"requested_datetime"`
		Lat               *float64 `json:"lat" xml:"lat"`
		Address           string   `json:"address" xml:"address"`
	}
	for _, format := range []string{"json", "xml"} {
		get := func(path string) []byte {
			t.Helper()
			resp, b := f.get(t, path, "")
			ct := resp.Header.Get("Content-Type")
			if resp.StatusCode != 200 || format == "json" && !strings.HasPrefix(ct, "application/json") || format == "xml" && !strings.HasPrefix(ct, "text/xml") {
				t.Fatalf("GET %s: %d %s %s", path, resp.StatusCode, ct, b)
			}
			if format == "xml" && !bytes.HasPrefix(b, []byte("<?xml")) {
				t.Errorf("GET %s: no XML declaration", path)
			}
			noPrivateData(t, path, b)
			return b
		}
		b := get("/open311/v2/discovery." + format)
		if !bytes.Contains(b, []byte("http://wiki.open311.org/GeoReport_v2")) || !bytes.Contains(b, []byte("/open311/v2")) {
			t.Errorf("discovery: %s", b)
		}
		b = get("/open311/v2/services." + format + "?jurisdiction_id=quangnam.gov.vn")
		if !bytes.Contains(b, []byte("moi-truong")) || !bytes.Contains(b, []byte("service_name")) {
			t.Errorf("services: %s", b)
		}
		b = get("/open311/v2/services/moi-truong." + format)
		if !bytes.Contains(b, []byte("public")) || !bytes.Contains(b, []byte("singlevaluelist")) {
			t.Errorf("definition: %s", b)
		}
		for _, path := range []string{"/open311/v2/requests." + format, "/open311/v2/requests/" + id + "." + format,
			"/open311/v2/requests." + format + "?service_request_id=" + id + "," + ids["xml"], "/open311/v2/requests." + format + "?status=closed&service_code=moi-truong"} {
			b = get(path)
			var list []req
			if format == "json" {
				if err := json.Unmarshal(b, &list); err != nil {
					t.Fatalf("%s: %v %s", path, err, b)
				}
			} else {
				var x struct {
					R []req `xml:"request"`
				}
				if err := xml.Unmarshal(b, &x); err != nil {
					t.Fatalf("%s: %v %s", path, err, b)
				}
				list = x.R
			}
			var got *req
			for i := range list {
				if list[i].ID == id {
					got = &list[i]
				}
			}
			if got == nil || got.Status != "closed" || got.StatusNotes != "Đã nạo vét cống ngày 25/11." || got.AgencyResponsible != "ubnd-hoian" ||
				got.ServiceCode != "moi-truong" || got.Lat == nil || *got.Lat != 15.877 || got.Address != "Phường Minh An" {
				t.Errorf("%s: %+v in %s", path, got, b)
			}
			if _, err := time.Parse(time.RFC3339, got.RequestedDatetime); err != nil {
				t.Errorf("%s: requested_datetime %q", path, got.RequestedDatetime)
			}
		}
		b = get("/open311/v2/requests." + format + "?status=open")
		if bytes.Contains(b, []byte(id)) || !bytes.Contains(b, []byte(ids["xml"])) {
			t.Errorf("open requests: %s", b)
		}
		b = get("/open311/v2/tokens/" + id + "." + format)
		if !bytes.Contains(b, []byte(id)) || !bytes.Contains(b, []byte("token")) {
			t.Errorf("token: %s", b)
		}
		// Not found, bad formats, bad ranges: Open311 errors.
		for path, status := range map[string]int{
			"/open311/v2/requests/nope." + format: 404, "/open311/v2/services/nope." + format: 404,
			"/open311/v2/requests." + format + "?start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z": 400,
			"/open311/v2/requests." + format + "?start_date=yesterday":                                          400, "/open311/v2/requests." + format + "?status=pending": 400,
		} {
			resp, b := f.get(t, path, "")
			if resp.StatusCode != status || !bytes.Contains(b, []byte("description")) {
				t.Errorf("%s: %d %s", path, resp.StatusCode, b)
			}
		}
	}
	if resp, _ := f.get(t, "/open311/v2/services.html", ""); resp.StatusCode != 404 {
		t.Errorf("services.html: %d", resp.StatusCode)
	}

	// A citizen who agreed (attribute[public]=yes) is named, with the photo.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, vs := range post {
		mw.WriteField(k, vs[0])
	}
	mw.WriteField("attribute[public]", "yes")
	fw, _ := mw.CreateFormFile("media", "cong.jpg")
	fw.Write(jpegWithGPS(t, 32, 32))
	mw.Close()
	resp, b := f.post(t, "/open311/v2/requests.json", "", mw.FormDataContentType(), &body)
	var out []map[string]any
	if json.Unmarshal(b, &out); resp.StatusCode != 200 || len(out) != 1 {
		t.Fatalf("multipart post: %d %s", resp.StatusCode, b)
	}
	resp, b = f.get(t, "/open311/v2/requests/"+out[0]["service_request_id"].(string)+".json", "")
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte("48 Bạch Đằng")) || !bytes.Contains(b, []byte("/photos/0")) {
		t.Errorf("named request: %s", b)
	}
}

// TestOpen311Clients: independent GeoReport v2 clients from PyPI work
// unchanged: three (Code for America) posts a request with a photo and
// reads it back; georeport reads the services, the definition and the
// requests in JSON and in XML.
func TestOpen311Clients(t *testing.T) {
	py := os.Getenv("LOA_TEST_FEEDBACK_PYTHON")
	if py == "" {
		if testenv.Required() {
			t.Fatal("LOA_TEST_FEEDBACK_PYTHON is not set and LOA_REQUIRE_SERVICES=1: run deploy/local/up.sh")
		}
		t.Skip("LOA_TEST_FEEDBACK_PYTHON not set")
	}
	f := newFeedbackFixture(t)
	key := f.key(t, "cong-dvc", api.ScopeFeedbackWrite)
	photo := t.TempDir() + "/photo.jpg"
	os.WriteFile(photo, jpegWithGPS(t, 40, 30), 0o600)
	cmd := exec.Command(py, "testdata/open311_clients.py", f.srv.URL+"/open311/v2", key, photo)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("the Python clients failed: %v", err)
	}
	if !bytes.Contains(out, []byte("all Open311 client checks passed")) {
		t.Fatal("the client script did not finish")
	}
}

// TestOpen311LinksIgnoreTheHost: the links Open311 answers with come
// from the configured public address (LOA_PUBLIC_URL), or are
// root-relative without one; a forged Host or X-Forwarded-* header never
// reaches a response (where a cache would serve it to everyone).
func TestOpen311LinksIgnoreTheHost(t *testing.T) {
	for _, c := range []struct{ public, want string }{
		{"https://loa.quangnam.gov.vn", `"url":"https://loa.quangnam.gov.vn/open311/v2"`},
		{"", `"url":"/open311/v2"`},
	} {
		f := newFeedbackFixtureWith(t, func(d *api.Deps) { d.PublicURL = c.public })
		req, err := http.NewRequest("GET", f.srv.URL+"/open311/v2/discovery.json", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "evil.example"
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("X-Forwarded-Host", "evil.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(b, []byte(c.want)) || bytes.Contains(b, []byte("evil")) {
			t.Errorf("public address %q: %d %s; want %s and no forged host", c.public, resp.StatusCode, b, c.want)
		}
	}
}

// TestOpen311KeepsPhotosOfTheUnnamed: a request posted with a photo by a
// citizen who did not agree to be named shows no media_url in JSON or
// XML, and the photo is not served to anyone without the right to read
// the matter in full; the key that posted it still reads it.
func TestOpen311KeepsPhotosOfTheUnnamed(t *testing.T) {
	f := newFeedbackFixture(t)
	key := f.key(t, "cong-dvc", api.ScopeFeedbackWrite)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range map[string]string{"api_key": key, "service_code": "moi-truong", "lat": "15.8768", "long": "108.3291",
		"phone": "0912000111", "first_name": "Lê Văn", "last_name": "Cường", "description": "Cống tắc trước nhà"} {
		mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("media", "mat-toi.jpg")
	fw.Write(jpegWithGPS(t, 32, 32))
	mw.Close()
	resp, b := f.post(t, "/open311/v2/requests.json", "", mw.FormDataContentType(), &body)
	var out []map[string]any
	if json.Unmarshal(b, &out); resp.StatusCode != 200 || len(out) != 1 {
		t.Fatalf("post: %d %s", resp.StatusCode, b)
	}
	id := out[0]["service_request_id"].(string)
	for _, path := range []string{"/open311/v2/requests/" + id + ".json", "/open311/v2/requests/" + id + ".xml", "/open311/v2/requests.json", "/open311/v2/requests.xml"} {
		resp, b := f.get(t, path, "")
		if resp.StatusCode != 200 || !bytes.Contains(b, []byte(id)) {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		if bytes.Contains(b, []byte("/photos/")) {
			t.Errorf("%s shows the photo of a citizen who did not agree: %s", path, b)
		}
		noPrivateData(t, path, b)
	}
	_, cit := f.citizen(t, "049095000456", "0905999888")
	for _, tok := range []string{"", cit} {
		if resp, _ := f.get(t, "/v1/feedback/"+id+"/photos/0", tok); resp.StatusCode != 403 {
			t.Errorf("photo for %q: %d, want 403", tok, resp.StatusCode)
		}
	}
	if resp, _ := f.get(t, "/v1/feedback/"+id+"/photos/0", key); resp.StatusCode != 200 {
		t.Errorf("photo for the key that posted it: %d", resp.StatusCode)
	}
}

// TestOpen311PostDoesNotRevealAccounts: the answer to a key holder who
// files with a registered citizen's phone is the same as for an unknown
// phone — it names no account, so a key cannot tell which numbers belong
// to Loa's citizens, nor learn their account ids.
func TestOpen311PostDoesNotRevealAccounts(t *testing.T) {
	f := newFeedbackFixture(t)
	key := f.key(t, "cong-dvc", api.ScopeFeedbackWrite)
	accountID, _ := f.citizen(t, "049095000123", "0905123456")
	for _, format := range []string{"json", "xml"} {
		for _, phone := range []string{"0905123456", "0912000111"} {
			v := url.Values{"api_key": {key}, "service_code": {"moi-truong"}, "lat": {"15.8768"}, "long": {"108.3291"},
				"phone": {phone}, "description": {"Cống thoát nước bị tắc"}}
			resp, b := f.form(t, "/open311/v2/requests."+format, v)
			if resp.StatusCode != 200 {
				t.Fatalf("%s %s: %d %s", format, phone, resp.StatusCode, b)
			}
			if bytes.Contains(b, []byte("account_id")) || bytes.Contains(b, []byte(accountID)) {
				t.Errorf("%s %s: the answer reveals an account: %s", format, phone, b)
			}
		}
	}
}

// TestAKeyLearnsNothingOfACitizensAccount: a feedback:write key files for
// any phone, and a matter filed for a registered citizen's phone is
// linked to the citizen's account (so the citizen follows and rates it).
// The key read its matter back with the account's id and the name the
// citizen registered, which a number nobody registered has not: any
// key told which numbers belong to Loa's citizens and whose they are.
// And a matter filed without a name took the account's, shown to
// everyone when the key set it public: the key put a citizen's name to
// a text of its own making. Now a key's matter carries the name the key
// gave (none when it gave none), and the key's view of it no account id.
func TestAKeyLearnsNothingOfACitizensAccount(t *testing.T) {
	f := newFeedbackFixture(t)
	key := f.key(t, "cong-dvc", api.ScopeFeedbackWrite)
	accountID, citizen := f.citizen(t, "049095000123", "0905123456")
	views := map[string][]string{}
	for _, phone := range []string{"0905123456", "0912000111"} {
		v := url.Values{"api_key": {key}, "service_code": {"moi-truong"}, "lat": {"15.8768"}, "long": {"108.3291"},
			"phone": {phone}, "description": {"Cống thoát nước bị tắc"}, "attribute[public]": {"yes"}}
		resp, b := f.form(t, "/open311/v2/requests.json", v)
		var posted []map[string]any
		if resp.StatusCode != 200 || json.Unmarshal(b, &posted) != nil || len(posted) != 1 {
			t.Fatalf("%s: %d %s", phone, resp.StatusCode, b)
		}
		id := posted[0]["service_request_id"].(string)
		_, own := f.get(t, "/v1/feedback/"+id, key)
		_, public := f.get(t, "/v1/public/feedback/"+id, "")
		resp, created := f.post(t, "/v1/feedback", key, "application/json", strings.NewReader(fmt.Sprintf(
			`{"category":"moi-truong","description":"Đèn đường hỏng","phone":%q,"address":"Hội An","public":true}`, phone)))
		if resp.StatusCode != 201 {
			t.Fatalf("%s: POST /v1/feedback: %d %s", phone, resp.StatusCode, created)
		}
		views[phone] = []string{string(own), string(public), string(created)}
		for _, b := range views[phone] {
			if strings.Contains(b, accountID) || strings.Contains(b, "Nguyễn Văn A") || strings.Contains(b, "citizen_account_id") {
				t.Errorf("%s: a view reveals the account: %s", phone, b)
			}
		}
	}
	// The citizen still finds the matters filed for their phone.
	resp, mine := f.get(t, "/v1/me/feedback", citizen)
	var list struct {
		Items []map[string]any `json:"items"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(mine, &list) != nil || len(list.Items) != 2 {
		t.Errorf("the citizen's own list: %d %s", resp.StatusCode, mine)
	}
}
