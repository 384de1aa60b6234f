package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/loa-hub/loa/internal/areas"
	"github.com/loa-hub/loa/internal/sqlstore"
)

// seedAreas loads the built-in demo areas and the embedded sample tree
// (Quảng Nam, three tiers, with centroids) for `loa dev`. Loading updates
// units in place, so it runs at every start.
func seedAreas(ctx context.Context, store *sqlstore.DB) error {
	list := areas.Sample()
	for _, a := range demoAreas {
		list = append(list, areas.Area{Code: a.Code, Name: a.Name, Parent: a.Parent, Level: a.Level})
	}
	if err := store.LoadAreas(ctx, list); err != nil {
		return fmt.Errorf("dev: sample areas: %w", err)
	}
	return nil
}

// runAdminAreas is `loa admin areas load FILE`: it reads an areas CSV
// (Loa's layout or a government export, see internal/areas), checks all
// of it, and loads it in one transaction into LOA_DATABASE_URL (by
// default the dev SQLite database in LOA_DATA_DIR).
func runAdminAreas(ctx context.Context, cfg config, args []string, stdout io.Writer) error {
	if len(args) != 2 || args[0] != "load" {
		return errors.New("usage: loa admin areas load FILE   (CSV: code,name,parent,level,lat,lon or ma_tinh,ten_tinh,[ma_huyen,ten_huyen,]ma_xa,ten_xa[,lat,lon])")
	}
	f, err := os.Open(args[1])
	if err != nil {
		return fmt.Errorf("areas load: %w", err)
	}
	defer f.Close()
	list, err := areas.Parse(f)
	if err != nil {
		return fmt.Errorf("areas load: %s: %w", args[1], err)
	}
	db, err := openAdminStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.LoadAreas(ctx, list); err != nil {
		return err
	}
	levels := map[string]int{}
	centroids := 0
	for _, a := range list {
		levels[a.Level]++
		if a.HasCentroid {
			centroids++
		}
	}
	fmt.Fprintf(stdout, "loaded %d areas from %s: %d provinces, %d districts, %d communes; %d with a centroid\n",
		len(list), args[1], levels[areas.LevelProvince], levels[areas.LevelDistrict], levels[areas.LevelCommune], centroids)
	return nil
}
