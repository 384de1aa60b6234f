package feedback

import (
	_ "embed"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

//go:embed categories_sample.csv
var categoriesSample string

// SampleCategories returns the categories loa dev starts with.
func SampleCategories() []Category {
	cs, err := ParseCategories(strings.NewReader(categoriesSample))
	if err != nil {
		panic("feedback: the embedded categories_sample.csv is invalid: " + err.Error())
	}
	return cs
}

// ParseCategories reads a categories CSV with the header
// code,name,name_en,group,agency,handling_days (UTF-8). An empty agency
// leaves the category's feedback to the coordinators to assign. Errors
// name the line.
func ParseCategories(r io.Reader) ([]Category, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 6
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("feedback: categories: %w", err)
	}
	if strings.Join(head, ",") != "code,name,name_en,group,agency,handling_days" {
		return nil, fmt.Errorf("feedback: categories: line 1: want the header code,name,name_en,group,agency,handling_days")
	}
	var out []Category
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("feedback: categories: %w", err)
		}
		line, _ := cr.FieldPos(0)
		days, err := strconv.Atoi(rec[5])
		nfc := func(s string) string { return strings.TrimSpace(norm.NFC.String(s)) }
		c := Category{Code: strings.TrimSpace(rec[0]), Name: nfc(rec[1]), NameEN: nfc(rec[2]), Group: nfc(rec[3]), Agency: strings.TrimSpace(rec[4]),
			HandlingDays: days, Active: true}
		switch {
		case !validCode(c.Code):
			return nil, fmt.Errorf("feedback: categories: line %d: bad code %q", line, c.Code)
		case c.Name == "" || !utf8.ValidString(rec[1]):
			return nil, fmt.Errorf("feedback: categories: line %d: the name is empty", line)
		case c.Agency != "" && !validCode(c.Agency):
			return nil, fmt.Errorf("feedback: categories: line %d: bad agency %q", line, c.Agency)
		case err != nil || days < 1 || days > 90:
			return nil, fmt.Errorf("feedback: categories: line %d: handling_days must be 1 to 90", line)
		}
		out = append(out, c)
	}
}
