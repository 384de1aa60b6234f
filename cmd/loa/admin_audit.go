package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/internal/sqlstore"
)

const apiKeyUsage = `usage:
  loa admin apikey create --name NAME --scopes SCOPE[,SCOPE…] [--areas CODE[,CODE…]] [--alert-areas CODE[,CODE…]] [--by NAME]
                                                                     the key is printed once
  loa admin apikey areas --areas CODE[,CODE…] [--by NAME] ID         replaces the areas a key may publish outages for
  loa admin apikey alert-areas --areas CODE[,CODE…] [--by NAME] ID   replaces the areas a key may alert without approval
  loa admin apikey list [--by NAME]                                  every key, its scopes, areas and last use
  loa admin apikey revoke [--by NAME] ID                             refused from the next request on

--areas: the area codes (each with every unit below it) an outages:write key
may publish outage schedules for; required with that scope.
--alert-areas: the area codes (each with every unit below it) an alerts:issue
key may alert without approval; required with that scope (give the province's
code to a provincial authority). Only these commands set a key's areas: no API
route changes a key.

Each is written to the audit log as "cli:<--by>" (default: $USER); they
read LOA_DATABASE_URL (default: dev mode's SQLite in LOA_DATA_DIR)`

const auditUsage = `usage:
  loa admin audit list [--actor A] [--target T] [--route R] [--since TIME] [--until TIME] [--limit N] [--before CURSOR] [--by NAME]
  loa admin audit purge [--older-than DAYS] [--by NAME]

list: newest first (default 50, at most 1000); TIME is RFC 3339; --before continues
a listing from the cursor the previous page printed.
purge: deletes the entries older than DAYS (default LOA_AUDIT_RETENTION_DAYS), the
only deletion the audit log allows, and writes its own entry; at least 1 day.
Each is written to the audit log as "cli:<--by>" (default: $USER)`

// cliActor is how the audit log names an operator at the shell.
func cliActor(by string) string { return "cli:" + by }

func byFlag(fs *flag.FlagSet, cfg config) *string {
	return fs.String("by", or(cfg.Operator, "loa-admin"), "who runs the command, for the audit log")
}

// cliAudit appends the audit entry of a command run at the shell.
func cliAudit(ctx context.Context, db *sqlstore.DB, by, command, action, target string, detail map[string]string) error {
	if err := db.AppendAudit(ctx, cliEntry(by, command, action, target, detail)); err != nil {
		return fmt.Errorf("the audit log could not be written: %w", err)
	}
	return nil
}

func cliEntry(by, command, action, target string, detail map[string]string) accounts.AuditEntry {
	return accounts.AuditEntry{At: time.Now().UTC(), Actor: cliActor(by), Action: action, Subject: target,
		Route: "loa admin " + command, Detail: detail}
}

// runAdminAPIKey creates, lists and revokes integrating systems' keys.
func runAdminAPIKey(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(apiKeyUsage)
	}
	fs := flag.NewFlagSet("apikey "+args[0], flag.ContinueOnError)
	fs.SetOutput(stdout)
	by := byFlag(fs, cfg)
	switch args[0] {
	case "create":
		name := fs.String("name", "", "who the key is for (an integrating system)")
		scopes := fs.String("scopes", "", "comma-separated scopes: "+strings.Join(api.KnownScopes, ", "))
		areaList := fs.String("areas", "", "comma-separated area codes an outages:write key may publish for")
		alertList := fs.String("alert-areas", "", "comma-separated area codes an alerts:issue key may alert without approval")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if strings.TrimSpace(*name) == "" || fs.NArg() > 0 {
			return errors.New("apikey create: --name is required\n" + apiKeyUsage)
		}
		var list []string
		for _, sc := range strings.Split(*scopes, ",") {
			if sc = strings.TrimSpace(sc); sc == "" {
				continue
			}
			if !slices.Contains(api.KnownScopes, sc) {
				return fmt.Errorf("apikey create: unknown scope %q (known: %s)", sc, strings.Join(api.KnownScopes, ", "))
			}
			list = append(list, sc)
		}
		if len(list) == 0 {
			return errors.New("apikey create: --scopes needs at least one scope")
		}
		codes := splitCodes(*areaList)
		switch outages := slices.Contains(list, api.ScopeOutagesWrite); {
		case outages && len(codes) == 0:
			return errors.New("apikey create: a key with outages:write needs --areas: the area codes it may publish outage schedules for")
		case !outages && len(codes) > 0:
			return errors.New("apikey create: --areas is for keys with outages:write")
		}
		alertCodes := splitCodes(*alertList)
		switch issue := slices.Contains(list, api.ScopeAlertsIssue); {
		case issue && len(alertCodes) == 0:
			return errors.New("apikey create: a key with alerts:issue needs --alert-areas: the area codes it may alert without approval (the province's code for a provincial authority)")
		case !issue && !slices.Contains(list, api.ScopeAlertsWrite) && len(alertCodes) > 0:
			return errors.New("apikey create: --alert-areas is for keys with alerts:issue (or alerts:write, when LOA_ALERT_PREAUTHORISED_SCOPE names it)")
		}
		db, err := openAdminStore(ctx, cfg)
		if err != nil {
			return err
		}
		defer db.Close()
		if err := knownAreas(ctx, db, "apikey create", append(slices.Clone(codes), alertCodes...)); err != nil {
			return err
		}
		key, hash, err := api.NewAPIKey()
		if err != nil {
			return err
		}
		id := uuid.NewString()
		k := sqlstore.APIKey{ID: id, Name: *name, Hash: hash, Scopes: list, Areas: codes, AlertAreas: alertCodes, CreatedAt: time.Now()}
		detail := map[string]string{"name": *name, "scopes": strings.Join(list, " ")}
		if len(codes) > 0 {
			detail["areas"] = strings.Join(codes, " ")
		}
		if len(alertCodes) > 0 {
			detail["alert_areas"] = strings.Join(alertCodes, " ")
		}
		e := cliEntry(*by, "apikey create", "apikey.create", id, detail)
		if err := db.CreateAPIKeyAudited(ctx, k, e); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "API key for %s (id %s, scopes %s). It is shown only now; store it safely:\n%s\n",
			*name, id, strings.Join(list, " "), key)
		return nil
	case "areas", "alert-areas":
		alerts := args[0] == "alert-areas"
		what := "publish outage schedules for"
		if alerts {
			what = "alert without approval"
		}
		areaList := fs.String("areas", "", "comma-separated area codes the key may "+what)
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		command := "apikey " + args[0]
		codes := splitCodes(*areaList)
		if fs.NArg() != 1 || len(codes) == 0 {
			return errors.New(command + ": give --areas and the key's id\n" + apiKeyUsage)
		}
		id := fs.Arg(0)
		db, err := openAdminStore(ctx, cfg)
		if err != nil {
			return err
		}
		defer db.Close()
		if err := knownAreas(ctx, db, command, codes); err != nil {
			return err
		}
		set, action := db.SetAPIKeyAreasAudited, "apikey.areas"
		if alerts {
			set, action = db.SetAPIKeyAlertAreasAudited, "apikey.alert_areas"
		}
		err = set(ctx, id, codes, cliEntry(*by, command, action, id, map[string]string{"areas": strings.Join(codes, " ")}))
		if errors.Is(err, sqlstore.ErrNotFound) {
			return fmt.Errorf("no API key has the id %q (loa admin apikey list shows them)", id)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "API key %s may %s %s (and the units below them) from its next request on.\n",
			id, what, strings.Join(codes, ", "))
		return nil
	case "list":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return errors.New(apiKeyUsage)
		}
		db, err := openAdminStore(ctx, cfg)
		if err != nil {
			return err
		}
		defer db.Close()
		keys, err := db.APIKeys(ctx)
		if err != nil {
			return err
		}
		if err := cliAudit(ctx, db, *by, "apikey list", "apikey.list", "", nil); err != nil {
			return err
		}
		printAPIKeys(stdout, keys)
		return nil
	case "revoke":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errors.New(apiKeyUsage)
		}
		id := fs.Arg(0)
		db, err := openAdminStore(ctx, cfg)
		if err != nil {
			return err
		}
		defer db.Close()
		revoked, err := db.RevokeAPIKey(ctx, id, time.Now())
		if errors.Is(err, sqlstore.ErrNotFound) {
			return fmt.Errorf("no API key has the id %q (loa admin apikey list shows them)", id)
		}
		if err != nil {
			return err
		}
		detail := map[string]string{}
		if !revoked {
			detail["already_revoked"] = "true"
		}
		if err := cliAudit(ctx, db, *by, "apikey revoke", "apikey.revoke", id, detail); err != nil {
			return err
		}
		if revoked {
			fmt.Fprintf(stdout, "Revoked API key %s: every API replica refuses it from its next request.\n", id)
		} else {
			fmt.Fprintf(stdout, "API key %s was already revoked.\n", id)
		}
		return nil
	}
	return errors.New(apiKeyUsage)
}

// splitCodes reads a comma- or space-separated list of area codes,
// without repeats.
func splitCodes(s string) []string {
	var out []string
	for _, c := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// knownAreas refuses codes that name no loaded area.
func knownAreas(ctx context.Context, db *sqlstore.DB, command string, codes []string) error {
	unknown, err := db.UnknownAreas(ctx, codes)
	if err != nil {
		return err
	}
	if len(unknown) > 0 {
		return fmt.Errorf("%s: unknown area codes %s (load the areas first: loa admin areas load)", command, strings.Join(unknown, ", "))
	}
	return nil
}

func printAPIKeys(w io.Writer, keys []sqlstore.APIKey) {
	if len(keys) == 0 {
		fmt.Fprintln(w, "No API keys. Create one with: loa admin apikey create --name NAME --scopes SCOPE")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tAREAS\tALERT AREAS\tCREATED\tLAST USED\tREVOKED")
	orDash := func(codes []string) string {
		if len(codes) == 0 {
			return "-"
		}
		return strings.Join(codes, ",")
	}
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Scopes, ","), orDash(k.Areas), orDash(k.AlertAreas),
			stamp(k.CreatedAt), stamp(k.LastUsedAt), stamp(k.RevokedAt))
	}
	tw.Flush()
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// runAdminAudit lists the audit log or purges its old entries.
func runAdminAudit(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(auditUsage)
	}
	fs := flag.NewFlagSet("audit "+args[0], flag.ContinueOnError)
	fs.SetOutput(stdout)
	by := byFlag(fs, cfg)
	switch args[0] {
	case "list":
		var f sqlstore.AuditFilter
		fs.StringVar(&f.Actor, "actor", "", "only this actor (an account id, apikey:<id>, cli:<name>)")
		fs.StringVar(&f.Target, "target", "", "only entries about this target")
		fs.StringVar(&f.Route, "route", "", `only this route, e.g. "GET /v1/notifications/{id}"`)
		since := fs.String("since", "", "entries at or after this time (RFC 3339)")
		until := fs.String("until", "", "entries before this time (RFC 3339)")
		before := fs.String("before", "", "continue from the cursor a previous listing printed")
		fs.IntVar(&f.Limit, "limit", 50, "how many, newest first (1 to 1000)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if f.Limit < 1 || f.Limit > 1000 || fs.NArg() > 0 {
			return errors.New(auditUsage)
		}
		var err error
		for _, t := range []struct {
			flag string
			v    string
			dst  *time.Time
		}{{"--since", *since, &f.Since}, {"--until", *until, &f.Until}} {
			if t.v == "" {
				continue
			}
			if *t.dst, err = time.Parse(time.RFC3339Nano, t.v); err != nil {
				return fmt.Errorf("audit list: %s %q is not an RFC 3339 time such as 2026-11-22T09:00:00Z", t.flag, t.v)
			}
		}
		if *before != "" {
			at, id, ok := strings.Cut(*before, "/")
			t, perr := time.Parse(time.RFC3339Nano, at)
			if !ok || perr != nil || id == "" {
				return fmt.Errorf("audit list: --before %q is not a cursor this command printed", *before)
			}
			f.Before = sqlstore.AuditCursor{At: t, ID: id}
		}
		db, err := openAdminStore(ctx, cfg)
		if err != nil {
			return err
		}
		defer db.Close()
		entries, next, err := db.ListAudit(ctx, f)
		if err != nil {
			return err
		}
		if err := cliAudit(ctx, db, *by, "audit list", "audit.list", "", auditFilterDetail(f)); err != nil {
			return err
		}
		printAudit(stdout, entries, next)
		return nil
	case "purge":
		days := fs.Int("older-than", cfg.AuditRetentionDays, "delete entries older than this many days (at least 1)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *days < 1 || fs.NArg() > 0 {
			return errors.New(auditUsage)
		}
		db, err := openAdminStore(ctx, cfg)
		if err != nil {
			return err
		}
		defer db.Close()
		cutoff := time.Now().UTC().AddDate(0, 0, -*days)
		e := cliEntry(*by, "audit purge", "audit.purge", "", map[string]string{"older_than_days": fmt.Sprint(*days)})
		n, err := db.PurgeAudit(ctx, cutoff, e)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Deleted %d audit entries older than %s (%d days); the purge itself is in the log.\n",
			n, cutoff.Format(time.RFC3339), *days)
		return nil
	}
	return errors.New(auditUsage)
}

func auditFilterDetail(f sqlstore.AuditFilter) map[string]string {
	d := map[string]string{}
	for k, v := range map[string]string{"actor": f.Actor, "target": f.Target, "route": f.Route} {
		if v != "" {
			d[k] = v
		}
	}
	if !f.Since.IsZero() {
		d["since"] = f.Since.UTC().Format(time.RFC3339)
	}
	if !f.Until.IsZero() {
		d["until"] = f.Until.UTC().Format(time.RFC3339)
	}
	return d
}

func printAudit(w io.Writer, entries []accounts.AuditEntry, next sqlstore.AuditCursor) {
	if len(entries) == 0 {
		fmt.Fprintln(w, "No audit entries.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tACTOR\tACTION\tROUTE\tSTATUS\tTARGET\tIP\tREQUEST ID\tDETAIL")
	for _, e := range entries {
		status := "-"
		if e.Status != 0 {
			status = fmt.Sprint(e.Status)
		}
		var detail []string
		for k, v := range e.Detail {
			detail = append(detail, k+"="+v)
		}
		slices.Sort(detail)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.At.UTC().Format(time.RFC3339Nano), e.Actor, e.Action, dash(e.Route),
			status, dash(e.Subject), dash(e.IP), dash(e.RequestID), dash(truncateText(strings.Join(detail, " "), 80)))
	}
	tw.Flush()
	if !next.IsZero() {
		fmt.Fprintf(w, "More: --before %s/%s\n", next.At.UTC().Format(time.RFC3339Nano), next.ID)
	}
}
