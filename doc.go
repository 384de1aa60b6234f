// Package loa holds the words every part of Loa shares: the status of a
// delivery and how a channel's and a notification's statuses roll up from
// its deliveries, and the one error type whose stable code the API turns
// into an HTTP status and a problem type.
//
// It imports nothing of Loa and no infrastructure: domain packages,
// adapters and the API all depend on it, never the other way round.
package loa
