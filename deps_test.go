package loa_test

import (
	"os/exec"
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
