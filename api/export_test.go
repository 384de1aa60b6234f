package api

import (
	"context"
	"io"
	"log/slog"

	"github.com/loa-hub/loa/internal/sqlstore"
)

// StatsOf exposes notificationStats to the external tests.
func StatsOf(store *sqlstore.DB, id string) (Stats, error) {
	h := &handler{deps: Deps{Store: store}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return h.notificationStats(context.Background(), id)
}
