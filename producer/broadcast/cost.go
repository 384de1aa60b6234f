package broadcast

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Price is what an SMS provider bills for one segment, in the currency of
// the price list.
type Price struct {
	Provider   string
	PerSegment float64
}

// Cost is what a number of SMS segments costs through one provider.
type Cost struct {
	Provider   string  `json:"provider"`
	PerSegment float64 `json:"price_per_segment"`
	Currency   string  `json:"currency"`
	Total      float64 `json:"total"`
}

// Costs prices segments at each provider of prices, in their order (the
// failover order: the first is what the broadcast costs while it is up).
func Costs(segments int, prices []Price, currency string) []Cost {
	out := make([]Cost, 0, len(prices))
	for _, p := range prices {
		out = append(out, Cost{Provider: p.Provider, PerSegment: p.PerSegment, Currency: currency,
			Total: math.Round(float64(segments)*p.PerSegment*100) / 100})
	}
	return out
}

// ParsePrices reads a price list "esms=350,speedsms=380.5": provider
// names in failover order, each with a price per segment (≥ 0).
func ParsePrices(s string) ([]Price, error) {
	var out []Price
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, v, ok := strings.Cut(item, "=")
		name = strings.TrimSpace(name)
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if !ok || name == "" || err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("broadcast: price %q: want PROVIDER=PRICE with a price of at least 0", item)
		}
		for _, p := range out {
			if p.Provider == name {
				return nil, fmt.Errorf("broadcast: provider %q is priced twice", name)
			}
		}
		out = append(out, Price{Provider: name, PerSegment: f})
	}
	return out, nil
}
