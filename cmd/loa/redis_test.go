package main

import (
	"strings"
	"testing"
)

func TestOpenRedis(t *testing.T) {
	for _, tc := range []struct{ url, where, err string }{
		{"redis://127.0.0.1:6379/0", "127.0.0.1:6379", ""},
		{"redis://s1:26379/0?master_name=loa&addr=s2:26379&addr=s3:26379", "master loa through Sentinels s1:26379,s2:26379,s3:26379", ""},
		{"redis://s1:26379/0?master_name=loa&nonsense=1", "", "LOA_REDIS_URL"},
		{"http://x", "", "LOA_REDIS_URL"},
	} {
		c, where, err := openRedis(tc.url)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v", tc.url, err)
			}
			continue
		}
		if err != nil || where != tc.where {
			t.Errorf("%s: %q, %v", tc.url, where, err)
			continue
		}
		c.Close()
	}
}
