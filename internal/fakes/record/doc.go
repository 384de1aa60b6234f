// Package record keeps what a provider fake accepted, so tests and
// benchmarks can count deliveries per recipient and wait for them without
// sleeping.
package record
