package api_test

import (
	"slices"
	"testing"
)

// TestAdminHoldsNoOtherRole: an official whose only role is admin reads
// the audit log and the broadcasts, and is refused what belongs to the
// other roles — the operators' routes (dead letters, replay, the
// recipient lookup, the overview), drafting and approving — before
// anything is read; GET /v1/me/capabilities says exactly that, so the
// console offers the audit log and the broadcasts and nothing else.
func TestAdminHoldsNoOtherRole(t *testing.T) {
	f := newBroadcastFixture(t)
	_, admin := f.official(t, "quan.tri", "0911000009", "sotttt", "admin")
	_, ops := f.official(t, "van.hanh", "0911000008", "sotttt", "ops")

	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/v1/ops/deadletters", 403},
		{"GET", "/v1/ops/deadletters/x", 403},
		{"POST", "/v1/ops/deadletters/x/replay", 403},
		{"GET", "/v1/ops/overview", 403},
		{"GET", "/v1/ops/scheduled", 403},
		{"GET", "/v1/notifications/x/recipients?phone=0905123456", 403},
		{"POST", "/v1/broadcasts", 403},
		{"GET", "/v1/approvals", 403},
		{"POST", "/v1/broadcasts/x/approve", 403},
		{"POST", "/v1/alerts", 403},
		{"GET", "/v1/audit", 200},
		{"GET", "/v1/broadcasts", 200},
	} {
		resp, out := f.do(t, c.method, c.path, admin, bcBody)
		if resp.StatusCode != c.want {
			t.Errorf("admin: %s %s: %d %v, want %d", c.method, c.path, resp.StatusCode, out, c.want)
		}
	}
	// The role ops still reaches the operators' routes.
	if resp, out := f.do(t, "GET", "/v1/ops/deadletters", ops, ""); resp.StatusCode != 200 {
		t.Errorf("ops: GET /v1/ops/deadletters: %d %v", resp.StatusCode, out)
	}

	caps := func(token string) []string {
		t.Helper()
		resp, out := f.do(t, "GET", "/v1/me/capabilities", token, "")
		if resp.StatusCode != 200 {
			t.Fatalf("GET /v1/me/capabilities: %d %v", resp.StatusCode, out)
		}
		var cs []string
		for _, c := range out["capabilities"].([]any) {
			cs = append(cs, c.(string))
		}
		return cs
	}
	if got, want := caps(admin), []string{"broadcasts.read", "audit"}; !slices.Equal(got, want) {
		t.Errorf("admin's capabilities: %v, want %v", got, want)
	}
	if got, want := caps(ops), []string{"broadcasts.read", "alerts.read", "ops"}; !slices.Equal(got, want) {
		t.Errorf("ops's capabilities: %v, want %v", got, want)
	}
	// Keys and citizens have no capabilities to ask about.
	if resp, _ := f.do(t, "GET", "/v1/me/capabilities", "dev-key", ""); resp.StatusCode != 403 {
		t.Errorf("a key asking for capabilities: %d, want 403", resp.StatusCode)
	}
	if resp, _ := f.do(t, "GET", "/v1/me/capabilities", "", ""); resp.StatusCode != 401 {
		t.Errorf("nobody asking for capabilities: %d, want 401", resp.StatusCode)
	}
}
