package broadcast

import "testing"

func TestPrices(t *testing.T) {
	ps, err := ParsePrices(" esms=350, speedsms=380.5 ")
	if err != nil || len(ps) != 2 || ps[1].Provider != "speedsms" || ps[1].PerSegment != 380.5 {
		t.Fatalf("%+v %v", ps, err)
	}
	cs := Costs(1500, ps, "VND")
	if cs[0].Total != 525000 || cs[1].Total != 570750 || cs[0].Currency != "VND" {
		t.Errorf("%+v", cs)
	}
	for _, bad := range []string{"esms", "esms=-1", "=3", "esms=x", "esms=1,esms=2", "esms=NaN"} {
		if _, err := ParsePrices(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
