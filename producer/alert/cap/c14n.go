package cap

import (
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"
)

// c14n writes XML canonically, token by token: exclusive XML
// canonicalisation 1.0 (https://www.w3.org/TR/xml-exc-c14n/) without
// comments, or — given the namespaces in scope at the apex — inclusive
// Canonical XML 1.0 (https://www.w3.org/TR/xml-c14n) of a subtree. It is
// what an XML signature's digest and signature are computed over, so that
// a document reformatted by its parser still verifies.
type c14n struct {
	w         io.Writer
	inclusive bool
	inherited []nsDecl
	rendered  []map[string]string // the namespace context rendered at each open element
	names     []string            // the open elements' qualified names
	err       error
}

func newC14N(w io.Writer, inherited []nsDecl) *c14n {
	return &c14n{w: w, inclusive: inherited != nil, inherited: inherited}
}

func (c *c14n) write(s string) {
	if c.err == nil {
		_, c.err = io.WriteString(c.w, s)
	}
}

func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

// start writes a start tag whose prefixes resolve through resolve.
func (c *c14n) start(t xml.StartElement, resolve func(prefix string) (string, bool)) error {
	parent := map[string]string{}
	if len(c.rendered) > 0 {
		parent = c.rendered[len(c.rendered)-1]
	}
	ctx := make(map[string]string, len(parent)+2)
	for k, v := range parent {
		ctx[k] = v
	}
	// The namespace declarations to consider rendering.
	cand := map[string]string{}
	if c.inclusive {
		if len(c.rendered) == 0 {
			for _, d := range c.inherited {
				if d.prefix != "xml" {
					cand[d.prefix] = d.uri
				}
			}
		}
		for _, a := range t.Attr {
			switch {
			case a.Name.Space == "" && a.Name.Local == "xmlns":
				cand[""] = a.Value
			case a.Name.Space == "xmlns":
				cand[a.Name.Local] = a.Value
			}
		}
	} else {
		used := []string{t.Name.Space}
		for _, a := range t.Attr {
			if a.Name.Space != "" && a.Name.Space != "xmlns" && a.Name.Space != "xml" {
				used = append(used, a.Name.Space)
			}
		}
		for _, p := range used {
			uri, ok := resolve(p)
			if !ok {
				return fmt.Errorf("the prefix %q of <%s> is not declared", p, qname(t.Name))
			}
			cand[p] = uri
		}
	}
	var decls []nsDecl
	for p, uri := range cand {
		if parent[p] == uri { // a missing default is the empty one
			continue
		}
		decls = append(decls, nsDecl{p, uri})
		ctx[p] = uri
	}
	sort.Slice(decls, func(i, j int) bool { return decls[i].prefix < decls[j].prefix })

	type attribute struct{ uri, local, qname, value string }
	var attrs []attribute
	for _, a := range t.Attr {
		if (a.Name.Space == "" && a.Name.Local == "xmlns") || a.Name.Space == "xmlns" {
			continue
		}
		uri := ""
		if a.Name.Space != "" {
			u, ok := resolve(a.Name.Space)
			if !ok {
				return fmt.Errorf("the prefix %q of an attribute of <%s> is not declared", a.Name.Space, qname(t.Name))
			}
			uri = u
		}
		attrs = append(attrs, attribute{uri, a.Name.Local, qname(a.Name), a.Value})
	}
	sort.Slice(attrs, func(i, j int) bool {
		if attrs[i].uri != attrs[j].uri {
			return attrs[i].uri < attrs[j].uri
		}
		return attrs[i].local < attrs[j].local
	})

	name := qname(t.Name)
	c.write("<" + name)
	for _, d := range decls {
		if d.prefix == "" {
			c.write(` xmlns="` + escapeAttr(d.uri) + `"`)
		} else {
			c.write(" xmlns:" + d.prefix + `="` + escapeAttr(d.uri) + `"`)
		}
	}
	for _, a := range attrs {
		c.write(" " + a.qname + `="` + escapeAttr(a.value) + `"`)
	}
	c.write(">")
	c.rendered = append(c.rendered, ctx)
	c.names = append(c.names, name)
	return c.err
}

func (c *c14n) end(xml.EndElement) {
	if len(c.names) == 0 {
		return
	}
	c.write("</" + c.names[len(c.names)-1] + ">")
	c.names = c.names[:len(c.names)-1]
	c.rendered = c.rendered[:len(c.rendered)-1]
}

func (c *c14n) text(t xml.CharData) {
	if len(c.names) == 0 {
		return // whitespace outside the document element is not part of it
	}
	c.write(escapeText(string(t)))
}

// procInst writes a processing instruction; outside the document element
// it is separated from it by a line break.
func (c *c14n) procInst(p xml.ProcInst, depth int, afterRoot bool) {
	s := "<?" + p.Target
	if len(p.Inst) > 0 {
		s += " " + string(p.Inst)
	}
	s += "?>"
	switch {
	case depth > 0:
		c.write(s)
	case afterRoot:
		c.write("\n" + s)
	default:
		c.write(s + "\n")
	}
}

var (
	textEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\r", "&#xD;")
	attrEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", `"`, "&quot;", "\t", "&#x9;", "\n", "&#xA;", "\r", "&#xD;")
)

func escapeText(s string) string { return textEscaper.Replace(s) }
func escapeAttr(s string) string { return attrEscaper.Replace(s) }
