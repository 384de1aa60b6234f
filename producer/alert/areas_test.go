package alert_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/loa-hub/loa"
	"github.com/loa-hub/loa/producer/alert"
)

// TestPreauthorisedKeysAreBoundToTheirAreas: a pre-authorised key alerts
// only the areas its operator bound it to (each with the units below);
// an alert naming, or covering with a shape, a unit outside them is
// refused whole, naming the areas field, and nothing is stored or sent.
// A key bound to no area alerts nowhere; a key that is not
// pre-authorised is bound by its approver instead.
func TestPreauthorisedKeysAreBoundToTheirAreas(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	hoiAn := issuer
	hoiAn.Areas = []string{"20194"}
	unbound := issuer
	unbound.Areas = nil
	jsonAlert := func(id string, areas ...string) alert.Input {
		exp := testNow.Add(6 * time.Hour)
		in, err := r.svc.FromJSON(ctx, alert.JSONAlert{Identifier: id, MsgType: "alert", Severity: "Extreme", Urgency: "Immediate", Event: "Lũ",
			Headline: "Lũ", Description: "Nước lên", Expires: &exp, Areas: areas}, "loa:key-pctt")
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	refused := func(name string, err error, field string, outside ...string) {
		t.Helper()
		var le *loa.Error
		var ae *alert.AreaError
		if !errors.As(err, &le) || le.Code != loa.EForbidden || le.Field != field || !errors.As(err, &ae) || !slices.Equal(ae.Outside, outside) {
			t.Errorf("%s: %v; want 403 naming %s, outside %v", name, err, field, outside)
		}
	}
	_, err := r.post(t, hoiAn, "flood_vi_en.xml") // Hội An, Đại Lộc and Tam Kỳ
	refused("a CAP alert reaching its neighbours", err, "alert/info/area", "20197", "20227")
	_, err = r.post(t, hoiAn, "reservoir_polygon.xml") // a polygon over Đại Lộc
	refused("a polygon outside", err, "alert/info/area", "20197")
	_, err = r.svc.Submit(ctx, hoiAn, jsonAlert("j-1", "49"))
	refused("the province above", err, "areas", "49")
	_, err = r.svc.Submit(ctx, hoiAn, jsonAlert("j-2", "20194", "01"))
	refused("a far province after its own", err, "areas", "01")
	_, err = r.svc.Submit(ctx, unbound, jsonAlert("j-3", "20194"))
	refused("a key bound to no area", err, "areas", "20194")
	for _, status := range alert.Statuses {
		if list, err := r.svc.List(ctx, status, "", 10); err != nil || len(list) != 0 {
			t.Errorf("%s: %d stored (%v)", status, len(list), err)
		}
	}
	if n := len(r.pub.Envelopes()); n != 0 {
		t.Errorf("%d envelopes published", n)
	}

	res, err := r.svc.Submit(ctx, hoiAn, jsonAlert("j-4", "20194"))
	if err != nil || res.Alert.Status != alert.StatusSentPreauthorised {
		t.Fatalf("its own area: %+v %v", res.Alert, err)
	}
	// The agency's key is not pre-authorised: its approver reads where
	// the alert goes, whatever its areas.
	if st := r.mustPost(t, writer, "flood_vi_en.xml"); st.Status != alert.StatusPendingApproval {
		t.Errorf("alerts:write: %s", st.Status)
	}
	// The province's key covers every unit below it.
	province := issuer
	province.Areas = []string{"49"}
	if st := r.mustPost(t, province, "reservoir_polygon.xml"); st.Status != alert.StatusSentPreauthorised {
		t.Errorf("the province's key: %s", st.Status)
	}
}
