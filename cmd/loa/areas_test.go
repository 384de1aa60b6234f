package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa/internal/testenv"
)

// TestAdminAreasLoad: `loa admin areas load FILE` checks the whole file
// and loads it into the dev database; a bad file loads nothing and names
// the line and column.
func TestAdminAreasLoad(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"LOA_DATA_DIR": dir}
	getenv := func(k string) string { return env[k] }
	good := filepath.Join(dir, "da-nang.csv")
	os.WriteFile(good, []byte("ma_tinh,ten_tinh,ma_xa,ten_xa,lat,lon\n48,Thành phố Đà Nẵng,20194,Phường Hội An,15.88,108.33\n48,Thành phố Đà Nẵng,20227,Phường Tam Kỳ,,\n"), 0o600)
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("code,name,parent\n49,Quảng Nam,\n503,Hội An,50\n"), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var out bytes.Buffer
	if err := run(ctx, []string{"loa", "admin", "areas", "load", good}, getenv, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "loaded 3 areas") || !strings.Contains(out.String(), "1 with a centroid") {
		t.Errorf("output %q", out.String())
	}
	err := run(ctx, []string{"loa", "admin", "areas", "load", bad}, getenv, &out)
	if err == nil || !strings.Contains(err.Error(), "line 3, column parent") {
		t.Errorf("bad file: %v", err)
	}
	db := testenv.OpenStore(t, "sqlite:"+filepath.Join(dir, "loa.db"))
	kids, err := db.Areas(ctx, "48")
	if err != nil || len(kids) != 2 || kids[0].Lat == nil || kids[1].Lat != nil {
		t.Errorf("loaded %+v, %v", kids, err)
	}
	if ok, _ := db.AreaExists(ctx, "503"); ok {
		t.Error("a bad file was partly loaded")
	}
	if err := seedAreas(ctx, db); err != nil {
		t.Fatal(err)
	}
	if top, _ := db.Areas(ctx, ""); len(top) != 2 {
		t.Errorf("after the dev seed: %+v", top)
	}
}

func TestOutageConfig(t *testing.T) {
	var errs []error
	c := loadOutageConfig(func(k string) string {
		return map[string]string{"LOA_OUTAGE_LEAD_TIMES": "48h, 30m"}[k]
	}, &errs)
	if len(errs) != 0 || len(c.LeadTimes) != 2 || c.LeadTimes[1] != 30*time.Minute || c.Channels[0] != "push" {
		t.Errorf("%+v %v", c, errs)
	}
	for _, v := range []string{"soon", "2h,2h", "10s"} {
		errs = nil
		loadOutageConfig(func(k string) string {
			if k == "LOA_OUTAGE_LEAD_TIMES" {
				return v
			}
			return ""
		}, &errs)
		if len(errs) != 1 {
			t.Errorf("%q: %v", v, errs)
		}
	}
}
