package main

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// openRedis returns a client of LOA_REDIS_URL: one server
// (redis://host:port/db), or a master found through Sentinels when the URL
// names it (redis://sentinel-1:26379/0?master_name=loa&addr=sentinel-2:26379&addr=sentinel-3:26379),
// which follows a failover to the promoted replica. The second result
// names what it connects to, for error messages.
func openRedis(raw string) (*redis.Client, string, error) { return openRedisPool(raw, 0) }

// openRedisPool is openRedis with a pool of poolSize connections (0: the
// client's default, ten a CPU).
func openRedisPool(raw string, poolSize int) (*redis.Client, string, error) {
	if u, err := url.Parse(raw); err == nil && u.Query().Has("master_name") {
		opt, err := redis.ParseFailoverURL(raw)
		if err != nil {
			return nil, "", fmt.Errorf("LOA_REDIS_URL: %w", err)
		}
		if poolSize > 0 {
			opt.PoolSize = poolSize
		}
		return redis.NewFailoverClient(opt), fmt.Sprintf("master %s through Sentinels %s", opt.MasterName, strings.Join(opt.SentinelAddrs, ",")), nil
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		return nil, "", fmt.Errorf("LOA_REDIS_URL: %w", err)
	}
	if poolSize > 0 {
		opt.PoolSize = poolSize
	}
	return redis.NewClient(opt), opt.Addr, nil
}
