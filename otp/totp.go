package otp

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"image/png"
	"strings"
	"time"

	potp "github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// TOTP parameters fixed by the design: what every authenticator app
// supports (RFC 6238 defaults, Google Authenticator compatible).
const (
	TOTPPeriod = 30 * time.Second // length of one time step
	TOTPDigits = 6                // code length
	TOTPSkew   = 1                // steps accepted on each side of now
	// totpSecretSize is 160 bits, the HMAC-SHA1 block-friendly size RFC 4226
	// §4 recommends.
	totpSecretSize = 20
	qrSize         = 200
)

// Key is a freshly generated TOTP secret, ready for enrolment. Secret is the
// base32 (unpadded) secret to encrypt with a Sealer before storing; URI is
// the otpauth:// URI; PNG is a 200×200 QR code of URI. All three reveal the
// secret: show them once, never log them.
type Key struct {
	Secret string
	URI    string
	PNG    []byte
}

// GenerateTOTPKey creates a random 160-bit SHA1/6-digit/30 s TOTP secret for
// account at issuer, with its otpauth:// URI and QR PNG. issuer and account
// must be non-empty (they are shown in the authenticator app). Safe for
// concurrent use.
func GenerateTOTPKey(issuer, account string) (*Key, error) {
	k, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: account,
		Period:      uint(TOTPPeriod / time.Second),
		SecretSize:  totpSecretSize,
		Digits:      potp.DigitsSix,
		Algorithm:   potp.AlgorithmSHA1,
	})
	if err != nil {
		return nil, fmt.Errorf("otp: generate totp key: %w", err)
	}
	img, err := k.Image(qrSize, qrSize)
	if err != nil {
		return nil, fmt.Errorf("otp: generate totp key: qr: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("otp: generate totp key: png: %w", err)
	}
	return &Key{Secret: k.Secret(), URI: k.URL(), PNG: buf.Bytes()}, nil
}

// TOTPStep returns the RFC 6238 time step (counter) that contains t.
func TOTPStep(t time.Time) int64 {
	// Floor division, so times before 1970 do not round toward zero.
	s, p := t.Unix(), int64(TOTPPeriod/time.Second)
	step := s / p
	if s%p < 0 {
		step--
	}
	return step
}

// MatchTOTP reports which time step, among TOTPStep(now)-1 … +1, the 6-digit
// code belongs to for the base32 secret. It does not know about replays:
// the caller must accept the step only if it is later than the last accepted
// one (TOTPVerifier does this). Every candidate is computed and compared in
// constant time, so the timing does not depend on how close a guess is. A code
// that is not 6 ASCII digits is simply no match. err is non-nil only for a
// secret that is not valid base32. Safe for concurrent use.
func MatchTOTP(secret, code string, now time.Time) (step int64, ok bool, err error) {
	if len(code) != TOTPDigits || !allDigits(code) {
		// Still validate the secret, so a broken stored secret is noticed
		// whatever the user types.
		if _, err := totpCode(secret, 0); err != nil {
			return 0, false, err
		}
		return 0, false, nil
	}
	cur := TOTPStep(now)
	for s := cur - TOTPSkew; s <= cur+TOTPSkew; s++ {
		want, err := totpCode(secret, s)
		if err != nil {
			return 0, false, err
		}
		// No early exit: all candidates cost the same. Keep the earliest
		// match (two steps sharing a code has probability 1e-6).
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && !ok {
			step, ok = s, true
		}
	}
	return step, ok, nil
}

// totpCode is the 6-digit SHA1 code of secret for time step s.
func totpCode(secret string, s int64) (string, error) {
	if s < 0 {
		return "", fmt.Errorf("otp: totp: negative time step")
	}
	if strings.TrimSpace(secret) == "" {
		return "", fmt.Errorf("otp: totp: empty secret")
	}
	c, err := hotp.GenerateCodeCustom(secret, uint64(s), hotp.ValidateOpts{
		Digits:    potp.DigitsSix,
		Algorithm: potp.AlgorithmSHA1,
	})
	if err != nil {
		return "", fmt.Errorf("otp: totp: %w", err)
	}
	return c, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
