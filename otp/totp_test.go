package otp

import (
	"bytes"
	"encoding/base32"
	"image/png"
	"net/url"
	"testing"
	"time"

	potp "github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

func b32(s string) string { return base32.StdEncoding.EncodeToString([]byte(s)) }

// RFC 6238 Appendix B, with the per-hash seeds of erratum 2866.
func TestRFC6238Vectors(t *testing.T) {
	seeds := map[potp.Algorithm]string{
		potp.AlgorithmSHA1:   "12345678901234567890",
		potp.AlgorithmSHA256: "12345678901234567890123456789012",
		potp.AlgorithmSHA512: "1234567890123456789012345678901234567890123456789012345678901234",
	}
	times := []int64{59, 1111111109, 1111111111, 1234567890, 2000000000, 20000000000}
	want := map[potp.Algorithm][]string{
		potp.AlgorithmSHA1:   {"94287082", "07081804", "14050471", "89005924", "69279037", "65353130"},
		potp.AlgorithmSHA256: {"46119246", "68084774", "67062674", "91819424", "90698825", "77737706"},
		potp.AlgorithmSHA512: {"90693936", "25091201", "99943326", "93441116", "38618901", "47863826"},
	}
	for alg, seed := range seeds {
		for i, ts := range times {
			at := time.Unix(ts, 0).UTC()
			got, err := totp.GenerateCodeCustom(b32(seed), at, totp.ValidateOpts{
				Period: 30, Digits: potp.DigitsEight, Algorithm: alg,
			})
			if err != nil {
				t.Fatal(err)
			}
			if got != want[alg][i] {
				t.Errorf("%s at %d: got %s, want %s", alg, ts, got, want[alg][i])
			}
			// TOTPStep is the counter the vectors use.
			got, err = hotp.GenerateCodeCustom(b32(seed), uint64(TOTPStep(at)), hotp.ValidateOpts{
				Digits: potp.DigitsEight, Algorithm: alg,
			})
			if err != nil {
				t.Fatal(err)
			}
			if got != want[alg][i] {
				t.Errorf("%s at step %d: got %s, want %s", alg, TOTPStep(at), got, want[alg][i])
			}
		}
	}
}

// RFC 4226 Appendix D.
func TestRFC4226Vectors(t *testing.T) {
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	secret := b32("12345678901234567890")
	for counter, w := range want {
		got, err := hotp.GenerateCodeCustom(secret, uint64(counter), hotp.ValidateOpts{
			Digits: potp.DigitsSix, Algorithm: potp.AlgorithmSHA1,
		})
		if err != nil {
			t.Fatal(err)
		}
		if got != w {
			t.Errorf("counter %d: got %s, want %s", counter, got, w)
		}
		// The package's own code path, with counter as time step.
		if got, _ := totpCode(secret, int64(counter)); got != w {
			t.Errorf("totpCode step %d: got %s, want %s", counter, got, w)
		}
	}
}

func TestTOTPStep(t *testing.T) {
	for _, tc := range []struct {
		unix int64
		step int64
	}{{0, 0}, {29, 0}, {30, 1}, {59, 1}, {1111111109, 37037036}, {-1, -1}, {-30, -1}, {-31, -2}} {
		if got := TOTPStep(time.Unix(tc.unix, 0)); got != tc.step {
			t.Errorf("TOTPStep(%d) = %d, want %d", tc.unix, got, tc.step)
		}
	}
}

func TestMatchTOTP(t *testing.T) {
	secret := b32("12345678901234567890")
	now := time.Unix(1111111109, 0) // step 37037036
	code := func(at time.Time) string {
		c, err := totp.GenerateCode(secret, at)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name   string
		code   string
		ok     bool
		step   int64
		errors bool
	}{
		{name: "current", code: code(now), ok: true, step: 37037036},
		{name: "previous step", code: code(now.Add(-30 * time.Second)), ok: true, step: 37037035},
		{name: "next step", code: code(now.Add(30 * time.Second)), ok: true, step: 37037037},
		{name: "two steps back", code: code(now.Add(-60 * time.Second))},
		{name: "two steps ahead", code: code(now.Add(60 * time.Second))},
		{name: "short", code: "12345"},
		{name: "letters", code: "12a456"},
		{name: "empty", code: ""},
	}
	for _, tc := range tests {
		step, ok, err := MatchTOTP(secret, tc.code, now)
		if err != nil || ok != tc.ok || (ok && step != tc.step) {
			t.Errorf("%s: MatchTOTP = %d, %v, %v; want %d, %v", tc.name, step, ok, err, tc.step, tc.ok)
		}
	}
	for _, bad := range []string{"", "not base32!", "1"} {
		if _, _, err := MatchTOTP(bad, "123456", now); err == nil {
			t.Errorf("secret %q: no error", bad)
		}
		if _, _, err := MatchTOTP(bad, "x", now); err == nil {
			t.Errorf("secret %q with malformed code: no error", bad)
		}
	}
}

func TestGenerateTOTPKey(t *testing.T) {
	k, err := GenerateTOTPKey("Loa", "nguyen.van.a@quangnam.gov.vn")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(k.Secret)
	if err != nil || len(raw) != 20 {
		t.Fatalf("secret %q: %d bytes, %v", k.Secret, len(raw), err)
	}
	u, err := url.Parse(k.URI)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || q.Get("secret") != k.Secret || q.Get("issuer") != "Loa" ||
		q.Get("algorithm") != "SHA1" || q.Get("digits") != "6" || q.Get("period") != "30" {
		t.Fatalf("URI %s", k.URI)
	}
	img, err := png.Decode(bytes.NewReader(k.PNG))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 200 || b.Dy() != 200 {
		t.Fatalf("QR is %v", b)
	}
	// A code from the key validates.
	now := time.Now()
	c, _ := totp.GenerateCode(k.Secret, now)
	if _, ok, err := MatchTOTP(k.Secret, c, now); !ok || err != nil {
		t.Fatalf("own code refused: %v", err)
	}
	k2, _ := GenerateTOTPKey("Loa", "x")
	if k2.Secret == k.Secret {
		t.Fatal("two keys share a secret")
	}
	if _, err := GenerateTOTPKey("", "x"); err == nil {
		t.Fatal("empty issuer accepted")
	}
	if _, err := GenerateTOTPKey("Loa", ""); err == nil {
		t.Fatal("empty account accepted")
	}
}
