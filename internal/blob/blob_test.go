package blob_test

import (
	"testing"

	"github.com/loa-hub/loa/internal/blob"
	"github.com/loa-hub/loa/internal/blob/blobtest"
)

func TestDir(t *testing.T) {
	d, err := blob.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	blobtest.Run(t, d, "t")
}
