package s3_test

import (
	"context"
	"os"
	"testing"

	"github.com/loa-hub/loa/internal/blob/blobtest"
	"github.com/loa-hub/loa/internal/blob/s3"
	"github.com/loa-hub/loa/internal/testenv"
)

// TestS3 runs the blob contract against the S3-compatible server named by
// LOA_TEST_S3_ENDPOINT (deploy/local/s3.sh starts one for CI).
func TestS3(t *testing.T) {
	endpoint := os.Getenv("LOA_TEST_S3_ENDPOINT")
	if endpoint == "" {
		if testenv.Required() {
			t.Fatal("LOA_TEST_S3_ENDPOINT is not set and LOA_REQUIRE_SERVICES=1: run deploy/local/up.sh")
		}
		t.Skip("LOA_TEST_S3_ENDPOINT not set")
	}
	ctx := context.Background()
	st, err := s3.New(ctx, s3.Config{Endpoint: endpoint, Region: "us-east-1", Bucket: os.Getenv("LOA_TEST_S3_BUCKET"),
		AccessKey: os.Getenv("LOA_TEST_S3_ACCESS_KEY"), SecretKey: os.Getenv("LOA_TEST_S3_SECRET_KEY"), CreateBucket: true})
	if err != nil {
		t.Fatal(err)
	}
	blobtest.Run(t, st, testenv.ID())
}
