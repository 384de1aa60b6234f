// Package api is Loa's HTTP interface: the chi router, its middleware
// (request logging, panic recovery, API-key authentication and scopes),
// the handlers, and RFC 9457 problem+json errors that name the bad field.
//
// NewHandler builds the whole http.Handler from explicit dependencies;
// every route is listed in routes.go and described in openapi.json.
package api
