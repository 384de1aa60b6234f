package api_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa/accounts"
	accredis "github.com/loa-hub/loa/accounts/redis"
	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/internal/areas"
	"github.com/loa-hub/loa/internal/blob"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/otp"
	"github.com/loa-hub/loa/producer/direct"
	"github.com/loa-hub/loa/producer/feedback"
	"github.com/loa-hub/loa/producer/portal"
)

// accountGrants adapts the accounts service to the feedback service.
type accountGrants struct{ s *accounts.Service }

func (g accountGrants) Grants(ctx context.Context, id string) ([]feedback.Grant, error) {
	gs, err := g.s.Roles(ctx, id)
	var out []feedback.Grant
	for _, x := range gs {
		out = append(out, feedback.Grant{Unit: x.Unit, Role: string(x.Role)})
	}
	return out, err
}

type portalGrants struct{ s *accounts.Service }

func (g portalGrants) Independent(ctx context.Context, approver string, writers ...string) error {
	return g.s.CheckIndependent(ctx, approver, writers...)
}

func (g portalGrants) Grants(ctx context.Context, id string) ([]portal.Grant, error) {
	gs, err := g.s.Roles(ctx, id)
	var out []portal.Grant
	for _, x := range gs {
		out = append(out, portal.Grant{Unit: x.Unit, Role: string(x.Role)})
	}
	return out, err
}

type fbFixture struct {
	*accFixture
	blobs *blob.Dir
}

func newFeedbackFixture(t *testing.T) *fbFixture {
	t.Helper()
	return newFeedbackFixtureWith(t, nil)
}

// newFeedbackFixtureWith is newFeedbackFixture with the handler's Deps
// changed by set before the handler is made.
func newFeedbackFixtureWith(t *testing.T, set func(*api.Deps)) *fbFixture {
	t.Helper()
	ctx := context.Background()
	store := testenv.OpenStore(t, testenv.SQLiteURL(t))
	mr := testenv.Miniredis(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	clk := &testClock{t: now}
	smsCfg := otp.DefaultSMSConfig()
	smsCfg.Secret, smsCfg.Now = []byte(strings.Repeat("s", 32)), clk.Now
	codes, err := otp.NewSMSCodes(rdb, smsCfg)
	if err != nil {
		t.Fatal(err)
	}
	sealer, _ := otp.NewSealer([]byte(strings.Repeat("k", 32)))
	cfg := accounts.DefaultConfig()
	cfg.RecoveryKey, cfg.Now, cfg.ApprovalUnit = []byte(strings.Repeat("r", 32)), clk.Now, "sotttt"
	rs := accredis.New(rdb, "")
	pub := &recorder{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := accounts.New(cfg, accounts.Deps{Store: store, Sessions: rs, Challenges: rs, Codes: codes, Throttle: rs,
		TOTP: &otp.TOTPVerifier{Store: store, Redis: rdb, Now: clk.Now}, Sealer: sealer, Publisher: pub,
		Hasher: &accounts.Argon2Hasher{Params: accounts.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLength: 16, KeyLength: 32}}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.LoadAreas(ctx, areas.Sample()); err != nil {
		t.Fatal(err)
	}
	fcfg := feedback.DefaultConfig()
	fcfg.CoordinatorUnit = "sotttt"
	fb, err := feedback.New(fcfg, feedback.Deps{Store: store, Roles: accountGrants{svc}, Directory: store, Log: log, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.PutFeedbackCategory(ctx, feedback.Category{Code: "moi-truong", Name: "Môi trường", Agency: "ubnd-hoian", HandlingDays: 5, Active: true}); err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pcfg := portal.DefaultConfig()
	pcfg.BaseURL = "https://quangnam.gov.vn"
	ps, err := portal.New(pcfg, portal.Deps{Store: store, Roles: portalGrants{svc}, Log: log, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	deps := api.Deps{Store: store, Direct: direct.New(direct.DefaultConfig(), store, pub, log), Log: log, DevAPIKey: "dev-key",
		MaxBodyBytes: 8 << 10, Now: clk.Now, Accounts: svc, Feedback: fb, Blobs: blobs, Portal: ps}
	if set != nil {
		set(&deps)
	}
	srv := httptest.NewServer(api.NewHandler(deps))
	t.Cleanup(srv.Close)
	return &fbFixture{accFixture: &accFixture{fixture: &fixture{srv: srv, pub: pub, store: store}, clock: clk, svc: svc}, blobs: blobs}
}

func jpegWithGPS(t *testing.T, w, h int) []byte {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := 0; x < w; x++ {
		m.Set(x, x%h, color.RGBA{200, 10, 10, 255})
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, nil); err != nil {
		t.Fatal(err)
	}
	payload := "Exif\x00\x00MM\x00\x2aGPS 15.8768,108.3291"
	app1 := append([]byte{0xff, 0xe1, 0, byte(len(payload) + 2)}, payload...)
	return append(append(append([]byte{}, b.Bytes()[:2]...), app1...), b.Bytes()[2:]...)
}

// pixelBomb is a JPEG of a few hundred bytes whose header declares
// 60,000×60,000 pixels.
func pixelBomb(t *testing.T) []byte {
	b := jpegWithGPS(t, 8, 8)
	sof := bytes.Index(b, []byte{0xFF, 0xC0})
	if sof < 0 {
		t.Fatal("no SOF0")
	}
	binary.BigEndian.PutUint16(b[sof+5:], 60_000)
	binary.BigEndian.PutUint16(b[sof+7:], 60_000)
	return b
}

// multipartBody is a "data" part then the given photo parts.
func multipartBody(t *testing.T, data string, photos ...[]byte) (string, *bytes.Buffer) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="data"`)
	h.Set("Content-Type", "application/json")
	pw, _ := mw.CreatePart(h)
	pw.Write([]byte(data))
	for i, p := range photos {
		fw, _ := mw.CreateFormFile("photos", fmt.Sprintf("IMG_%d.jpg", i))
		fw.Write(p)
	}
	mw.Close()
	return mw.FormDataContentType(), &b
}

func (f *fbFixture) post(t *testing.T, path, token, ct string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+path, body)
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

func (f *fbFixture) get(t *testing.T, path, token string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

const fbData = `{"category":"moi-truong","title":"Rác ở chợ","description":"Rác tồn đọng, liên hệ tôi 0905123456","lat":15.8768,"long":108.3291,"address":"12 Trần Phú"}`

// TestFeedbackOverHTTP: photos streamed, checked and stripped; the roles
// checked before the body is read; the public view and the photos kept
// from strangers.
func TestFeedbackOverHTTP(t *testing.T) {
	f := newFeedbackFixture(t)
	_, cit := f.citizen(t, "049095000123", "0905123456")
	_, other := f.citizen(t, "049095000456", "0905999888")
	_, handler := f.official(t, "xu.ly.hoian", "0911000001", "ubnd-hoian", "feedback_handler")
	_, stranger := f.official(t, "xu.ly.khac", "0911000002", "so-gtvt", "feedback_handler")

	// An official does not send feedback; a key without the scope neither.
	if resp, b := f.post(t, "/v1/feedback", handler, "application/json", strings.NewReader(fbData)); resp.StatusCode != 403 {
		t.Errorf("official sends: %d %s", resp.StatusCode, b)
	}
	photo := jpegWithGPS(t, 64, 48)
	ct, body := multipartBody(t, fbData, photo, photo)
	resp, b := f.post(t, "/v1/feedback", cit, ct, body)
	if resp.StatusCode != 201 {
		t.Fatalf("post: %d %s", resp.StatusCode, b)
	}
	var fb struct {
		ID     string `json:"id"`
		Agency string `json:"agency"`
		Area   string `json:"area"`
		Photos []struct {
			URL  string `json:"url"`
			Size int64  `json:"size"`
		} `json:"photos"`
	}
	json.Unmarshal(b, &fb)
	if fb.Agency != "ubnd-hoian" || fb.Area != "20497" || len(fb.Photos) != 2 {
		t.Fatalf("%s", b)
	}
	// The stored photo has no EXIF, and strangers cannot fetch it.
	resp, img := f.get(t, fb.Photos[0].URL, cit)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || bytes.Contains(img, []byte("GPS")) || int64(len(img)) != fb.Photos[0].Size {
		t.Errorf("photo for its sender: %d %s, %d bytes, GPS kept %v", resp.StatusCode, resp.Header.Get("Content-Type"), len(img), bytes.Contains(img, []byte("GPS")))
	}
	if _, err := jpeg.Decode(bytes.NewReader(img)); err != nil {
		t.Errorf("stored photo does not decode: %v", err)
	}
	for _, tok := range []string{"", other, stranger} {
		if resp, _ := f.get(t, fb.Photos[0].URL, tok); resp.StatusCode != 403 {
			t.Errorf("photo for %q: %d", tok, resp.StatusCode)
		}
	}
	// Bad photos: not an image, too many, too large.
	for name, c := range map[string]struct {
		photos [][]byte
		field  string
	}{
		"script named .jpg": {[][]byte{[]byte("<script>alert(1)</script>")}, "photos[0]"},
		"six photos":        {[][]byte{photo, photo, photo, photo, photo, photo}, "photos"},
		"over 5 MiB":        {[][]byte{append(jpegWithGPS(t, 8, 8), bytes.Repeat([]byte{0}, 5<<20)...)}, "photos[0]"},
		"60,000×60,000":     {[][]byte{photo, pixelBomb(t)}, "photos[1]"},
	} {
		ct, body := multipartBody(t, fbData, c.photos...)
		resp, b := f.post(t, "/v1/feedback", cit, ct, body)
		var p map[string]any
		json.Unmarshal(b, &p)
		if resp.StatusCode != 400 || p["field"] != c.field {
			t.Errorf("%s: %d %s", name, resp.StatusCode, b)
		}
	}

	// Roles before the body: a handler of another agency gets 403 whatever it sends.
	for _, body := range []string{`{"text":"x"}`, `not json`, ``} {
		if resp, b := f.post(t, "/v1/feedback/"+fb.ID+"/answer", stranger, "application/json", strings.NewReader(body)); resp.StatusCode != 403 {
			t.Errorf("answer by another agency with %q: %d %s", body, resp.StatusCode, b)
		}
	}
	if resp, b := f.post(t, "/v1/feedback/"+fb.ID+"/answer", cit, "application/json", strings.NewReader(`{"text":"x"}`)); resp.StatusCode != 403 {
		t.Errorf("answer by the citizen: %d %s", resp.StatusCode, b)
	}
	if resp, b := f.post(t, "/v1/feedback/"+fb.ID+"/answer", handler, "application/json", strings.NewReader(`{"text":"Đã thu gom."}`)); resp.StatusCode != 200 {
		t.Fatalf("answer: %d %s", resp.StatusCode, b)
	}
	// Rating: a stranger before the body; the citizen after.
	if resp, _ := f.post(t, "/v1/feedback/"+fb.ID+"/rating", other, "application/json", strings.NewReader(`garbage`)); resp.StatusCode != 403 {
		t.Errorf("stranger rates: %d", resp.StatusCode)
	}
	if resp, b := f.post(t, "/v1/feedback/"+fb.ID+"/rating", cit, "application/json", strings.NewReader(`{"rating":5}`)); resp.StatusCode != 200 {
		t.Errorf("rate: %d %s", resp.StatusCode, b)
	}
	// Reading in full: only the sender and the agency.
	if resp, _ := f.get(t, "/v1/feedback/"+fb.ID, other); resp.StatusCode != 403 {
		t.Errorf("another citizen reads: %d", resp.StatusCode)
	}
	if resp, b := f.get(t, "/v1/feedback/"+fb.ID, cit); resp.StatusCode != 200 || !strings.Contains(string(b), "84905123456") {
		t.Errorf("the sender reads: %d %s", resp.StatusCode, b)
	}

	// The public view, serialized, has none of the citizen's data.
	for _, path := range []string{"/v1/public/feedback/" + fb.ID, "/v1/public/feedback", "/v1/public/feedback?status=closed"} {
		resp, b := f.get(t, path, "")
		if resp.StatusCode != 200 || !strings.Contains(string(b), fb.ID) {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		for _, secret := range []string{"Nguyễn Văn A", "0905123456", "84905123456", "049095000123", "Trần Phú", "15.8768", "108.3291", "/photos/"} {
			if strings.Contains(string(b), secret) {
				t.Errorf("%s holds %q: %s", path, secret, b)
			}
		}
	}
	if resp, b := f.get(t, "/v1/public/feedback/stats", ""); resp.StatusCode != 200 || !strings.Contains(string(b), `"average_rating":5`) {
		t.Errorf("stats: %d %s", resp.StatusCode, b)
	}
	// Categories are edited by coordinators and admins only, before the body.
	if resp, _ := f.do(t, "PUT", "/v1/feedback/categories/x", handler, `garbage`); resp.StatusCode != 403 {
		t.Errorf("a handler edits categories: %d", resp.StatusCode)
	}
	if resp, b := f.do(t, "PUT", "/v1/feedback/categories/giao-thong", "dev-key", `{"name":"Giao thông","agency":"so-gtvt","handling_days":5}`); resp.StatusCode != 200 {
		t.Errorf("admin key edits a category: %d %v", resp.StatusCode, b)
	}
	if resp, b := f.do(t, "PUT", "/v1/feedback/categories/giao-thong/routes/503", "dev-key", `{"agency":"ubnd-hoian"}`); resp.StatusCode != 200 {
		t.Errorf("route: %d %v", resp.StatusCode, b)
	}
}
