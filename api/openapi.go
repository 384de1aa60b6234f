package api

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"sort"
	"sync"
)

// The OpenAPI document is kept as one fragment per domain in openapi/ —
// core.json holds the info, servers and shared components — and merged
// when first served: paths and components of every fragment are united,
// and a path or component defined twice is an error. TestOpenAPIMatchesRoutes
// holds the merged document and the router together.
//
//go:embed openapi/*.json
var openAPIFragments embed.FS

var openAPIDoc = sync.OnceValues(mergeOpenAPI)

func mergeOpenAPI() ([]byte, error) {
	names, err := fs.Glob(openAPIFragments, "openapi/*.json")
	if err != nil {
		return nil, err
	}
	// core.json first: it holds the header the fragments add to.
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == "openapi/core.json") != (names[j] == "openapi/core.json") {
			return names[i] == "openapi/core.json"
		}
		return names[i] < names[j]
	})
	var doc map[string]any
	for _, name := range names {
		b, err := openAPIFragments.ReadFile(name)
		if err != nil {
			return nil, err
		}
		var frag map[string]any
		if err := json.Unmarshal(b, &frag); err != nil {
			return nil, fmt.Errorf("api: %s: %w", name, err)
		}
		if frag["openapi"] != nil {
			if doc != nil {
				return nil, fmt.Errorf("api: %s: only core.json may hold the document header", name)
			}
			doc = frag
			continue
		}
		if doc == nil {
			return nil, fmt.Errorf("api: openapi/core.json is missing")
		}
		if err := mergeSection(doc, frag, "paths", name); err != nil {
			return nil, err
		}
		comps, _ := frag["components"].(map[string]any)
		for section, v := range comps {
			dst := ensureMap(ensureMap(doc, "components"), section)
			for k, def := range v.(map[string]any) {
				if _, dup := dst[k]; dup {
					return nil, fmt.Errorf("api: %s: components.%s.%s defined twice", name, section, k)
				}
				dst[k] = def
			}
		}
	}
	return json.MarshalIndent(doc, "", "  ")
}

func mergeSection(doc, frag map[string]any, section, name string) error {
	src, _ := frag[section].(map[string]any)
	dst := ensureMap(doc, section)
	for k, v := range src {
		if _, dup := dst[k]; dup {
			return fmt.Errorf("api: %s: %s %q defined twice", name, section, k)
		}
		dst[k] = v
	}
	return nil
}

func ensureMap(m map[string]any, key string) map[string]any {
	v, ok := m[key].(map[string]any)
	if !ok {
		v = map[string]any{}
		m[key] = v
	}
	return v
}

func (h *handler) openAPI(w http.ResponseWriter, r *http.Request) error {
	doc, err := openAPIDoc()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(doc)
	return nil
}
