// Package smtpfake is an in-process SMTP server for tests and benchmarks:
// EHLO/HELO, STARTTLS with a self-signed certificate, AUTH PLAIN and
// LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT. It records every accepted
// message (raw and with parsed headers) and injects faults.
//
// Faults: an outage answers every connection "421 4.3.2" and closes it;
// Faults.Recipients maps a mailbox to an SMTP reply code ("550", "452")
// answered to its RCPT TO; Error (a code such as "451" or "554") or
// Status (the same as a number) answers the end of DATA; Latency delays
// that answer; Hang withholds it until the client disconnects.
package smtpfake
