package api

import (
	"context"
	"strings"
)

// officialNames names the officials behind principal ids within one
// answer, reading each account once.
type officialNames struct {
	h    *handler
	seen map[string]string
}

func (h *handler) names() *officialNames { return &officialNames{h: h, seen: map[string]string{}} }

// of is the name of the official whose session principal is id
// ("session:<account id>", or a sender "loa:session:<account id>"): their
// full name and user name; "" for anyone else (an API key, a CAP sender).
func (n *officialNames) of(ctx context.Context, id string) string {
	acc, ok := strings.CutPrefix(strings.TrimPrefix(id, "loa:"), sessionPrincipalPrefix)
	if !ok || acc == "" {
		return ""
	}
	if name, ok := n.seen[acc]; ok {
		return name
	}
	name := n.h.officialName(ctx, acc)
	n.seen[acc] = name
	return name
}

// alert adds to v the names of the officials who issued and decided it.
func (n *officialNames) alert(ctx context.Context, v *alertView) {
	v.IssuerName, v.SenderName, v.DecidedByName = n.of(ctx, v.Issuer), n.of(ctx, v.Sender), n.of(ctx, v.DecidedBy)
}
