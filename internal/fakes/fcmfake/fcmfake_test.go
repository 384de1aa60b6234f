package fcmfake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func post(t *testing.T, s *Server, body string) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := s.Client().Post(s.Endpoint()+"/projects/p/messages:send", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("answer %q is not JSON", b)
	}
	return resp, m
}

func TestWireFormat(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	resp, m := post(t, s, `{"message":{"token":"tok","notification":{"title":"T","body":"B"},"data":{"k":"v"},"android":{"priority":"high","ttl":"60s"}}}`)
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 || !strings.HasPrefix(m["name"].(string), "projects/p/messages/") {
		t.Errorf("send: %d %s %v", resp.StatusCode, resp.Proto, m)
	}
	post(t, s, `{"validate_only":true,"message":{"topic":"news"}}`)
	if s.Count() != 1 || s.CountFor("tok") != 1 || s.Requests() != 2 {
		t.Errorf("Count %d, CountFor %d, Requests %d", s.Count(), s.CountFor("tok"), s.Requests())
	}

	for _, bad := range []string{
		`{"message":{"token":"a","topic":"b"}}`,
		`{"message":{}}`,
		`{"message":{"token":"a","bogus":1}}`,
		`{"message":{"token":"a","data":{"n":1}}}`,
		`{"message":{"token":"a","android":{"priority":"urgent"}}}`,
		`{"message":{"token":"a","android":{"ttl":"60"}}}`,
		`not json`,
	} {
		resp, m := post(t, s, bad)
		e, _ := m["error"].(map[string]any)
		if resp.StatusCode != 400 || e["status"] != "INVALID_ARGUMENT" {
			t.Errorf("%s: %d %v", bad, resp.StatusCode, m)
		}
	}

	s.FailRecipient("gone", Unregistered)
	s.SetError(Unavailable, 0)
	s.SetStatus(0, 0)
	resp, m = post(t, s, `{"message":{"token":"gone"}}`)
	e := m["error"].(map[string]any)
	d := e["details"].([]any)[0].(map[string]any)
	if resp.StatusCode != 404 || e["status"] != "NOT_FOUND" || d["@type"] != "type.googleapis.com/google.firebase.fcm.v1.FcmError" || d["errorCode"] != "UNREGISTERED" {
		t.Errorf("UNREGISTERED answer: %d %v", resp.StatusCode, m)
	}
	s.SetError(QuotaExceeded, 90e9)
	resp, m = post(t, s, `{"message":{"token":"x"}}`)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "90" {
		t.Errorf("quota answer: %d %q %v", resp.StatusCode, resp.Header.Get("Retry-After"), m)
	}
}

func TestRequireAuthAndToken(t *testing.T) {
	s, err := New(Options{RequireAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp, m := post(t, s, `{"message":{"token":"x"}}`)
	if resp.StatusCode != 401 {
		t.Errorf("without token: %d %v", resp.StatusCode, m)
	}
	tr, err := http.PostForm(s.TokenURL(), url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {"x.y.z"}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(tr.Body).Decode(&tok)
	tr.Body.Close()
	req, _ := http.NewRequest(http.MethodPost, s.Endpoint()+"/projects/p/messages:send", strings.NewReader(`{"message":{"token":"x"}}`))
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || s.TokenRequests() != 1 {
		t.Errorf("with token: %d, token requests %d", resp.StatusCode, s.TokenRequests())
	}
}
