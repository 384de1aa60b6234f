package sqlstore

import (
	"fmt"
	"strings"
	"time"
)

// timeValue scans a timestamp column on both dialects: pgx returns
// time.Time; the SQLite driver returns time.Time for TIMESTAMP columns it
// recognises and text otherwise. NULL scans as the zero time.
type timeValue struct{ t time.Time }

var sqliteLayouts = []string{
	// How the driver writes a time.Time parameter (time.Time.String),
	// which an aggregate such as max() hands back as text.
	"2006-01-02 15:04:05.999999999 -0700 MST",
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05",
}

func (v *timeValue) Scan(src any) error {
	switch x := src.(type) {
	case nil:
		v.t = time.Time{}
	case time.Time:
		v.t = x.UTC()
	case string:
		return v.parse(x)
	case []byte:
		return v.parse(string(x))
	case int64:
		v.t = time.UnixMilli(x).UTC()
	default:
		return fmt.Errorf("sqlstore: cannot scan %T into a time", src)
	}
	return nil
}

func (v *timeValue) parse(s string) error {
	s = strings.TrimSpace(s)
	// The SQLite driver may append a monotonic clock reading.
	if i := strings.Index(s, " m="); i >= 0 {
		s = s[:i]
	}
	for _, l := range sqliteLayouts {
		if t, err := time.Parse(l, s); err == nil {
			v.t = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("sqlstore: cannot parse time %q", s)
}
