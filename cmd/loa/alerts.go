package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/producer/alert"
	"github.com/loa-hub/loa/producer/alert/cap"
)

// loadAlertConfig reads the alert policy: LOA_ALERT_SMS_SEVERITIES (comma
// separated CAP severities, or "none"), LOA_ALERT_PREAUTHORISED_SCOPE (an
// API key scope, or "none" for approval of every alert) and
// LOA_ALERT_MAX_BYTES (the largest CAP document), LOA_CAP_SENDERS (the
// CAP senders each key and official may post as), and the rest of the
// LOA_CAP_* and LOA_QUIET_HOURS_BYPASS policy.
func loadAlertConfig(getenv func(string) string, errs *[]error) alert.Config {
	c := alert.DefaultConfig()
	if v := strings.TrimSpace(getenv("LOA_ALERT_SMS_SEVERITIES")); v != "" {
		c.SMSSeverities = nil
		if !strings.EqualFold(v, "none") {
			for _, s := range strings.Split(v, ",") {
				c.SMSSeverities = append(c.SMSSeverities, cap.Severity(strings.TrimSpace(s)))
			}
		}
	}
	if v := strings.TrimSpace(getenv("LOA_ALERT_PREAUTHORISED_SCOPE")); v != "" {
		c.PreauthorisedScopes = nil
		if !strings.EqualFold(v, "none") {
			if !slices.Contains(api.KnownScopes, v) {
				*errs = append(*errs, fmt.Errorf("LOA_ALERT_PREAUTHORISED_SCOPE: %q is not a scope (%s) or none", v, strings.Join(api.KnownScopes, ", ")))
			}
			c.PreauthorisedScopes = []string{v}
		}
	}
	c.MaxBytes = int64(intVar(getenv, "LOA_ALERT_MAX_BYTES", int(cap.DefaultMaxBytes), 1024, 16<<20, errs))
	if v, ok := lookup(getenv, "LOA_ALERT_ESCALATION"); ok && !strings.EqualFold(v, "none") {
		c.Escalation = map[cap.Severity]time.Duration{}
		for _, entry := range strings.Split(v, ",") {
			sev, after, found := strings.Cut(strings.TrimSpace(entry), "=")
			d, err := time.ParseDuration(strings.TrimSpace(after))
			if !found || err != nil || d < time.Minute || d > 24*time.Hour {
				*errs = append(*errs, fmt.Errorf("LOA_ALERT_ESCALATION: %q is not SEVERITY=DURATION (1m to 24h), e.g. Extreme=10m", entry))
				continue
			}
			c.Escalation[cap.Severity(strings.TrimSpace(sev))] = d
		}
	}
	if v, _ := lookup(getenv, "LOA_CAP_VERIFY_SIGNATURES"); v == "1" || strings.EqualFold(v, "true") {
		signers, err := loadSigners(getenv("LOA_CAP_SIGNERS"))
		if err != nil {
			*errs = append(*errs, fmt.Errorf("LOA_CAP_SIGNERS: %w", err))
		}
		c.Signers = signers
	}
	if v, ok := lookup(getenv, "LOA_QUIET_HOURS_BYPASS"); ok {
		c.QuietBypass = cap.Severity(v)
		if strings.EqualFold(v, "all") {
			c.QuietBypass = ""
		}
	}
	if v, ok := lookup(getenv, "LOA_CAP_TEST_ROLES"); ok {
		c.TestRoles = nil
		if !strings.EqualFold(v, "none") {
			for _, r := range strings.Split(v, ",") {
				c.TestRoles = append(c.TestRoles, checkRole("LOA_CAP_TEST_ROLES", strings.TrimSpace(r), errs))
			}
		}
	}
	if v, ok := lookup(getenv, "LOA_CAP_RESTRICTION_ROLES"); ok {
		c.RestrictionRoles = map[string][]string{}
		if !strings.EqualFold(v, "none") {
			for _, entry := range strings.Split(v, ";") {
				text, roles, found := strings.Cut(entry, "=")
				text = strings.TrimSpace(text)
				if !found || text == "" {
					*errs = append(*errs, fmt.Errorf("LOA_CAP_RESTRICTION_ROLES: %q is not RESTRICTION=ROLE[|ROLE…]", entry))
					continue
				}
				for _, r := range strings.Split(roles, "|") {
					c.RestrictionRoles[text] = append(c.RestrictionRoles[text], checkRole("LOA_CAP_RESTRICTION_ROLES", strings.TrimSpace(r), errs))
				}
			}
		}
	}
	if v, ok := lookup(getenv, "LOA_CAP_SENDERS"); ok {
		c.Senders = map[string][]string{}
		if !strings.EqualFold(v, "none") {
			for _, entry := range strings.Split(v, ";") {
				who, senders, found := strings.Cut(strings.TrimSpace(entry), "=")
				who = strings.TrimSpace(who)
				kind, name, _ := strings.Cut(who, ":")
				if !found || (kind != "apikey" && kind != "official") || name == "" {
					*errs = append(*errs, fmt.Errorf("LOA_CAP_SENDERS: %q is not apikey:KEY-ID=SENDER[|SENDER…] or official:USER-NAME=SENDER[|SENDER…]", entry))
					continue
				}
				for _, s := range strings.Split(senders, "|") {
					s = strings.TrimSpace(s)
					if s == "" || strings.HasPrefix(s, alert.LoaSenderPrefix) {
						*errs = append(*errs, fmt.Errorf("LOA_CAP_SENDERS: %s: %q is not a sender to configure (an issuer always posts as its own %s…)", who, s, alert.LoaSenderPrefix))
						continue
					}
					c.Senders[who] = append(c.Senders[who], s)
				}
			}
		}
	}
	if err := c.Validate(); err != nil {
		*errs = append(*errs, fmt.Errorf("LOA_ALERT_SMS_SEVERITIES: %w", err))
	}
	return c
}

// lookup returns a variable's trimmed value and whether it is set.
func lookup(getenv func(string) string, name string) (string, bool) {
	v := strings.TrimSpace(getenv(name))
	return v, v != ""
}

// checkRole reports a role that officials cannot hold.
func checkRole(variable, r string, errs *[]error) string {
	if !accounts.Role(r).Valid() {
		*errs = append(*errs, fmt.Errorf("%s: %q is not a role (%v)", variable, r, accounts.Roles()))
	}
	return r
}

// loadSigners reads "SENDER=PEMFILE,…": the senders whose alerts must be
// signed, each with the file of the certificates its signatures are
// checked against.
func loadSigners(spec string) (*cap.Signers, error) {
	var s cap.Signers
	if strings.TrimSpace(spec) == "" {
		return nil, errors.New("LOA_CAP_VERIFY_SIGNATURES is on but no signer is configured (SENDER=CERT.pem,…)")
	}
	for _, entry := range strings.Split(spec, ",") {
		sender, file, ok := strings.Cut(strings.TrimSpace(entry), "=")
		if !ok || sender == "" || file == "" {
			return nil, fmt.Errorf("%q is not SENDER=CERTIFICATE.pem", entry)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		if err := s.AddPEM(sender, b); err != nil {
			return nil, err
		}
	}
	return &s, nil
}
