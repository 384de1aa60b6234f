package cap

import (
	"strings"
	"time"
)

// Namespace is the XML namespace a CAP 1.2 <alert> must be in.
const Namespace = "urn:oasis:names:tc:emergency:cap:1.2"

// NamespaceDSig is the XML Signature namespace of an alert's <Signature>.
const NamespaceDSig = "http://www.w3.org/2000/09/xmldsig#"

// Status is the handling code of an alert (<status>).
type Status string

// The CAP 1.2 statuses.
const (
	StatusActual   Status = "Actual"   // actionable by all targeted recipients
	StatusExercise Status = "Exercise" // actionable only by designated exercise participants
	StatusSystem   Status = "System"   // for messages that support alert network internal functions
	StatusTest     Status = "Test"     // technical testing only, all recipients disregard
	StatusDraft    Status = "Draft"    // a preliminary template or draft, not actionable
)

// MsgType is the nature of an alert message (<msgType>).
type MsgType string

// The CAP 1.2 message types. Update and Cancel name the messages they
// replace in Alert.References.
const (
	MsgTypeAlert  MsgType = "Alert"
	MsgTypeUpdate MsgType = "Update"
	MsgTypeCancel MsgType = "Cancel"
	MsgTypeAck    MsgType = "Ack"
	MsgTypeError  MsgType = "Error"
)

// Scope is the intended distribution of an alert (<scope>).
type Scope string

// The CAP 1.2 scopes. Restricted requires Alert.Restriction; Private
// requires Alert.Addresses.
const (
	ScopePublic     Scope = "Public"
	ScopeRestricted Scope = "Restricted"
	ScopePrivate    Scope = "Private"
)

// Urgency is the time available to prepare (<urgency>).
type Urgency string

// The CAP 1.2 urgencies.
const (
	UrgencyImmediate Urgency = "Immediate"
	UrgencyExpected  Urgency = "Expected"
	UrgencyFuture    Urgency = "Future"
	UrgencyPast      Urgency = "Past"
	UrgencyUnknown   Urgency = "Unknown"
)

// Severity is the intensity of impact (<severity>).
type Severity string

// The CAP 1.2 severities.
const (
	SeverityExtreme  Severity = "Extreme"
	SeveritySevere   Severity = "Severe"
	SeverityModerate Severity = "Moderate"
	SeverityMinor    Severity = "Minor"
	SeverityUnknown  Severity = "Unknown"
)

// Certainty is the confidence in the observation or prediction
// (<certainty>).
type Certainty string

// The CAP 1.2 certainties. Parse reads the CAP 1.0 value "Very Likely" as
// CertaintyLikely.
const (
	CertaintyObserved Certainty = "Observed"
	CertaintyLikely   Certainty = "Likely"
	CertaintyPossible Certainty = "Possible"
	CertaintyUnlikely Certainty = "Unlikely"
	CertaintyUnknown  Certainty = "Unknown"
)

// DefaultLanguage is the language of an info block without <language>, as
// the specification prescribes.
const DefaultLanguage = "en-US"

// GeocodeVNAdmin is the geocode valueName (matched case-insensitively) whose
// values are Vietnamese administrative unit codes, the codes of Loa's area
// tree.
const GeocodeVNAdmin = "VN-ADMIN"

// Alert is a parsed, validated CAP 1.2 <alert>. Optional elements that were
// absent are zero values. An Alert holds no references to the input; it is
// safe for concurrent reads, and its methods only read.
type Alert struct {
	Identifier string    `json:"identifier"`
	Sender     string    `json:"sender"`
	Sent       time.Time `json:"sent"`
	Status     Status    `json:"status"`
	MsgType    MsgType   `json:"msg_type"`
	Source     string    `json:"source,omitempty"`
	Scope      Scope     `json:"scope"`
	// Restriction is the rule for limiting distribution; set when Scope is
	// Restricted.
	Restriction string `json:"restriction,omitempty"`
	// Addresses are the intended recipients, split from the
	// space-delimited <addresses> (double-quoted items may hold spaces);
	// non-empty when Scope is Private.
	Addresses []string `json:"addresses,omitempty"`
	// Code holds the <code> elements: special handling codes.
	Code []string `json:"code,omitempty"`
	Note string   `json:"note,omitempty"`
	// References are the earlier messages this one refers to; non-empty
	// for Update and Cancel.
	References []Reference `json:"references,omitempty"`
	// Incidents are the incident names, split like Addresses.
	Incidents []string `json:"incidents,omitempty"`
	// Infos are the <info> blocks, in document order; typically one per
	// language. May be empty (a Cancel often has none).
	Infos []Info `json:"infos,omitempty"`
	// Signed reports that the alert carries an XML signature (an enveloped
	// <Signature> in the XML-DSig namespace). Parse does not verify it;
	// see Verifier.
	Signed bool `json:"signed,omitempty"`
}

// Reference identifies an earlier message: one "sender,identifier,sent"
// triple of <references>.
type Reference struct {
	Sender     string    `json:"sender"`
	Identifier string    `json:"identifier"`
	Sent       time.Time `json:"sent"`
}

// Info is one <info> block: the event and the text about it in one
// language.
type Info struct {
	// Language is the RFC 3066 tag of the text, DefaultLanguage when the
	// element was absent.
	Language      string      `json:"language"`
	Categories    []string    `json:"categories"`
	Event         string      `json:"event"`
	ResponseTypes []string    `json:"response_types,omitempty"`
	Urgency       Urgency     `json:"urgency"`
	Severity      Severity    `json:"severity"`
	Certainty     Certainty   `json:"certainty"`
	Audience      string      `json:"audience,omitempty"`
	EventCodes    []ValuePair `json:"event_codes,omitempty"`
	// Effective, Onset and Expires are zero when absent. An info without
	// Expires does not expire.
	Effective   time.Time   `json:"effective,omitzero"`
	Onset       time.Time   `json:"onset,omitzero"`
	Expires     time.Time   `json:"expires,omitzero"`
	SenderName  string      `json:"sender_name,omitempty"`
	Headline    string      `json:"headline,omitempty"`
	Description string      `json:"description,omitempty"`
	Instruction string      `json:"instruction,omitempty"`
	Web         string      `json:"web,omitempty"` // absolute URI
	Contact     string      `json:"contact,omitempty"`
	Parameters  []ValuePair `json:"parameters,omitempty"`
	Resources   []Resource  `json:"resources,omitempty"`
	Areas       []Area      `json:"areas,omitempty"`
}

// Resource is one <resource> of an info block: a file that goes with the
// alert (an image, an audio message). Content embedded in <derefUri> is not
// kept: only its decoded size and SHA-1 (the digest CAP uses) are, so a
// document of several hundred kilobytes of audio is held once, as the
// bytes Parse read, and never copied into the model or the store.
type Resource struct {
	Desc     string `json:"desc"`
	MimeType string `json:"mime_type"`
	// Size is the <size> the sender declared, in bytes; zero when absent.
	Size int64  `json:"size,omitempty"`
	URI  string `json:"uri,omitempty"`
	// Digest is the sender's <digest> (hex SHA-1 of the resource).
	Digest string `json:"digest,omitempty"`
	// Embedded is the decoded size of the <derefUri> content; zero when
	// there is none.
	Embedded int64 `json:"embedded_bytes,omitempty"`
	// EmbeddedSHA1 is the hex SHA-1 of the decoded <derefUri> content.
	EmbeddedSHA1 string `json:"embedded_sha1,omitempty"`
}

// ValuePair is a <valueName>/<value> pair of an eventCode, parameter or
// geocode. Both are non-empty.
type ValuePair struct {
	ValueName string `json:"value_name"`
	Value     string `json:"value"`
}

// Area is one <area> of an info block. Its polygons, circles and geocodes
// together describe where the alert applies.
type Area struct {
	Desc     string      `json:"desc"`
	Polygons []Polygon   `json:"polygons,omitempty"`
	Circles  []Circle    `json:"circles,omitempty"`
	Geocodes []ValuePair `json:"geocodes,omitempty"`
	// Altitude and Ceiling are in feet above mean sea level; nil when
	// absent. Ceiling is only set together with Altitude.
	Altitude *float64 `json:"altitude,omitempty"`
	Ceiling  *float64 `json:"ceiling,omitempty"`
}

// Contains reports whether pt lies inside any polygon or circle of a.
// Geocodes are not considered: matching codes is the caller's business
// (see Alert.AreaCodes).
func (a Area) Contains(pt Point) bool {
	for _, p := range a.Polygons {
		if p.Contains(pt) {
			return true
		}
	}
	for _, c := range a.Circles {
		if c.Contains(pt) {
			return true
		}
	}
	return false
}

// InfoFor returns the info block for the language tag lang, compared
// case-insensitively: an exact match first, then the first block with the
// same primary language (InfoFor("vi") finds "vi-VN", InfoFor("vi-VN")
// finds "vi"), else the first block. It returns nil when the alert has no
// info block.
func (a *Alert) InfoFor(lang string) *Info {
	if len(a.Infos) == 0 {
		return nil
	}
	for i := range a.Infos {
		if strings.EqualFold(a.Infos[i].Language, lang) {
			return &a.Infos[i]
		}
	}
	primary := primaryLanguage(lang)
	for i := range a.Infos {
		if strings.EqualFold(primaryLanguage(a.Infos[i].Language), primary) {
			return &a.Infos[i]
		}
	}
	return &a.Infos[0]
}

func primaryLanguage(tag string) string {
	p, _, _ := strings.Cut(tag, "-")
	return p
}

// Expires returns the earliest expiry among the info blocks, the moment
// after which some of the alert's text is stale; Loa uses it as the TTL of
// the messages it sends. It is zero when no info block has an expiry.
func (a *Alert) Expires() time.Time {
	var earliest time.Time
	for _, in := range a.Infos {
		if !in.Expires.IsZero() && (earliest.IsZero() || in.Expires.Before(earliest)) {
			earliest = in.Expires
		}
	}
	return earliest
}

// Expired reports whether the whole alert is past its use at now: it has
// at least one info block and every one has an Expires not after now. An
// info block without Expires never expires. Note that an alert can be
// unexpired while Expires() is already past, when its blocks expire at
// different times.
func (a *Alert) Expired(now time.Time) bool {
	last := a.lastExpiring()
	return last >= 0 && !now.Before(a.Infos[last].Expires)
}

// lastExpiring returns the index of the info block that expires last, or -1
// when there is none or some block never expires.
func (a *Alert) lastExpiring() int {
	last := -1
	for i, in := range a.Infos {
		if in.Expires.IsZero() {
			return -1
		}
		if last < 0 || in.Expires.After(a.Infos[last].Expires) {
			last = i
		}
	}
	return last
}

// Priority is how urgently Loa delivers an alert. Its values are those of
// channels.Priority.
type Priority string

// The priorities.
const (
	PriorityHigh   Priority = "high"
	PriorityNormal Priority = "normal"
)

// Priority maps the alert's severity and urgency to a delivery priority.
// An info block is high when either its severity or its urgency calls for
// it:
//
//	severity \ urgency  Immediate  Expected  Future  Past    Unknown
//	Extreme             high       high      high    high    high
//	Severe              high       high      high    high    high
//	Moderate            high       high      normal  normal  normal
//	Minor               high       high      normal  normal  normal
//	Unknown             high       high      normal  normal  normal
//
// The alert is high when any info block is. An alert without info blocks
// (a bare Cancel, say) is normal; a caller cancelling a high alert should
// keep that alert's priority.
func (a *Alert) Priority() Priority {
	for _, in := range a.Infos {
		switch {
		case in.Severity == SeverityExtreme, in.Severity == SeveritySevere,
			in.Urgency == UrgencyImmediate, in.Urgency == UrgencyExpected:
			return PriorityHigh
		}
	}
	return PriorityNormal
}

// AreaCodes returns the values of every geocode named VN-ADMIN (compared
// case-insensitively) in every area of every info block, in document
// order, without duplicates. It returns nil when there is none.
func (a *Alert) AreaCodes() []string {
	var codes []string
	seen := map[string]bool{}
	for _, in := range a.Infos {
		for _, ar := range in.Areas {
			for _, g := range ar.Geocodes {
				if strings.EqualFold(g.ValueName, GeocodeVNAdmin) && !seen[g.Value] {
					seen[g.Value] = true
					codes = append(codes, g.Value)
				}
			}
		}
	}
	return codes
}
