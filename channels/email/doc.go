// Package email delivers notifications by e-mail through an SMTP relay:
// STARTTLS (required unless configured otherwise), AUTH PLAIN or LOGIN,
// an RFC 2047 UTF-8 subject, a multipart/alternative body with text and
// HTML parts, and a Message-ID that carries the notification id. It
// translates SMTP replies into Loa's failure classes: 4xx is transient,
// 5xx permanent.
package email
