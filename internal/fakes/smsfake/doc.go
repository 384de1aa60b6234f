// Package smsfake holds fake SMS gateways for tests and benchmarks: an
// eSMS-style JSON gateway, a SpeedSMS-style gateway and a generic JSON
// webhook. Each is a real HTTP server on 127.0.0.1, records what it
// accepted, injects faults (fault.Injector), and can post a delivery report
// to a callback URL after accepting a message.
//
// Fault names (Faults.Error and Faults.Recipients, keyed by phone number):
// the eSMS fake answers a name as its CodeResult ("99", "101", "103",
// "104", …) with HTTP 200; the SpeedSMS fake answers it as its error code
// ("007", "105", "300", …) with HTTP 200; the webhook fake reads it as an
// HTTP status ("500"). Faults.Status is a bare HTTP status for all three,
// and an outage is HTTP 503 with Retry-After when set.
package smsfake
