package alert

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/loa-hub/loa/producer/alert/cap"
)

// JSONAlert is Loa's plain JSON form of an alert (POST /v1/alerts): one
// info block, its area given by unit codes, a polygon and/or a circle.
type JSONAlert struct {
	// Identifier makes the post idempotent: the same identifier from the
	// same issuer is one alert. Generated when empty.
	Identifier  string   `json:"identifier"`
	MsgType     string   `json:"msg_type"` // alert | update | cancel
	References  []string `json:"references"`
	Severity    string   `json:"severity"`
	Urgency     string   `json:"urgency"`
	Certainty   string   `json:"certainty"`
	Event       string   `json:"event"`
	Headline    string   `json:"headline"`
	Description string   `json:"description"`
	Instruction string   `json:"instruction"`
	// Expires is required for alerts and updates.
	Expires  *time.Time   `json:"expires"`
	Areas    []string     `json:"areas"`
	Polygon  [][2]float64 `json:"polygon"` // [[lat, lon], …]
	Circle   *JSONCircle  `json:"circle"`
	Channels []string     `json:"channels"`
	// AreaTopics sends the push as one FCM topic message per area.
	AreaTopics bool   `json:"area_topics"`
	Language   string `json:"language"` // default "vi"
}

// JSONCircle is a circle of a JSON alert.
type JSONCircle struct {
	Lat      float64 `json:"lat"`
	Lon      float64 `json:"lon"`
	RadiusKm float64 `json:"radius_km"`
}

// Limits on a JSON alert's text.
const (
	maxShortText = 256
	maxLongText  = 4000
)

// FromJSON validates a JSON alert from sender and turns it into an Input.
// Every refusal is a cap refusal (*loa.Error) whose Element is the JSON field.
func (s *Service) FromJSON(ctx context.Context, j JSONAlert, sender string) (Input, error) {
	now := s.now().UTC().Truncate(time.Second)
	bad := func(field, format string, args ...any) error {
		return cap.Refusal(field, fmt.Sprintf(format, args...), cap.ErrInvalid)
	}
	a := &cap.Alert{Identifier: strings.TrimSpace(j.Identifier), Sender: sender, Sent: now, Status: cap.StatusActual, Scope: cap.ScopePublic}
	if a.Identifier == "" {
		a.Identifier = "loa-" + uuid.NewString()
	} else if len(a.Identifier) > maxShortText || strings.ContainsAny(a.Identifier, " ,<&") {
		return Input{}, bad("identifier", "must be at most %d characters without spaces, commas, < or &", maxShortText)
	}
	switch strings.ToLower(j.MsgType) {
	case "alert":
		a.MsgType = cap.MsgTypeAlert
	case "update":
		a.MsgType = cap.MsgTypeUpdate
	case "cancel":
		a.MsgType = cap.MsgTypeCancel
	default:
		return Input{}, bad("msg_type", "must be alert, update or cancel")
	}
	if a.MsgType != cap.MsgTypeAlert && len(j.References) == 0 {
		return Input{}, bad("references", "an update or cancel must name the alert it refers to")
	}
	if len(j.References) > cap.MaxReferences {
		return Input{}, bad("references", "names %d alerts; an alert may name at most %d", len(j.References), cap.MaxReferences)
	}
	if len(j.Areas) > cap.MaxAreaCodes {
		return Input{}, bad("areas", "names %d units; an alert may name at most %d", len(j.Areas), cap.MaxAreaCodes)
	}
	full := a.MsgType != cap.MsgTypeCancel
	in := cap.Info{Language: "vi", Categories: []string{"Met"}, Event: strings.TrimSpace(j.Event),
		Urgency: cap.UrgencyUnknown, Severity: cap.SeverityUnknown, Certainty: cap.CertaintyUnknown,
		Headline: strings.TrimSpace(j.Headline), Description: strings.TrimSpace(j.Description), Instruction: strings.TrimSpace(j.Instruction)}
	if j.Language != "" {
		in.Language = j.Language
	}
	if j.Severity != "" || full {
		sev, ok := oneOf(j.Severity, cap.SeverityExtreme, cap.SeveritySevere, cap.SeverityModerate, cap.SeverityMinor, cap.SeverityUnknown)
		if !ok {
			return Input{}, bad("severity", "must be Extreme, Severe, Moderate, Minor or Unknown")
		}
		in.Severity = sev
	}
	if j.Urgency != "" || full {
		urg, ok := oneOf(j.Urgency, cap.UrgencyImmediate, cap.UrgencyExpected, cap.UrgencyFuture, cap.UrgencyPast, cap.UrgencyUnknown)
		if !ok {
			return Input{}, bad("urgency", "must be Immediate, Expected, Future, Past or Unknown")
		}
		in.Urgency = urg
	}
	if j.Certainty != "" {
		c, ok := oneOf(j.Certainty, cap.CertaintyObserved, cap.CertaintyLikely, cap.CertaintyPossible, cap.CertaintyUnlikely, cap.CertaintyUnknown)
		if !ok {
			return Input{}, bad("certainty", "must be Observed, Likely, Possible, Unlikely or Unknown")
		}
		in.Certainty = c
	}
	for _, t := range []struct {
		field, v string
		max      int
		required bool
	}{
		{"event", in.Event, maxShortText, full}, {"headline", in.Headline, maxShortText, full},
		{"description", in.Description, maxLongText, full}, {"instruction", in.Instruction, maxLongText, false},
	} {
		switch {
		case t.required && t.v == "":
			return Input{}, bad(t.field, "is required")
		case len([]rune(t.v)) > t.max:
			return Input{}, bad(t.field, "must be at most %d characters", t.max)
		}
	}
	if in.Event == "" {
		in.Event = "Hủy cảnh báo"
	}
	switch {
	case j.Expires != nil && !j.Expires.After(now):
		return Input{}, cap.Refusal("expires", "the alert expired at "+j.Expires.UTC().Format(time.RFC3339), cap.ErrExpired)
	case j.Expires != nil:
		in.Expires = j.Expires.UTC().Truncate(time.Second)
	case full:
		return Input{}, bad("expires", "is required: the time after which the alert is no longer sent")
	}

	area := cap.Area{Desc: "areas"}
	if len(j.Areas) > 0 {
		// One look-up for all the codes, not one a code.
		codes := make([]string, len(j.Areas))
		for i, code := range j.Areas {
			codes[i] = strings.TrimSpace(code)
		}
		known, err := s.store.ExistingAreas(ctx, distinct(codes))
		if err != nil {
			return Input{}, err
		}
		exists := make(map[string]bool, len(known))
		for _, c := range known {
			exists[c] = true
		}
		for i, code := range codes {
			if !exists[code] {
				return Input{}, cap.Refusal(fmt.Sprintf("areas[%d]", i), fmt.Sprintf("%q is not a known administrative unit", code), cap.ErrUnknownArea)
			}
			area.Geocodes = append(area.Geocodes, cap.ValuePair{ValueName: cap.GeocodeVNAdmin, Value: code})
		}
	}
	if len(j.Polygon) > 0 {
		if len(j.Polygon) < 3 || len(j.Polygon) >= cap.MaxPolygonPoints {
			return Input{}, bad("polygon", "needs at least three points and at most %d", cap.MaxPolygonPoints-1)
		}
		var p cap.Polygon
		for i, pt := range j.Polygon {
			if !validPoint(pt[0], pt[1]) {
				return Input{}, bad(fmt.Sprintf("polygon[%d]", i), "must be [latitude, longitude] in degrees")
			}
			p = append(p, cap.Point{Lat: pt[0], Lon: pt[1]})
		}
		if p[0] != p[len(p)-1] {
			p = append(p, p[0])
		}
		area.Polygons = []cap.Polygon{p}
	}
	if c := j.Circle; c != nil {
		if !validPoint(c.Lat, c.Lon) {
			return Input{}, bad("circle", "lat and lon must be in degrees")
		}
		if c.RadiusKm <= 0 || c.RadiusKm > 2000 {
			return Input{}, bad("circle.radius_km", "must be more than 0 and at most 2000")
		}
		area.Circles = []cap.Circle{{Center: cap.Point{Lat: c.Lat, Lon: c.Lon}, RadiusKm: c.RadiusKm}}
	}
	if len(area.Geocodes)+len(area.Polygons)+len(area.Circles) > 0 {
		in.Areas = []cap.Area{area}
	} else if a.MsgType == cap.MsgTypeAlert {
		return Input{}, cap.Refusal("areas", "give areas (unit codes), a polygon or a circle", ErrNoArea)
	}
	a.Infos = []cap.Info{in}

	var chans []string
	if j.Channels != nil {
		if len(j.Channels) == 0 {
			return Input{}, bad("channels", "give at least one of push, sms, or leave it out for the policy")
		}
		for i, ch := range j.Channels {
			if ch != ChannelPush && ch != ChannelSMS {
				return Input{}, bad(fmt.Sprintf("channels[%d]", i), "must be push or sms")
			}
			chans = union(chans, []string{ch})
		}
	}
	return Input{Alert: a, Channels: chans, RefIDs: j.References, JSON: true, AreaTopics: j.AreaTopics}, nil
}

func oneOf[T ~string](v string, allowed ...T) (T, bool) {
	for _, x := range allowed {
		if strings.EqualFold(v, string(x)) {
			return x, true
		}
	}
	return "", false
}

func validPoint(lat, lon float64) bool {
	return lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180
}
