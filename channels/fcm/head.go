package fcm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/loa-hub/loa/channels"
)

// The SDK encodes a send request as {"message":{…}}, the message's fields
// in the order of messaging.Message, the token the last field Loa sets. A
// push's request is then its shape's head (the fields before the token)
// followed by the token's field and the two closing braces; the SDK,
// given a message with only the token, encodes {"message":{ followed by
// that same tail. So the SDK encodes a shape's shared part once, in the
// first push's request, and each later push's request is put together
// from the head and the SDK's encoding of the push's token alone: the
// bytes FCM receives are the SDK's encoding of the whole message.
const (
	requestOpen  = `{"message":{`
	requestClose = `}}`
	tokenField   = `"token":`
)

// learnHead stores in s the head of req, the SDK's request for a push of
// s to token: its body up to the token's field. It learns nothing from a
// body not laid out as expected: s's pushes then go whole through the SDK.
func learnHead(s *shape, token string, req *http.Request) {
	if req.GetBody == nil || s.head.Load() != nil {
		return
	}
	rc, err := req.GetBody()
	if err != nil {
		return
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return
	}
	t, err := json.Marshal(token) // as the SDK's encoding/json writes it
	if err != nil {
		return
	}
	tail := slices.Concat([]byte(tokenField), t, []byte(requestClose))
	head, ok := bytes.CutSuffix(b, tail)
	if !ok || !bytes.HasPrefix(head, []byte(requestOpen)) || len(head) > len(requestOpen) && head[len(head)-1] != ',' {
		return
	}
	head = bytes.Clone(head)
	s.head.Store(&head)
}

// withHead returns req, the SDK's request for a message with only a
// token, with the body head + the SDK's token field and closing braces,
// and the Authorization header auth unless nil.
func withHead(req *http.Request, head []byte, auth []string) (*http.Request, error) {
	n := int(req.ContentLength)
	if req.Body == nil || n <= len(requestOpen)+len(tokenField)+len(requestClose) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errUnexpectedBody
	}
	b := make([]byte, len(head)+n-len(requestOpen))
	copy(b, head)
	var open [len(requestOpen)]byte
	_, err := io.ReadFull(req.Body, open[:])
	if err == nil {
		_, err = io.ReadFull(req.Body, b[len(head):])
	}
	req.Body.Close()
	if err != nil || string(open[:]) != requestOpen || !bytes.HasPrefix(b[len(head):], []byte(tokenField)) ||
		!bytes.HasSuffix(b, []byte(requestClose)) {
		return nil, errUnexpectedBody
	}
	r := &headRequest{Request: *req} // the caller's request is not to be changed
	r.body.Reset(b)
	r.Body, r.ContentLength, r.Header = &r.body, int64(len(b)), withAuth(req.Header, auth)
	r.GetBody = func() (io.ReadCloser, error) {
		rc := &bodyReader{}
		rc.Reset(b)
		return rc, nil
	}
	return &r.Request, nil
}

// headRequest is a request withHead made and its body, in one allocation.
type headRequest struct {
	http.Request
	body bodyReader
}

// errUnexpectedBody fails a push whose request withHead could not put
// together. FCM was not called.
var errUnexpectedBody = fmt.Errorf("%w: fcm: the SDK's request for a token is not laid out as expected", channels.ErrNotAttempted)

// bodyReader is a request body over bytes in memory.
type bodyReader struct{ bytes.Reader }

func (*bodyReader) Close() error { return nil }
