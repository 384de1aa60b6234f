package smsfake

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
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
