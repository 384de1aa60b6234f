// Package channels defines the contract every delivery channel implements
// (push, SMS, email, the sandbox) and the error classes a failed send is
// reported with. The dispatcher decides what to do with a failure from its
// class alone: retry a transient one later, dead-letter a permanent one,
// deactivate the device behind a dead token, drop an expired message.
//
// Implementations live in sub-packages named after the provider technology
// (fcm, sms, email, sandbox).
package channels
