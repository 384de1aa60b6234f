package main

import (
	"context"
	"log/slog"

	"github.com/loa-hub/loa/accounts"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/producer"
	"github.com/loa-hub/loa/producer/broadcast"
)

// buildBroadcasts wires the broadcast service for the API role: roles come
// from the accounts service, topics from the accounts configuration, and
// scheduled broadcasts are outbox items the API's outbox poller publishes.
func buildBroadcasts(cfg config, store *sqlstore.DB, pub interface {
	Publish(ctx context.Context, e producer.Envelope) error
}, acc *accounts.Service, log *slog.Logger) (*broadcast.Service, error) {
	bc := broadcast.DefaultConfig()
	bc.Topics = cfg.Accounts.Topics
	return broadcast.New(bc, broadcast.Deps{Store: store, Publisher: pub, Roles: acc, Log: log})
}
