package topics

// Consumer names one consumer group reading one topic, for lag reports.
// Lane is how operators call it: a lane's name, or "receipts".
type Consumer struct {
	Lane  string
	Topic string // full name, prefix included
	Group string // full group id, prefix included
}

// Consumers lists the consumer groups of the dispatcher whose lag
// operators watch: one per lane, and the ledger's on the receipts topic.
func (n Names) Consumers() []Consumer {
	out := make([]Consumer, 0, len(Lanes)+1)
	for _, l := range Lanes {
		out = append(out, Consumer{Lane: string(l), Topic: n.Lane(l), Group: n.Group("loa-dispatcher-" + string(l))})
	}
	return append(out, Consumer{Lane: "receipts", Topic: n.Topic(Receipts), Group: n.Group("loa-ledger")})
}

// PartitionLag is one partition's backlog for one consumer group: the
// messages written and not yet committed by the group.
type PartitionLag struct {
	Lane      string
	Topic     string
	Partition int
	// End is the partition's next offset (its high watermark); Committed
	// the group's committed offset, -1 when it has committed none.
	End, Committed int64
	// Lag is End − Committed; for a group that has committed nothing, End
	// less the partition's first retained offset (all of it waits).
	Lag int64
}
