package producer

import (
	"encoding/json"
	"fmt"

	"github.com/loa-hub/loa/internal/topics"
)

// EnvelopeRecord is the record Publish writes for e: on its lane's topic
// in names, keyed by e.Key, with its kind as a header. It fails for an
// invalid envelope.
func EnvelopeRecord(names topics.Names, e Envelope) (Record, error) {
	if err := e.Validate(); err != nil {
		return Record{}, fmt.Errorf("producer: publish: invalid envelope: %w", err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return Record{}, fmt.Errorf("producer: publish: %w", err)
	}
	return Record{Topic: names.Lane(e.Lane), Key: e.Key, Value: b, Headers: map[string]string{"kind": e.Kind}}, nil
}

// Record is a raw message for Write.
type Record struct {
	Topic   string // full topic name
	Key     string
	Value   []byte
	Headers map[string]string
}
