package portal

import (
	"html"
	"strings"
	"unicode"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/text/unicode/norm"
)

// policy is the restricted HTML of article bodies: paragraphs, headings,
// emphasis, lists, quotes, simple tables, links (http, https, mailto;
// rel="nofollow noopener") and images (http, https, or the portal's own
// /v1/portal/ paths). Scripts, styles, event handlers, javascript: and
// data: URLs, iframes and forms are removed. bluemonday policies are safe
// for concurrent use once built.
var policy = func() *bluemonday.Policy {
	p := bluemonday.NewPolicy()
	p.AllowElements("p", "br", "hr", "strong", "b", "em", "i", "u", "s", "sub", "sup", "blockquote", "h2", "h3", "h4",
		"ul", "ol", "li", "figure", "figcaption", "table", "thead", "tbody", "tr", "th", "td", "caption")
	p.AllowAttrs("href").OnElements("a")
	p.AllowURLSchemes("http", "https", "mailto")
	p.RequireParseableURLs(true)
	p.AllowRelativeURLs(true)
	p.RequireNoFollowOnLinks(true)
	p.AddTargetBlankToFullyQualifiedLinks(false)
	p.AllowAttrs("src", "alt", "width", "height").OnElements("img")
	p.AllowAttrs("colspan", "rowspan").OnElements("td", "th")
	return p
}()

// Sanitize returns html reduced to the allowed subset, NFC.
func Sanitize(html string) string {
	return norm.NFC.String(strings.TrimSpace(policy.Sanitize(html)))
}

// plain strips all markup (titles, summaries).
var plain = bluemonday.StrictPolicy()

// PlainText returns s without markup, NFC, trimmed: text, not HTML (the
// sanitizer's entities are decoded), to be escaped by whatever renders it.
func PlainText(s string) string {
	return norm.NFC.String(strings.TrimSpace(html.UnescapeString(plain.Sanitize(s))))
}

// Slugify makes a URL slug of a Vietnamese title: lower case ASCII letters
// and digits joined by "-", diacritics dropped (đ → d).
func Slugify(title string) string {
	var b strings.Builder
	dash := false
	for _, r := range norm.NFD.String(strings.ToLower(title)) {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue
		case r == 'đ':
			r = 'd'
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 80 {
			break
		}
	}
	return strings.Trim(b.String(), "-")
}
