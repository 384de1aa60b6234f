package areas

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Levels of administrative units.
const (
	LevelProvince = "province"
	LevelDistrict = "district"
	LevelCommune  = "commune"
)

// Area is one administrative unit. Parent is empty for a province.
// HasCentroid says whether Lat and Lon hold the unit's centroid.
type Area struct {
	Code        string
	Name        string
	Parent      string
	Level       string
	Lat, Lon    float64
	HasCentroid bool
}

// Centroid is the centroid of one area, for selecting the areas that
// lie inside a polygon or a circle.
type Centroid struct {
	Code     string
	Lat, Lon float64
}

// Error is a problem with one cell (or one line) of an areas file.
type Error struct {
	Line   int    // 1-based line of the file
	Column string // the column's header name; empty when the whole line is wrong
	Detail string
}

func (e *Error) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("areas: line %d: %s", e.Line, e.Detail)
	}
	return fmt.Sprintf("areas: line %d, column %s: %s", e.Line, e.Column, e.Detail)
}

// ErrNoHeader is returned for a file whose header is neither layout.
var ErrNoHeader = errors.New("areas: the header names neither code,name[,parent,level,lat,lon] nor ma_tinh,ten_tinh[,ma_huyen,ten_huyen],ma_xa,ten_xa[,lat,lon]")

//go:embed sample/quang-nam.csv
var sample []byte

// Sample returns the embedded sample tree: the province of Quảng Nam (49)
// with the cities of Tam Kỳ, Hội An and Điện Bàn and a few of their wards
// and communes, centroids included.
func Sample() []Area {
	as, err := Parse(bytes.NewReader(sample))
	if err != nil {
		panic("areas: the embedded sample is invalid: " + err.Error())
	}
	return as
}

// Parse reads an areas file and returns its units, parents before their
// children, each in file order. Two layouts are accepted, told apart by
// the header (names are matched without case, accents or spaces):
//
//   - Loa's own: code, name, and optionally parent, level, lat, lon. A
//     missing level is inferred from the depth in the tree (a unit under a
//     province with children is a district, without children a commune),
//     so both the three-tier and the two-tier (since 2025) trees load.
//   - A government export, one commune a row: ma_tinh, ten_tinh,
//     optionally ma_huyen, ten_huyen (three tiers), ma_xa, ten_xa, and
//     optionally lat, lon (of the commune). The General Statistics
//     Office's Vietnamese headers (Mã TP, Tỉnh Thành Phố, Mã QH, Quận
//     Huyện, Mã PX, Phường Xã, Cấp) are accepted too. Provinces and
//     districts are built from the rows.
//
// Names are stored in Unicode NFC. The first problem found is returned as
// an *Error naming the line and the column.
func Parse(r io.Reader) ([]Area, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, ErrNoHeader
	}
	if err != nil {
		return nil, csvError(err)
	}
	cols := map[string]int{}
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff")
		}
		name := canonicalColumn(h)
		if name == "" {
			continue
		}
		if _, dup := cols[name]; dup {
			return nil, &Error{Line: 1, Column: h, Detail: "column given twice"}
		}
		cols[name] = i
	}
	p := &parser{cr: cr, cols: cols, header: header, index: map[string]int{}}
	switch {
	case has(cols, "code", "name"):
		err = p.own()
	case has(cols, "ma_tinh", "ten_tinh", "ma_xa", "ten_xa"):
		err = p.government()
	default:
		return nil, ErrNoHeader
	}
	if err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return p.ordered(), nil
}

// aliases maps accent-free, lower-case header names to the canonical one.
var aliases = map[string]string{
	"code": "code", "ma": "code", "name": "name", "ten": "name", "parent": "parent", "parent_code": "parent",
	"level": "level", "cap": "level", "lat": "lat", "latitude": "lat", "vi_do": "lat",
	"lon": "lon", "lng": "lon", "long": "lon", "longitude": "lon", "kinh_do": "lon",
	"ma_tinh": "ma_tinh", "ma_tp": "ma_tinh", "ten_tinh": "ten_tinh", "tinh": "ten_tinh", "tinh_thanh_pho": "ten_tinh",
	"ma_huyen": "ma_huyen", "ma_qh": "ma_huyen", "ten_huyen": "ten_huyen", "huyen": "ten_huyen", "quan_huyen": "ten_huyen",
	"ma_xa": "ma_xa", "ma_px": "ma_xa", "ten_xa": "ten_xa", "xa": "ten_xa", "phuong_xa": "ten_xa",
}

// canonicalColumn returns the canonical name of a header cell, or "" for
// a column Loa does not read (for example "Tên Tiếng Anh").
func canonicalColumn(h string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(strings.TrimSpace(h)) {
		switch {
		case unicode.Is(unicode.Mn, r):
		case r == 'đ' || r == 'Đ':
			b.WriteRune('d')
		case r == ' ' || r == '-' || r == '.':
			b.WriteRune('_')
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return aliases[b.String()]
}

func has(cols map[string]int, names ...string) bool {
	for _, n := range names {
		if _, ok := cols[n]; !ok {
			return false
		}
	}
	return true
}

type parser struct {
	cr     *csv.Reader
	cols   map[string]int
	header []string
	areas  []Area
	lines  []int          // line of each area's first definition
	index  map[string]int // code → position in areas
	depth  []int
}

// row is one record with the line it started on.
type row struct {
	rec  []string
	line int
}

func (p *parser) rows(each func(row) error) error {
	for {
		rec, err := p.cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return csvError(err)
		}
		line, _ := p.cr.FieldPos(0)
		blank := true
		for _, f := range rec {
			if strings.TrimSpace(f) != "" {
				blank = false
				break
			}
		}
		if blank {
			continue
		}
		if err := each(row{rec, line}); err != nil {
			return err
		}
	}
}

func (p *parser) cell(r row, col string) string {
	i, ok := p.cols[col]
	if !ok || i >= len(r.rec) {
		return ""
	}
	return strings.TrimSpace(norm.NFC.String(r.rec[i]))
}

// colName is the header as written in the file, for errors.
func (p *parser) colName(col string) string {
	if i, ok := p.cols[col]; ok {
		return strings.TrimPrefix(strings.TrimSpace(p.header[i]), "\ufeff")
	}
	return col
}

func (p *parser) required(r row, col string) (string, error) {
	v := p.cell(r, col)
	if v == "" {
		return "", &Error{Line: r.line, Column: p.colName(col), Detail: "is empty"}
	}
	return v, nil
}

func (p *parser) centroid(r row, a *Area) error {
	lat, lon := p.cell(r, "lat"), p.cell(r, "lon")
	if lat == "" && lon == "" {
		return nil
	}
	if lat == "" || lon == "" {
		col := "lat"
		if lat != "" {
			col = "lon"
		}
		return &Error{Line: r.line, Column: p.colName(col), Detail: "is empty; give both latitude and longitude or neither"}
	}
	var err error
	if a.Lat, err = coordinate(lat, 90); err != nil {
		return &Error{Line: r.line, Column: p.colName("lat"), Detail: err.Error()}
	}
	if a.Lon, err = coordinate(lon, 180); err != nil {
		return &Error{Line: r.line, Column: p.colName("lon"), Detail: err.Error()}
	}
	a.HasCentroid = true
	return nil
}

func coordinate(s string, limit float64) (float64, error) {
	v, err := strconv.ParseFloat(strings.Replace(s, ",", ".", 1), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a number in decimal degrees", s)
	}
	if v < -limit || v > limit {
		return 0, fmt.Errorf("%s is outside -%g…%g", s, limit, limit)
	}
	return v, nil
}

func (p *parser) add(a Area, line int) {
	p.index[a.Code] = len(p.areas)
	p.areas = append(p.areas, a)
	p.lines = append(p.lines, line)
}

func (p *parser) own() error {
	return p.rows(func(r row) error {
		code, err := p.required(r, "code")
		if err != nil {
			return err
		}
		name, err := p.required(r, "name")
		if err != nil {
			return err
		}
		if i, dup := p.index[code]; dup {
			return &Error{Line: r.line, Column: p.colName("code"), Detail: fmt.Sprintf("%s is already defined on line %d", code, p.lines[i])}
		}
		a := Area{Code: code, Name: name, Parent: p.cell(r, "parent"), Level: strings.ToLower(p.cell(r, "level"))}
		if a.Parent == code {
			return &Error{Line: r.line, Column: p.colName("parent"), Detail: "a unit cannot be its own parent"}
		}
		if err := p.centroid(r, &a); err != nil {
			return err
		}
		p.add(a, r.line)
		return nil
	})
}

// government reads one commune a row and builds its province and district.
func (p *parser) government() error {
	threeTier := has(p.cols, "ma_huyen", "ten_huyen")
	unit := func(r row, codeCol, nameCol, parent, level string) (string, error) {
		code, err := p.required(r, codeCol)
		if err != nil {
			return "", err
		}
		name, err := p.required(r, nameCol)
		if err != nil {
			return "", err
		}
		if i, ok := p.index[code]; ok {
			a := p.areas[i]
			if a.Level != level || a.Parent != parent {
				return "", &Error{Line: r.line, Column: p.colName(codeCol), Detail: fmt.Sprintf("%s is already defined on line %d as a %s", code, p.lines[i], a.Level)}
			}
			if a.Name != name {
				return "", &Error{Line: r.line, Column: p.colName(nameCol), Detail: fmt.Sprintf("%s is named %q on line %d", code, a.Name, p.lines[i])}
			}
			return code, nil
		}
		p.add(Area{Code: code, Name: name, Parent: parent, Level: level}, r.line)
		return code, nil
	}
	return p.rows(func(r row) error {
		parent, err := unit(r, "ma_tinh", "ten_tinh", "", LevelProvince)
		if err != nil {
			return err
		}
		if threeTier {
			if parent, err = unit(r, "ma_huyen", "ten_huyen", parent, LevelDistrict); err != nil {
				return err
			}
		}
		code, err := p.required(r, "ma_xa")
		if err != nil {
			return err
		}
		name, err := p.required(r, "ten_xa")
		if err != nil {
			return err
		}
		if i, dup := p.index[code]; dup {
			return &Error{Line: r.line, Column: p.colName("ma_xa"), Detail: fmt.Sprintf("%s is already defined on line %d", code, p.lines[i])}
		}
		a := Area{Code: code, Name: name, Parent: parent, Level: LevelCommune}
		if err := p.centroid(r, &a); err != nil {
			return err
		}
		p.add(a, r.line)
		return nil
	})
}

// check verifies parents and cycles and fills in missing levels.
func (p *parser) check() error {
	children := map[string]int{}
	for i, a := range p.areas {
		if a.Parent == "" {
			continue
		}
		if _, ok := p.index[a.Parent]; !ok {
			return &Error{Line: p.lines[i], Column: p.colName("parent"), Detail: fmt.Sprintf("unknown parent %s: it is not defined in the file", a.Parent)}
		}
		children[a.Parent]++
	}
	depth := make([]int, len(p.areas))
	for i, a := range p.areas {
		d, cur := 0, a
		for cur.Parent != "" {
			d++
			if d > len(p.areas) {
				return &Error{Line: p.lines[i], Column: p.colName("parent"), Detail: fmt.Sprintf("the parents of %s form a cycle", a.Code)}
			}
			cur = p.areas[p.index[cur.Parent]]
		}
		depth[i] = d
	}
	for i := range p.areas {
		a := &p.areas[i]
		if a.Level != "" {
			continue
		}
		switch {
		case depth[i] == 0:
			a.Level = LevelProvince
		case depth[i] == 1 && children[a.Code] > 0:
			a.Level = LevelDistrict
		default:
			a.Level = LevelCommune
		}
	}
	p.depth = depth
	return nil
}

// ordered returns the areas sorted by depth, stably: parents first.
func (p *parser) ordered() []Area {
	out := make([]Area, 0, len(p.areas))
	for d := 0; len(out) < len(p.areas); d++ {
		for i, a := range p.areas {
			if p.depth[i] == d {
				out = append(out, a)
			}
		}
	}
	return out
}

func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &Error{Line: pe.Line, Detail: pe.Err.Error()}
	}
	return fmt.Errorf("areas: read: %w", err)
}
