// Package outage takes the power company's planned-outage schedules and
// tells the subscribers of the affected areas ahead of time.
//
// A schedule is stored per (client, outage id) with a content hash and a
// version. Each version schedules one reminder per configured lead time
// (by default 24 h and 2 h before the start) as a durable scheduled item
// of the dispatcher, whose event is a plan on the bulk lane: the
// dispatcher's planner streams the audience (the subscribers of the areas
// and of every unit below them) into fan-out batches. Posting the same
// content again changes nothing; a change cancels the pending reminders,
// sends a change notice at once and schedules new reminders; a
// cancellation cancels the reminders and sends a cancellation notice.
// Every notice expires when the outage ends, so one that comes due late
// is dropped by the dispatcher instead of being sent.
package outage
