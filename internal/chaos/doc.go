// Package chaos is `make chaos`: one run of a large broadcast, a disaster
// alert and a steady stream of SMS codes through Loa running as real
// processes (`loa api`, two `loa dispatcher` replicas, the provider fakes
// in their own process) on PostgreSQL, Redis and Kafka servers of its own
// (package instance: never the shared ones), while a printed schedule of
// faults kills, restarts and starves every part. It stops by itself and
// then checks what the fakes received against what was asked for and what
// the delivery ledger says:
//
//   - every device and phone of the broadcast, the alert and every code
//     the API accepted was reached;
//   - no code and no alert reached anyone twice; for the broadcast the
//     number of repeats is reported against the sends that were in flight
//     when a dispatcher was killed, the only cause a repeat may have;
//   - the ledger's sent counters equal what the fakes accepted;
//   - no dead letter is left (each is listed with its reason);
//   - every code request was either accepted and delivered, or refused
//     with an error its caller saw.
//
// The same Run drives the short runs of the tests: a dispatcher killed
// mid-broadcast, Redis restarted mid-broadcast, and one fault of each kind
// on a 20,000-device broadcast.
package chaos
