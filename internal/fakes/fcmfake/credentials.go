package fcmfake

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
)

// WriteServiceAccount writes a Google service-account JSON credential with
// a freshly generated, throwaway RSA key to path (mode 0600). Its
// token_uri is tokenURI, normally s.TokenURL(), so the Google auth
// libraries fetch access tokens from the fake instead of Google.
func WriteServiceAccount(path, projectID, tokenURI string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("fcmfake: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("fcmfake: marshal key: %w", err)
	}
	cred := map[string]string{
		"type":                        "service_account",
		"project_id":                  projectID,
		"private_key_id":              "fcmfake",
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                "loa-test@" + projectID + ".iam.gserviceaccount.com",
		"client_id":                   "100000000000000000000",
		"auth_uri":                    "https://accounts.google.com/o/oauth2/auth",
		"token_uri":                   tokenURI,
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
		"universe_domain":             "googleapis.com",
	}
	b, err := json.MarshalIndent(cred, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("fcmfake: %w", err)
	}
	return nil
}
