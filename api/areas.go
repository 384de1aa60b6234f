package api

import (
	"net/http"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/internal/sqlstore"
)

// areaView is one administrative unit with how many units lie directly
// below it.
type areaView struct {
	Code     string   `json:"code"`
	Name     string   `json:"name"`
	Parent   string   `json:"parent"`
	Level    string   `json:"level"`
	Lat      *float64 `json:"lat"`
	Lon      *float64 `json:"lon"`
	Children int      `json:"children"`
}

// listAreas serves GET /v1/areas?parent=…: the units directly below
// parent, or the provinces without it. The tree is public reference data
// (the citizens' app shows it before anyone signs in), so the route needs
// no credentials.
func (h *handler) listAreas(w http.ResponseWriter, r *http.Request) error {
	parent := r.URL.Query().Get("parent")
	if parent != "" {
		ok, err := h.deps.Store.AreaExists(r.Context(), parent)
		if err != nil {
			return err
		}
		if !ok {
			return loa.NotFound("area %s not found", parent)
		}
	}
	nodes, err := h.deps.Store.Areas(r.Context(), parent)
	if err != nil {
		return err
	}
	items := make([]areaView, len(nodes))
	for i, n := range nodes {
		items[i] = areaOf(n)
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

func areaOf(n sqlstore.AreaNode) areaView {
	return areaView{Code: n.Code, Name: n.Name, Parent: n.Parent, Level: n.Level, Lat: n.Lat, Lon: n.Lon, Children: n.Children}
}
