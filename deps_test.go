package loa_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestNoInfrastructureInTheVocabulary: the root package, which every
// other package imports, the producer package and the domain producers
// pull in no SQL driver, no Kafka client, no HTTP router and not the
// store: they reach storage and Kafka through interfaces that
// internal/sqlstore and producer/kafkapub implement. The root and
// producer reach no Redis client either (a domain may, through the
// accounts service, whose one-time codes live in Redis, unless it is
// stricter).
func TestNoInfrastructureInTheVocabulary(t *testing.T) {
	forbidden := []string{"database/sql", "github.com/jackc/pgx", "modernc.org/sqlite", "github.com/segmentio/kafka-go",
		"github.com/twmb/franz-go", "github.com/go-chi/chi", "github.com/loa-hub/loa/internal/sqlstore"}
	check := func(pkg string, forbidden []string) {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == "database/sql/driver" { // the interfaces alone (uuid implements Valuer)
				continue
			}
			for _, f := range forbidden {
				if dep == f || strings.HasPrefix(dep, f+"/") {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
	for _, pkg := range []string{"github.com/loa-hub/loa", "github.com/loa-hub/loa/producer"} {
		check(pkg, append(forbidden, "github.com/redis/go-redis"))
	}
	for _, d := range domains {
		check("github.com/loa-hub/loa/producer/"+d, append(forbidden, stricter[d]...))
	}
}

// stricter names what a domain must not reach on top of the rest:
// feedback and portal touch no Redis, no object-store client (photos and
// covers go through a blob interface) and no HTTP.
var stricter = map[string][]string{
	"feedback": {"github.com/redis/go-redis", "github.com/minio/minio-go", "net/http"},
	"portal":   {"github.com/redis/go-redis", "github.com/minio/minio-go", "net/http"},
}

// domains are the producing services whose types and store interfaces
// live in their own package.
var domains = []string{"feedback", "portal", "outage", "direct", "broadcast", "alert"}

// TestTheFakesLeaveTheBinary: the provider fakes are a command of their
// own (cmd/loa-fakes); the loa binary that is deployed links none of them.
func TestTheFakesLeaveTheBinary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/loa-hub/loa/cmd/loa").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/loa-hub/loa/internal/fakes" || strings.HasPrefix(dep, "github.com/loa-hub/loa/internal/fakes/") {
			t.Errorf("the loa binary links %s", dep)
		}
	}
}

// TestTheBinaryLinksOnlyTheSDKsMessaging: of the Firebase Admin SDK the
// loa binary links the messaging package, not the SDK's root package,
// which imports every Firebase service — Cloud Firestore and Cloud
// Storage, with gRPC's xDS balancer and Envoy's generated API — whose
// package initialisation would run, and keep the binary's pages
// resident, in every process.
func TestTheBinaryLinksOnlyTheSDKsMessaging(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/loa-hub/loa/cmd/loa").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range []string{"cloud.google.com/go/firestore", "cloud.google.com/go/storage", "github.com/envoyproxy/go-control-plane"} {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("the loa binary links %s", dep)
			}
		}
		if dep == "firebase.google.com/go/v4" {
			t.Errorf("the loa binary links the Firebase SDK's root package")
		}
	}
}

// TestPackageInitialisationIsSmall: every loa process runs the
// initialisation of every package the binary links and keeps what it
// builds for its lifetime. The dispatcher's live heap is under 30 MB, so
// tables that no part of the process uses are not small change: the
// binary's packages together allocate at most 4 MiB when it starts, and
// no one of them more than 512 KiB (GODEBUG=inittrace=1).
func TestPackageInitialisationIsSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the loa binary")
	}
	bin := filepath.Join(t.TempDir(), "loa")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/loa").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "help")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("loa help: %v\n%s", err, out)
	}
	// init internal/bytealg @0.004 ms, 0.001 ms clock, 0 bytes, 0 allocs
	line := regexp.MustCompile(`(?m)^init (\S+) @.*, (\d+) bytes, \d+ allocs$`)
	total, n := 0, 0
	for _, m := range line.FindAllStringSubmatch(string(out), -1) {
		b, _ := strconv.Atoi(m[2])
		total += b
		n++
		if b > 512<<10 {
			t.Errorf("the initialisation of %s allocates %d KiB", m[1], b>>10)
		}
	}
	if n < 100 {
		t.Fatalf("%d packages' initialisation traced:\n%s", n, out)
	}
	if total > 4<<20 {
		t.Errorf("the binary's packages allocate %d KiB when it starts", total>>10)
	}
	t.Logf("%d packages allocate %d KiB when the binary starts", n, total>>10)
}
