package feedback

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/loa-hub/loa"
)

// Actions officials take on a matter.
const (
	ActAssign   = "assign"   // coordinator: received, escalated → assigned (agency)
	ActStart    = "start"    // handler: assigned, transferred → in_progress
	ActAnswer   = "answer"   // handler (coordinator for escalated and received) → answered
	ActTransfer = "transfer" // handler or coordinator → transferred (another agency)
	ActEscalate = "escalate" // handler → escalated (to the DoIC)
	ActReject   = "reject"   // handler or coordinator → rejected (reason)
	ActClose    = "close"    // handler or coordinator: answered → closed
)

// Actions lists the officials' actions.
func Actions() []string {
	return []string{ActAssign, ActStart, ActAnswer, ActTransfer, ActEscalate, ActReject, ActClose}
}

// Step is an official's action with what it needs: Agency for assign and
// transfer, Text for answer (the answer), Reason (and optional Text) for
// reject, optional Text as a note otherwise.
type Step struct {
	Action string
	Agency string
	Text   string
	Reason string
}

// rule says who may take an action, from which statuses, and where to.
type rule struct {
	from        []Status
	to          Status
	handler     bool     // a handler of the matter's agency may
	coordinator bool     // a coordinator may
	coordFrom   []Status // statuses from which only the coordinator may (nil: as from)
}

var rules = map[string]rule{
	ActAssign:   {from: []Status{StatusReceived, StatusEscalated}, to: StatusAssigned, coordinator: true},
	ActStart:    {from: []Status{StatusAssigned, StatusTransferred}, to: StatusInProgress, handler: true},
	ActAnswer:   {from: []Status{StatusAssigned, StatusTransferred, StatusInProgress}, to: StatusAnswered, handler: true, coordinator: true, coordFrom: []Status{StatusReceived, StatusEscalated, StatusAssigned, StatusTransferred, StatusInProgress}},
	ActTransfer: {from: []Status{StatusAssigned, StatusTransferred, StatusInProgress}, to: StatusTransferred, handler: true, coordinator: true},
	ActEscalate: {from: []Status{StatusAssigned, StatusTransferred, StatusInProgress}, to: StatusEscalated, handler: true},
	ActReject:   {from: []Status{StatusAssigned, StatusTransferred, StatusInProgress}, to: StatusRejected, handler: true, coordinator: true, coordFrom: []Status{StatusReceived, StatusEscalated, StatusAssigned, StatusTransferred, StatusInProgress}},
	ActClose:    {from: []Status{StatusAnswered}, to: StatusClosed, handler: true, coordinator: true},
}

// Check reports whether the actor may take action on the matter now,
// without changing anything: the API asks it before reading the body.
// Errors: loa.ENotFound, loa.EForbidden (wrapping ErrForbidden),
// loa.EConflict (wrapping ErrState).
func (s *Service) Check(ctx context.Context, a Actor, id, action string) error {
	_, _, err := s.authorise(ctx, a, id, action)
	return err
}

func (s *Service) authorise(ctx context.Context, a Actor, id, action string) (Feedback, rule, error) {
	r, ok := rules[action]
	if !ok {
		return Feedback{}, rule{}, loa.NotFound("no action %q", action)
	}
	gs, err := s.grants(ctx, a)
	if err != nil {
		return Feedback{}, rule{}, err
	}
	coord := s.coordinator(gs) && r.coordinator
	if !coord && !(r.handler && hasAny(gs, RoleHandler)) {
		who := RoleHandler + " of the matter's agency"
		if !r.handler {
			who = RoleCoordinator + " of the DoIC's unit"
		} else if r.coordinator {
			who += ", or " + RoleCoordinator
		}
		return Feedback{}, rule{}, forbidden("to %s feedback needs the role %s", action, who)
	}
	f, err := s.load(ctx, id)
	if err != nil {
		return Feedback{}, rule{}, err
	}
	handler := r.handler && f.Agency != "" && has(gs, f.Agency, RoleHandler)
	if !coord && !handler {
		return Feedback{}, rule{}, forbidden("feedback %s is handled by %s; you are not its %s", id, orNone(f.Agency), RoleHandler)
	}
	from := r.from
	if coord && r.coordFrom != nil {
		from = r.coordFrom
	}
	if !slices.Contains(from, f.Status) {
		return Feedback{}, rule{}, stateError(action, id, f.Status)
	}
	return f, r, nil
}

func orNone(s string) string {
	if s == "" {
		return "no agency yet"
	}
	return s
}

// Act takes an official's action on a matter: checks the role and state,
// validates, stores the step with its event and tells the citizen (and,
// when the agency changes, schedules the new agency's reminders), all in
// one transaction. Errors: as Check, and loa.EInvalid.
func (s *Service) Act(ctx context.Context, a Actor, id string, st Step) (Feedback, error) {
	f, r, err := s.authorise(ctx, a, id, st.Action)
	if err != nil {
		return Feedback{}, err
	}
	var v loa.Validation
	note := text(&v, "text", st.Text, s.cfg.MaxText, st.Action == ActAnswer)
	next := f
	now := s.d.Now().UTC()
	next.Status, next.UpdatedAt, next.Note, next.Version = r.to, now, "", f.Version+1
	agencyChanged := false
	switch st.Action {
	case ActAssign, ActTransfer:
		ag := strings.TrimSpace(st.Agency)
		switch {
		case !validCode(ag):
			v.Add("agency", "is required: the unit code of the agency")
		case ag == f.Agency && st.Action == ActTransfer:
			v.Add("agency", "is already the agency handling it")
		default:
			hs, err := s.d.Store.OfficialsWithRole(ctx, ag, RoleHandler)
			if err != nil {
				return Feedback{}, err
			}
			if len(hs) == 0 {
				v.Add("agency", "unit %s has no official with the role %s", ag, RoleHandler)
			}
		}
		next.Agency, agencyChanged = ag, true
		next.Note = note
	case ActEscalate:
		if s.cfg.CoordinatorUnit == "" {
			return Feedback{}, forbidden("no DoIC unit is configured (LOA_APPROVAL_UNIT), so nothing can be escalated")
		}
		next.Agency, agencyChanged = s.cfg.CoordinatorUnit, true
		next.Note = note
	case ActAnswer:
		next.Answer, next.AnsweredAt = note, now
	case ActReject:
		switch st.Reason {
		case ReasonDuplicate, ReasonOutOfScope, ReasonAbusive:
		default:
			v.Add("reason", "must be %s, %s or %s", ReasonDuplicate, ReasonOutOfScope, ReasonAbusive)
		}
		next.RejectReason, next.Note, next.ClosedAt = st.Reason, note, now
	case ActClose:
		next.ClosedAt = now
		next.Note = note
	default:
		next.Note = note
	}
	if err := v.Err(ErrInvalid); err != nil {
		return Feedback{}, err
	}
	t := Transition{From: f, Next: next, IP: a.IP,
		Event: Event{At: now, Actor: a.name(), Action: st.Action, From: f.Status, To: next.Status, Agency: next.Agency, Note: eventNote(st, note)}}
	if !next.Status.Open() || agencyChanged {
		t.Cancel = deadlineSubject(f.ID)
	}
	if next.Status.Open() && agencyChanged {
		if next.Status == StatusEscalated {
			items, err := s.overdueItems(ctx, next, now)
			if err != nil {
				return Feedback{}, err
			}
			t.Items = append(t.Items, items...)
		} else {
			items, err := s.deadlineItems(ctx, next, now)
			if err != nil {
				return Feedback{}, err
			}
			t.Items = append(t.Items, items...)
		}
	}
	notice, err := s.notice(next, st.Action, now)
	if err != nil {
		return Feedback{}, err
	}
	t.Items = append(t.Items, notice...)
	next.Masked = maskedOf(next)
	t.Next = next
	if err := s.d.Store.TransitionFeedback(ctx, t); err != nil {
		if errors.Is(err, ErrConflict) {
			cur, lerr := s.load(ctx, id)
			if lerr != nil {
				return Feedback{}, lerr
			}
			return Feedback{}, stateError(st.Action, id, cur.Status)
		}
		return Feedback{}, fmt.Errorf("feedback: %s: %w", st.Action, err)
	}
	return next, nil
}

func eventNote(st Step, note string) string {
	if st.Action == ActReject {
		if note == "" {
			return st.Reason
		}
		return st.Reason + ": " + note
	}
	if st.Action == ActAnswer {
		return ""
	}
	return note
}

// MayRate reports whether the actor may rate the matter: the citizen who
// sent it. The API asks before reading the body.
func (s *Service) MayRate(ctx context.Context, a Actor, id string) error {
	f, err := s.load(ctx, id)
	if err != nil {
		return err
	}
	if a.AccountID == "" || a.AccountID != f.Citizen.AccountID {
		return forbidden("only the citizen who sent feedback %s rates how it was handled", id)
	}
	return nil
}

// Rate records the citizen's rating (1–5) of an answered matter, within
// RatingWindow of the answer. A rating of 2 or less sends the matter back
// to the coordinators, once; any other closes it.
func (s *Service) Rate(ctx context.Context, a Actor, id string, stars int, comment string) (Feedback, error) {
	if err := s.MayRate(ctx, a, id); err != nil {
		return Feedback{}, err
	}
	f, err := s.load(ctx, id)
	if err != nil {
		return Feedback{}, err
	}
	var v loa.Validation
	if stars < 1 || stars > 5 {
		v.Add("rating", "must be 1 to 5")
	}
	comment = text(&v, "comment", comment, 1000, false)
	if err := v.Err(ErrInvalid); err != nil {
		return Feedback{}, err
	}
	now := s.d.Now().UTC()
	if f.Status != StatusAnswered || f.Rating != 0 {
		return Feedback{}, stateError("rate", id, f.Status)
	}
	if now.After(f.AnsweredAt.Add(s.cfg.RatingWindow)) {
		return Feedback{}, loa.Errorf(loa.EConflict, "feedback %s can no longer be rated: ratings are taken for %s after the answer", id, s.cfg.RatingWindow).Wrap(ErrState)
	}
	next := f
	next.Rating, next.RatingNote, next.RatedAt, next.UpdatedAt, next.Note, next.Version = stars, comment, now, now, "", f.Version+1
	t := Transition{From: f, IP: a.IP}
	action := "rate"
	if stars <= 2 && !f.Reopened {
		action = "reopen"
		// The first rating stays in the history; the matter is rated anew
		// when it is answered again.
		next.Status, next.Reopened, next.Rating, next.RatingNote, next.RatedAt = StatusReceived, true, 0, "", time.Time{}
		cat, err := s.d.Store.FeedbackCategory(ctx, f.Category)
		if err != nil {
			return Feedback{}, err
		}
		next.DueAt = s.d.Calendar.AddWorkingDays(now, cat.HandlingDays)
		items, err := s.overdueItems(ctx, next, now)
		if err != nil {
			return Feedback{}, err
		}
		t.Items = items
	} else {
		next.Status, next.ClosedAt = StatusClosed, now
	}
	t.Next = next
	t.Event = Event{At: now, Actor: a.name(), Action: action, From: f.Status, To: next.Status, Agency: next.Agency,
		Note: fmt.Sprintf("%d/5", stars)}
	notice, err := s.notice(next, action, now)
	if err != nil {
		return Feedback{}, err
	}
	t.Items = append(t.Items, notice...)
	next.Masked = maskedOf(next)
	t.Next = next
	if err := s.d.Store.TransitionFeedback(ctx, t); err != nil {
		if errors.Is(err, ErrConflict) {
			return Feedback{}, stateError("rate", id, f.Status)
		}
		return Feedback{}, fmt.Errorf("feedback: rate: %w", err)
	}
	return next, nil
}
