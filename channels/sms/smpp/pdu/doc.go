// Package pdu encodes and decodes the protocol data units of SMPP 3.4
// (Short Message Peer-to-Peer, v3.4, 1999), the protocol ESMEs such as
// Loa speak to a carrier's SMSC.
//
// A PDU is a 16-byte header (command_length, command_id, command_status,
// sequence_number, all big-endian) and a body whose layout the command
// decides. This package knows the bodies of the commands an ESME that
// submits messages and takes delivery receipts needs: the three binds and
// their responses, unbind, enquire_link, generic_nack, submit_sm,
// deliver_sm, data_sm and their responses, outbind and alert_notification.
// Any other command decodes with its body kept as Raw bytes, so a peer can
// answer it with generic_nack.
//
// The package holds no state; its functions are safe for concurrent use.
// Decoding never trusts a length it reads: a frame longer than the
// caller's limit, a string without its terminator or a TLV that overruns
// the body is an error, never a large allocation.
package pdu
