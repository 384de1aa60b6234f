package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// problem is an API error (RFC 9457).
type problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail"`
	Field  string       `json:"field"`
	Errors []fieldError `json:"errors"`
}

type fieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

func (p *problem) Error() string { return fmt.Sprintf("%d %s: %s", p.Status, p.Type, p.Detail) }

// recorder is the in-process response of an API call.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

// call makes one API call in process on behalf of the browser's request
// from: the same client address (and forwarded headers, which the API
// believes only from trusted proxies), with token as the bearer when it
// is set. A 2xx answer is decoded into out (when not nil); any other
// answer is returned as a *problem. The status is returned either way.
func (c *Console) call(ctx context.Context, from *http.Request, token, method, path string, in, out any) (int, error) {
	var (
		body        io.Reader
		contentType string
	)
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("console: %s %s: %w", method, path, err)
		}
		body, contentType = bytes.NewReader(b), "application/json"
	}
	return c.callBody(ctx, from, token, method, path, contentType, body, out)
}

// callBody is call with a body of the given content type as it is (a
// CAP document).
func (c *Console) callBody(ctx context.Context, from *http.Request, token, method, path, contentType string, body io.Reader, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, path, body)
	if err != nil {
		return 0, fmt.Errorf("console: %s %s: %w", method, path, err)
	}
	forward(req, from, "X-Forwarded-For", "User-Agent", "Accept-Language")
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := &recorder{header: http.Header{}}
	c.cfg.API.ServeHTTP(rec, req)
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	if rec.code >= 200 && rec.code < 300 {
		if out != nil && rec.body.Len() > 0 {
			if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
				return rec.code, fmt.Errorf("console: %s %s: decoding the answer: %w", method, path, err)
			}
		}
		return rec.code, nil
	}
	p := &problem{Status: rec.code}
	if err := json.Unmarshal(rec.body.Bytes(), p); err != nil || p.Status == 0 {
		p.Status, p.Detail = rec.code, strings.TrimSpace(rec.body.String())
	}
	return rec.code, p
}

// forward gives req, an in-process API call, the peer address of the
// browser's request from and every line of its headers named, in order.
// The API reads all of X-Forwarded-For from the right (api.ClientIP): a
// proxy that adds its entry as a line of its own puts the browser's own
// line first, so passing on only the first line would let the browser
// choose the address the API counts and audits.
func forward(req, from *http.Request, headers ...string) {
	req.RemoteAddr = from.RemoteAddr
	for _, h := range headers {
		if vs := from.Header.Values(h); len(vs) > 0 {
			req.Header[http.CanonicalHeaderKey(h)] = slices.Clone(vs)
		}
	}
}

// api calls the API with the request's session.
func (c *Console) api(r *http.Request, method, path string, in, out any) (int, error) {
	token := ""
	if s := sessionFrom(r.Context()); s != nil {
		token = s.token
	}
	return c.call(r.Context(), r, token, method, path, in, out)
}

// get is api for GET with a query.
func (c *Console) get(r *http.Request, path string, q url.Values, out any) (int, error) {
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return c.api(r, http.MethodGet, path, nil, out)
}

// getRaw is a GET of the API with the request's session whose 2xx answer
// is not JSON (a photo): its content type and body. Any other answer is
// a *problem.
func (c *Console) getRaw(r *http.Request, path string) (string, []byte, error) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, path, nil)
	if err != nil {
		return "", nil, fmt.Errorf("console: GET %s: %w", path, err)
	}
	forward(req, r, "X-Forwarded-For", "User-Agent")
	if s := sessionFrom(r.Context()); s != nil {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	rec := &recorder{header: http.Header{}}
	c.cfg.API.ServeHTTP(rec, req)
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	if rec.code >= 200 && rec.code < 300 {
		return rec.header.Get("Content-Type"), rec.body.Bytes(), nil
	}
	p := &problem{Status: rec.code}
	if err := json.Unmarshal(rec.body.Bytes(), p); err != nil || p.Status == 0 {
		p.Status = rec.code
	}
	return "", nil, p
}
