package feedback

import (
	"context"
	"fmt"
	"time"

	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// Outbox item kinds and subjects. A matter's notices are items of subject
// "feedback:<id>"; its deadline reminders and overdue notices of
// "feedback-deadline:<id>", so a step can cancel the reminders alone.
func noticeSubject(id string) string   { return "feedback:" + id }
func deadlineSubject(id string) string { return "feedback-deadline:" + id }

// citizenText is what the citizen is told of each step, in Vietnamese.
var citizenText = map[string]struct{ title, body string }{
	"submit":    {"Đã tiếp nhận phản ánh", "Phản ánh “%s” của bạn đã được tiếp nhận (mã %s)."},
	ActAssign:   {"Phản ánh đã được chuyển xử lý", "Phản ánh “%s” (mã %s) đã được giao cho cơ quan có thẩm quyền xử lý."},
	ActStart:    {"Phản ánh đang được xử lý", "Phản ánh “%s” (mã %s) đang được xử lý."},
	ActTransfer: {"Phản ánh đã được chuyển cơ quan khác", "Phản ánh “%s” (mã %s) đã được chuyển đến cơ quan có thẩm quyền khác."},
	ActEscalate: {"Phản ánh đã được chuyển Sở Thông tin và Truyền thông", "Phản ánh “%s” (mã %s) vượt thẩm quyền của cơ quan xử lý và đã được chuyển lên Sở Thông tin và Truyền thông."},
	ActAnswer:   {"Phản ánh đã có trả lời", "Phản ánh “%s” (mã %s) đã có trả lời. Mời bạn xem và đánh giá mức độ hài lòng."},
	ActReject:   {"Phản ánh không được tiếp nhận xử lý", "Phản ánh “%s” (mã %s) không được tiếp nhận xử lý: %s."},
	ActClose:    {"Phản ánh đã kết thúc", "Phản ánh “%s” (mã %s) đã kết thúc xử lý."},
	"rate":      {"Cảm ơn bạn đã đánh giá", "Cảm ơn bạn đã đánh giá việc xử lý phản ánh “%s” (mã %s)."},
	"reopen":    {"Phản ánh được xem xét lại", "Phản ánh “%s” (mã %s) sẽ được Sở Thông tin và Truyền thông xem xét lại."},
}

var rejectText = map[string]string{
	ReasonDuplicate:  "trùng với phản ánh đã có",
	ReasonOutOfScope: "không thuộc phạm vi tiếp nhận",
	ReasonAbusive:    "nội dung không phù hợp",
}

// notice returns the outbox item that tells the citizen of a step: push
// to their devices; for an answer or a rejection, SMS when no device is
// reached. A citizen known only by phone (sent by an integrating system,
// no account) hears by SMS of the answer and the rejection only.
func (s *Service) notice(f Feedback, action string, now time.Time) ([]producer.OutboxItem, error) {
	txt, ok := citizenText[action]
	if !ok {
		return nil, nil
	}
	final := action == ActAnswer || action == ActReject
	body := fmt.Sprintf(txt.body, firstWords(f.Title, 60), f.ID)
	if action == ActReject {
		body = fmt.Sprintf(txt.body, firstWords(f.Title, 60), f.ID, rejectText[f.RejectReason])
	}
	d := producer.Direct{Title: txt.title, Body: body, Priority: "normal",
		Data: map[string]string{"type": "feedback", "feedback_id": f.ID, "status": string(f.Status)}}
	switch {
	case f.Citizen.AccountID != "":
		d.To = producer.Recipient{Type: producer.ToAccount, Value: f.Citizen.AccountID}
		d.Channels, d.App = []string{"push"}, "smart"
		if final {
			d.Channels, d.Fallback = []string{"push", "sms"}, true
		}
	case f.Citizen.Phone != "" && final:
		d.To = producer.Recipient{Type: producer.ToPhone, Value: f.Citizen.Phone}
		d.Channels = []string{"sms"}
	default:
		return nil, nil
	}
	// The version orders a matter's notices (the outbox publishes items
	// due together in id order).
	d.NotificationID = fmt.Sprintf("fb-%s-%04d-%s", f.ID, f.Version, action)
	it, err := s.directItem(d.NotificationID, noticeSubject(f.ID), now, now, d)
	if err != nil {
		return nil, err
	}
	return []producer.OutboxItem{it}, nil
}

func (s *Service) directItem(id, subject string, due, now time.Time, d producer.Direct) (producer.OutboxItem, error) {
	env, err := producer.NewEnvelope(id, producer.KindDirect, topics.LaneDirect, d.To.Value, now, due.Add(s.cfg.NoticeTTL), "", d)
	if err != nil {
		return producer.OutboxItem{}, err
	}
	return producer.NewOutboxItem(id, subject, due, env)
}

// official is a notice to an official: a push to the Egov app, SMS when
// no device is reached.
func official(accountID, id, title, body string, f Feedback) producer.Direct {
	return producer.Direct{NotificationID: id, To: producer.Recipient{Type: producer.ToAccount, Value: accountID},
		Title: title, Body: body, Channels: []string{"push", "sms"}, Fallback: true, App: "egov", Priority: "normal",
		Data: map[string]string{"type": "feedback", "feedback_id": f.ID}}
}

// deadlineItems schedules the reminder to each handler of the matter's
// agency ReminderLead before its deadline (at once when that is past),
// and the overdue notice to the coordinators at the deadline.
func (s *Service) deadlineItems(ctx context.Context, f Feedback, now time.Time) ([]producer.OutboxItem, error) {
	handlers, err := s.d.Store.OfficialsWithRole(ctx, f.Agency, RoleHandler)
	if err != nil {
		return nil, err
	}
	due := f.DueAt.Add(-s.cfg.ReminderLead)
	if due.Before(now) {
		due = now
	}
	deadline := f.DueAt.In(ICT).Format("15:04 02/01/2006")
	var items []producer.OutboxItem
	for _, h := range handlers {
		id := fmt.Sprintf("fb-remind-%s-%s-%s-%d", f.ID, f.Agency, h, f.DueAt.Unix())
		d := official(h, id, "Sắp đến hạn xử lý phản ánh",
			fmt.Sprintf("Phản ánh “%s” (mã %s) cần được xử lý trước %s.", firstWords(f.Title, 60), f.ID, deadline), f)
		it, err := s.directItem(id, deadlineSubject(f.ID), due, now, d)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	over, err := s.overdueItems(ctx, f, now)
	if err != nil {
		return nil, err
	}
	return append(items, over...), nil
}

// overdueItems schedules the notice to each coordinator when the
// matter's deadline passes.
func (s *Service) overdueItems(ctx context.Context, f Feedback, now time.Time) ([]producer.OutboxItem, error) {
	if s.cfg.CoordinatorUnit == "" {
		return nil, nil
	}
	coords, err := s.d.Store.OfficialsWithRole(ctx, s.cfg.CoordinatorUnit, RoleCoordinator)
	if err != nil {
		return nil, err
	}
	due := f.DueAt
	if due.Before(now) {
		due = now
	}
	var items []producer.OutboxItem
	for _, c := range coords {
		id := fmt.Sprintf("fb-overdue-%s-%s-%d", f.ID, c, f.DueAt.Unix())
		d := official(c, id, "Phản ánh quá hạn xử lý",
			fmt.Sprintf("Phản ánh “%s” (mã %s) của %s đã quá hạn xử lý (%s).", firstWords(f.Title, 60), f.ID, orNone(f.Agency),
				f.DueAt.In(ICT).Format("15:04 02/01/2006")), f)
		it, err := s.directItem(id, deadlineSubject(f.ID), due, now, d)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return items, nil
}
