package feedback

import (
	"errors"
	"time"

	"github.com/loa-hub/loa"
)

// Status is where a piece of feedback is in its handling.
type Status string

// Statuses. received → assigned (to an agency) → in_progress → answered →
// closed; assigned or in_progress → transferred (to another agency, whose
// handlers take it on as if assigned); → escalated (beyond the agency's
// authority, to the DoIC's coordinators); → rejected (duplicate, out of
// scope, abusive). A low rating sends an answered matter back to
// received, to the coordinators, once.
const (
	StatusReceived    Status = "received"
	StatusAssigned    Status = "assigned"
	StatusInProgress  Status = "in_progress"
	StatusAnswered    Status = "answered"
	StatusClosed      Status = "closed"
	StatusTransferred Status = "transferred"
	StatusEscalated   Status = "escalated"
	StatusRejected    Status = "rejected"
)

// Statuses lists every status.
func Statuses() []Status {
	return []Status{StatusReceived, StatusAssigned, StatusInProgress, StatusAnswered, StatusClosed, StatusTransferred, StatusEscalated, StatusRejected}
}

// Open reports whether the matter still waits for an answer (Open311's
// "open").
func (s Status) Open() bool {
	return s != StatusAnswered && s != StatusClosed && s != StatusRejected
}

// Roles of officials in feedback handling, granted per unit.
const (
	// RoleHandler handles the feedback assigned to their unit (agency).
	RoleHandler = "feedback_handler"
	// RoleCoordinator, in the DoIC's unit (the approval unit), assigns
	// feedback to agencies, takes escalated matters, and is told of
	// missed deadlines.
	RoleCoordinator = "feedback_coordinator"
	// RoleAdmin may administer categories and routing rules, as the
	// coordinator may.
	RoleAdmin = "admin"
)

// Reject reasons.
const (
	ReasonDuplicate  = "duplicate"
	ReasonOutOfScope = "out_of_scope"
	ReasonAbusive    = "abusive"
)

// Category is a kind of feedback (Open311's service): who handles it by
// default and within how many working days.
type Category struct {
	Code   string
	Name   string // Vietnamese
	NameEN string
	// Group is Open311's service group, e.g. "Môi trường".
	Group string
	// Agency is the unit (an agency's unit code) that handles it unless a
	// route for the area says otherwise.
	Agency string
	// HandlingDays is the handling time in working days.
	HandlingDays int
	Active       bool
}

// Route sends a category's feedback from an area (and the units below it)
// to an agency other than the category's default. The most specific area
// wins.
type Route struct {
	Category string
	Area     string
	Agency   string
}

// Citizen is who sent a piece of feedback. The service never shows it to
// the public unless Public is set.
type Citizen struct {
	AccountID string // empty when an integrating system sent it for a phone
	Phone     string // normalised 84…, when known
	Name      string
	// Public: the citizen agreed to be named publicly (default no); their
	// name, exact location, address and photos are then shown.
	Public bool
}

// Location is where the matter is. Lat/Lon are set when HasPoint.
type Location struct {
	HasPoint bool
	Lat, Lon float64
	// Area is the administrative unit (commune or ward), resolved from the
	// point when not given.
	Area    string
	Address string // the exact address, as the citizen wrote it
}

// Photo is one photo of a piece of feedback, kept in the blob store.
type Photo struct {
	Key         string
	ContentType string
	Size        int64
}

// Feedback is one citizen's report (phản ánh kiến nghị).
type Feedback struct {
	ID          string
	Category    string
	Title       string
	Description string
	Location    Location
	Citizen     Citizen
	Photos      []Photo
	// MediaURL is a link to a photo given by an Open311 client.
	MediaURL string
	// Source is how it came: app (a citizen's session), system (an
	// integrating system's key), open311.
	Source   string
	ClientID string // the API key that posted it, if any

	Status Status
	// Version counts the matter's steps; a step is stored only over the
	// version it was decided on.
	Version int
	Agency  string // the unit handling it
	DueAt   time.Time
	Answer  string
	// RejectReason is one of the Reason* constants; Note adds words.
	RejectReason string
	Note         string
	Rating       int // 1–5, 0 while unrated
	RatingNote   string
	RatedAt      time.Time
	Reopened     bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
	AnsweredAt   time.Time
	ClosedAt     time.Time
	// Masked is the texts as the public sees them, computed when the
	// version is written (the service sets it; the store keeps it).
	Masked Masked
}

// Masked is a matter's title, description and answer with the citizen's
// phone numbers, ID numbers, e-mail addresses, name and address masked
// (Redact), as the public views show them. Rules is the MaskRules they
// were computed by (0: not computed, a row written before 0167), Version
// the matter's version they were computed from: masks of another version
// (a step stored by a release before 0167, during an upgrade) are not
// shown.
type Masked struct {
	Rules, Version             int
	Title, Description, Answer string
}

// Event is one step of a matter's history.
type Event struct {
	Seq    int
	At     time.Time
	Actor  string // an official's account id, a citizen's, "system" or "apikey:<id>"
	Action string
	From   Status
	To     Status
	Agency string
	Note   string
}

// Filter selects feedback for lists.
type Filter struct {
	Statuses []Status
	Agency   string
	Category string
	Area     string
	Citizen  string // account id
	IDs      []string
	From, To time.Time // created_at range
	// Before is the cursor: list items created before it (id breaks ties).
	Before string
	Limit  int
}

// AgencyStat counts an agency's handling.
type AgencyStat struct {
	Agency         string  `json:"agency"`
	Received       int     `json:"received"`
	Answered       int     `json:"answered"`
	AnsweredOnTime int     `json:"answered_on_time"`
	Late           int     `json:"late"`
	Rated          int     `json:"rated"`
	AverageRating  float64 `json:"average_rating"`
}

// Errors of the service; compare with errors.Is.
var (
	ErrNotFound  = errors.New("feedback: not found")
	ErrForbidden = errors.New("feedback: forbidden")
	ErrInvalid   = errors.New("feedback: invalid input")
	ErrState     = errors.New("feedback: not allowed in the current state")
	// ErrConflict is returned by Store.Transition when the matter moved
	// since it was read (its status or agency is no longer the expected).
	ErrConflict = errors.New("feedback: changed concurrently")
)

func notFound(id string) error { return loa.NotFound("feedback %s not found", id).Wrap(ErrNotFound) }

func forbidden(format string, args ...any) error {
	return loa.Forbidden(format, args...).Wrap(ErrForbidden)
}

func stateError(action, id string, st Status) error {
	return loa.Errorf(loa.EConflict, "cannot %s feedback %s: it is %s", action, id, st).Wrap(ErrState)
}
