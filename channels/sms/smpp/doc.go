// Package smpp sends SMS straight to a carrier's SMSC over SMPP 3.4 and
// takes its delivery receipts.
//
// The package has three layers. Sub-package pdu encodes and decodes the
// protocol's PDUs and knows nothing of connections. Session is one bound
// connection: bind (transceiver, transmitter or receiver), a window of
// outstanding requests each with its own response timeout, enquire_link
// keep-alive, generic_nack for what it cannot decode, unbind on Close.
// Client is the SMS provider Loa uses: it keeps several sessions (or
// transmitter/receiver pairs) bound with reconnect back-off, cuts each
// message into the segments the sms package's cost estimate counts
// (GSM-7 as data_coding 0, else UCS-2 as 8; UDH or SAR concatenation),
// maps command_status values to the channels error classes, and turns
// delivery receipts into Reports for a ReportSink.
//
// A receipt can overtake the submit_sm_resp of its own message (the SMSC
// delivers fast, the response travels behind it). The Client holds such
// a receipt until every submit in flight when it arrived has its answer,
// then matches it; it never drops it, and it answers the receipt's
// deliver_sm only once the sink has taken the report, so a receipt Loa
// could not record is delivered again by the SMSC.
package smpp
