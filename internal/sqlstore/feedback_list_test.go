package sqlstore_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/testenv"
	"github.com/loa-hub/loa/producer/feedback"
)

// TestFeedbackListsReadTheirFilterOnly: on PostgreSQL, a list of feedback
// filtered by a category, an area or an agency that has no matters —
// which anyone may ask for, GET /v1/public/feedback?category=… — reads
// none of the other matters, and a category in an area with none of its
// matters reads that category's and that area's entries, not the table.
// Before 0166 each walked every matter newest first (59-171 ms at
// 200,000 matters). The plans are PostgreSQL's EXPLAIN ANALYZE of the
// query ListFeedback runs.
func TestFeedbackListsReadTheirFilterOnly(t *testing.T) {
	db := testenv.OpenStore(t, testenv.PostgresURL(t))
	ctx := context.Background()
	// 20,000 matters: 20 categories, 250 areas, 30 agencies, ids in
	// creation order as UUIDv7s are.
	if err := sqlstore.Exec(db, `INSERT INTO feedback (id, category, title, description, area, source, status, agency, due_at, created_at, updated_at)
		SELECT lpad(to_hex(1700000000000 + g::bigint * 470000), 12, '0') || '-7000-8000-' || lpad(to_hex(g), 12, '0'),
		       'cat-' || (g % 20), 'Tiêu đề', 'Nội dung', (20000 + g % 250)::text, 'app', 'assigned', 'agency-' || (g % 30),
		       now(), now(), now()
		  FROM generate_series(1, 20000) g`); err != nil {
		t.Fatal(err)
	}
	if err := sqlstore.Exec(db, `ANALYZE feedback`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		f    feedback.Filter
		max  int
	}{
		{"an unknown category", feedback.Filter{Category: "zzz"}, 10},
		{"an unknown area", feedback.Filter{Area: "99999"}, 10},
		{"an unknown agency", feedback.Filter{Agency: "zzz"}, 10},
		// cat-1 (1,000 matters) has none in area 20002 (80 matters).
		{"a category where it has none", feedback.Filter{Category: "cat-1", Area: "20002"}, 2_000},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.f.Limit = 100
			q, args := sqlstore.ListFeedbackQuery(c.f)
			var plan []byte
			if err := sqlstore.QueryRow(db, "EXPLAIN (ANALYZE, FORMAT JSON) "+q, args...).Scan(&plan); err != nil {
				t.Fatal(err)
			}
			var doc []struct{ Plan planNode }
			if err := json.Unmarshal(plan, &doc); err != nil || len(doc) != 1 {
				t.Fatalf("explain: %v: %s", err, plan)
			}
			if n := doc[0].Plan.examined(); n > c.max {
				t.Errorf("the list examined %d of 20,000 matters, want at most %d", n, c.max)
			}
			list, err := db.ListFeedback(ctx, c.f)
			if err != nil || len(list) != 0 {
				t.Errorf("%d matters (%v), want none", len(list), err)
			}
		})
	}
}
