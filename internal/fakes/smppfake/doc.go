// Package smppfake is a fake SMSC speaking SMPP 3.4 over TCP (TLS
// optional) on 127.0.0.1, for Loa's tests, benchmarks and `loa-fakes`,
// and for the interoperability tests that point third-party SMPP clients
// at it.
//
// It binds (transceiver, transmitter, receiver) with a system_id and
// password, answers submit_sm with a message id, reassembles concatenated
// messages (UDH with 8- or 16-bit references, or SAR TLVs) and records
// each whole message, and sends delivery receipts as deliver_sm (text and
// the receipted_message_id/message_state TLVs) on a session of the
// account that can receive. It answers enquire_link and unbind, and
// generic_nack to what it does not know.
//
// Faults come from an embedded fault.Injector: Latency delays each
// submit_sm_resp; Hang holds submits unanswered; Error (and Recipients,
// keyed by destination number) answers submits with a command_status
// named as in the specification ("ESME_RTHROTTLED" or "RTHROTTLED");
// Status answers with a bare command_status number; an outage refuses
// binds with ESME_RBINDFAIL and drops connections that submit. Beyond
// those it can drop every connection (now, or after a number of further
// submits), refuse binds, and send receipts late, out of order, before
// the submit_sm_resp, or with a chosen state per number.
package smppfake
