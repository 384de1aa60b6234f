package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/loa-hub/loa/api"
	"github.com/loa-hub/loa/producer/feedback"
)

// countingBlobs counts the photos put into the blob store.
type countingBlobs struct {
	api.Blobs
	puts atomic.Int64
}

func (b *countingBlobs) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	b.puts.Add(1)
	return b.Blobs.Put(ctx, key, r, size, contentType)
}

// TestAKeyNamingManyPhonesIsBounded: an integrating system's feedback was
// bounded per phone it named (20 a day), so a key naming many phones
// could file without end, each with 5 photos of 5 MiB: the handlers'
// queues and the blob store filled. Now a key's day is bounded over
// every phone (KeyPerDay), and so are its matters with photos
// (KeyPhotosPerDay): past that a submission with photos is refused 429
// naming "photos" before any photo is stored, one without is accepted.
// Another key is not held up.
func TestAKeyNamingManyPhonesIsBounded(t *testing.T) {
	blobs := &countingBlobs{}
	f := newFeedbackFixtureWith(t, func(d *api.Deps) {
		cfg := feedback.DefaultConfig()
		cfg.CoordinatorUnit, cfg.KeyPerDay, cfg.KeyPhotosPerDay = "sotttt", 6, 3
		fb, err := feedback.New(cfg, feedback.Deps{Store: d.Store, Roles: accountGrants{d.Accounts}, Directory: d.Store, Log: d.Log, Now: d.Now})
		if err != nil {
			t.Fatal(err)
		}
		d.Feedback = fb
		blobs.Blobs = d.Blobs
		d.Blobs = blobs
	})
	key := f.key(t, "hotline", api.ScopeFeedbackWrite)
	other := f.key(t, "zalo", api.ScopeFeedbackWrite)
	phone := 0
	data := func() string {
		phone++
		return strings.Replace(fbData, `"address"`, fmt.Sprintf(`"phone":"09051%05d","address"`, phone), 1)
	}
	photo := jpegWithGPS(t, 64, 48)
	withPhoto := func(key string) (int, map[string]any) {
		ct, body := multipartBody(t, data(), photo)
		resp, b := f.post(t, "/v1/feedback", key, ct, body)
		var out map[string]any
		json.Unmarshal(b, &out)
		return resp.StatusCode, out
	}
	without := func(key string) (int, map[string]any) {
		resp, b := f.post(t, "/v1/feedback", key, "application/json", strings.NewReader(data()))
		var out map[string]any
		json.Unmarshal(b, &out)
		return resp.StatusCode, out
	}
	for i := range 3 {
		if code, out := withPhoto(key); code != 201 {
			t.Fatalf("with a photo, phone %d: %d %v", i, code, out)
		}
	}
	if code, out := withPhoto(key); code != 429 || out["field"] != "photos" {
		t.Errorf("the key's 4th with photos: %d %v, want 429 naming photos", code, out)
	}
	if n := blobs.puts.Load(); n != 3 {
		t.Errorf("%d photos stored, want the 3 accepted", n)
	}
	for i := range 3 {
		if code, out := without(key); code != 201 {
			t.Fatalf("without photos, %d: %d %v", i, code, out)
		}
	}
	if code, out := without(key); code != 429 {
		t.Errorf("the key's 7th matter, each for another phone: %d %v, want 429", code, out)
	}
	if code, out := withPhoto(other); code != 201 {
		t.Errorf("another key: %d %v", code, out)
	}
}
