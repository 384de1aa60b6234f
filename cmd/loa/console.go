package main

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/api/console"
	"github.com/loa-hub/loa/internal/metrics"
	"github.com/loa-hub/loa/producer/broadcast"
)

// consoleConfig configures the web console and what the API computes
// for it.
type consoleConfig struct {
	// IdleTimeout ends a console session unused that long
	// (LOA_CONSOLE_IDLE_TIMEOUT).
	IdleTimeout time.Duration
	// Prices price SMS segments per provider (LOA_SMS_PRICES), in
	// Currency (LOA_SMS_CURRENCY).
	Prices   []broadcast.Price
	Currency string
	// MetricsURLs are the dispatchers' /metrics the operators' overview
	// reads besides this process's own (LOA_OPS_METRICS_URLS).
	MetricsURLs []metrics.Remote
}

func loadConsoleConfig(getenv func(string) string, errs *[]error) consoleConfig {
	c := consoleConfig{IdleTimeout: durVar(getenv, "LOA_CONSOLE_IDLE_TIMEOUT", 15*time.Minute, errs),
		Currency: strings.TrimSpace(or(getenv("LOA_SMS_CURRENCY"), "VND"))}
	if c.IdleTimeout < time.Minute || c.IdleTimeout > 12*time.Hour {
		*errs = append(*errs, fmt.Errorf("LOA_CONSOLE_IDLE_TIMEOUT: %s is not from 1m to 12h", c.IdleTimeout))
	}
	var err error
	if c.Prices, err = broadcast.ParsePrices(getenv("LOA_SMS_PRICES")); err != nil {
		*errs = append(*errs, fmt.Errorf("LOA_SMS_PRICES: %w", err))
	}
	if c.MetricsURLs, err = metrics.ParseRemotes(getenv("LOA_OPS_METRICS_URLS")); err != nil {
		*errs = append(*errs, fmt.Errorf("LOA_OPS_METRICS_URLS: %w", err))
	}
	return c
}

// withConsole serves the console at /console/ in front of the API
// handler. Its CSRF key derives from LOA_SECRET_KEY_FILE, so every
// replica accepts every other's forms; its idle clocks live in Redis.
func withConsole(cfg config, apiHandler http.Handler, rdb redis.UniversalClient, log *slog.Logger, dev bool) (http.Handler, error) {
	k, err := loadKeys(cfg, dev)
	if err != nil {
		return nil, err
	}
	secret, err := hkdf.Key(sha256.New, k.sealer, nil, "loa console csrf", 32)
	if err != nil {
		return nil, err
	}
	c, err := console.New(console.Config{API: apiHandler, Secret: secret, Log: log, Dev: dev,
		Idle:        console.RedisIdle{RDB: rdb, Prefix: cfg.RedisKeyPrefix + "console:idle:"},
		IdleTimeout: cfg.Console.IdleTimeout, Unaudited: api.UnauditedRead})
	if err != nil {
		return nil, err
	}
	return console.Mount(apiHandler, c), nil
}
