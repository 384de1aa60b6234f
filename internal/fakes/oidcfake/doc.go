// Package oidcfake is a local OpenID Connect issuer for tests: an httptest
// server serving /.well-known/openid-configuration and its JWKS, which
// signs RS256 ID tokens with any claims a test wants — valid ones, and
// ones with the wrong audience, an expiry in the past, or a signature by a
// key the issuer does not publish.
package oidcfake
