// Package areas reads the tree of administrative units (province →
// district → commune, or since 2025 province → commune) from CSV files,
// in Loa's own layout or in the shape of the government's exports, and
// checks it: every parent exists, no code appears twice, coordinates are
// numbers on the globe. It has no infrastructure imports; the store
// (internal/sqlstore) persists what it returns.
//
// A sample tree of Quảng Nam (three tiers, with centroids) is embedded for
// dev mode and tests: see Sample.
package areas
