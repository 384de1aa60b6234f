package portal_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDomainHasNoInfrastructure: the portal domain reaches no SQL driver,
// HTTP router, Redis or object-store client, and imports no Kafka client
// itself (publications leave through the outbox).
func TestDomainHasNoInfrastructure(t *testing.T) {
	forbidden := []string{"database/sql", "github.com/jackc/pgx", "modernc.org/sqlite", "github.com/go-chi/chi",
		"github.com/redis/go-redis", "github.com/minio/minio-go", "github.com/loa-hub/loa/internal/sqlstore", "net/http"}
	const pkg = "github.com/loa-hub/loa/producer/portal"
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") && dep != "database/sql/driver" {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
	out, err = exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, pkg).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range strings.Fields(string(out)) {
		if strings.Contains(imp, "kafka") {
			t.Errorf("%s imports %s", pkg, imp)
		}
	}
}
