package areas_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/loa-hub/loa/internal/areas"
)

func byCode(as []areas.Area) map[string]areas.Area {
	m := map[string]areas.Area{}
	for _, a := range as {
		m[a.Code] = a
	}
	return m
}

func TestParseLayouts(t *testing.T) {
	tests := []struct {
		name   string
		csv    string
		n      int
		levels map[string]string // code → level
		parent map[string]string
	}{
		{"three tiers with levels and centroids", "code,name,parent,level,lat,lon\n" +
			"49,Tỉnh Quảng Nam,,province,15.5,108.0\n503,Thành phố Hội An,49,district,15.88,108.33\n20497,Phường Minh An,503,commune,15.877,108.328\n",
			3, map[string]string{"49": "province", "503": "district", "20497": "commune"}, map[string]string{"20497": "503"}},
		{"two tiers since 2025, levels inferred, no centroids", "code,name,parent\n48,Thành phố Đà Nẵng,\n20194,Phường Hải Vân,48\n",
			2, map[string]string{"48": "province", "20194": "commune"}, map[string]string{"20194": "48"}},
		{"three tiers, levels inferred, children before parents", "Code,Name,Parent\n20497,Phường Minh An,503\n503,Thành phố Hội An,49\n49,Tỉnh Quảng Nam,\n",
			3, map[string]string{"49": "province", "503": "district", "20497": "commune"}, nil},
		{"government export, three tiers", "ma_tinh,ten_tinh,ma_huyen,ten_huyen,ma_xa,ten_xa,lat,lon\n" +
			"49,Tỉnh Quảng Nam,503,Thành phố Hội An,20497,Phường Minh An,15.877,108.328\n" +
			"49,Tỉnh Quảng Nam,503,Thành phố Hội An,20500,Phường Tân An,,\n" +
			"49,Tỉnh Quảng Nam,502,Thành phố Tam Kỳ,20470,Phường Tân Thạnh,15.57,108.48\n",
			6, map[string]string{"49": "province", "503": "district", "502": "district", "20500": "commune"}, map[string]string{"20470": "502", "503": "49"}},
		{"government export, two tiers", "ma_tinh,ten_tinh,ma_xa,ten_xa\n48,Thành phố Đà Nẵng,20194,Phường Hải Vân\n48,Thành phố Đà Nẵng,20197,Phường Hòa Khánh\n",
			3, map[string]string{"48": "province", "20197": "commune"}, map[string]string{"20194": "48"}},
		{"GSO Vietnamese headers with a BOM and an extra column", "\ufeffTỉnh Thành Phố,Mã TP,Quận Huyện,Mã QH,Phường Xã,Mã PX,Cấp,Tên Tiếng Anh\n" +
			"Tỉnh Quảng Nam,49,Thành phố Hội An,503,Phường Minh An,20497,Phường,Minh An Ward\n",
			3, map[string]string{"503": "district", "20497": "commune"}, map[string]string{"20497": "503"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := areas.Parse(strings.NewReader(tt.csv))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.n {
				t.Fatalf("got %d areas, want %d: %+v", len(got), tt.n, got)
			}
			seen := map[string]bool{}
			for _, a := range got {
				if a.Parent != "" && !seen[a.Parent] {
					t.Errorf("%s comes before its parent %s", a.Code, a.Parent)
				}
				seen[a.Code] = true
			}
			m := byCode(got)
			for code, lvl := range tt.levels {
				if m[code].Level != lvl {
					t.Errorf("%s: level %q, want %q", code, m[code].Level, lvl)
				}
			}
			for code, p := range tt.parent {
				if m[code].Parent != p {
					t.Errorf("%s: parent %q, want %q", code, m[code].Parent, p)
				}
			}
		})
	}
}

func TestParseCentroids(t *testing.T) {
	got, err := areas.Parse(strings.NewReader("code,name,parent,lat,lon\n49,Quảng Nam,,15.5,108\n503,Hội An,49,,\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := byCode(got)
	if a := m["49"]; !a.HasCentroid || a.Lat != 15.5 || a.Lon != 108 {
		t.Errorf("49: %+v", a)
	}
	if m["503"].HasCentroid {
		t.Errorf("503 has no centroid in the file: %+v", m["503"])
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, csv string
		line      int
		column    string
		detail    string
	}{
		{"unknown parent", "code,name,parent\n49,Quảng Nam,\n503,Hội An,49\n20497,Minh An,999\n", 4, "parent", "unknown parent 999"},
		{"duplicate code", "code,name,parent\n49,Quảng Nam,\n503,Hội An,49\n503,Hội An 2,49\n", 4, "code", "already defined on line 3"},
		{"latitude not a number", "code,name,lat,lon\n49,Quảng Nam,abc,108\n", 2, "lat", "not a number"},
		{"longitude out of range", "code,name,lat,lon\n49,Quảng Nam,15.5,208\n", 2, "lon", "outside"},
		{"latitude without longitude", "code,name,lat,lon\n49,Quảng Nam,15.5,\n", 2, "lon", "both"},
		{"empty name", "code,name\n49,\n", 2, "name", "empty"},
		{"cycle", "code,name,parent\n1,A,2\n2,B,1\n", 2, "parent", "cycle"},
		{"government: duplicate commune", "ma_tinh,ten_tinh,ma_xa,ten_xa\n48,Đà Nẵng,20194,Hải Vân\n48,Đà Nẵng,20194,Hải Vân\n", 3, "ma_xa", "already defined on line 2"},
		{"government: province renamed", "ma_tinh,ten_tinh,ma_xa,ten_xa\n48,Đà Nẵng,20194,Hải Vân\n48,Quảng Nam,20197,Hòa Khánh\n", 3, "ten_tinh", "named"},
		{"government: bad coordinates", "ma_tinh,ten_tinh,ma_xa,ten_xa,lat,lon\n48,Đà Nẵng,20194,Hải Vân,16.1,x\n", 2, "lon", "not a number"},
		{"malformed CSV", "code,name\n49,\"Quảng Nam\n", 2, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := areas.Parse(strings.NewReader(tt.csv))
			var e *areas.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v, want *areas.Error", err)
			}
			if e.Line != tt.line || e.Column != tt.column || !strings.Contains(e.Detail, tt.detail) {
				t.Errorf("got line %d column %q detail %q; want line %d column %q detail containing %q", e.Line, e.Column, e.Detail, tt.line, tt.column, tt.detail)
			}
		})
	}
	if _, err := areas.Parse(strings.NewReader("id,title\n1,x\n")); !errors.Is(err, areas.ErrNoHeader) {
		t.Errorf("unknown header: %v, want ErrNoHeader", err)
	}
}

func TestSample(t *testing.T) {
	s := areas.Sample()
	m := byCode(s)
	for _, code := range []string{"49", "502", "503", "505", "20497"} {
		if !m[code].HasCentroid {
			t.Errorf("sample %s missing or without centroid: %+v", code, m[code])
		}
	}
	if m["503"].Name != "Thành phố Hội An" || m["503"].Level != areas.LevelDistrict || m["20497"].Parent != "503" {
		t.Errorf("sample: %+v %+v", m["503"], m["20497"])
	}
}
