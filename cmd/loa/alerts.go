package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/producer/alert"
	"github.com/loa-hub/loa/producer/alert/cap"
)

// loadAlertConfig reads the alert policy: LOA_ALERT_SMS_SEVERITIES (comma
// separated CAP severities, or "none"), LOA_ALERT_PREAUTHORISED_SCOPE (an
// API key scope, or "none" for approval of every alert) and
// LOA_ALERT_MAX_BYTES (the largest CAP document).
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
	if err := c.Validate(); err != nil {
		*errs = append(*errs, fmt.Errorf("LOA_ALERT_SMS_SEVERITIES: %w", err))
	}
	return c
}
