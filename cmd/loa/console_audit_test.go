package main

import (
	"fmt"
	"io"
	"net/http"
	"testing"
)

// TestAnOpenLiveViewWritesABoundedAudit: every console page checks its
// session with GET /v1/me and GET /v1/me/capabilities, and a live view
// polls live.json every 2 s, each poll reading the broadcast: three audit
// rows a poll, 1.5 a second for one open tab. Now the session checks are
// not audited (they are the console's, not the official's doing), and a
// session's polls of one live view are audited once a minute: 30 polls
// in a row write one row, the broadcast read; the page's own read, and a
// poll of another view, are audited as before.
func TestAnOpenLiveViewWritesABoundedAudit(t *testing.T) {
	in := startDev(t, accountsEnv(t, "embedded"))
	c, token := consoleClient(t, in.base, "demo-submitter")
	admin := in.signInDemo(t, "demo-admin")
	_, me := in.callAs(t, token, "GET", "/v1/me", "")
	id, _ := me["id"].(string)
	code, bc := in.callAs(t, token, "POST", "/v1/broadcasts", fmt.Sprintf(`{"title":"Thông báo","body":"Nội dung.","topic":"general",
		"audience":{"areas":[%q]},"channels":["push"],"request_document":{"number":"1/SNN","date":"2026-11-21"}}`, demoAudienceAreas[0]))
	if code != http.StatusCreated || id == "" {
		t.Fatalf("a broadcast: %d %v, me %v", code, bc, me)
	}
	bcID := bc["id"].(string)
	rows := func() []string {
		t.Helper()
		code, out := in.callAs(t, admin, "GET", "/v1/audit?limit=500&actor="+id, "")
		if code != http.StatusOK {
			t.Fatalf("audit: %d %v", code, out)
		}
		var routes []string
		items, _ := out["items"].([]any)
		for _, it := range items {
			routes = append(routes, fmt.Sprint(it.(map[string]any)["route"]))
		}
		return routes
	}
	get := func(path string) {
		t.Helper()
		resp, err := c.Get(in.base + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
	}
	before := len(rows())
	for range 30 {
		get("/console/broadcasts/" + bcID + "/live.json")
	}
	polls := rows()[:len(rows())-before] // newest first
	if len(polls) != 1 || polls[0] != "GET /v1/broadcasts/{id}" {
		t.Errorf("30 polls of the live view wrote %d audit rows %q, want one: the broadcast read", len(polls), polls)
	}
	before = len(rows())
	get("/console/broadcasts/" + bcID + "/live")
	if page := rows()[:len(rows())-before]; len(page) != 1 || page[0] != "GET /v1/broadcasts/{id}" {
		t.Errorf("the live page wrote audit rows %q, want its broadcast read", page)
	}
}
