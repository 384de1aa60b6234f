package feedback

import (
	"bufio"
	_ "embed"
	"fmt"
	"io"
	"strings"
	"time"
)

//go:embed holidays_vn.csv
var holidaysVN string

// ICT is Vietnam's time zone (UTC+7, no daylight saving): working days
// and deadlines are counted in it.
var ICT = time.FixedZone("ICT", 7*3600)

// Calendar says which days are working days: Monday to Friday, less
// public holidays and days off, plus weekend days made working days in
// exchange for one. It is read-only once built and safe for concurrent
// use.
type Calendar struct {
	off  map[string]string // date → name
	work map[string]string
}

// DefaultCalendar returns the Vietnamese calendar shipped with Loa
// (holidays_vn.csv).
func DefaultCalendar() *Calendar {
	c, err := ParseCalendar(strings.NewReader(holidaysVN))
	if err != nil {
		panic("feedback: the embedded holidays_vn.csv is invalid: " + err.Error())
	}
	return c
}

// ParseCalendar reads a holidays CSV: a header "date,kind,name", then one
// day a line (YYYY-MM-DD, off or work, a name); lines starting with # are
// comments. Errors name the line.
func ParseCalendar(r io.Reader) (*Calendar, error) {
	c := &Calendar{off: map[string]string{}, work: map[string]string{}}
	sc := bufio.NewScanner(r)
	header := false
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !header {
			if line != "date,kind,name" {
				return nil, fmt.Errorf("feedback: holidays: line %d: want the header date,kind,name", n)
			}
			header = true
			continue
		}
		f := strings.SplitN(line, ",", 3)
		if len(f) < 2 {
			return nil, fmt.Errorf("feedback: holidays: line %d: want date,kind,name", n)
		}
		if _, err := time.Parse(time.DateOnly, f[0]); err != nil {
			return nil, fmt.Errorf("feedback: holidays: line %d: bad date %q", n, f[0])
		}
		name := ""
		if len(f) == 3 {
			name = f[2]
		}
		switch f[1] {
		case "off":
			c.off[f[0]] = name
		case "work":
			c.work[f[0]] = name
		default:
			return nil, fmt.Errorf("feedback: holidays: line %d: kind must be off or work, not %q", n, f[1])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("feedback: holidays: %w", err)
	}
	if !header {
		return nil, fmt.Errorf("feedback: holidays: no header")
	}
	return c, nil
}

// WorkingDay reports whether the day of t (in Vietnam time) is a working
// day.
func (c *Calendar) WorkingDay(t time.Time) bool {
	d := t.In(ICT).Format(time.DateOnly)
	if _, ok := c.work[d]; ok {
		return true
	}
	if _, ok := c.off[d]; ok {
		return false
	}
	wd := t.In(ICT).Weekday()
	return wd != time.Saturday && wd != time.Sunday
}

// AddWorkingDays returns the deadline of a matter received at t and
// handled within n working days: the end (24:00 Vietnam time) of the n-th
// working day after the day of t. A matter received on a day off counts
// from the next working day just the same.
func (c *Calendar) AddWorkingDays(t time.Time, n int) time.Time {
	l := t.In(ICT)
	day := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, ICT)
	for n > 0 {
		day = day.AddDate(0, 0, 1)
		if c.WorkingDay(day) {
			n--
		}
	}
	return day.AddDate(0, 0, 1).UTC()
}
