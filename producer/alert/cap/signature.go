package cap

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/big"
	"slices"
	"sort"
	"strings"
)

// ErrSignature: the alert's sender must sign, and the alert is unsigned
// or its XML signature does not verify against the sender's certificates.
var ErrSignature = errors.New("cap: signature")

// The algorithms Verify accepts. SHA-1 is not among them: a signature is
// only worth checking if it cannot be forged.
const (
	algExcC14N     = "http://www.w3.org/2001/10/xml-exc-c14n#"
	algC14N        = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
	algEnveloped   = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
	algSHA256      = "http://www.w3.org/2001/04/xmlenc#sha256"
	algSHA384      = "http://www.w3.org/2001/04/xmldsig-more#sha384"
	algSHA512      = "http://www.w3.org/2001/04/xmlenc#sha512"
	algRSASHA256   = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	algRSASHA384   = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
	algRSASHA512   = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
	algECDSASHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
	algECDSASHA384 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
	algECDSASHA512 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"
	nsXML          = "http://www.w3.org/XML/1998/namespace"
)

// Signers are the senders whose alerts must carry a valid XML signature,
// with the certificates their signatures are checked against. A
// certificate's public key is what is trusted: the <KeyInfo> a document
// carries is ignored, and so are validity dates and chains (the issuer's
// certificate is configured, not discovered). The zero value requires no
// signatures. It is safe for concurrent use once built.
type Signers struct {
	certs map[string][]*x509.Certificate // by sender
}

// AddPEM trusts every certificate in pemData for sender's alerts.
func (s *Signers) AddPEM(sender string, pemData []byte) error {
	n := 0
	for {
		var b *pem.Block
		b, pemData = pem.Decode(pemData)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return fmt.Errorf("cap: signer %s: %w", sender, err)
		}
		switch c.PublicKey.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey:
		default:
			return fmt.Errorf("cap: signer %s: a %T key cannot check CAP signatures", sender, c.PublicKey)
		}
		if s.certs == nil {
			s.certs = map[string][]*x509.Certificate{}
		}
		s.certs[sender] = append(s.certs[sender], c)
		n++
	}
	if n == 0 {
		return fmt.Errorf("cap: signer %s: no certificate in the PEM data", sender)
	}
	return nil
}

// MustSign reports whether sender's alerts must be signed.
func (s *Signers) MustSign(sender string) bool { return s != nil && len(s.certs[sender]) > 0 }

// Senders returns the senders that must sign, sorted.
func (s *Signers) Senders() []string {
	if s == nil {
		return nil
	}
	out := make([]string, 0, len(s.certs))
	for k := range s.certs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// verify checks the enveloped signature of the document data, from
// sender. It accepts what CAP 1.2 prescribes (an enveloped signature,
// child of <alert>, one Reference to the whole document) with exclusive or
// inclusive canonicalisation and RSA or ECDSA over SHA-2. It reads data
// token by token, canonicalising as it goes: the document is not copied
// into a tree.
func (s *Signers) verify(data []byte, sender string) error {
	sig, err := canonicalise(data)
	if err != nil {
		return err
	}
	si, err := sig.signedInfo()
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(sig.digests[si.digestAlg], si.digest) != 1 {
		return errors.New("the document does not match the signature's digest: it was changed after signing")
	}
	canon, err := sig.canonicalSignedInfo(si.c14n)
	if err != nil {
		return err
	}
	for _, c := range s.certs[sender] {
		if checkSignature(c.PublicKey, si.sigAlg, canon, sig.value) == nil {
			return nil
		}
	}
	return fmt.Errorf("the signature was not made with a key configured for %s", sender)
}

// signedInfo is what Verify needs of <SignedInfo>.
type signedInfo struct {
	c14n, sigAlg, digestAlg string
	digest                  []byte
}

// signature is a document seen through its enveloped signature: the
// digests of the document without it, and its <SignedInfo> as tokens.
type signature struct {
	digests map[string][]byte // by digest algorithm URI
	info    []xml.Token       // <SignedInfo>…</SignedInfo>, copied
	infoNS  []nsDecl          // the namespaces in scope at <SignedInfo>
	value   []byte            // <SignatureValue>, decoded
}

type nsDecl struct{ prefix, uri string }

// canonicalise walks data once: it canonicalises the document without
// its <Signature> (exclusive c14n, comments removed, as the enveloped
// transform and the reference to "" ask) into the digests, and keeps the
// small <SignedInfo> and <SignatureValue>.
func canonicalise(data []byte) (*signature, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	hs := map[string]hash.Hash{algSHA256: sha256.New(), algSHA384: sha512.New384(), algSHA512: sha512.New()}
	ws := make([]io.Writer, 0, len(hs))
	for _, h := range hs {
		ws = append(ws, h)
	}
	out := newC14N(io.MultiWriter(ws...), nil)
	sig := &signature{}
	var (
		scopes   = []map[string]string{{"xml": nsXML}} // in-scope declarations, innermost last
		depth    int
		inSig    int // depth inside <Signature>, 0 outside
		inInfo   int
		inValue  bool
		value    strings.Builder
		signed   int
		rootSeen bool
	)
	resolve := func(prefix string) (string, bool) {
		for i := len(scopes) - 1; i >= 0; i-- {
			if u, ok := scopes[i][prefix]; ok {
				return u, true
			}
		}
		return "", prefix == ""
	}
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the document: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			decls := map[string]string{}
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					decls[""] = a.Value
				case a.Name.Space == "xmlns":
					decls[a.Name.Local] = a.Value
				}
			}
			scopes = append(scopes, decls)
			depth++
			uri, _ := resolve(t.Name.Space)
			if depth == 2 && inSig == 0 && t.Name.Local == "Signature" && uri == NamespaceDSig {
				signed++
				inSig = 1
				continue
			}
			if inSig > 0 {
				inSig++
				if t.Name.Local == "SignedInfo" && uri == NamespaceDSig && inSig == 2 {
					inInfo = 1
					seen := map[string]bool{}
					for i := len(scopes) - 2; i >= 0; i-- { // the declarations above <SignedInfo>
						for p, u := range scopes[i] {
							if !seen[p] {
								seen[p] = true
								sig.infoNS = append(sig.infoNS, nsDecl{p, u})
							}
						}
					}
				} else if inInfo > 0 {
					inInfo++
				}
				if inInfo > 0 {
					sig.info = append(sig.info, t.Copy())
				}
				inValue = t.Name.Local == "SignatureValue" && uri == NamespaceDSig && inSig == 2
				continue
			}
			rootSeen = true
			if err := out.start(t, resolve); err != nil {
				return nil, err
			}
		case xml.EndElement:
			depth--
			scopes = scopes[:len(scopes)-1]
			if inSig > 0 {
				if inInfo > 0 {
					sig.info = append(sig.info, t)
					inInfo--
				}
				inSig--
				inValue = false
				continue
			}
			out.end(t)
		case xml.CharData:
			if inSig > 0 {
				if inInfo > 0 {
					sig.info = append(sig.info, t.Copy())
				}
				if inValue {
					value.Write(t)
				}
				continue
			}
			if depth > 0 {
				out.text(t)
			}
		case xml.ProcInst:
			if t.Target == "xml" || inSig > 0 {
				continue
			}
			out.procInst(t, depth, rootSeen)
		case xml.Directive:
			return nil, errors.New("document type declarations are not allowed")
		}
	}
	if signed != 1 {
		return nil, fmt.Errorf("the alert has %d <Signature> elements in the XML-DSig namespace as children of <alert>, want one", signed)
	}
	v, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(value.String()), ""))
	if err != nil || len(v) == 0 {
		return nil, errors.New("<SignatureValue> is not base64")
	}
	sig.value = v
	sig.digests = map[string][]byte{}
	for alg, h := range hs {
		sig.digests[alg] = h.Sum(nil)
	}
	return sig, nil
}

// signedInfo reads the algorithms, the one reference and its digest out
// of <SignedInfo>, refusing what Verify does not accept.
func (s *signature) signedInfo() (signedInfo, error) {
	var (
		si         signedInfo
		refs       int
		transforms []string
		field      string
		digest     strings.Builder
	)
	for _, tok := range s.info {
		switch t := tok.(type) {
		case xml.StartElement:
			field = t.Name.Local
			alg := attr(t, "Algorithm")
			switch t.Name.Local {
			case "CanonicalizationMethod":
				si.c14n = alg
			case "SignatureMethod":
				si.sigAlg = alg
			case "Reference":
				refs++
				if uri := attr(t, "URI"); uri != "" {
					return si, fmt.Errorf("the reference is to %q; a CAP signature covers the whole alert (URI=\"\")", uri)
				}
			case "Transform":
				transforms = append(transforms, alg)
			case "DigestMethod":
				si.digestAlg = alg
			case "InclusiveNamespaces":
				if p := strings.Fields(attr(t, "PrefixList")); len(p) > 0 {
					return si, errors.New("InclusiveNamespaces in the reference's transform are not supported")
				}
			}
		case xml.EndElement:
			field = ""
		case xml.CharData:
			if field == "DigestValue" {
				digest.Write(t)
			}
		}
	}
	switch {
	case refs != 1:
		return si, fmt.Errorf("<SignedInfo> has %d references, want one to the whole alert", refs)
	case !slices.Equal(transforms, []string{algEnveloped, algExcC14N}) && !slices.Equal(transforms, []string{algEnveloped}):
		return si, fmt.Errorf("transforms %v: want the enveloped signature, then exclusive canonicalisation", transforms)
	case si.c14n != algExcC14N && si.c14n != algC14N:
		return si, fmt.Errorf("canonicalisation %q is not supported", si.c14n)
	case s.digests[si.digestAlg] == nil:
		return si, fmt.Errorf("digest %q is not supported (SHA-256, SHA-384, SHA-512)", si.digestAlg)
	}
	if slices.Equal(transforms, []string{algEnveloped}) {
		// Without a canonicalisation transform, inclusive c14n applies to
		// the reference; the exclusive digest computed would not match.
		return si, errors.New("the reference must be canonicalised with exclusive c14n")
	}
	d, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(digest.String()), ""))
	if err != nil {
		return si, errors.New("<DigestValue> is not base64")
	}
	si.digest = d
	return si, nil
}

// canonicalSignedInfo is <SignedInfo> canonicalised with alg: what the
// signature value signs.
func (s *signature) canonicalSignedInfo(alg string) ([]byte, error) {
	var b bytes.Buffer
	var inherited []nsDecl
	if alg == algC14N {
		inherited = s.infoNS
	}
	c := newC14N(&b, inherited)
	scopes := []map[string]string{{"xml": nsXML}}
	for _, d := range s.infoNS {
		scopes[0][d.prefix] = d.uri
	}
	resolve := func(prefix string) (string, bool) {
		for i := len(scopes) - 1; i >= 0; i-- {
			if u, ok := scopes[i][prefix]; ok {
				return u, true
			}
		}
		return "", prefix == ""
	}
	for _, tok := range s.info {
		switch t := tok.(type) {
		case xml.StartElement:
			decls := map[string]string{}
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					decls[""] = a.Value
				case a.Name.Space == "xmlns":
					decls[a.Name.Local] = a.Value
				}
			}
			scopes = append(scopes, decls)
			if err := c.start(t, resolve); err != nil {
				return nil, err
			}
		case xml.EndElement:
			scopes = scopes[:len(scopes)-1]
			c.end(t)
		case xml.CharData:
			c.text(t)
		}
	}
	return b.Bytes(), nil
}

func attr(t xml.StartElement, name string) string {
	for _, a := range t.Attr {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// checkSignature verifies sig over data with key under the signature
// algorithm alg.
func checkSignature(key crypto.PublicKey, alg string, data, sig []byte) error {
	var h crypto.Hash
	switch alg {
	case algRSASHA256, algECDSASHA256:
		h = crypto.SHA256
	case algRSASHA384, algECDSASHA384:
		h = crypto.SHA384
	case algRSASHA512, algECDSASHA512:
		h = crypto.SHA512
	default:
		return fmt.Errorf("signature algorithm %q is not supported", alg)
	}
	hh := h.New()
	hh.Write(data)
	sum := hh.Sum(nil)
	switch k := key.(type) {
	case *rsa.PublicKey:
		if !strings.Contains(alg, "#rsa-") {
			return errors.New("an ECDSA algorithm with an RSA key")
		}
		return rsa.VerifyPKCS1v15(k, h, sum, sig)
	case *ecdsa.PublicKey:
		if !strings.Contains(alg, "#ecdsa-") {
			return errors.New("an RSA algorithm with an ECDSA key")
		}
		// XML-DSig's ECDSA value is r||s, each the size of the curve.
		n := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*n {
			return errors.New("the ECDSA value has the wrong length")
		}
		r, s := new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
		if !ecdsa.Verify(k, sum, r, s) {
			return errors.New("ECDSA verification failed")
		}
		return nil
	}
	return fmt.Errorf("a %T key", key)
}
