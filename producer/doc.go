// Package producer holds what every producing service shares: the event
// envelope that travels on Kafka, the payloads of the event kinds, and the
// Publisher that writes envelopes to their lane.
//
// Producers validate and persist first, then publish: nothing invalid
// reaches Kafka, and a notification whose publish failed is still in the
// store to be published again.
package producer
