// Package fcmfake is a fake Firebase Cloud Messaging HTTP v1 server for
// tests and benchmarks: HTTP/2 over TLS on 127.0.0.1, the real request and
// error formats, a fake OAuth2 token endpoint for service-account
// credentials, a record of every accepted message, and fault injection.
//
// Point the firebase SDK at it with option.WithEndpoint(s.Endpoint()) and
// option.WithHTTPClient(s.Client()) (no authentication), or with a
// service-account file from WriteServiceAccount whose token_uri is
// s.TokenURL(); start it with Options.RequireAuth to insist on the latter.
package fcmfake
