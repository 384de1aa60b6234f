package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Problem is an RFC 9457 answer of the API.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Field  string `json:"field"`
}

func (p *Problem) Error() string {
	return fmt.Sprintf("%d %s: %s (field %q)", p.Status, p.Type, p.Detail, p.Field)
}

// Client calls Loa's API. It is safe for concurrent use.
type Client struct {
	Base string
	HC   *http.Client
}

// NewClient returns a Client of the API at base.
func NewClient(base string) *Client {
	return &Client{Base: base, HC: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
}

// Call sends body (JSON, or nothing when nil) with token as the bearer
// ("" for none) and decodes a 2xx answer into out (when not nil). A
// non-2xx answer is returned as *Problem; a transport failure as is.
func (c *Client) Call(ctx context.Context, method, path, token string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.HC.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		p := &Problem{Status: resp.StatusCode}
		if json.Unmarshal(b, p) != nil || p.Type == "" {
			p.Detail = strings.TrimSpace(string(b))
		}
		return resp.StatusCode, p
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("fleet: %s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// Client returns a Client of the fleet's API.
func (f *Fleet) Client() *Client { return NewClient(f.Base) }

// officialPassword is the password of the officials Official creates.
const officialPassword = "Fleet-Official-2026!"

// Official creates an official with roles in unit (through `loa admin
// official create`) and signs in as they would (SignIn). It returns the
// session token.
func (f *Fleet) Official(ctx context.Context, username, unit, roles, phone string) (string, error) {
	pw := filepath.Join(f.opts.Dir, username+".password")
	if err := os.WriteFile(pw, []byte(officialPassword), 0o600); err != nil {
		return "", err
	}
	if _, err := f.Admin(ctx, "official", "create", "--username", username, "--full-name", "Cán bộ "+username,
		"--phone", phone, "--unit", unit, "--roles", roles, "--password-file", pw); err != nil {
		return "", err
	}
	return f.SignIn(ctx, username, phone)
}

// SignIn signs an official made by Official in again: password, then the
// code sent by SMS to phone, read from the SMS fakes.
func (f *Fleet) SignIn(ctx context.Context, username, phone string) (string, error) {
	c := f.Client()
	since := time.Now()
	if _, err := c.Call(ctx, "POST", "/v1/sessions", "", map[string]string{"username": username, "password": officialPassword, "send_code": "sms"}, nil); err != nil {
		return "", fmt.Errorf("fleet: sign in %s: %w", username, err)
	}
	code, err := f.WaitCode(ctx, normalPhone(phone), since)
	if err != nil {
		return "", fmt.Errorf("fleet: sign in %s: %w", username, err)
	}
	var s struct {
		Token string `json:"token"`
	}
	if _, err := c.Call(ctx, "POST", "/v1/sessions", "", map[string]string{"username": username, "password": officialPassword, "otp": code}, &s); err != nil {
		return "", fmt.Errorf("fleet: sign in %s with the code: %w", username, err)
	}
	return s.Token, nil
}

// APIKey creates an API key with scopes (comma-separated) through `loa
// admin apikey create`, with the command's further flags (such as
// "--alert-areas", "95" for alerts:issue), and returns it.
func (f *Fleet) APIKey(ctx context.Context, name, scopes string, flags ...string) (string, error) {
	out, err := f.Admin(ctx, append([]string{"apikey", "create", "--name", name, "--scopes", scopes}, flags...)...)
	if err != nil {
		return "", err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return strings.TrimSpace(lines[len(lines)-1]), nil
}

// normalPhone turns 09xxxxxxxx into 849xxxxxxxx as Loa stores phones.
func normalPhone(p string) string {
	if strings.HasPrefix(p, "0") {
		return "84" + p[1:]
	}
	return p
}

var codeRE = regexp.MustCompile(`^([0-9]{6}) `)

// SMS is one message an SMS fake accepted.
type SMS struct {
	Gateway string    `json:"Gateway"`
	Phone   string    `json:"Phone"`
	Content string    `json:"Content"`
	At      time.Time `json:"At"`
}

// SMSMessages returns what the eSMS and SpeedSMS fakes accepted.
func (f *Fleet) SMSMessages(ctx context.Context) ([]SMS, error) {
	var all []SMS
	for _, g := range []string{"esms", "speedsms"} {
		var got []SMS // the control server answers the bare list
		if err := f.control(ctx, "GET", "/"+g+"/_messages", nil, &got); err != nil {
			return nil, err
		}
		all = append(all, got...)
	}
	return all, nil
}

// WaitCode waits for an SMS code to phone (849…) accepted by a fake after
// since, and returns the newest.
func (f *Fleet) WaitCode(ctx context.Context, phone string, since time.Time) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		msgs, err := f.SMSMessages(ctx)
		if err == nil {
			for i := len(msgs) - 1; i >= 0; i-- {
				if m := codeRE.FindStringSubmatch(msgs[i].Content); m != nil && msgs[i].Phone == phone && !msgs[i].At.Before(since) {
					return m[1], nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no code reached %s: %w", phone, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Counts is what a fake accepted per recipient.
type Counts struct {
	Count       int            `json:"count"`
	ByRecipient map[string]int `json:"by_recipient"`
}

// FakeCounts reads what fake ("fcm", "esms", "speedsms") accepted.
func (f *Fleet) FakeCounts(ctx context.Context, fake string) (Counts, error) {
	var c Counts
	err := f.control(ctx, "GET", "/"+fake+"/_counts", nil, &c)
	return c, err
}

// FakeCount reads how many messages fake ("fcm", "esms", "speedsms")
// accepted.
func (f *Fleet) FakeCount(ctx context.Context, fake string) (int, error) {
	var s struct {
		Count int `json:"count"`
	}
	err := f.control(ctx, "GET", "/"+fake+"/_stats", nil, &s)
	return s.Count, err
}

// FCMStats are the FCM fake's counters.
type FCMStats struct {
	Count       int   `json:"count"`
	Requests    int   `json:"requests"`
	InFlight    int64 `json:"in_flight"`
	MaxInFlight int64 `json:"max_in_flight"`
}

// FCMStats reads the FCM fake's counters.
func (f *Fleet) FCMStats(ctx context.Context) (FCMStats, error) {
	var s FCMStats
	err := f.control(ctx, "GET", "/fcm/_stats", nil, &s)
	return s, err
}

// SetFault replaces fake's fault plan with plan (see package
// internal/fakes/fault for the fields); a nil plan clears it.
func (f *Fleet) SetFault(ctx context.Context, fake string, plan map[string]any) error {
	if plan == nil {
		return f.control(ctx, "DELETE", "/"+fake+"/_fault", nil, nil)
	}
	return f.control(ctx, "POST", "/"+fake+"/_fault", plan, nil)
}

func (f *Fleet) control(ctx context.Context, method, path string, body, out any) error {
	if f.Control == "" {
		return errors.New("fleet: the fakes are not running")
	}
	_, err := NewClient(f.Control).Call(ctx, method, path, "", body, out)
	return err
}
