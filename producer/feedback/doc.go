// Package feedback receives citizens' feedback (phản ánh kiến nghị),
// routes it to the competent agency, and moves it through its handling:
// received → assigned → in_progress → answered → closed, with transfers to
// another agency, escalation to the DoIC beyond an agency's authority, and
// rejection. Each step is an official's of the right unit, is recorded,
// and tells the citizen through the direct lane; deadlines in working days
// (Vietnamese public holidays as data) remind the handlers before and the
// coordinators after. Citizens rate the answer; a poor rating reopens the
// matter once. Anyone may follow the handling through a public view that
// holds no personal data of a citizen who did not agree to be named.
//
// The package holds the domain only: storage is the Store interface
// (internal/sqlstore implements it) and every notice is an outbox item
// written in the step's transaction (producer.Outbox publishes it).
package feedback
