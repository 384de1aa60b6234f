package cap

import "math"

// earthRadiusKm is the mean Earth radius (IUGG), in kilometres.
const earthRadiusKm = 6371.0088

// Point is a WGS 84 position in decimal degrees.
type Point struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// Bounds on an alert's shapes. Loa finds the units an alert reaches by
// testing each unit's centroid against every polygon edge and circle of
// the alert, so the work of one post is the number of units times these.
// A 1 MiB document holds about 95,000 polygon points (7 to 11 s against
// 10,000 centroids on the loaded shared test machine; see docs/testing.md)
// or 45,000 circles; real
// warning polygons have tens to hundreds of points (the US Wireless
// Emergency Alerts take at most 100), so an alert may have 10,000 polygon
// points in all and 100 circles.
const (
	MaxPolygonPoints = 10_000
	MaxCircles       = 100
)

// Bounds on the lists an alert names, each item of which Loa looks up in
// the store when the alert is posted (an account for each address, an
// alert for each reference, an area for each of a JSON alert's codes). A
// 1 MiB document held some 150,000 addresses or 30,000 references: 11 s
// and 6 s of the API's CPU for one post, and a query each (see
// docs/testing.md). A Private alert names the people it is for (tens to
// hundreds), and an Update or Cancel the messages of its event.
const (
	MaxAddresses  = 1_000
	MaxReferences = 1_000
	// MaxAreaCodes bounds the unit codes of a JSON alert (Việt Nam has
	// some 10,600 communes and wards of the old tree); a CAP document's
	// geocodes are bounded by its XML tokens.
	MaxAreaCodes = 12_000
)

// Polygon is a closed ring of points, the first equal to the last, as in a
// CAP <polygon>. Parse guarantees at least four points.
type Polygon []Point

// Contains reports whether pt lies inside p, by ray casting on latitude and
// longitude taken as plane coordinates. That is exact enough for areas the
// size of a province, but wrong for polygons that cross the antimeridian
// or enclose a pole. A point exactly on an edge may be reported either way.
// An unclosed ring is treated as closed.
func (p Polygon) Contains(pt Point) bool {
	in := false
	for i, j := 0, len(p)-1; i < len(p); j, i = i, i+1 {
		a, b := p[i], p[j]
		if (a.Lat > pt.Lat) != (b.Lat > pt.Lat) {
			lon := a.Lon + (pt.Lat-a.Lat)*(b.Lon-a.Lon)/(b.Lat-a.Lat)
			if pt.Lon < lon {
				in = !in
			}
		}
	}
	return in
}

// Circle is a CAP <circle>: a centre and a radius in kilometres.
type Circle struct {
	Center   Point   `json:"center"`
	RadiusKm float64 `json:"radius_km"`
}

// Contains reports whether pt is within c.RadiusKm of the centre (the
// boundary included), by great-circle (haversine) distance on a sphere of
// radius 6371.0088 km.
func (c Circle) Contains(pt Point) bool {
	return distanceKm(c.Center, pt) <= c.RadiusKm
}

// distanceKm is the haversine great-circle distance between a and b.
func distanceKm(a, b Point) float64 {
	const rad = math.Pi / 180
	lat1, lat2 := a.Lat*rad, b.Lat*rad
	dLat, dLon := (b.Lat-a.Lat)*rad, (b.Lon-a.Lon)*rad
	s1, s2 := math.Sin(dLat/2), math.Sin(dLon/2)
	h := s1*s1 + math.Cos(lat1)*math.Cos(lat2)*s2*s2
	return 2 * earthRadiusKm * math.Asin(math.Min(1, math.Sqrt(h)))
}
