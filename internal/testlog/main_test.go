package main

import (
	"strings"
	"testing"
)

// TestFilter: a passing test shows its summary line only; a failing one
// shows its summary, and then its whole output, the multi-line log the
// one-line filter used to drop included.
func TestFilter(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"run","Package":"p","Test":"TestOK"}`,
		`{"Action":"output","Package":"p","Test":"TestOK","Output":"=== RUN   TestOK\n"}`,
		`{"Action":"output","Package":"p","Test":"TestOK","Output":"    ok_test.go:9: server log:\n        noise of a passing test\n"}`,
		`{"Action":"output","Package":"p","Test":"TestOK","Output":"--- PASS: TestOK (0.01s)\n"}`,
		`{"Action":"pass","Package":"p","Test":"TestOK"}`,
		`{"Action":"run","Package":"p","Test":"TestBad"}`,
		`{"Action":"output","Package":"p","Test":"TestBad","Output":"    bad_test.go:12: loa dev output:\n"}`,
		`{"Action":"output","Package":"p","Test":"TestBad","Output":"        level=ERROR msg=\"address already in use\"\n"}`,
		`{"Action":"output","Package":"p","Test":"TestBad","Output":"--- FAIL: TestBad (1.00s)\n"}`,
		`{"Action":"fail","Package":"p","Test":"TestBad"}`,
		`# p [build failed]`,
		`{"Action":"output","Package":"p","Output":"FAIL\tp\t1.2s\n"}`,
		`{"Action":"fail","Package":"p"}`,
	}, "\n")
	var out strings.Builder
	failed, err := filter(strings.NewReader(in), &out)
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !failed {
		t.Error("a failed test was not reported as a failure")
	}
	for _, want := range []string{"--- PASS: TestOK", "ok_test.go:9: server log:", "--- FAIL: TestBad", `|         level=ERROR msg="address already in use"`, "# p [build failed]", "FAIL\tp\t1.2s"} {
		if !strings.Contains(got, want) {
			t.Errorf("the output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "noise of a passing test") {
		t.Errorf("a passing test's log was printed:\n%s", got)
	}
}

// TestFilterKilledRun: input that ends with a test still running (go
// test killed) is a failure and shows what that test wrote.
func TestFilterKilledRun(t *testing.T) {
	in := `{"Action":"run","Package":"p","Test":"TestHang"}
{"Action":"output","Package":"p","Test":"TestHang","Output":"    waiting for the ledger\n"}`
	var out strings.Builder
	failed, err := filter(strings.NewReader(in), &out)
	if err != nil || !failed || !strings.Contains(out.String(), "waiting for the ledger") {
		t.Errorf("failed %v, err %v, output:\n%s", failed, err, out.String())
	}
}
