package fleet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/loa-hub/loa/internal/sqlstore"
)

// Area is an administrative unit to load, a province when Parent is "".
type Area struct{ Code, Name, Parent string }

// LoadAreas loads areas through `loa admin areas load`.
func (f *Fleet) LoadAreas(ctx context.Context, areas []Area) error {
	var b strings.Builder
	b.WriteString("code,name,parent\n")
	for _, a := range areas {
		fmt.Fprintf(&b, "%s,%s,%s\n", a.Code, a.Name, a.Parent)
	}
	path := filepath.Join(f.opts.Dir, "areas.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return err
	}
	_, err := f.Admin(ctx, "areas", "load", path)
	return err
}

// SeedAudience adds n citizens with a verified phone (849 and eight digits
// from phoneBase+1) and a Smart app device (token "<prefix>-tok-0000001"…),
// subscribed to area, straight into the database: the bulk insert loading
// a million devices takes seconds where the API would take hours.
func (f *Fleet) SeedAudience(ctx context.Context, prefix string, n, phoneBase int, area string) error {
	db, err := sqlstore.Open(ctx, f.opts.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.SeedAudience(ctx, prefix, n, phoneBase, "smart", area, time.Now())
}

// Token is the device token SeedAudience gives citizen i (from 1).
func Token(prefix string, i int) string { return fmt.Sprintf("%s-tok-%07d", prefix, i) }

// Phone is the phone SeedAudience gives citizen i (from 1).
func Phone(phoneBase, i int) string { return fmt.Sprintf("849%08d", phoneBase+i) }
