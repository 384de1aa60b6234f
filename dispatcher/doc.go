// Package dispatcher turns events on the Kafka lanes into provider sends
// and their outcomes into receipts and the delivery ledger.
//
// Each lane (otp, alert, direct, bulk) has its own topic, consumer group
// and worker budget. Messages are at-least-once from Kafka and made
// effectively-once at the edge: a delivery key (notification id +
// channel + recipient) is claimed in Redis before a send and marked sent
// after it, so a redelivered message never reaches a person twice. A
// partition's offset is committed only up to the last message whose
// outcome is recorded (its receipts acknowledged by Kafka). A message
// that cannot be decoded, or whose handler panics, goes to the
// dead-letter topic with the reason, and the lane keeps flowing.
package dispatcher
