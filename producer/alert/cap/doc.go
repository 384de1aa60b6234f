// Package cap parses and validates OASIS Common Alerting Protocol 1.2
// documents (https://docs.oasis-open.org/emergency/cap/v1.2/CAP-v1.2.html),
// the format in which warning agencies send Loa their disaster alerts, and
// offers the few questions Loa asks of an alert: which text to send (InfoFor),
// how urgently (Priority), until when (Expires), and where (AreaCodes, and
// the Contains methods of Polygon, Circle and Area for the areas whose
// centroid lies inside a polygon or circle).
//
// Parse treats its input as hostile. It reads at most Options.MaxBytes, and
// refuses any document type or entity declaration outright, so an entity
// bomb costs no more than its own bytes; it also bounds nesting depth and
// the number of XML tokens. Only UTF-8 documents are accepted.
//
// Parse is strict where the specification is:
//
//   - Date-times must have the form 2006-01-02T15:04:05-07:00. The
//     specification forbids the "Z" designator (UTC is "-00:00") and
//     fractional seconds, and so does Parse: a sender that gets this wrong
//     is likely to get other things wrong, and an alert with a misread time
//     is worse than a refused one.
//   - The legacy certainty "Very Likely" (CAP 1.0) is the one leniency; it
//     is read as Likely, as the specification recommends.
//
// Every refusal is a refusal (*loa.Error, see Refusal) naming the offending element by its
// path ("alert/info[0]/severity"), so the HTTP layer can answer 400 with a
// useful detail. Its class is one of the sentinel errors (ErrMalformed,
// ErrTooLarge, ErrInvalid, ErrUnknownArea, ErrExpired), tested with
// errors.Is.
//
// Text fields are whitespace-normalised as they are read: XML indentation
// and line wrapping never reach a phone. <resource> blocks are kept
// without the content embedded in <derefUri>, whose decoded size and SHA-1
// are computed as it streams past, so a large document is held once, as
// read. An enveloped XML signature is detected (Alert.Signed) and
// otherwise parsed past, as are elements the specification does not
// define.
package cap
