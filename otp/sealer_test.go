package otp

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, SealerKeySize) }

func mustSealer(t *testing.T, key []byte) *Sealer {
	t.Helper()
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealer(t *testing.T) {
	s := mustSealer(t, testKey(7))
	pt := []byte("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
	ad := []byte("totp:factor-42")

	sealed, err := s.Seal(pt, ad)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != 12+len(pt)+16 {
		t.Fatalf("sealed length %d", len(sealed))
	}
	if bytes.Contains(sealed, pt) {
		t.Fatal("plaintext visible in sealed output")
	}
	got, err := s.Open(sealed, ad)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("round trip: %q, %v", got, err)
	}
	again, _ := s.Seal(pt, ad)
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals are identical: nonce reused")
	}

	t.Run("tamper", func(t *testing.T) {
		for i := range sealed {
			bad := bytes.Clone(sealed)
			bad[i] ^= 0x01
			if _, err := s.Open(bad, ad); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("byte %d flipped: %v", i, err)
			}
		}
		for _, n := range []int{0, 11, 12, 27, len(sealed) - 1} {
			if _, err := s.Open(sealed[:n], ad); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("truncated to %d: %v", n, err)
			}
		}
	})
	t.Run("wrong associated data", func(t *testing.T) {
		for _, other := range [][]byte{nil, []byte("totp:factor-43")} {
			if _, err := s.Open(sealed, other); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("AD %q: %v", other, err)
			}
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		if _, err := mustSealer(t, testKey(8)).Open(sealed, ad); !errors.Is(err, ErrDecrypt) {
			t.Fatal(err)
		}
	})
	t.Run("key size", func(t *testing.T) {
		for _, n := range []int{0, 16, 24, 31, 33, 64} {
			if _, err := NewSealer(make([]byte, n)); err == nil {
				t.Errorf("%d-byte key accepted", n)
			}
		}
	})
}

func TestLoadSealerKeyFile(t *testing.T) {
	key := testKey(0)
	for i := range key {
		key[i] = byte(i * 7)
	}
	// Raw keys are arbitrary bytes: one that starts and ends with
	// "whitespace" must not be trimmed.
	key[0], key[31] = ' ', '\n'
	b64 := base64.StdEncoding.EncodeToString(key)
	hx := hex.EncodeToString(key)
	good := map[string][]byte{
		"raw":              key,
		"hex":              []byte(hx),
		"hex newline":      []byte(hx + "\n"),
		"hex upper spaced": []byte("  " + strings.ToUpper(hx) + " \r\n"),
		"base64":           []byte(b64),
		"base64 newline":   []byte(b64 + "\n"),
	}
	dir := t.TempDir()
	sealed, _ := mustSealer(t, key).Seal([]byte("secret"), nil)
	for name, content := range good {
		p := filepath.Join(dir, "good")
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := LoadSealerKeyFile(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := s.Open(sealed, nil); err != nil {
			t.Fatalf("%s: loaded a different key", name)
		}
	}
	bad := map[string][]byte{
		"empty":        nil,
		"short raw":    key[:31],
		"long raw":     append(bytes.Clone(key), 0, 0),
		"short hex":    []byte(hx[:62]),
		"hex non-hex":  []byte("zz" + hx[2:]),
		"base64 of 16": []byte(base64.StdEncoding.EncodeToString(key[:16])),
		"passphrase":   []byte("correct horse battery staple, please\n"),
	}
	for name, content := range bad {
		p := filepath.Join(dir, "bad")
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadSealerKeyFile(p)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if len(content) > 4 && bytes.Contains([]byte(err.Error()), content[:len(content)/2]) {
			t.Errorf("%s: error reveals the file content: %v", name, err)
		}
	}
	if _, err := LoadSealerKeyFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file accepted")
	}
}
