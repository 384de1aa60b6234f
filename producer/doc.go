// Package producer holds what every producing service shares: the event
// envelope that travels on Kafka, the payloads of the event kinds, the
// receipts and the outbox. It reaches Kafka only through interfaces; the
// Kafka adapter is producer/kafkapub.
//
// Producers validate and persist first, then publish: nothing invalid
// reaches Kafka, and a notification whose publish failed is still in the
// store to be published again.
package producer
