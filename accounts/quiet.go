package accounts

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // quiet hours name IANA zones; not every host has a zone database
)

// DefaultTimeZone is the zone of quiet hours given without one.
const DefaultTimeZone = "Asia/Ho_Chi_Minh"

// QuietHours is a daily window of local time in which a subscriber does
// not want bulk notices or outage reminders: those falling inside are held
// and delivered when it ends. Start and End are "HH:MM"; a window whose
// End is not after its Start runs past midnight ("22:00"–"06:00").
// Codes and urgent alerts are never held.
type QuietHours struct {
	Start    string `json:"start"`
	End      string `json:"end"`
	TimeZone string `json:"time_zone"` // IANA name; DefaultTimeZone when empty
}

// ParseQuietHours reads "HH:MM-HH:MM" (in DefaultTimeZone).
func ParseQuietHours(s string) (QuietHours, error) {
	start, end, ok := strings.Cut(strings.TrimSpace(s), "-")
	q := QuietHours{Start: strings.TrimSpace(start), End: strings.TrimSpace(end), TimeZone: DefaultTimeZone}
	if !ok {
		return QuietHours{}, fmt.Errorf("%q is not HH:MM-HH:MM", s)
	}
	return q, q.Validate()
}

// Validate reports a window that cannot be used: times that are not
// HH:MM, an empty window, an unknown zone.
func (q QuietHours) Validate() error {
	s, err1 := minuteOfDay(q.Start)
	e, err2 := minuteOfDay(q.End)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if s == e {
		return errors.New("quiet hours start and end at the same time")
	}
	if _, err := q.location(); err != nil {
		return err
	}
	return nil
}

// Minutes returns the window's start and end as minutes after midnight.
func (q QuietHours) Minutes() (start, end int, err error) {
	s, err1 := minuteOfDay(q.Start)
	e, err2 := minuteOfDay(q.End)
	return s, e, errors.Join(err1, err2)
}

// QuietHoursFromMinutes is the window from start to end minutes after
// midnight in zone.
func QuietHoursFromMinutes(start, end int, zone string) QuietHours {
	f := func(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }
	return QuietHours{Start: f(start), End: f(end), TimeZone: zone}
}

func (q QuietHours) location() (*time.Location, error) {
	name := q.TimeZone
	if name == "" {
		name = DefaultTimeZone
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	return loc, nil
}

// Until returns when t is next outside the window: t itself when it is
// not inside, else the end of the window it is in. A window that cannot
// be used holds nothing.
func (q QuietHours) Until(t time.Time) time.Time {
	s, e, err := q.Minutes()
	loc, lerr := q.location()
	if err != nil || lerr != nil || s == e {
		return t
	}
	lt := t.In(loc)
	midnight := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, loc)
	m := lt.Hour()*60 + lt.Minute()
	at := func(day, min int) time.Time { return midnight.AddDate(0, 0, day).Add(time.Duration(min) * time.Minute) }
	switch {
	case s < e && m >= s && m < e: // 13:00–15:00, inside
		return at(0, e)
	case s > e && m >= s: // 22:00–06:00, before midnight
		return at(1, e)
	case s > e && m < e: // 22:00–06:00, after midnight
		return at(0, e)
	}
	return t
}

func minuteOfDay(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || len(h) != 2 || len(m) != 2 || err1 != nil || err2 != nil || hh > 23 || mm > 59 || hh < 0 || mm < 0 {
		return 0, fmt.Errorf("%q is not a time of day HH:MM", s)
	}
	return hh*60 + mm, nil
}
