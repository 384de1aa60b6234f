package loa

// Status is the state of a delivery (one notification to one recipient on
// one channel), of a channel's deliveries rolled up (RollUpChannel), or of
// a whole notification (RollUpNotification). It is stored and sent as its
// string.
type Status string

// Statuses of one delivery, as receipts carry them and the ledger keeps
// them.
const (
	StatusSent      Status = "sent"
	StatusFailed    Status = "failed"
	StatusExpired   Status = "expired"
	StatusTokenDead Status = "token_dead"
	// StatusSkipped: the recipient has no address on the channel (an
	// account without an active device, say).
	StatusSkipped Status = "skipped"
	// StatusRetrying: a transient failure; the delivery waits in a retry
	// tier. The only status of a delivery that is not final.
	StatusRetrying Status = "retrying"
	// StatusCancelled: not sent because its notification was cancelled
	// (a broadcast withdrawn, an alert cancelled) before this part went out.
	StatusCancelled Status = "cancelled"
	// StatusDelivered and StatusUndelivered come from a gateway's delivery
	// report after StatusSent: the carrier confirmed, or gave up on, the
	// message reaching the phone. They outrank StatusSent (see Rank).
	StatusDelivered   Status = "delivered"
	StatusUndelivered Status = "undelivered"
)

// Statuses of a channel's deliveries rolled up, and of a notification.
const (
	// StatusAccepted: the notification is stored, not yet on its lane.
	StatusAccepted Status = "accepted"
	// StatusScheduled: stored to be sent at its send_at (cancellable
	// until then); StatusCancelled is then what a cancel leaves.
	StatusScheduled Status = "scheduled"
	// StatusQueued: on its lane, no delivery recorded yet.
	StatusQueued Status = "queued"
	// StatusPending: a channel with no outcome yet.
	StatusPending Status = "pending"
	// StatusSending: some outcomes are in, not all.
	StatusSending Status = "sending"
	// StatusPartial: complete, some sent and some not.
	StatusPartial Status = "partial"
)

// Final reports whether s is a delivery's last outcome (a carrier's
// report may still refine sent into delivered or undelivered, see Rank).
// Retrying and the roll-up statuses are not final.
func (s Status) Final() bool {
	switch s {
	case StatusSent, StatusDelivered, StatusFailed, StatusUndelivered, StatusTokenDead,
		StatusSkipped, StatusExpired, StatusCancelled:
		return true
	}
	return false
}

// Succeeded reports whether a provider accepted the delivery: sent, or
// delivered.
func (s Status) Succeeded() bool { return s == StatusSent || s == StatusDelivered }

// Failed reports whether the delivery failed for good: a permanent error,
// a dead token, no address on the channel, or a carrier's report that it
// never arrived. Expired and cancelled are counted apart.
func (s Status) Failed() bool {
	switch s {
	case StatusFailed, StatusUndelivered, StatusTokenDead, StatusSkipped:
		return true
	}
	return false
}

// Rank orders the statuses a delivery's row may move between once it is
// sent: delivered (3) over undelivered (2) over sent (1). Every other
// status ranks 0 and is replaced by any later receipt; a receipt of lower
// rank than the row's never replaces it.
func (s Status) Rank() int {
	switch s {
	case StatusDelivered:
		return 3
	case StatusUndelivered:
		return 2
	case StatusSent:
		return 1
	}
	return 0
}

// Ranked lists the statuses of positive Rank, highest first.
func Ranked() []Status { return []Status{StatusDelivered, StatusUndelivered, StatusSent} }

// RollUpChannel is the status of one channel of a notification from the
// counts of its deliveries' statuses, and whether every one of its targets
// has a final outcome. targets is how many deliveries the channel has.
func RollUpChannel(counts map[Status]int, targets int) (status Status, complete bool) {
	done := 0
	for st, c := range counts {
		if st != StatusRetrying { // waiting in a retry tier: not an outcome yet
			done += c
		}
	}
	succeeded := counts[StatusSent] + counts[StatusDelivered]
	switch {
	case done == 0 && counts[StatusRetrying] == 0:
		status = StatusPending
	case done < targets:
		status = StatusSending
	// delivered is sent and confirmed by the carrier; undelivered, a
	// carrier's report that it never arrived, counts as failed.
	case succeeded == done && counts[StatusRetrying] == 0:
		status = StatusSent
	case succeeded > 0:
		status = StatusPartial
	case counts[StatusExpired] == done:
		status = StatusExpired
	case counts[StatusSkipped] == done:
		status = StatusSkipped
	default:
		status = StatusFailed
	}
	return status, done >= targets
}

// ChannelRollUp is one channel's part in RollUpNotification.
type ChannelRollUp struct {
	Status   Status
	Complete bool
}

// RollUpNotification is the status of a notification: accepted until it
// is published, queued until a delivery is recorded (started), sending
// until every channel is complete, then sent, expired or failed when every
// channel is, and partial otherwise.
func RollUpNotification(published, started bool, chans []ChannelRollUp) Status {
	complete, sent, unsent, expired, partial := 0, 0, 0, 0, false
	for _, c := range chans {
		partial = partial || c.Status == StatusPartial
		if !c.Complete {
			continue
		}
		complete++
		switch c.Status {
		case StatusSent:
			sent++
		case StatusExpired:
			expired++
		case StatusPartial:
		default:
			unsent++
		}
	}
	n := len(chans)
	switch {
	case !published:
		return StatusAccepted
	case complete < n:
		if !started {
			return StatusQueued
		}
		return StatusSending
	case sent == n:
		return StatusSent
	case expired == n:
		return StatusExpired
	case sent == 0 && expired+unsent == n && !partial:
		return StatusFailed
	}
	return StatusPartial
}
