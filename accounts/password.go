package accounts

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// PasswordPolicy is the rule set passwords are held to (regulation 001:8.1:
// at least 8 characters with upper and lower case, a digit and a special
// character; changed at least every 90 days; earlier passwords not
// reused). It is a plain value, safe to copy and to use concurrently.
type PasswordPolicy struct {
	// MinLength is the least number of characters (Unicode code points
	// after NFC normalisation, so "ệ" is one however it was typed).
	MinLength int
	// RequireUpper asks for an upper- or title-case letter in any script;
	// Vietnamese "Đ", "Ư", "Ệ" count.
	RequireUpper bool
	// RequireLower asks for a lower-case letter in any script.
	RequireLower bool
	// RequireDigit asks for a decimal digit (Unicode category Nd).
	RequireDigit bool
	// RequireSpecial asks for a punctuation mark or symbol (Unicode
	// categories P and S, and numbers other than decimal digits such as
	// "²"). Spaces, letters without case and invisible formatting
	// characters do not count.
	RequireSpecial bool
	// History is how many of the account's most recent password hashes,
	// the current one included, a new password must differ from. 0
	// disables the check.
	History int
	// MaxAge is how long a password stays valid after it was set. 0 means
	// passwords never expire.
	MaxAge time.Duration
}

// MaxPasswordBytes is the longest password accepted anywhere — at
// registration, change, reset and sign-in — in bytes of UTF-8 as sent.
// It bounds the work a stranger can make one request cost, and is far
// above any passphrase a person types.
const MaxPasswordBytes = 1024

// DefaultPasswordPolicy returns the province's policy: 8 characters, every
// character class required, the last 5 passwords not reused, and a change
// every 90 days.
func DefaultPasswordPolicy() PasswordPolicy {
	return PasswordPolicy{
		MinLength:      8,
		RequireUpper:   true,
		RequireLower:   true,
		RequireDigit:   true,
		RequireSpecial: true,
		History:        5,
		MaxAge:         90 * 24 * time.Hour,
	}
}

// Validate reports whether p is usable as configuration: MinLength at
// least 1, History and MaxAge not negative. The error names the first bad
// field; it does not wrap ErrInvalid, because a bad policy is the
// operator's mistake, not the user's.
func (p PasswordPolicy) Validate() error {
	switch {
	case p.MinLength < 1:
		return fmt.Errorf("accounts: password policy: MinLength must be at least 1, got %d", p.MinLength)
	case p.History < 0:
		return fmt.Errorf("accounts: password policy: History must not be negative, got %d", p.History)
	case p.MaxAge < 0:
		return fmt.Errorf("accounts: password policy: MaxAge must not be negative, got %v", p.MaxAge)
	}
	return nil
}

// PasswordError reports every rule of a PasswordPolicy a password breaks,
// so that a form can show them all at once. It wraps ErrInvalid.
type PasswordError struct {
	// Missing lists the broken rules, in this order and with these stable
	// names, which clients translate: "length", "too_long", "upper",
	// "lower", "digit", "special".
	Missing []string
}

// Error describes the broken rules in English.
func (e *PasswordError) Error() string {
	desc := map[string]string{
		"length":   "too short",
		"too_long": fmt.Sprintf("longer than %d bytes", MaxPasswordBytes),
		"upper":    "no upper-case letter",
		"lower":    "no lower-case letter",
		"digit":    "no digit",
		"special":  "no special character",
	}
	parts := make([]string, len(e.Missing))
	for i, m := range e.Missing {
		if d, ok := desc[m]; ok {
			parts[i] = d
		} else {
			parts[i] = m
		}
	}
	return "accounts: invalid password: " + strings.Join(parts, ", ")
}

// Unwrap returns ErrInvalid, so that errors.Is(err, ErrInvalid) holds.
func (e *PasswordError) Unwrap() error { return ErrInvalid }

// Check returns nil when pw satisfies every rule of p, and otherwise a
// *PasswordError listing each rule it breaks. pw is NFC-normalised before
// counting. Bytes that are not valid UTF-8 count toward the length but
// toward no character class. A password over MaxPasswordBytes breaks
// "too_long" and is not examined further. Check does not consult History
// or MaxAge; see Reused and Expired.
func (p PasswordPolicy) Check(pw string) error {
	if len(pw) > MaxPasswordBytes {
		return &PasswordError{Missing: []string{"too_long"}}
	}
	pw = norm.NFC.String(pw)
	var upper, lower, digit, special bool
	for _, r := range pw {
		switch {
		case r == utf8.RuneError:
		case unicode.IsUpper(r) || unicode.IsTitle(r):
			upper = true
		case unicode.IsLower(r):
			lower = true
		case unicode.IsDigit(r):
			digit = true
		case unicode.IsPunct(r) || unicode.IsSymbol(r) || unicode.IsNumber(r):
			special = true
		}
	}
	var missing []string
	if utf8.RuneCountInString(pw) < p.MinLength {
		missing = append(missing, "length")
	}
	if p.RequireUpper && !upper {
		missing = append(missing, "upper")
	}
	if p.RequireLower && !lower {
		missing = append(missing, "lower")
	}
	if p.RequireDigit && !digit {
		missing = append(missing, "digit")
	}
	if p.RequireSpecial && !special {
		missing = append(missing, "special")
	}
	if missing != nil {
		return &PasswordError{Missing: missing}
	}
	return nil
}

// Reused reports whether pw matches one of the first p.History hashes in
// history, which holds the account's password hashes newest first, the
// current password's included. It stops at the first match. A hash that
// does not parse is skipped; if no other hash matches, the error (wrapping
// ErrMalformedHash) is returned with false. Each comparison costs a full
// argon2id derivation.
func (p PasswordPolicy) Reused(pw string, history []string) (bool, error) {
	n := min(p.History, len(history))
	var firstErr error
	for _, h := range history[:max(n, 0)] {
		ok, err := VerifyPassword(h, pw)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("accounts: check password history: %w", err)
			}
			continue
		}
		if ok {
			return true, nil
		}
	}
	return false, firstErr
}

// Expired reports whether a password set at changedAt must be changed at
// now: true from changedAt + MaxAge on (the boundary instant included).
// A zero changedAt, a password whose age is unknown, is expired. It is
// never expired when MaxAge is 0.
func (p PasswordPolicy) Expired(changedAt, now time.Time) bool {
	if p.MaxAge <= 0 {
		return false
	}
	return !now.Before(changedAt.Add(p.MaxAge))
}

// ErrMalformedHash is wrapped by the errors VerifyPassword and Reused
// return for an encoded hash that does not parse or carries unacceptable
// parameters. It means stored data is corrupt or foreign, a server-side
// fault, and so is deliberately not ErrInvalid.
var ErrMalformedHash = errors.New("malformed password hash")

// Argon2Params are the cost parameters of argon2id (RFC 9106). They are
// recorded in every encoded hash, so changing the defaults affects only
// hashes made afterwards.
type Argon2Params struct {
	Memory     uint32 // KiB
	Time       uint32 // passes over memory
	Threads    uint8  // lanes
	SaltLength uint32 // bytes
	KeyLength  uint32 // bytes
}

// Limits for parameters, checked by Validate and when parsing a stored
// hash so that a corrupt or hostile hash cannot make a login exhaust the
// host.
const (
	maxMemoryKiB = 1 << 20 // 1 GiB
	maxTime      = 64
	minSaltLen   = 8
	maxSaltLen   = 64
	minKeyLen    = 16
	maxKeyLen    = 128
)

// DefaultArgon2Params returns the parameters HashPassword uses: 64 MiB,
// 3 passes, 2 lanes, a 16-byte salt and a 32-byte key. That is RFC 9106's
// second recommended option (for memory-constrained hosts) with 2 lanes
// instead of 4, and well above OWASP's minimum of 19 MiB and 2 passes.
func DefaultArgon2Params() Argon2Params {
	return Argon2Params{Memory: 64 * 1024, Time: 3, Threads: 2, SaltLength: 16, KeyLength: 32}
}

// Validate reports whether a is usable: Time 1-64, Threads at least 1,
// Memory at least 8 KiB per lane and at most 1 GiB, SaltLength 8-64 and
// KeyLength 16-128 bytes.
func (a Argon2Params) Validate() error {
	if err := a.check(); err != nil {
		return fmt.Errorf("accounts: argon2 params: %w", err)
	}
	return nil
}

// check is Validate without the package prefix, for callers that add
// their own.
func (a Argon2Params) check() error {
	switch {
	case a.Time < 1 || a.Time > maxTime:
		return fmt.Errorf("parameter Time must be 1-%d, got %d", maxTime, a.Time)
	case a.Threads < 1:
		return errors.New("parameter Threads must be at least 1")
	case a.Memory < 8*uint32(a.Threads) || a.Memory > maxMemoryKiB:
		return fmt.Errorf("parameter Memory must be %d-%d KiB, got %d", 8*uint32(a.Threads), maxMemoryKiB, a.Memory)
	case a.SaltLength < minSaltLen || a.SaltLength > maxSaltLen:
		return fmt.Errorf("parameter SaltLength must be %d-%d, got %d", minSaltLen, maxSaltLen, a.SaltLength)
	case a.KeyLength < minKeyLen || a.KeyLength > maxKeyLen:
		return fmt.Errorf("parameter KeyLength must be %d-%d, got %d", minKeyLen, maxKeyLen, a.KeyLength)
	}
	return nil
}

// HashPassword hashes pw with argon2id under DefaultArgon2Params and a
// fresh random salt; see HashPasswordWith.
func HashPassword(pw string) (string, error) {
	return HashPasswordWith(pw, DefaultArgon2Params())
}

// HashPasswordWith hashes pw with argon2id under params and a fresh random
// salt, and returns the PHC string format
//
//	$argon2id$v=19$m=65536,t=3,p=2$<salt>$<key>
//
// with salt and key in unpadded standard base64. pw is NFC-normalised
// first, so a Vietnamese password verifies however its diacritics were
// typed. It does not apply a PasswordPolicy. Errors: an empty pw (wrapping
// ErrInvalid), invalid params, or a failing random source.
func HashPasswordWith(pw string, params Argon2Params) (string, error) {
	if pw == "" {
		return "", fmt.Errorf("accounts: hash password: %w password: empty", ErrInvalid)
	}
	if err := params.check(); err != nil {
		return "", fmt.Errorf("accounts: hash password: params: %w", err)
	}
	salt := make([]byte, params.SaltLength)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("accounts: hash password: read salt: %w", err)
	}
	key := argon2.IDKey([]byte(norm.NFC.String(pw)), salt, params.Time, params.Memory, params.Threads, params.KeyLength)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, params.Memory, params.Time, params.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// b64 is the PHC string format's base64: standard alphabet, no padding,
// and (Strict) no stray bits, so one hash has one spelling.
var b64 = base64.RawStdEncoding.Strict()

// VerifyPassword reports whether pw is the password encoded was made from.
// encoded is a PHC string as HashPasswordWith returns; its parameters are
// read from it, so hashes made under older defaults still verify. The
// comparison of derived keys takes constant time. A malformed encoded
// string, an algorithm other than argon2id, a version other than 19 or
// parameters outside Argon2Params.Validate's limits yield false and an
// error wrapping ErrMalformedHash.
func VerifyPassword(encoded, pw string) (bool, error) {
	params, salt, want, err := parseHash(encoded)
	if err != nil {
		return false, fmt.Errorf("accounts: verify password: %w", err)
	}
	got := argon2.IDKey([]byte(norm.NFC.String(pw)), salt, params.Time, params.Memory, params.Threads, params.KeyLength)
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummyHash is a well-formed hash under DefaultArgon2Params whose key
// matches no password. The test suite keeps its parameters in step with
// the defaults.
const dummyHash = "$argon2id$v=19$m=65536,t=3,p=2$bG9hLWR1bW15LXNhbHQhIQ$bG9hIGR1bW15IGtleTogbWF0Y2hlcyBubyBvbmUhISE"

// DummyVerify does the work of VerifyPassword against a hash made with
// DefaultArgon2Params and discards the result. Call it when a sign-in names
// an account that does not exist, so that the response takes as long as
// for one that does and does not reveal which accounts exist. Hashes made
// under other parameters cost differently; rehash them on sign-in.
func DummyVerify(pw string) {
	_, _ = VerifyPassword(dummyHash, pw)
}

// parseHash splits a PHC argon2id string into its parameters, salt and
// key. Every error wraps ErrMalformedHash.
func parseHash(encoded string) (Argon2Params, []byte, []byte, error) {
	var p Argon2Params
	fields := strings.Split(encoded, "$")
	if len(fields) != 6 || fields[0] != "" {
		return p, nil, nil, fmt.Errorf("%w: want $argon2id$v=19$m=…,t=…,p=…$salt$key", ErrMalformedHash)
	}
	if fields[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("%w: algorithm %q, want argon2id", ErrMalformedHash, fields[1])
	}
	if fields[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("%w: version %q, want v=%d", ErrMalformedHash, fields[2], argon2.Version)
	}
	kv := strings.Split(fields[3], ",")
	if len(kv) != 3 {
		return p, nil, nil, fmt.Errorf("%w: parameters %q, want m=…,t=…,p=…", ErrMalformedHash, fields[3])
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(kv[i], name+"=")
		if !ok {
			return p, nil, nil, fmt.Errorf("%w: parameters %q, want m=…,t=…,p=…", ErrMalformedHash, fields[3])
		}
		bits := 32
		if name == "p" {
			bits = 8
		}
		n, err := strconv.ParseUint(v, 10, bits)
		if err != nil {
			return p, nil, nil, fmt.Errorf("%w: parameter %s=%q", ErrMalformedHash, name, v)
		}
		vals[i] = n
	}
	salt, err := b64.DecodeString(fields[4])
	if err != nil {
		return p, nil, nil, fmt.Errorf("%w: salt is not base64", ErrMalformedHash)
	}
	key, err := b64.DecodeString(fields[5])
	if err != nil {
		return p, nil, nil, fmt.Errorf("%w: key is not base64", ErrMalformedHash)
	}
	p = Argon2Params{
		Memory:     uint32(vals[0]),
		Time:       uint32(vals[1]),
		Threads:    uint8(vals[2]),
		SaltLength: uint32(len(salt)),
		KeyLength:  uint32(len(key)),
	}
	if err := p.check(); err != nil {
		return p, nil, nil, fmt.Errorf("%w: %v", ErrMalformedHash, err)
	}
	return p, salt, key, nil
}
