package loa

// Audience names who a planned notification is for: everyone, or the
// union of areas (each with every unit below it in the area tree),
// topics and accounts. Closed accounts are never part of it.
type Audience struct {
	Everyone bool
	Areas    []string
	Topics   []string
	Accounts []string
	// Roles are officials' roles: holders of any of them (in any unit).
	Roles []string
	// AreaTopics asks for push as one FCM topic message per area; it
	// does not change who the audience is.
	AreaTopics bool
	// Unacknowledged, when set, leaves out the accounts that acknowledged
	// this alert chain (the store keeps the acknowledgements): an escalation's audience.
	Unacknowledged string
}

// Empty reports whether the audience names nobody.
func (a Audience) Empty() bool {
	return !a.Everyone && len(a.Areas) == 0 && len(a.Topics) == 0 && len(a.Accounts) == 0 && len(a.Roles) == 0
}
