// Package fcm delivers push notifications through Firebase Cloud Messaging
// (HTTP v1 API, firebase.google.com/go/v4/messaging) and translates FCM's
// answers into Loa's failure classes.
//
// Authentication: in production Config.CredentialsFile names a Google
// service-account file and the Google auth library fetches OAuth2 tokens
// from the file's token_uri. Tests do the same against
// internal/fakes/fcmfake, whose WriteServiceAccount writes a throwaway
// credential pointing at the fake's token endpoint; or they leave
// CredentialsFile empty, which sends unauthenticated requests and is
// allowed only together with an explicit Endpoint.
//
// Retries: the SDK retries 503 answers and network errors with back-off
// (seconds per call). A Client stops that on the first such failure and
// returns a Transient error carrying the answer's Retry-After, so a worker
// is never held waiting; retrying is the dispatcher's job.
//
// Transport: the SDK's requests go through Loa's own connection pool to
// FCM (pool, h2Conn) and HTTP/2 client (clientConn), made for what the
// SDK sends: no goroutine per request, a header block learnt once and
// then sent as table indices. A request the server surely did not
// process (REFUSED_STREAM, past a GOAWAY's last stream) is sent again on
// another stream; one that may have reached FCM never is.
package fcm
