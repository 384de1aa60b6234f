package cap

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The signed documents in testdata were signed with xmlsec1 (the XML
// Security Library), an independent implementation of XML signatures:
//
//	xmlsec1 --sign --privkey-pem rsa.key,rsa.pem --output signed_rsa_exc_c14n.xml template.xml
//
// signed_rsa_exc_c14n.xml as CAP 1.2 prescribes (RSA-SHA256, exclusive
// c14n); signed_ecdsa_prefixed.xml with ECDSA-SHA256, a "cap:" prefix, an
// unused namespace on <alert>, inclusive c14n of <SignedInfo>, and text
// with escapes, CDATA and a CRLF. The keys are throwaway test keys; only
// their certificates are kept, in testdata/signers.

func signers(t *testing.T, m map[string]string) *Signers {
	t.Helper()
	var s Signers
	for sender, file := range m {
		b, err := os.ReadFile(filepath.Join("testdata", "signers", file))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AddPEM(sender, b); err != nil {
			t.Fatal(err)
		}
	}
	return &s
}

func TestSignatures(t *testing.T) {
	trusted := signers(t, map[string]string{"pctt@quangnam.gov.vn": "pctt.pem", "kttv@quangnam.gov.vn": "kttv.pem"})
	wrongKey := signers(t, map[string]string{"pctt@quangnam.gov.vn": "other.pem", "kttv@quangnam.gov.vn": "other.pem"})
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rsaDoc, ecDoc, unsigned := read("signed_rsa_exc_c14n.xml"), read("signed_ecdsa_prefixed.xml"), read("scope_public.xml")
	tamper := func(b []byte, old, new string) []byte {
		if !bytes.Contains(b, []byte(old)) {
			t.Fatalf("%q not in the document", old)
		}
		return bytes.Replace(b, []byte(old), []byte(new), 1)
	}
	for _, c := range []struct {
		name    string
		doc     []byte
		signers *Signers
		wantErr string // "" for accepted
	}{
		{"exclusive c14n, RSA", rsaDoc, trusted, ""},
		{"prefixed, ECDSA, inclusive SignedInfo", ecDoc, trusted, ""},
		{"reformatted by a parser: indentation changes", tamper(rsaDoc, "\n  <sender>", "\n    <sender>"), trusted, "changed after signing"},
		{"a changed description", tamper(rsaDoc, "2,8 m", "9,8 m"), trusted, "changed after signing"},
		{"a changed area", tamper(ecDoc, ">20194<", ">20197<"), trusted, "changed after signing"},
		{"another key", rsaDoc, wrongKey, "not made with a key configured"},
		{"a changed signed info", tamper(rsaDoc, `<Reference URI="">`, `<Reference URI="" Id="r">`), trusted, "not made with a key configured"},
		{"unsigned from a sender that must sign", unsigned, trusted, "must be signed"},
		{"a sender that need not sign", rsaDoc, signers(t, map[string]string{"other@example.vn": "other.pem"}), ""},
		{"no signers configured: parsed past", tamper(rsaDoc, "2,8 m", "9,8 m"), nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := Parse(bytes.NewReader(c.doc), Options{Signers: c.signers})
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.wantErr == "" && !a.Signed && c.signers != nil:
				t.Error("not marked signed")
			case c.wantErr != "" && (err == nil || !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("err %v, want ErrSignature %q", err, c.wantErr)
			}
		})
	}
}

// TestSignaturesAgainstXMLSec: documents Loa accepts, xmlsec1 accepts too,
// and a tampered one neither does (skipped where xmlsec1 is not
// installed; deploy/local/up.sh installs it for CI).
func TestSignaturesAgainstXMLSec(t *testing.T) {
	bin, err := exec.LookPath("xmlsec1")
	if err != nil {
		t.Skip("xmlsec1 is not installed")
	}
	for doc, cert := range map[string]string{"signed_rsa_exc_c14n.xml": "pctt.pem", "signed_ecdsa_prefixed.xml": "kttv.pem"} {
		out, err := exec.Command(bin, "--verify", "--pubkey-cert-pem", filepath.Join("testdata", "signers", cert), filepath.Join("testdata", doc)).CombinedOutput()
		if err != nil {
			t.Errorf("xmlsec1 refuses %s: %v\n%s", doc, err, out)
		}
	}
	b, _ := os.ReadFile(filepath.Join("testdata", "signed_rsa_exc_c14n.xml"))
	bad := filepath.Join(t.TempDir(), "bad.xml")
	os.WriteFile(bad, bytes.Replace(b, []byte("2,8 m"), []byte("9,8 m"), 1), 0o644)
	if out, err := exec.Command(bin, "--verify", "--pubkey-cert-pem", filepath.Join("testdata", "signers", "pctt.pem"), bad).CombinedOutput(); err == nil {
		t.Errorf("xmlsec1 accepts a tampered document:\n%s", out)
	}
}
