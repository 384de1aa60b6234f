package api

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loa-hub/loa"
)

// TestEveryCodeHasAStatus: each code the root package declares is in the
// one table, so a new code is never answered as a 500 by accident.
func TestEveryCodeHasAStatus(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../error.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "E") {
					continue
				}
				code, _ := strconv.Unquote(vs.Values[i].(*ast.BasicLit).Value)
				n++
				if _, ok := problems[code]; !ok {
					t.Errorf("loa.%s (%q) has no HTTP status in problems", name.Name, code)
				}
			}
		}
	}
	if n < 10 {
		t.Fatalf("found only %d codes in ../error.go", n)
	}
}

func TestProblemOf(t *testing.T) {
	for _, tc := range []struct {
		err        error
		status     int
		typ, field string
		retry      int
	}{
		{fmt.Errorf("x: %w", loa.Invalid("ttl_seconds", "must be positive")), http.StatusBadRequest, "urn:loa:problem:invalid-field", "ttl_seconds", 0},
		{loa.NotFound("broadcast b-1 not found"), http.StatusNotFound, "urn:loa:problem:not-found", "", 0},
		{&loa.Error{Code: loa.ERateLimited, RetryAfter: 1500 * time.Millisecond}, http.StatusTooManyRequests, "urn:loa:problem:rate-limited", "", 2},
		{loa.Unavailable("try again"), http.StatusServiceUnavailable, "urn:loa:problem:unavailable", "", 1},
		{errors.New("a database password in the message"), http.StatusInternalServerError, "urn:loa:problem:internal", "", 0},
		{loa.Errorf("no-such-code", "x"), http.StatusInternalServerError, "urn:loa:problem:internal", "", 0},
	} {
		p := problemOf(tc.err)
		if p.Status != tc.status || p.Type != tc.typ || p.Field != tc.field || p.RetryAfter != tc.retry {
			t.Errorf("%v: got %+v", tc.err, p)
		}
		if p.Status == http.StatusInternalServerError && strings.Contains(p.Detail, "password") {
			t.Errorf("an internal error's detail reached the caller: %q", p.Detail)
		}
	}
}

// TestUnreachableServerIs503: a request that fails because PostgreSQL,
// Redis or Kafka cannot be reached (a restart, a failover) is answered 503
// with Retry-After, which a caller can act on, not a 500; the server's
// address stays in the log.
// sqlState is an error carrying a PostgreSQL SQLSTATE, as pgconn.PgError
// does.
type sqlState string

func (s sqlState) Error() string    { return "server error (SQLSTATE " + string(s) + ")" }
func (s sqlState) SQLState() string { return string(s) }

func TestUnreachableServerIs503(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, dialErr := net.Dial("tcp", addr)
	if dialErr == nil {
		t.Skip("something listens on the closed port again")
	}
	for _, err := range []error{
		fmt.Errorf("accounts: issue code: %w", fmt.Errorf("otp: issue: %w", dialErr)),
		fmt.Errorf("store: %w", syscall.ECONNRESET),
		fmt.Errorf("sqlstore: api key: %w", io.ErrUnexpectedEOF), // PostgreSQL shut down under a query
		// PostgreSQL restarting after a crash, and shutting down.
		fmt.Errorf("sqlstore: api key: failed to connect: %w", sqlState("57P03")),
		fmt.Errorf("sqlstore: insert: %w", sqlState("57P01")),
		fmt.Errorf("sqlstore: insert: %w", sqlState("08006")),
	} {
		p := problemOf(err)
		if p.Status != http.StatusServiceUnavailable || p.Type != "urn:loa:problem:unavailable" || p.RetryAfter != 1 {
			t.Errorf("%v: got %+v", err, p)
		}
		if strings.Contains(p.Detail, addr) {
			t.Errorf("the server's address reached the caller: %q", p.Detail)
		}
	}
	// A statement PostgreSQL refused is not an outage.
	if p := problemOf(fmt.Errorf("sqlstore: %w", sqlState("23505"))); p.Status != http.StatusInternalServerError {
		t.Errorf("a unique violation: got %+v", p)
	}
}
