package api

import (
	"context"
	"strings"

	"github.com/loa-hub/loa/producer/broadcast"
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
	if !ok {
		return ""
	}
	return n.account(ctx, acc)
}

// account is the name of the official with account id acc ("" when it is
// not an official's).
func (n *officialNames) account(ctx context.Context, acc string) string {
	if acc == "" {
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

// article adds to v the names of the officials who wrote, submitted and
// approved it.
func (n *officialNames) article(ctx context.Context, v *articleView) {
	v.CreatedByName, v.SubmittedByName, v.ApprovedByName = n.account(ctx, v.CreatedBy), n.account(ctx, v.SubmittedBy), n.account(ctx, v.ApprovedBy)
}

// broadcast adds to v the names of the officials who drafted, submitted
// and decided it.
func (n *officialNames) broadcast(ctx context.Context, v *broadcastView) {
	v.CreatedByName, v.SubmittedByName, v.DecidedByName = n.account(ctx, v.CreatedBy), n.account(ctx, v.SubmittedBy), n.account(ctx, v.DecidedBy)
}

// namedEvent is a step of a broadcast's history with its official's name.
type namedEvent struct {
	broadcast.Event
	ActorName string `json:"actor_name,omitempty"`
}

// events names the officials of a broadcast's history.
func (n *officialNames) events(ctx context.Context, evs []broadcast.Event) []namedEvent {
	out := make([]namedEvent, len(evs))
	for i, e := range evs {
		out[i] = namedEvent{Event: e, ActorName: n.account(ctx, e.Actor)}
	}
	return out
}
