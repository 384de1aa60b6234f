package accounts

import (
	"testing"
	"time"
)

func TestQuietHoursUntil(t *testing.T) {
	vn, _ := time.LoadLocation(DefaultTimeZone)
	at := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, vn) }
	night := QuietHours{Start: "22:00", End: "06:00"}
	nap := QuietHours{Start: "13:00", End: "14:30", TimeZone: "Asia/Ho_Chi_Minh"}
	for _, c := range []struct {
		q        QuietHours
		t, until time.Time
	}{
		{night, at(20, 21, 59), at(20, 21, 59)},
		{night, at(20, 22, 0), at(21, 6, 0)},
		{night, at(20, 23, 30), at(21, 6, 0)},
		{night, at(21, 5, 59), at(21, 6, 0)},
		{night, at(21, 6, 0), at(21, 6, 0)},
		{nap, at(20, 13, 0), at(20, 14, 30)},
		{nap, at(20, 14, 30), at(20, 14, 30)},
		{nap, at(20, 12, 0), at(20, 12, 0)},
		// A UTC instant is judged in the window's zone: 16:00 UTC is 23:00 in Vietnam.
		{night, time.Date(2026, 11, 20, 16, 0, 0, 0, time.UTC), at(21, 6, 0)},
	} {
		if got := c.q.Until(c.t); !got.Equal(c.until) {
			t.Errorf("%v until from %v = %v, want %v", c.q, c.t, got, c.until)
		}
	}
	for _, bad := range []QuietHours{{Start: "22:00", End: "22:00"}, {Start: "24:00", End: "06:00"}, {Start: "7:00", End: "08:00"},
		{Start: "22:00", End: "06:00", TimeZone: "Mars/Olympus"}} {
		if bad.Validate() == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if q, err := ParseQuietHours("22:00-06:00"); err != nil || q != (QuietHours{"22:00", "06:00", DefaultTimeZone}) {
		t.Errorf("parse: %v %v", q, err)
	}
}
