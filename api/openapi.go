package api

import (
	_ "embed"
	"net/http"
)

// openAPIDoc describes every route of routes.go (TestOpenAPIMatchesRoutes
// keeps the two in step).
//
//go:embed openapi.json
var openAPIDoc []byte

func (h *handler) openAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPIDoc)
	return nil
}
