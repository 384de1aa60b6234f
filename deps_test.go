package loa_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoInfrastructureInTheVocabulary: the root package, which every
// other package imports, pulls in no SQL driver, no Kafka client and no
// HTTP router.
func TestNoInfrastructureInTheVocabulary(t *testing.T) {
	forbidden := []string{"database/sql", "github.com/jackc/pgx", "modernc.org/sqlite", "github.com/segmentio/kafka-go",
		"github.com/twmb/franz-go", "github.com/go-chi/chi", "github.com/redis/go-redis"}
	for _, pkg := range []string{"github.com/loa-hub/loa"} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range forbidden {
				if dep == f || strings.HasPrefix(dep, f+"/") {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}

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
