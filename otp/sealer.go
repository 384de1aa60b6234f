package otp

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
)

// SealerKeySize is the AES-256 key length in bytes.
const SealerKeySize = 32

// Sealer encrypts small secrets (TOTP secrets) at rest with AES-256-GCM.
// Sealed output is nonce(12) || ciphertext || tag(16), with a random nonce
// per call; with random nonces one key should seal well under 2^32 messages,
// far above the number of TOTP factors. A Sealer is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for a 32-byte key. The key is not retained
// outside the cipher. Any other length is an error.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != SealerKeySize {
		return nil, fmt.Errorf("otp: sealer: key must be %d bytes, got %d", SealerKeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("otp: sealer: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("otp: sealer: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// LoadSealerKeyFile reads a key file (LOA_SECRET_KEY_FILE) and returns its
// Sealer. The file holds the key as exactly 32 raw bytes, or — ignoring
// surrounding whitespace — as 64 hex characters or as standard base64 of 32
// bytes (e.g. `openssl rand -base64 32`). Errors never contain key material.
func LoadSealerKeyFile(path string) (*Sealer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("otp: load sealer key: %w", err)
	}
	key, err := parseSealerKey(raw)
	if err != nil {
		return nil, fmt.Errorf("otp: load sealer key %s: %w", path, err)
	}
	return NewSealer(key)
}

func parseSealerKey(raw []byte) ([]byte, error) {
	// Raw first: a binary key may well contain bytes that look like
	// whitespace, which trimming would destroy.
	if len(raw) == SealerKeySize {
		return raw, nil
	}
	text := bytes.TrimSpace(raw)
	if len(text) == 2*SealerKeySize {
		key := make([]byte, SealerKeySize)
		if _, err := hex.Decode(key, text); err == nil {
			return key, nil
		}
	}
	key := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	if n, err := base64.StdEncoding.Decode(key, text); err == nil && n == SealerKeySize {
		return key[:n], nil
	}
	return nil, fmt.Errorf("want %d raw bytes, %d hex characters or base64 of %d bytes",
		SealerKeySize, 2*SealerKeySize, SealerKeySize)
}

// Seal encrypts plaintext and binds it to associatedData, which is
// authenticated but not stored: pass something identifying the owner (e.g.
// "totp:" + factorID) so a sealed secret copied to another row fails to
// open. It fails only if the system's random source fails.
func (s *Sealer) Seal(plaintext, associatedData []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	out := make([]byte, ns, ns+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("otp: seal: %w", err)
	}
	return s.aead.Seal(out, out, plaintext, associatedData), nil
}

// Open decrypts what Seal returned for the same associatedData. A wrong key,
// wrong associated data, truncation or any modified byte gives one and the
// same error, without detail.
func (s *Sealer) Open(sealed, associatedData []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < ns+s.aead.Overhead() {
		return nil, ErrDecrypt
	}
	pt, err := s.aead.Open(nil, sealed[:ns], sealed[ns:], associatedData)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}
