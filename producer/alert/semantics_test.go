package alert_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/alert"
	"github.com/loa-hub/loa/producer/alert/cap"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current output")

// semanticsCases are CAP documents (in cap/testdata) posted in order by a
// pre-authorised issuer, with what Loa must decide about each: recorded in
// testdata/<name>.golden.json.
var semanticsCases = []struct {
	name  string
	files []string
}{
	{"scope_public", []string{"scope_public.xml"}},
	{"scope_restricted", []string{"scope_restricted.xml"}},
	{"scope_private", []string{"scope_private.xml"}},
	{"status_actual", []string{"status_actual.xml"}},
	{"status_exercise", []string{"status_exercise.xml"}},
	{"status_test", []string{"status_test.xml"}},
	{"status_system", []string{"status_system.xml"}},
	{"status_draft", []string{"status_draft.xml"}},
	{"unmatched_area", []string{"unmatched_area.xml"}},
	// The Update arrives before the alert it updates: stored, sent on its
	// own to its areas, linked when the alert arrives; the alert is then
	// stale and is stored without being sent.
	{"unknown_reference_later_resolved", []string{"unknown_reference_update.xml", "unknown_reference_original.xml"}},
	{"expired", []string{"expired.xml"}},
	{"whitespace", []string{"whitespace.xml"}},
	{"alert_update_cancel", []string{"flood_vi_en.xml", "flood_update.xml", "flood_cancel.xml"}},
	// kttv@quangnam.gov.vn must sign (its certificate is configured): its
	// signed alert verifies; pctt's signature is parsed past.
	{"signed_verified", []string{"signed_ecdsa_prefixed.xml"}},
	{"signed_parsed_past", []string{"signed_rsa_exc_c14n.xml"}},
	{"signed_sender_unsigned", []string{"signed_sender_unsigned.xml"}},
	{"oasis_a1_homeland_security_advisory", []string{"oasis_a1_homeland_security_advisory.xml"}},
	{"oasis_a2_severe_thunderstorm_warning", []string{"oasis_a2_severe_thunderstorm_warning.xml"}},
	{"oasis_a3_earthquake_update", []string{"oasis_a3_earthquake_update.xml"}},
	{"oasis_a4_amber_multilingual", []string{"oasis_a4_amber_multilingual.xml"}},
}

// seedPeople adds the accounts the scope and status cases reach: a citizen
// of Hội An, an emergency responder, a tester and an official named by
// user name.
func seedPeople(t *testing.T, r *rig) {
	t.Helper()
	ctx := context.Background()
	seed := func(id, kind, phone, app, token string, roles ...accounts.Role) {
		if err := r.store.SeedAccountApp(ctx, id, kind, phone, "", app, []string{token}, testNow); err != nil {
			t.Fatal(err)
		}
		for _, role := range roles {
			if err := r.store.GrantRole(ctx, id, accounts.RoleGrant{Unit: "sotttt", Role: role}, "test", testNow); err != nil {
				t.Fatal(err)
			}
		}
	}
	seed("acc-citizen", "citizen", "84905123456", "smart", "tok-citizen")
	seed("acc-responder", "official", "84911000001", "egov", "tok-responder", accounts.RoleAlertResponder)
	seed("acc-tester", "official", "84911000002", "egov", "tok-tester", accounts.RoleAlertTester)
	seed("acc-tran", "official", "84911000003", "egov", "tok-tran")
	for _, q := range []string{
		`UPDATE accounts SET phone_verified_at = created_at`,
		`UPDATE accounts SET username = 'tran.van.b' WHERE id = 'acc-tran'`,
		`INSERT INTO subscriptions (account_id, updated_at) VALUES ('acc-citizen', '2026-11-01T00:00:00Z')`,
		`INSERT INTO subscription_areas (account_id, area_code) VALUES ('acc-citizen', '20194')`,
	} {
		if _, err := r.store.SQL().ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

type semanticsStep struct {
	File   string          `json:"file"`
	Error  *semanticsError `json:"error,omitempty"`
	Answer *semanticsAlert `json:"answer,omitempty"`
	// Plans are what was published for this post: who it is for and what
	// their phones show.
	Plans []semanticsPlan `json:"plans"`
}

type semanticsError struct {
	Element string `json:"element"`
	Reason  string `json:"reason"`
}

type semanticsAlert struct {
	ID           string   `json:"id"`
	Status       string   `json:"status"`
	Distribution string   `json:"distribution"`
	Priority     string   `json:"priority"`
	Areas        []string `json:"areas"`
	Roles        []string `json:"roles,omitempty"`
	Accounts     []string `json:"accounts,omitempty"`
	Channels     []string `json:"channels"`
	ChainKey     string   `json:"chain_key"`
	Signed       bool     `json:"signed,omitempty"`
	Expires      string   `json:"expires"`
	References   []string `json:"references,omitempty"`
	Pending      []string `json:"pending_references,omitempty"`
	Notes        any      `json:"notes,omitempty"`
	Updates      []string `json:"updates,omitempty"`
	CancelledBy  []string `json:"cancelled_by,omitempty"`
}

type semanticsPlan struct {
	Audience producer.Audience `json:"audience"`
	App      string            `json:"app"`
	Channels []string          `json:"channels"`
	Priority string            `json:"priority"`
	Title    string            `json:"title"`
	Body     string            `json:"body"`
	Data     map[string]string `json:"data"`
	// Reaches are the device tokens and phones the audience resolves to
	// among the seeded accounts.
	Reaches []string `json:"reaches"`
}

func (r *rig) reaches(t *testing.T, p producer.Plan) []string {
	t.Helper()
	app := p.App
	if app == "" {
		app = "smart"
	}
	aud := sqlstore.Audience{Areas: p.Audience.Areas, Roles: p.Audience.Roles, Accounts: p.Audience.Accounts}
	out := []string{}
	for _, ch := range p.Channels {
		var (
			page []sqlstore.Keyed
			err  error
		)
		if ch == "sms" {
			page, err = r.store.AudiencePhones(context.Background(), aud, "", 100)
		} else {
			page, err = r.store.AudienceDevices(context.Background(), aud, app, "", 100)
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page {
			out = append(out, ch+":"+k.Address)
		}
	}
	return out
}

func (r *rig) describe(t *testing.T, id string) *semanticsAlert {
	t.Helper()
	d, err := r.svc.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	v := &semanticsAlert{ID: d.ID, Status: d.Status, Distribution: d.Distribution, Priority: d.Priority, Areas: d.AreaCodes,
		Roles: d.Audience.Roles, Accounts: d.Audience.Accounts, Channels: d.Channels, ChainKey: d.ChainKey,
		Expires: d.ExpiresAt.UTC().Format(time.RFC3339), References: d.RefIDs, Updates: d.Updates, CancelledBy: d.CancelledBy,
		Signed: d.Doc.Signed}
	for _, p := range d.PendingRefs {
		v.Pending = append(v.Pending, p.Sender+","+p.Identifier)
	}
	if n := d.Notes; len(n.UnmatchedAreas)+len(n.UnmatchedAddresses)+len(n.UnmatchedRefs) > 0 || n.Restriction != "" {
		v.Notes = n
	}
	return v
}

func TestCAPSemanticsGolden(t *testing.T) {
	for _, c := range semanticsCases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, func(c *alert.Config) {
				pem, err := os.ReadFile("cap/testdata/signers/kttv.pem")
				if err != nil {
					t.Fatal(err)
				}
				c.Signers = &cap.Signers{}
				if err := c.Signers.AddPEM("kttv@quangnam.gov.vn", pem); err != nil {
					t.Fatal(err)
				}
			})
			seedPeople(t, r)
			var (
				steps []semanticsStep
				ids   []string
			)
			for _, f := range c.files {
				before := len(r.pub.Envelopes())
				res, err := r.post(t, issuer, f)
				step := semanticsStep{File: f, Plans: []semanticsPlan{}}
				var ve *loa.Error
				switch {
				case errors.As(err, &ve):
					step.Error = &semanticsError{Element: ve.Field, Reason: ve.Detail}
				case err != nil:
					t.Fatalf("%s: %v", f, err)
				default:
					ids = append(ids, res.Alert.ID)
					step.Answer = r.describe(t, res.Alert.ID)
				}
				for _, p := range r.pub.plans(t)[before:] {
					step.Plans = append(step.Plans, semanticsPlan{Audience: p.Audience, App: p.App, Channels: p.Channels,
						Priority: p.Priority, Title: p.Title, Body: p.Body, Data: p.Data, Reaches: r.reaches(t, p)})
				}
				steps = append(steps, step)
			}
			// Where each alert stands once every document is in.
			var final []*semanticsAlert
			for _, id := range ids {
				final = append(final, r.describe(t, id))
			}
			got := renderSemantics(t, map[string]any{"steps": steps, "final": final}, ids)
			path := filepath.Join("testdata", c.name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./producer/alert/ -run TestCAPSemanticsGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("differs from %s (run with -update to accept):\n%s", path, got)
			}
		})
	}
}

// renderSemantics encodes v with the random alert ids replaced by their
// order of arrival.
func renderSemantics(t *testing.T, v any, ids []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for i, id := range ids {
		out = strings.ReplaceAll(out, id, fmt.Sprintf("alert-%d", i+1))
	}
	return []byte(out)
}
