// Package oidc verifies the provincial single sign-on's OpenID Connect ID
// tokens for the accounts domain, with github.com/coreos/go-oidc/v3: the
// signature against the issuer's published keys (JWKS, found through
// /.well-known/openid-configuration and refreshed when an unknown key id
// appears), the issuer, the audience (the client id) and the expiry.
package oidc
