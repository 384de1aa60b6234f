// Package fakes starts every provider fake Loa's tests and benchmarks
// talk to (FCM, the SMS gateways, an SMPP SMSC, SMTP) in one call, for
// `loa-fakes` and for end-to-end tests. The fakes themselves live in the
// sub-packages fcmfake, smsfake, smppfake and smtpfake; fault holds the fault injection they
// share and record the log of what they accepted.
package fakes
