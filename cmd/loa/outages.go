package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/loa-hub/loa/producer/outage"
)

// loadOutageConfig reads LOA_OUTAGE_LEAD_TIMES (durations before an
// outage's start at which its subscribers are reminded, default 24h,2h)
// and LOA_OUTAGE_CHANNELS (default push).
func loadOutageConfig(getenv func(string) string, errs *[]error) outage.Config {
	c := outage.DefaultConfig()
	if v := strings.TrimSpace(getenv("LOA_OUTAGE_LEAD_TIMES")); v != "" {
		c.LeadTimes = nil
		for _, s := range strings.Split(v, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(s))
			if err != nil {
				*errs = append(*errs, fmt.Errorf("LOA_OUTAGE_LEAD_TIMES: %q is not a duration such as 24h or 90m", s))
				return outage.DefaultConfig()
			}
			c.LeadTimes = append(c.LeadTimes, d)
		}
	}
	if v := strings.TrimSpace(getenv("LOA_OUTAGE_CHANNELS")); v != "" {
		c.Channels = nil
		for _, s := range strings.Split(v, ",") {
			c.Channels = append(c.Channels, strings.TrimSpace(s))
		}
	}
	if err := c.Validate(); err != nil {
		*errs = append(*errs, fmt.Errorf("LOA_OUTAGE_LEAD_TIMES / LOA_OUTAGE_CHANNELS: %w", err))
		return outage.DefaultConfig()
	}
	return c
}
