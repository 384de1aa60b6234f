// Package broadcast holds broadcast requests (regulation 000 art. 13): an
// agency official drafts a notice and submits it; an approver of the
// Department of Information and Communications, never the same person,
// approves or rejects it. Nothing is published before approval: approval
// publishes the audience plan at once, or schedules it for the request's
// send time. Every state change is a compare-and-set on the stored status,
// recorded in the broadcast's history and in the audit log.
package broadcast
