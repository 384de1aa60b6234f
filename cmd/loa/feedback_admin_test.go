package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/unicode/norm"

	"github.com/loa-hub/loa/internal/areas"
	"github.com/loa-hub/loa/internal/testenv"
)

// TestAdminFeedbackCategoriesAndRoutes: `loa admin feedback categories
// load FILE` loads the categories (service types) from data, names stored
// NFC; a bad file names its line and loads nothing; `loa admin feedback
// route` adds an area's route to another agency, and refuses an unknown
// category or area.
func TestAdminFeedbackCategoriesAndRoutes(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"LOA_DATA_DIR": dir}
	getenv := func(k string) string { return env[k] }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	good := filepath.Join(dir, "categories.csv")
	os.WriteFile(good, []byte("code,name,name_en,group,agency,handling_days\n"+
		"cay-xanh,"+norm.NFD.String("Cây xanh đô thị")+",Urban trees,Môi trường,so-xd,7\n"+
		"khac,Khác,Other,,,10\n"), 0o600)
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("code,name,name_en,group,agency,handling_days\nnuoc,Cấp nước,Water,,so-xd,5\nden,Đèn,Lights,,so-xd,0\n"), 0o600)

	var out bytes.Buffer
	if err := run(ctx, []string{"loa", "admin", "feedback", "categories", "load", good}, getenv, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "loaded 2 feedback categories") {
		t.Errorf("output %q", out.String())
	}
	if err := run(ctx, []string{"loa", "admin", "feedback", "categories", "load", bad}, getenv, &out); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("bad file: %v, want an error naming line 3", err)
	}
	db := testenv.OpenStore(t, "sqlite:"+filepath.Join(dir, "loa.db"))
	c, err := db.FeedbackCategory(ctx, "cay-xanh")
	if err != nil || c.Name != "Cây xanh đô thị" || c.Agency != "so-xd" || c.HandlingDays != 7 || !c.Active {
		t.Errorf("loaded %+v, %v (name NFC: %v)", c, err, c.Name == norm.NFC.String(c.Name))
	}
	if c, err := db.FeedbackCategory(ctx, "khac"); err != nil || c.Agency != "" {
		t.Errorf("a category for the coordinators: %+v %v", c, err)
	}
	if _, err := db.FeedbackCategory(ctx, "nuoc"); err == nil {
		t.Error("a bad file was partly loaded")
	}

	if err := db.LoadAreas(ctx, areas.Sample()); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(ctx, []string{"loa", "admin", "feedback", "route", "cay-xanh", "503", "ubnd-hoian"}, getenv, &out); err != nil {
		t.Fatal(err)
	}
	if rs, err := db.FeedbackRoutes(ctx, "cay-xanh"); err != nil || len(rs) != 1 || rs[0].Area != "503" || rs[0].Agency != "ubnd-hoian" {
		t.Errorf("routes %+v %v", rs, err)
	}
	for _, args := range [][]string{{"nope", "503", "ubnd-hoian"}, {"cay-xanh", "999999", "ubnd-hoian"}, {"cay-xanh", "503", "not a unit!"}} {
		if err := run(ctx, append([]string{"loa", "admin", "feedback", "route"}, args...), getenv, &out); err == nil {
			t.Errorf("route %v: accepted", args)
		}
	}
}
