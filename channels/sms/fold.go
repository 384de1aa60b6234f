package sms

import (
	"context"

	"github.com/loa-hub/loa/channels"
)

// Folding folds Vietnamese diacritics to ASCII (Fold) in the messages of
// chosen event kinds before passing them on: many brandname routes only
// carry GSM-7 text, and a folded message fits 160 characters a segment
// instead of 70. Other kinds pass unchanged. Safe for concurrent use.
type Folding struct {
	inner channels.Channel
	kinds map[string]bool
}

var _ channels.Channel = (*Folding)(nil)

// NewFolding wraps inner so that messages of the given kinds are folded.
func NewFolding(inner channels.Channel, kinds ...string) *Folding {
	f := &Folding{inner: inner, kinds: map[string]bool{}}
	for _, k := range kinds {
		f.kinds[k] = true
	}
	return f
}

// Send folds m when its kind is one of the folded kinds, then sends it.
func (f *Folding) Send(ctx context.Context, m channels.Message) (channels.Result, error) {
	if f.kinds[m.Kind] {
		m.Title, m.Body = Fold(m.Title), Fold(m.Body)
	}
	return f.inner.Send(ctx, m)
}
