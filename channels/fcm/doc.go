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
package fcm
