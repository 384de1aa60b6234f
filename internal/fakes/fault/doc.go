// Package fault is the fault injection every provider fake shares: a plan
// (latency, a fixed error, a hang, a window of total outage, errors for
// chosen recipients) that tests set through methods and a separate process
// sets over HTTP, and the per-request decision a fake takes from it.
//
// What an error name means is up to each fake (fcmfake knows "UNREGISTERED",
// smsfake's eSMS gateway knows "104", smtpfake knows "451"); this package
// only carries the names.
package fault
