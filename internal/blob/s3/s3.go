// Package s3 keeps blobs in S3-compatible object storage (MinIO, Ceph,
// AWS S3, the provincial data centre's object store) through the MinIO Go
// client, which speaks plain S3 and signs with AWS Signature V4. It
// satisfies the same contract as blob.Dir (internal/blob/blobtest).
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/loa-hub/loa/internal/blob"
)

// Config names the bucket and how to reach it.
type Config struct {
	// Endpoint is the server's URL, e.g. https://s3.example.gov.vn or
	// http://127.0.0.1:9000.
	Endpoint  string
	Region    string
	Bucket    string
	AccessKey string
	SecretKey string
	// CreateBucket makes the bucket at start when it does not exist.
	CreateBucket bool
}

// Validate reports what is missing.
func (c Config) Validate() error {
	u, err := url.Parse(c.Endpoint)
	switch {
	case c.Endpoint == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return errors.New("s3: the endpoint must be an http(s) URL")
	case c.Bucket == "":
		return errors.New("s3: a bucket is required")
	case c.AccessKey == "" || c.SecretKey == "":
		return errors.New("s3: the access key and secret key are required")
	}
	return nil
}

// Store is a bucket. It is safe for concurrent use.
type Store struct {
	c      *minio.Client
	bucket string
}

// New connects to the bucket (creating it when asked).
func New(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.Endpoint)
	c, err := minio.New(u.Host, &minio.Options{
		Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""), Secure: u.Scheme == "https", Region: cfg.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3: bucket %s at %s: %w", cfg.Bucket, u.Host, err)
	}
	if !ok {
		if !cfg.CreateBucket {
			return nil, fmt.Errorf("s3: bucket %s does not exist at %s", cfg.Bucket, u.Host)
		}
		if err := c.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region}); err != nil {
			return nil, fmt.Errorf("s3: make bucket %s: %w", cfg.Bucket, err)
		}
	}
	return &Store{c: c, bucket: cfg.Bucket}, nil
}

// Put uploads size bytes of r under key; with a known size the client
// streams it (a single PUT up to its part size, multipart above), never
// holding the whole in memory.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if err := blob.ValidKey(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("s3: put %s: the size must be known", key)
	}
	// A reader that ends early must fail the upload, not store less.
	lr := &exact{r: r, left: size}
	if _, err := s.c.PutObject(ctx, s.bucket, key, lr, size, minio.PutObjectOptions{ContentType: contentType}); err != nil {
		return fmt.Errorf("s3: put %s: %w", key, err)
	}
	return nil
}

type exact struct {
	r    io.Reader
	left int64
}

func (e *exact) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if errors.Is(err, io.EOF) && e.left > 0 {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

// Open returns the object's content and size. Errors: blob.ErrNotFound.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	if err := blob.ValidKey(key); err != nil {
		return nil, 0, err
	}
	o, err := s.c.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, 0, translate(key, err)
	}
	st, err := o.Stat()
	if err != nil {
		o.Close()
		return nil, 0, translate(key, err)
	}
	return o, st.Size, nil
}

// Delete removes an object; a missing one is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := blob.ValidKey(key); err != nil {
		return err
	}
	if err := s.c.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		if errors.Is(translate(key, err), blob.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("s3: delete %s: %w", key, err)
	}
	return nil
}

// Ping checks that the bucket answers.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.c.BucketExists(ctx, s.bucket)
	return err
}

func translate(key string, err error) error {
	resp := minio.ToErrorResponse(err)
	if resp.StatusCode == 404 || strings.HasPrefix(resp.Code, "NoSuch") {
		return fmt.Errorf("s3: %s: %w", key, blob.ErrNotFound)
	}
	return fmt.Errorf("s3: %s: %w", key, err)
}
