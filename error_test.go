package loa_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/loa-hub/loa"
)

func TestError(t *testing.T) {
	errGone := errors.New("thing: not found")
	err := fmt.Errorf("thing: get: %w", loa.NotFound("thing %s not found", "t-1").Wrap(errGone))
	if loa.ErrorCode(err) != loa.ENotFound || !errors.Is(err, errGone) {
		t.Errorf("code %q, is %v", loa.ErrorCode(err), errors.Is(err, errGone))
	}
	if loa.ErrorCode(nil) != "" || loa.ErrorCode(errors.New("boom")) != loa.EInternal {
		t.Error("ErrorCode of nil or a plain error")
	}

	var v loa.Validation
	if v.Err(nil) != nil {
		t.Fatal("an empty validation is an error")
	}
	v.Add("title", "is required")
	v.Add("body", "is longer than %d characters", 4000)
	verr := v.Err(errGone)
	e, ok := errors.AsType[*loa.Error](verr)
	if !ok || e.Code != loa.EInvalid || e.Field != "title" || len(e.Fields) != 2 || !errors.Is(verr, errGone) {
		t.Fatalf("validation: %#v", verr)
	}
	if e.Detail != "is required (and 1 more)" || e.Error() != "title: is required (and 1 more)" {
		t.Errorf("detail %q, message %q", e.Detail, e.Error())
	}

	// Wrap copies: a package's sentinel is never changed by it.
	sentinel := loa.Forbidden("no")
	if w := sentinel.Wrap(errGone); w == sentinel || sentinel.Err != nil {
		t.Error("Wrap changed its receiver")
	}
}
