package otp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
)

const (
	// DefaultRecoveryCodes is how many recovery codes an official gets.
	DefaultRecoveryCodes = 10
	// MinRecoveryKeySize is the shortest HMAC key (pepper) accepted.
	MinRecoveryKeySize = 16

	// Crockford's base32 alphabet, lower case: no i, l, o or u, so a code
	// read aloud or copied by hand is unambiguous.
	recoveryAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	recoveryGroup    = 5 // characters per group; two groups = 50 bits
)

// NewRecoveryCodes returns n random single-use recovery codes in the form
// "xxxxx-xxxxx" (Crockford base32, 50 bits each) and, index for index, their
// hashes to store: hex HMAC-SHA256 keyed by key, a server-side pepper of at
// least MinRecoveryKeySize bytes kept outside the database, so a database
// leak alone does not allow an offline search. Show plain once; store only
// hashed. n must be positive. Safe for concurrent use.
func NewRecoveryCodes(n int, key []byte) (plain []string, hashed []string, err error) {
	if n <= 0 {
		return nil, nil, fmt.Errorf("otp: recovery codes: n must be positive: %w", ErrInvalidInput)
	}
	if len(key) < MinRecoveryKeySize {
		return nil, nil, fmt.Errorf("otp: recovery codes: key shorter than %d bytes: %w", MinRecoveryKeySize, ErrInvalidInput)
	}
	plain = make([]string, n)
	hashed = make([]string, n)
	buf := make([]byte, 2*recoveryGroup)
	for i := range n {
		if _, err := rand.Read(buf); err != nil {
			return nil, nil, fmt.Errorf("otp: recovery codes: %w", err)
		}
		var b strings.Builder
		for j, r := range buf {
			if j == recoveryGroup {
				b.WriteByte('-')
			}
			// 256 is a multiple of 32: no modulo bias.
			b.WriteByte(recoveryAlphabet[r&31])
		}
		plain[i] = b.String()
		hashed[i] = hashRecoveryCode(normaliseRecoveryCode(plain[i]), key)
	}
	return plain, hashed, nil
}

// MatchRecoveryCode reports whether code is one of the hashed recovery codes
// made by NewRecoveryCodes with the same key, and which. Input is forgiving:
// case, dashes and spaces are ignored, and o, i and l read as 0, 1 and 1.
// Every entry is compared, in constant time; empty entries (used codes
// blanked out) never match. Single use is the caller's job: on success,
// remove or blank hashed[index] in the same transaction that accepts the
// sign-in. Safe for concurrent use.
func MatchRecoveryCode(hashed []string, code string, key []byte) (index int, ok bool) {
	norm := normaliseRecoveryCode(code)
	if len(norm) != 2*recoveryGroup || len(key) < MinRecoveryKeySize {
		return -1, false
	}
	want := []byte(hashRecoveryCode(norm, key))
	index = -1
	for i, h := range hashed {
		if subtle.ConstantTimeCompare([]byte(h), want) == 1 && index < 0 {
			index = i
		}
	}
	return index, index >= 0
}

// normaliseRecoveryCode maps user input to the 10 alphabet characters, or to
// something of another length that cannot match.
func normaliseRecoveryCode(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r == '-' || r == ' ':
			continue
		case r == 'o':
			r = '0'
		case r == 'i' || r == 'l':
			r = '1'
		case !strings.ContainsRune(recoveryAlphabet, r):
			return ""
		}
		b.WriteRune(r)
	}
	return b.String()
}

func hashRecoveryCode(norm string, key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("loa-recovery-code:" + norm))
	return hex.EncodeToString(m.Sum(nil))
}
