package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/loa-hub/loa/internal/testenv"
)

// TestBadTextIsRefusedOnBothDialects: NUL and invalid UTF-8 in a JSON
// field, a CSV cell, a path or a query are a 400 naming the field, on
// SQLite and on PostgreSQL alike — never stored by one and a 500 from the
// other, never silently replaced.
func TestBadTextIsRefusedOnBothDialects(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			in := startDev(t, accountsEnv(t, b.Name))
			for _, c := range []struct {
				name, method, path, ctype, body, field string
			}{
				{"NUL in a notification", "POST", "/v1/notifications", "application/json",
					`{"to":{"phone":"0912345678"},"title":"Thông báo","body":"Nội\u0000dung"}`, "body"},
				{"invalid UTF-8 in a notification", "POST", "/v1/notifications", "application/json",
					"{\"to\":{\"phone\":\"0912345678\"},\"body\":\"N\xe1\xbb\"}", "body"},
				{"NUL in a registration", "POST", "/v1/citizens", "application/json",
					`{"full_name":"Nguyễn\u0000Hoa","citizen_id":"049195001234","phone":"0905123456","password":"Hoa@2026-quangnam"}`, "full_name"},
				{"NUL in an outage CSV", "POST", "/v1/outages", "text/csv",
					"id,areas,location,start,end,reason\nPC-1,49,Th\x00ôn 1,2030-01-01T08:00:00+07:00,2030-01-01T10:00:00+07:00,bảo trì\n", "location"},
				{"invalid UTF-8 in an outage CSV", "POST", "/v1/outages", "text/csv",
					"id,areas,location,start,end,reason\nPC-1,49,Th\xffôn 1,2030-01-01T08:00:00+07:00,2030-01-01T10:00:00+07:00,bảo trì\n", "location"},
				{"NUL in a path", "GET", "/v1/notifications/a%00b", "", "", "(path)"},
				{"NUL in a query", "GET", "/v1/ops/deadletters?before=a%00b", "", "", "before"},
			} {
				req, _ := http.NewRequest(c.method, in.base+c.path, strings.NewReader(c.body))
				req.Header.Set("Authorization", "Bearer "+in.key)
				if c.ctype != "" {
					req.Header.Set("Content-Type", c.ctype)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 400 || !strings.Contains(string(raw), `"field":"`+c.field+`"`) {
					t.Errorf("%s: %d %s, want 400 naming %s", c.name, resp.StatusCode, raw, c.field)
				}
			}
		})
	}
}
