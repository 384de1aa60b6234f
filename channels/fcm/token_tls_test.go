package fcm_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/loa-hub/loa/channels/fcm"
	"github.com/loa-hub/loa/internal/fakes/fcmfake"
)

// The service account's token is fetched through the configured HTTP
// client, as the sends are: a token endpoint behind a certificate that only
// that client trusts (a fake's, or a private CA's) must not fail every send.
func TestTokenFetchedThroughTheConfiguredClient(t *testing.T) {
	f := startFake(t, fcmfake.Options{RequireAuth: true})
	target, err := url.Parse(f.TokenURL())
	if err != nil {
		t.Fatal(err)
	}
	target.Path = ""
	tokens := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(target))
	t.Cleanup(tokens.Close)

	path := filepath.Join(t.TempDir(), "sa.json")
	if err := fcmfake.WriteServiceAccount(path, project, tokens.URL+"/token"); err != nil {
		t.Fatal(err)
	}
	// Trusts any certificate, as LOA_FCM_INSECURE_TLS does; the default
	// client trusts neither the fake's nor the token server's.
	insecure := &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // test servers' certificates
	c := newClient(t, f, func(c *fcm.Config) { c.CredentialsFile, c.HTTPClient = path, insecure })
	if _, err := c.Send(context.Background(), push("tok-tls")); err != nil {
		t.Fatalf("Send with a token endpoint behind TLS: %v", err)
	}
	if f.Count() != 1 {
		t.Errorf("fake accepted %d, want 1", f.Count())
	}
}
