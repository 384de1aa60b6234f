package sqlstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/loa-hub/loa/internal/areas"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
)

func TestAreas(t *testing.T) {
	for name, db := range testenv.Stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if err := db.LoadAreas(ctx, areas.Sample()); err != nil {
				t.Fatal(err)
			}
			// Loading again (a renamed unit, a new one) updates in place.
			if err := db.LoadAreas(ctx, []areas.Area{{Code: "48", Name: "Thành phố Đà Nẵng", Level: "province"},
				{Code: "20194", Name: "Phường Hải Vân", Parent: "48", Level: "commune", Lat: 16.13, Lon: 108.12, HasCentroid: true}}); err != nil {
				t.Fatal(err)
			}
			top, err := db.Areas(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(top) != 2 || top[0].Code != "48" || top[1].Code != "49" || top[1].Children != 3 || top[1].Lat == nil || top[0].Lat != nil {
				t.Fatalf("top level: %+v", top)
			}
			hoian, err := db.Areas(ctx, "503")
			if err != nil {
				t.Fatal(err)
			}
			if len(hoian) != 6 || hoian[0].Code != "20497" || hoian[0].Name != "Phường Minh An" || hoian[0].Parent != "503" || hoian[0].Children != 0 {
				t.Fatalf("Hội An: %+v", hoian)
			}
			if ok, err := db.AreaExists(ctx, "20497"); err != nil || !ok {
				t.Errorf("AreaExists(20497) = %v, %v", ok, err)
			}
			if ok, err := db.AreaExists(ctx, "nope"); err != nil || ok {
				t.Errorf("AreaExists(nope) = %v, %v", ok, err)
			}
			unknown, err := db.UnknownAreas(ctx, []string{"49", "x1", "20497", "x2"})
			if err != nil || !slices.Equal(unknown, []string{"x1", "x2"}) {
				t.Errorf("UnknownAreas = %v, %v", unknown, err)
			}
			cs, err := db.AreaCentroids(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) != len(areas.Sample())+1 {
				t.Errorf("%d centroids, want %d", len(cs), len(areas.Sample())+1)
			}
			i := slices.IndexFunc(cs, func(c areas.Centroid) bool { return c.Code == "20194" })
			if i < 0 || cs[i].Lat != 16.13 || cs[i].Lon != 108.12 {
				t.Errorf("centroid of 20194: %+v", cs)
			}
			// Subscriptions to a loaded area reach its units below (the
			// audience's recursive tree works on loaded data).
			if err := db.SeedAudience(ctx, "ar", 3, 50000, "smart", "20497", time.Now()); err != nil {
				t.Fatal(err)
			}
			devs, _, err := db.CountAudience(ctx, sqlstore.Audience{Areas: []string{"49"}}, "smart")
			if err != nil || devs != 3 {
				t.Errorf("audience of 49: %d devices, %v; want 3", devs, err)
			}
		})
	}
}
