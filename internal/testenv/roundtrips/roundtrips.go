// Package roundtrips counts a go-redis client's round trips to Redis, for
// tests that hold a path to a number of them. It imports nothing of Loa,
// so any package's tests may use it.
package roundtrips

import (
	"context"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Hook is a go-redis hook that counts a client's round trips to
// Redis: each command sent alone and each pipeline is one. Add it with
// the client's AddHook and read N.
type Hook struct{ N atomic.Int64 }

func (h *Hook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *Hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.N.Add(1)
		return next(ctx, cmd)
	}
}

func (h *Hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.N.Add(1)
		return next(ctx, cmds)
	}
}
