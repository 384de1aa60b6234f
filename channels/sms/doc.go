// Package sms sends messages through Vietnamese SMS gateways and prepares
// their text.
//
// Text handling decides what a message costs before it is sent: whether it
// fits the GSM 03.38 7-bit alphabet (160 septets a segment) or needs UCS-2
// (70 UTF-16 code units a segment), and how many segments it bills as.
// Vietnamese with diacritics always needs UCS-2; many brandname routes
// accept only text without diacritics, so folding Vietnamese to ASCII is an
// option the caller chooses per message kind. The text functions hold no
// state and are safe for concurrent use.
package sms
