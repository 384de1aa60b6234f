package smsfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/loa-hub/loa/channels/channeltest"
)

func TestESMSOverHTTPWithFaultEndpoint(t *testing.T) {
	e, err := NewESMS(ESMSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	send := func() map[string]any {
		resp, err := http.Post(e.URL()+ESMSPath, "application/json",
			strings.NewReader(`{"ApiKey":"k","SecretKey":"s","Phone":"84912345678","Content":"hi","SmsType":"2","IsUnicode":"0"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return m
	}
	if m := send(); m["CodeResult"] != ESMSOK || m["SMSID"] == "" {
		t.Errorf("answer = %v", m)
	}
	resp, err := http.Post(e.URL()+"/_fault", "application/json", strings.NewReader(`{"recipients":{"84912345678":"104"}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if m := send(); m["CodeResult"] != ESMSBadBrandname {
		t.Errorf("answer with fault = %v", m)
	}
	if e.Count() != 1 || e.Requests() != 2 {
		t.Errorf("Count %d Requests %d", e.Count(), e.Requests())
	}
	e.Reset()
	if e.Count() != 0 || e.Requests() != 0 {
		t.Errorf("after Reset: Count %d Requests %d", e.Count(), e.Requests())
	}
}

// TestReportsKeepTheirConnections: delivery reports are posted on kept
// connections, as many as are under way at once, not a new one each
// (http.DefaultTransport keeps 2 a host). Each round's reports are held
// at the receiver until all of them arrived, so a round needs that many
// connections; kept, they serve the later rounds.
func TestReportsKeepTheirConnections(t *testing.T) {
	const concurrent, rounds = 8, 10
	rcv := channeltest.NewRoundServer(t, concurrent, rounds, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	})

	e, err := NewESMS(ESMSOptions{Options: Options{CallbackURL: rcv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for r := range rounds {
		for i := range concurrent {
			resp, err := http.Post(e.URL()+ESMSPath, "application/json", strings.NewReader(
				fmt.Sprintf(`{"ApiKey":"k","SecretKey":"s","Phone":"8491%07d","Content":"hi","SmsType":"2","IsUnicode":"0"}`, r*concurrent+i)))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		<-rcv.Released
	}
	if n := rcv.Dialled(); n > 3*concurrent {
		t.Errorf("%d connections for %d rounds of %d reports under way at once; want at most %d", n, rounds, concurrent, 3*concurrent)
	}
}
