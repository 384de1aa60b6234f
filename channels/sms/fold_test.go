package sms

import (
	"context"
	"testing"

	"github.com/loa-hub/loa/channels"
)

type capture struct{ got channels.Message }

func (c *capture) Send(_ context.Context, m channels.Message) (channels.Result, error) {
	c.got = m
	return channels.Result{}, nil
}

func TestFoldingAppliesToChosenKindsOnly(t *testing.T) {
	for _, tc := range []struct {
		kind, want string
	}{
		{"alert.cap", "Canh bao lu: muc nuoc song Thu Bon dang len"},
		{"notification.direct", "Cảnh báo lũ: mực nước sông Thu Bồn đang lên"},
	} {
		c := &capture{}
		f := NewFolding(c, "alert.cap", "code.sms")
		f.Send(context.Background(), channels.Message{Kind: tc.kind, Body: "Cảnh báo lũ: mực nước sông Thu Bồn đang lên"})
		if c.got.Body != tc.want {
			t.Errorf("%s: %q, want %q", tc.kind, c.got.Body, tc.want)
		}
		if tc.kind == "alert.cap" {
			if enc, _, segs := Segments(c.got.Body); enc != GSM7 || segs != 1 {
				t.Errorf("folded text is %v in %d segments, want GSM-7 in 1", enc, segs)
			}
		}
	}
}
