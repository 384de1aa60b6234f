// Package alert accepts disaster alerts — OASIS CAP 1.2 documents (parsed
// by the cap subpackage) or Loa's plain JSON form — and gets them to the
// devices and phones of the areas they name, on the alert lane, ahead of
// every bulk broadcast.
//
// A Service validates an alert (unknown area codes, unknown references and
// expired alerts are refused with a cap refusal (*loa.Error) naming the
// element), resolves its audience (VN-ADMIN geocodes, and the areas whose
// centroid lies inside its polygons and circles), persists it keyed by
// sender and CAP identifier (the same alert posted twice is one alert, sent
// once), and publishes a producer.Plan keyed by the alert's id, whose
// expiry is the alert's. An Update reaches the referenced alert's audience
// with its new text; a Cancel reaches it with a cancellation notice and
// stops whatever of the referenced alerts is not yet planned.
//
// Who may send at once is policy (Config.PreauthorisedScopes): an issuer
// holding such a scope is pre-authorised, its alert is sent immediately
// and reviewed afterwards; any other issuer's alert waits for an approver,
// who is never the issuer.
package alert
