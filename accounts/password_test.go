package accounts

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// cheap keeps the tests fast; production uses DefaultArgon2Params.
var cheap = Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLength: 16, KeyLength: 32}

func TestDefaultPasswordPolicy(t *testing.T) {
	p := DefaultPasswordPolicy()
	want := PasswordPolicy{8, true, true, true, true, 5, 90 * 24 * time.Hour}
	if p != want {
		t.Errorf("DefaultPasswordPolicy() = %+v, want %+v", p, want)
	}
	if err := p.Validate(); err != nil {
		t.Errorf("default policy invalid: %v", err)
	}
}

func TestPasswordPolicyValidate(t *testing.T) {
	ok := DefaultPasswordPolicy()
	tests := []struct {
		name   string
		mod    func(*PasswordPolicy)
		reason string
	}{
		{"default", func(*PasswordPolicy) {}, ""},
		{"min length 1", func(p *PasswordPolicy) { p.MinLength = 1 }, ""},
		{"no history, no expiry", func(p *PasswordPolicy) { p.History, p.MaxAge = 0, 0 }, ""},
		{"nothing required", func(p *PasswordPolicy) { *p = PasswordPolicy{MinLength: 12} }, ""},
		{"min length 0", func(p *PasswordPolicy) { p.MinLength = 0 }, "MinLength"},
		{"min length negative", func(p *PasswordPolicy) { p.MinLength = -1 }, "MinLength"},
		{"history negative", func(p *PasswordPolicy) { p.History = -1 }, "History"},
		{"max age negative", func(p *PasswordPolicy) { p.MaxAge = -time.Hour }, "MaxAge"},
		{"zero value", func(p *PasswordPolicy) { *p = PasswordPolicy{} }, "MinLength"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ok
			tt.mod(&p)
			err := p.Validate()
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("Validate() = %v, want an error about %s", err, tt.reason)
			}
			if !strings.HasPrefix(err.Error(), "accounts: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if errors.Is(err, ErrInvalid) {
				t.Errorf("policy error %v wraps ErrInvalid; it is a configuration error", err)
			}
		})
	}
}

func TestPasswordPolicyCheck(t *testing.T) {
	def := DefaultPasswordPolicy()
	tests := []struct {
		name    string
		policy  PasswordPolicy
		pw      string
		missing []string // nil for a valid password
	}{
		{"ascii ok", def, "Abcdef1!", nil},
		{"vietnamese ok", def, "Mật khẩu 1!", nil},
		{"vietnamese upper only via Đ", def, "đĐ@12345", nil},
		{"vietnamese upper Ư", def, "ưƯ#45678", nil},
		{"vietnamese upper Ệ", def, "ệỆ-45678", nil},
		{"exactly min length", def, "Aa1!aaaa", nil},
		{"symbol counts as special", def, "Abcdef1€", nil},
		{"superscript counts as special", def, "Abcdef1²", nil},
		{"non-ascii digit", def, "Abcdef١!", nil},

		{"empty", def, "", []string{"length", "upper", "lower", "digit", "special"}},
		{"too short", def, "Aa1!aaa", []string{"length"}},
		{"no upper", def, "abcdef1!", []string{"upper"}},
		{"no upper vietnamese", def, "mật khẩu 1!", []string{"upper"}},
		{"no lower", def, "ABCDEF1!", []string{"lower"}},
		{"no lower vietnamese", def, "MẬT KHẨU 1!", []string{"lower"}},
		{"no digit", def, "Abcdefg!", []string{"digit"}},
		{"no special", def, "Abcdefg1", []string{"special"}},
		{"space is not special", def, "Abc defg1", []string{"special"}},
		{"vietnamese letters are not special", def, "Ơơăâêôư1", []string{"special"}},
		{"only digits", def, "12345678", []string{"upper", "lower", "special"}},
		{"short and weak", def, "abc", []string{"length", "upper", "digit", "special"}},
		{"invalid utf8 counts nothing", def, "Aa1\xff\xff\xff\xff\xff", []string{"special"}},
		// Length counts characters after NFC: eight precomposed "Ệ"
		// typed as base letter + two combining marks are 8, not 24.
		{"combining counts after nfc", PasswordPolicy{MinLength: 9}, strings.Repeat("E\u0323\u0302", 8), []string{"length"}},
		{"combining reaches length", PasswordPolicy{MinLength: 8}, strings.Repeat("E\u0323\u0302", 8), nil},
		{"relaxed policy", PasswordPolicy{MinLength: 4}, "abcd", nil},
		{"relaxed policy too short", PasswordPolicy{MinLength: 4}, "abc", []string{"length"}},
		{"upper only policy", PasswordPolicy{MinLength: 1, RequireUpper: true}, "Đ", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Check(tt.pw)
			if tt.missing == nil {
				if err != nil {
					t.Fatalf("Check(%q) = %v", tt.pw, err)
				}
				return
			}
			var pe *PasswordError
			if !errors.As(err, &pe) {
				t.Fatalf("Check(%q) = %v, want *PasswordError", tt.pw, err)
			}
			if !reflect.DeepEqual(pe.Missing, tt.missing) {
				t.Errorf("Check(%q).Missing = %q, want %q", tt.pw, pe.Missing, tt.missing)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Check(%q) error does not wrap ErrInvalid", tt.pw)
			}
			if strings.Contains(err.Error(), tt.pw) && tt.pw != "" {
				t.Errorf("error %q repeats the password", err)
			}
		})
	}
}

func TestPasswordErrorMessage(t *testing.T) {
	err := &PasswordError{Missing: []string{"length", "digit"}}
	want := "accounts: invalid password: too short, no digit"
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestArgon2ParamsValidate(t *testing.T) {
	tests := []struct {
		name   string
		params Argon2Params
		reason string
	}{
		{"default", DefaultArgon2Params(), ""},
		{"cheap", cheap, ""},
		{"time 0", Argon2Params{64, 0, 1, 16, 32}, "Time"},
		{"time too high", Argon2Params{64, 65, 1, 16, 32}, "Time"},
		{"threads 0", Argon2Params{64, 1, 0, 16, 32}, "Threads"},
		{"memory below 8 per lane", Argon2Params{15, 1, 2, 16, 32}, "Memory"},
		{"memory too high", Argon2Params{1<<20 + 1, 1, 1, 16, 32}, "Memory"},
		{"salt too short", Argon2Params{64, 1, 1, 7, 32}, "SaltLength"},
		{"salt too long", Argon2Params{64, 1, 1, 65, 32}, "SaltLength"},
		{"key too short", Argon2Params{64, 1, 1, 16, 15}, "KeyLength"},
		{"key too long", Argon2Params{64, 1, 1, 16, 129}, "KeyLength"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.params.Validate()
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.reason) || !strings.HasPrefix(err.Error(), "accounts: ") {
				t.Fatalf("Validate() = %v, want an accounts error about %s", err, tt.reason)
			}
			if _, herr := HashPasswordWith("Abcdef1!", tt.params); herr == nil {
				t.Errorf("HashPasswordWith accepted params %+v", tt.params)
			}
		})
	}
}

func TestHashPasswordRoundTrip(t *testing.T) {
	tests := []struct {
		name, pw, verify string
		want             bool
	}{
		{"same", "Abcdef1!", "Abcdef1!", true},
		{"vietnamese", "Mật khẩu 1!", "Mật khẩu 1!", true},
		{"vietnamese typed with combining marks", "Mật khẩu 1!", "Ma\u0323\u0302t kha\u0302\u0309u 1!", true},
		{"wrong", "Abcdef1!", "Abcdef1?", false},
		{"case differs", "Abcdef1!", "abcdef1!", false},
		{"prefix", "Abcdef1!", "Abcdef1", false},
		{"empty guess", "Abcdef1!", "", false},
		{"diacritics differ", "Mật khẩu 1!", "Mat khau 1!", false},
		{"trailing space matters", "Abcdef1!", "Abcdef1! ", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := HashPasswordWith(tt.pw, cheap)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
				t.Errorf("hash %q has the wrong header", h)
			}
			ok, err := VerifyPassword(h, tt.verify)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.want {
				t.Errorf("VerifyPassword(hash of %q, %q) = %v, want %v", tt.pw, tt.verify, ok, tt.want)
			}
		})
	}
}

func TestHashPasswordSalted(t *testing.T) {
	a, err := HashPasswordWith("Abcdef1!", cheap)
	if err != nil {
		t.Fatal(err)
	}
	b, err := HashPasswordWith("Abcdef1!", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Errorf("two hashes of one password are equal: %q", a)
	}
}

func TestHashPasswordEmpty(t *testing.T) {
	if _, err := HashPasswordWith("", cheap); !errors.Is(err, ErrInvalid) {
		t.Errorf("HashPasswordWith(\"\") error = %v, want ErrInvalid", err)
	}
}

// One round trip at production cost, to prove the defaults work and the
// encoded string carries them.
func TestHashPasswordDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB argon2id")
	}
	h, err := HashPassword("Abcdef1!")
	if err != nil {
		t.Fatal(err)
	}
	params, salt, key, err := parseHash(h)
	if err != nil {
		t.Fatal(err)
	}
	d := DefaultArgon2Params()
	if params != d || len(salt) != int(d.SaltLength) || len(key) != int(d.KeyLength) {
		t.Errorf("parsed %+v (salt %d, key %d), want %+v", params, len(salt), len(key), d)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Errorf("hash %q has the wrong header", h)
	}
	if ok, err := VerifyPassword(h, "Abcdef1!"); !ok || err != nil {
		t.Errorf("VerifyPassword = %v, %v", ok, err)
	}
	DummyVerify("Abcdef1!") // must not panic
}

// DummyVerify only equalises timing if its hash costs what a default hash
// costs.
func TestDummyHashMatchesDefaults(t *testing.T) {
	params, _, _, err := parseHash(dummyHash)
	if err != nil {
		t.Fatal(err)
	}
	if params != DefaultArgon2Params() {
		t.Errorf("dummy hash params %+v, want DefaultArgon2Params %+v", params, DefaultArgon2Params())
	}
}

func TestVerifyPasswordMalformed(t *testing.T) {
	good, err := HashPasswordWith("Abcdef1!", cheap)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(good, "$") // "", argon2id, v=19, params, salt, key
	join := func(parts ...string) string { return strings.Join(parts, "$") }
	tests := []struct {
		name    string
		encoded string
	}{
		{"empty", ""},
		{"garbage", "not a hash"},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", join("", "argon2i", f[2], f[3], f[4], f[5])},
		{"argon2d", join("", "argon2d", f[2], f[3], f[4], f[5])},
		{"no leading dollar", strings.TrimPrefix(good, "$")},
		{"too few fields", join("", f[1], f[2], f[3], f[4])},
		{"too many fields", good + "$extra"},
		{"missing version", join("", f[1], f[3], f[4], f[5])},
		{"version 16", join("", f[1], "v=16", f[3], f[4], f[5])},
		{"params out of order", join("", f[1], f[2], "t=1,m=64,p=1", f[4], f[5])},
		{"params missing one", join("", f[1], f[2], "m=64,t=1", f[4], f[5])},
		{"params extra", join("", f[1], f[2], "m=64,t=1,p=1,k=0", f[4], f[5])},
		{"param not a number", join("", f[1], f[2], "m=x,t=1,p=1", f[4], f[5])},
		{"param negative", join("", f[1], f[2], "m=64,t=-1,p=1", f[4], f[5])},
		{"param signed", join("", f[1], f[2], "m=+64,t=1,p=1", f[4], f[5])},
		{"param overflows uint32", join("", f[1], f[2], "m=4294967296,t=1,p=1", f[4], f[5])},
		{"threads overflow uint8", join("", f[1], f[2], "m=64,t=1,p=256", f[4], f[5])},
		{"time zero", join("", f[1], f[2], "m=64,t=0,p=1", f[4], f[5])},
		{"threads zero", join("", f[1], f[2], "m=64,t=1,p=0", f[4], f[5])},
		{"memory absurd", join("", f[1], f[2], "m=4294967295,t=1,p=1", f[4], f[5])},
		{"time absurd", join("", f[1], f[2], "m=64,t=100000,p=1", f[4], f[5])},
		{"salt not base64", join("", f[1], f[2], f[3], "!!!!", f[5])},
		{"salt padded", join("", f[1], f[2], f[3], f[4]+"==", f[5])},
		{"salt too short", join("", f[1], f[2], f[3], "YWJj", f[5])},
		{"key not base64", join("", f[1], f[2], f[3], f[4], "@@@@")},
		{"key empty", join("", f[1], f[2], f[3], f[4], "")},
		{"key too short", join("", f[1], f[2], f[3], f[4], "YWJjZGVmZ2g")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := VerifyPassword(tt.encoded, "Abcdef1!")
			if ok {
				t.Errorf("VerifyPassword(%q) = true", tt.encoded)
			}
			if !errors.Is(err, ErrMalformedHash) {
				t.Errorf("VerifyPassword(%q) error = %v, want ErrMalformedHash", tt.encoded, err)
			}
			if errors.Is(err, ErrInvalid) {
				t.Errorf("malformed hash error %v wraps ErrInvalid", err)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "accounts: verify password: ") {
				t.Errorf("error %q lacks the accounts prefix", err)
			}
		})
	}
}

// A key one byte off must not verify: the comparison covers every byte.
func TestVerifyPasswordTamperedKey(t *testing.T) {
	h, err := HashPasswordWith("Abcdef1!", cheap)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(h, "$")
	key, err := b64.DecodeString(f[5])
	if err != nil {
		t.Fatal(err)
	}
	key[len(key)-1] ^= 1
	f[5] = b64.EncodeToString(key)
	if ok, err := VerifyPassword(strings.Join(f, "$"), "Abcdef1!"); ok || err != nil {
		t.Errorf("tampered hash: VerifyPassword = %v, %v; want false, nil", ok, err)
	}
}

func TestPasswordPolicyReused(t *testing.T) {
	hash := func(pw string) string {
		t.Helper()
		h, err := HashPasswordWith(pw, cheap)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	// Newest first: the current password is history[0].
	history := []string{hash("Pass-6"), hash("Pass-5"), hash("Pass-4"), hash("Pass-3"), hash("Pass-2"), hash("Pass-1")}
	def := DefaultPasswordPolicy() // History 5
	tests := []struct {
		name    string
		policy  PasswordPolicy
		pw      string
		history []string
		want    bool
		wantErr bool
	}{
		{"current", def, "Pass-6", history, true, false},
		{"fifth newest", def, "Pass-2", history, true, false},
		{"sixth newest is old enough", def, "Pass-1", history, false, false},
		{"new", def, "Pass-7", history, false, false},
		{"diacritic variant is new", def, "Pâss-6", history, false, false},
		{"history disabled", PasswordPolicy{MinLength: 1}, "Pass-6", history, false, false},
		{"history longer than stored", PasswordPolicy{History: 10}, "Pass-1", history, true, false},
		{"negative history", PasswordPolicy{History: -1}, "Pass-6", history, false, false},
		{"no history", def, "Pass-6", nil, false, false},
		{"malformed entry, later match", def, "Pass-5", []string{"junk", history[1]}, true, false},
		{"malformed entry, no match", def, "Pass-9", []string{"junk", history[1]}, false, true},
		{"malformed beyond window ignored", PasswordPolicy{History: 1}, "Pass-9", []string{history[0], "junk"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.policy.Reused(tt.pw, tt.history)
			if got != tt.want {
				t.Errorf("Reused(%q) = %v, want %v", tt.pw, got, tt.want)
			}
			if tt.wantErr != (err != nil) {
				t.Errorf("Reused(%q) error = %v, wantErr %v", tt.pw, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrMalformedHash) {
				t.Errorf("error %v does not wrap ErrMalformedHash", err)
			}
		})
	}
}

func TestPasswordPolicyExpired(t *testing.T) {
	changed := time.Date(2025, time.March, 1, 8, 0, 0, 0, time.FixedZone("ICT", 7*3600))
	maxAge := 90 * 24 * time.Hour
	def := DefaultPasswordPolicy()
	tests := []struct {
		name      string
		policy    PasswordPolicy
		changedAt time.Time
		now       time.Time
		want      bool
	}{
		{"just changed", def, changed, changed, false},
		{"a day old", def, changed, changed.Add(24 * time.Hour), false},
		{"one nanosecond before", def, changed, changed.Add(maxAge - 1), false},
		{"exactly max age", def, changed, changed.Add(maxAge), true},
		{"after max age", def, changed, changed.Add(maxAge + time.Second), true},
		{"same instant other zone", def, changed, changed.Add(maxAge).UTC(), true},
		{"clock behind change", def, changed, changed.Add(-time.Hour), false},
		{"unknown change time", def, time.Time{}, changed, true},
		{"no max age", PasswordPolicy{MinLength: 8}, changed, changed.Add(10 * 365 * 24 * time.Hour), false},
		{"no max age, unknown change", PasswordPolicy{MinLength: 8}, time.Time{}, changed, false},
		{"short max age", PasswordPolicy{MaxAge: time.Hour}, changed, changed.Add(time.Hour), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.policy.Expired(tt.changedAt, tt.now); got != tt.want {
				t.Errorf("Expired(%v, %v) = %v, want %v", tt.changedAt, tt.now, got, tt.want)
			}
		})
	}
}
