package main

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
)

// TestAdminAPIKeysAndAudit: `loa admin apikey create|list|revoke` and
// `loa admin audit list|purge` through run, on SQLite and PostgreSQL;
// each writes its own audit entry (creating a key wrote none before).
func TestAdminAPIKeysAndAudit(t *testing.T) {
	backends := map[string]func(t *testing.T) (map[string]string, string){
		"sqlite": func(t *testing.T) (map[string]string, string) {
			dir := t.TempDir()
			return map[string]string{"LOA_DATA_DIR": dir, "USER": "ops-anh"}, "sqlite:" + dir + "/loa.db"
		},
	}
	if testenv.Configured("LOA_TEST_DATABASE_URL") {
		backends["postgres"] = func(t *testing.T) (map[string]string, string) {
			u := testenv.PostgresURL(t)
			return map[string]string{"LOA_DATABASE_URL": u, "USER": "ops-anh"}, u
		}
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			env, dbURL := open(t)
			admin := func(args ...string) (string, error) {
				var out strings.Builder
				err := run(ctx, append([]string{"loa", "admin"}, args...), func(k string) string { return env[k] }, &out)
				return out.String(), err
			}
			out, err := admin("apikey", "create", "--name", "reporting", "--scopes", "notify:direct,ops")
			if err != nil {
				t.Fatalf("create: %v\n%s", err, out)
			}
			key := regexp.MustCompile(`loa_[a-z0-9]+`).FindString(out)
			id := regexp.MustCompile(`id ([0-9a-f-]{36})`).FindStringSubmatch(out)
			if key == "" || id == nil {
				t.Fatalf("create printed %q", out)
			}
			db := testenv.OpenStore(t, dbURL)
			rows, _, _ := db.ListAudit(ctx, sqlstore.AuditFilter{Actor: "cli:ops-anh"})
			if len(rows) != 1 || rows[0].Action != "apikey.create" || rows[0].Subject != id[1] || rows[0].Route != "loa admin apikey create" ||
				rows[0].Detail["scopes"] != "notify:direct ops" {
				t.Fatalf("the creation's audit entry: %+v", rows)
			}
			if strings.Contains(rows[0].Detail["name"]+rows[0].Detail["scopes"], key) {
				t.Error("the key itself is in the audit log")
			}

			// A use of the key, as the API's audit middleware records it.
			used := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
			db.AppendAudit(ctx, accounts.AuditEntry{At: used, Actor: "apikey:" + id[1], Action: api.ActionCall, Route: "GET /v1/notifications/{id}", Status: 200})
			out, err = admin("apikey", "list")
			if err != nil || !strings.Contains(out, id[1]) || !strings.Contains(out, "notify:direct,ops") || !strings.Contains(out, used.Format(time.RFC3339)) {
				t.Errorf("list: %v\n%s", err, out)
			}
			out, err = admin("apikey", "revoke", "--by", "lead", id[1])
			if err != nil || !strings.Contains(out, "Revoked API key") {
				t.Fatalf("revoke: %v\n%s", err, out)
			}
			if _, err := db.APIKeyByHash(ctx, api.HashAPIKey(key)); !errors.Is(err, sqlstore.ErrNotFound) {
				t.Errorf("the revoked key still authenticates: %v", err)
			}
			if out, err := admin("apikey", "revoke", id[1]); err != nil || !strings.Contains(out, "already revoked") {
				t.Errorf("revoke again: %v\n%s", err, out)
			}
			if _, err := admin("apikey", "revoke", "nope"); err == nil || !strings.Contains(err.Error(), "no API key") {
				t.Errorf("revoke unknown: %v", err)
			}

			out, err = admin("audit", "list", "--actor", "cli:lead")
			if err != nil || !strings.Contains(out, "apikey.revoke") || !strings.Contains(out, id[1]) || strings.Contains(out, "apikey.create") {
				t.Errorf("audit list --actor: %v\n%s", err, out)
			}
			out, err = admin("audit", "list", "--limit", "2")
			cursor := regexp.MustCompile(`More: --before (\S+)`).FindStringSubmatch(out)
			if err != nil || cursor == nil {
				t.Fatalf("audit list --limit 2: %v\n%s", err, out)
			}
			if out, err := admin("audit", "list", "--limit", "2", "--before", cursor[1]); err != nil || !strings.Contains(out, "AT") {
				t.Errorf("the next page: %v\n%s", err, out)
			}

			// The purge: only old entries, never the last day, itself audited.
			db.AppendAudit(ctx, accounts.AuditEntry{At: time.Now().UTC().AddDate(0, 0, -400), Actor: "apikey:old", Action: api.ActionCall})
			if _, err := admin("audit", "purge", "--older-than", "0"); err == nil || !strings.Contains(err.Error(), "usage") {
				t.Errorf("purge of everything: %v", err)
			}
			out, err = admin("audit", "purge")
			if err != nil || !strings.Contains(out, "Deleted 1 audit entries") {
				t.Fatalf("purge with the default retention: %v\n%s", err, out)
			}
			rows, _, _ = db.ListAudit(ctx, sqlstore.AuditFilter{Actor: "apikey:old"})
			purges, _, _ := db.ListAudit(ctx, sqlstore.AuditFilter{Actor: "cli:ops-anh", Route: "loa admin audit purge"})
			if len(rows) != 0 || len(purges) != 1 || purges[0].Detail["deleted"] != "1" || purges[0].Detail["older_than_days"] != "365" {
				t.Errorf("after the purge: old %+v, purge entries %+v", rows, purges)
			}
			for _, args := range [][]string{{"audit"}, {"audit", "erase"}, {"apikey"}, {"apikey", "revoke"}, {"audit", "list", "--limit", "0"}} {
				if _, err := admin(args...); err == nil || !strings.Contains(err.Error(), "usage") {
					t.Errorf("%v: %v, want the usage", args, err)
				}
			}
		})
	}
}

// TestAdminOfficialSSOUnlink: `loa admin official sso-unlink` forgets an
// official's single sign-on identity, says so in the audit log, and
// refuses a user name that is no official.
func TestAdminOfficialSSOUnlink(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	env := map[string]string{"LOA_DATA_DIR": dir, "USER": "ops-anh"}
	admin := func(args ...string) (string, error) {
		var out strings.Builder
		err := run(ctx, append([]string{"loa", "admin"}, args...), func(k string) string { return env[k] }, &out)
		return out.String(), err
	}
	if out, err := admin("official", "create", "--username", "tran.b", "--full-name", "Trần B", "--phone", "0911222333", "--unit", "sotttt", "--roles", "ops"); err != nil {
		t.Fatalf("official create: %v\n%s", err, out)
	}
	db := testenv.OpenStore(t, "sqlite:"+dir+"/loa.db")
	a, err := db.FindAccount(ctx, accounts.Login{Username: "tran.b"})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := db.LinkSSO(ctx, accounts.SSOLink{Issuer: "https://sso.example", Subject: "sub-1", AccountID: a.ID, LinkedAt: time.Now()}); !ok || err != nil {
		t.Fatalf("link: %v %v", ok, err)
	}
	if out, err := admin("official", "sso-unlink", "--by", "lead", "tran.b"); err != nil || !strings.Contains(out, "sub-1") {
		t.Fatalf("sso-unlink: %v %q", err, out)
	}
	if _, err := db.SSOLink(ctx, "", "", a.ID); !errors.Is(err, accounts.ErrNotFound) {
		t.Errorf("the link is still there: %v", err)
	}
	rows, _, _ := db.ListAudit(ctx, sqlstore.AuditFilter{Actor: "cli:lead"})
	if len(rows) != 1 || rows[0].Action != "sso.unlink" || rows[0].Subject != a.ID || rows[0].Detail["subject"] != "sub-1" {
		t.Errorf("audit: %+v", rows)
	}
	if _, err := admin("official", "sso-unlink", "nobody"); err == nil {
		t.Error("unlinking an unknown user name succeeded")
	}
}

// TestAdminAPIKeyAreas: an outages:write key is created with the areas it
// may publish for (required, and known codes only); `apikey areas`
// replaces them, audited; list shows them.
func TestAdminAPIKeyAreas(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	env := map[string]string{"LOA_DATA_DIR": dir, "USER": "ops-anh"}
	admin := func(args ...string) (string, error) {
		var out strings.Builder
		err := run(ctx, append([]string{"loa", "admin"}, args...), func(k string) string { return env[k] }, &out)
		return out.String(), err
	}
	if out, err := admin("areas", "load", "../../internal/areas/sample/quang-nam.csv"); err != nil {
		t.Fatalf("areas load: %v\n%s", err, out)
	}
	if _, err := admin("apikey", "create", "--name", "evn", "--scopes", "outages:write"); err == nil || !strings.Contains(err.Error(), "--areas") {
		t.Errorf("an outages:write key without areas: %v", err)
	}
	if _, err := admin("apikey", "create", "--name", "evn", "--scopes", "outages:write", "--areas", "503,99999"); err == nil || !strings.Contains(err.Error(), "99999") {
		t.Errorf("an unknown area: %v", err)
	}
	if _, err := admin("apikey", "create", "--name", "ops", "--scopes", "ops", "--areas", "503"); err == nil {
		t.Error("--areas on a key without outages:write was taken")
	}
	out, err := admin("apikey", "create", "--name", "evn", "--scopes", "outages:write", "--areas", "503, 20470")
	id := regexp.MustCompile(`id ([0-9a-f-]{36})`).FindStringSubmatch(out)
	if err != nil || id == nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	key := regexp.MustCompile(`loa_[a-z0-9]+`).FindString(out)
	db := testenv.OpenStore(t, "sqlite:"+dir+"/loa.db")
	if k, err := db.APIKeyByHash(ctx, api.HashAPIKey(key)); err != nil || strings.Join(k.Areas, " ") != "503 20470" {
		t.Fatalf("stored areas: %+v %v", k, err)
	}
	if out, err := admin("apikey", "areas", "--by", "lead", "--areas", "502", id[1]); err != nil || !strings.Contains(out, "502") {
		t.Fatalf("areas: %v\n%s", err, out)
	}
	if k, _ := db.APIKeyByHash(ctx, api.HashAPIKey(key)); strings.Join(k.Areas, " ") != "502" {
		t.Errorf("areas after the change: %v", k.Areas)
	}
	rows, _, _ := db.ListAudit(ctx, sqlstore.AuditFilter{Actor: "cli:lead"})
	if len(rows) != 1 || rows[0].Action != "apikey.areas" || rows[0].Subject != id[1] || rows[0].Detail["areas"] != "502" {
		t.Errorf("audit: %+v", rows)
	}
	if _, err := admin("apikey", "areas", "--areas", "502", "nope"); err == nil || !strings.Contains(err.Error(), "no API key") {
		t.Errorf("an unknown key: %v", err)
	}
	if out, err := admin("apikey", "list"); err != nil || !regexp.MustCompile(`outages:write\s+502\s`).MatchString(out) {
		t.Errorf("list: %v\n%s", err, out)
	}

	// Alert keys: their own areas, kept apart from a key's outage areas.
	if _, err := admin("apikey", "create", "--name", "pctt", "--scopes", "alerts:issue"); err == nil || !strings.Contains(err.Error(), "--alert-areas") {
		t.Errorf("an alerts:issue key without areas: %v", err)
	}
	if _, err := admin("apikey", "create", "--name", "pctt", "--scopes", "alerts:issue", "--alert-areas", "99999"); err == nil || !strings.Contains(err.Error(), "99999") {
		t.Errorf("an unknown alert area: %v", err)
	}
	if _, err := admin("apikey", "create", "--name", "ops", "--scopes", "ops", "--alert-areas", "503"); err == nil {
		t.Error("--alert-areas on a key without an alerts scope was taken")
	}
	out, err = admin("apikey", "create", "--name", "both", "--scopes", "alerts:issue,outages:write", "--areas", "503", "--alert-areas", "49")
	id = regexp.MustCompile(`id ([0-9a-f-]{36})`).FindStringSubmatch(out)
	if err != nil || id == nil {
		t.Fatalf("create with both: %v\n%s", err, out)
	}
	key = regexp.MustCompile(`loa_[a-z0-9]+`).FindString(out)
	if k, err := db.APIKeyByHash(ctx, api.HashAPIKey(key)); err != nil || strings.Join(k.Areas, " ") != "503" || strings.Join(k.AlertAreas, " ") != "49" {
		t.Fatalf("stored areas: %+v %v", k, err)
	}
	if out, err := admin("apikey", "alert-areas", "--by", "lead2", "--areas", "502", id[1]); err != nil || !strings.Contains(out, "alert without approval 502") {
		t.Fatalf("alert-areas: %v\n%s", err, out)
	}
	if k, _ := db.APIKeyByHash(ctx, api.HashAPIKey(key)); strings.Join(k.AlertAreas, " ") != "502" || strings.Join(k.Areas, " ") != "503" {
		t.Errorf("areas after the change: %v %v", k.Areas, k.AlertAreas)
	}
	rows, _, _ = db.ListAudit(ctx, sqlstore.AuditFilter{Actor: "cli:lead2"})
	if len(rows) != 1 || rows[0].Action != "apikey.alert_areas" || rows[0].Subject != id[1] || rows[0].Detail["areas"] != "502" {
		t.Errorf("audit: %+v", rows)
	}
	if out, err := admin("apikey", "list"); err != nil || !regexp.MustCompile(`alerts:issue,outages:write\s+503\s+502\s`).MatchString(out) {
		t.Errorf("list: %v\n%s", err, out)
	}
}
