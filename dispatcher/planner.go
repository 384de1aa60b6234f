package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/loa-hub/loa/channels"
	"github.com/loa-hub/loa/internal/sqlstore"
	"github.com/loa-hub/loa/internal/topics"
	"github.com/loa-hub/loa/producer"
)

// The planner turns a plan (a broadcast, an alert, an outage notice: an
// audience, not recipients) into fan-out batches on the plan's own lane,
// so every replica's senders share the sending through the partitions.
//
// It streams the audience from the store with keyset pagination, so
// memory stays flat whatever its size, and records after each group of
// batches how far it got. A plan interrupted by a crash is redelivered
// and resumes from there; a batch published just before the crash is
// published again with the same id and the same addresses, and the
// senders' delivery claims make sure nobody gets it twice.

// errStopping is returned by a plan cut short because the dispatcher is
// stopping; its message is handed back uncommitted and resumes later.
var errStopping = errors.New("dispatcher: stopping")

// planGroup is how many batches of a bulk or direct plan are written to
// Kafka between two progress records (an urgent plan records each).
const planGroup = 8

func (d *Dispatcher) handlePlan(ctx context.Context, env producer.Envelope, p producer.Plan) error {
	if env.Expired(d.now()) {
		d.log.Info("plan expired before it was planned; nothing sent", slog.String("notification_id", p.NotificationID))
		return nil
	}
	if d.store == nil {
		return errors.New("dispatcher: planning needs a store")
	}
	size := p.BatchSize
	if size <= 0 {
		size = 500
	}
	app := p.App
	if app == "" {
		app = "smart"
	}
	aud := sqlstore.Audience{Everyone: p.Audience.Everyone, Areas: p.Audience.Areas, Topics: p.Audience.Topics, Accounts: p.Audience.Accounts, Roles: p.Audience.Roles,
		Unacknowledged: p.Audience.Unacknowledged}
	// Every channel's progress row exists before the first is planned:
	// the plan is done when all its rows are (Store.PlanDone), so a
	// broadcast whose pushes were all sent before its SMS channel had a
	// row was "done" with its SMS still to come.
	for _, ch := range p.Channels {
		if _, err := d.store.Plan(ctx, p.NotificationID, ch, d.now()); err != nil {
			return err
		}
	}
	for _, ch := range p.Channels {
		if err := d.planChannel(ctx, env, p, channels.Name(ch), aud, app, size); err != nil {
			return err
		}
	}
	return nil
}

func (d *Dispatcher) planChannel(ctx context.Context, env producer.Envelope, p producer.Plan, ch channels.Name, aud sqlstore.Audience, app string, size int) error {
	prog, err := d.store.Plan(ctx, p.NotificationID, string(ch), d.now())
	if err != nil {
		return err
	}
	if prog.Done || prog.Cancelled {
		return nil
	}
	// One FCM topic message per area instead of one per device: the area
	// and every unit below it, since a subscriber's app subscribes to the
	// topic of the unit they chose.
	if ch == channels.Push && p.AreaTopics && len(aud.Areas) > 0 && len(aud.Topics) == 0 && len(aud.Accounts) == 0 && len(aud.Roles) == 0 && !aud.Everyone {
		codes, err := d.store.AreaSubtree(ctx, aud.Areas)
		if err != nil {
			return err
		}
		var topics []string
		for _, a := range codes {
			topics = append(topics, "/topics/area-"+a)
		}
		rec, err := d.fanoutRecord(env, p, ch, 0, topics)
		if err != nil {
			return err
		}
		if err := d.pub.Write(ctx, rec); err != nil {
			return err
		}
		prog.Batches, prog.Targeted, prog.Done = 1, int64(len(topics)), true
		return d.store.AdvancePlan(ctx, p.NotificationID, string(ch), prog, d.now())
	}

	// Bulk notices and outage reminders (the bulk lane) and alerts below
	// the bypass severity wait for the end of their subscribers' quiet
	// hours, and their SMS for the end of the night.
	hold := env.Lane == topics.LaneBulk || p.QuietHours
	// An alert's (or a code's) first batch goes to Kafka as soon as its
	// page is read, so its first recipients never wait for the pages after
	// theirs; the groups then double up to planGroup, so a large audience
	// is not planned a Kafka write and two progress round trips a page
	// (the senders are still fed far faster than they send).
	group := planGroup
	urgent := env.Lane == topics.LaneAlert || env.Lane == topics.LaneOTP
	if urgent {
		group = 1
	}
	for {
		select {
		case <-d.stopping:
			return errStopping
		default:
		}
		var (
			recs []producer.Record
			next = prog
		)
		// The group's pages are read in one query and cut into batches of
		// size: the same batches, keys and progress as a query a page, but
		// PostgreSQL plans and starts one query a group, not one a batch
		// (about half of what a page of 500 cost PostgreSQL was that).
		if d.readHook != nil {
			d.readHook(group * size)
		}
		var rows []sqlstore.Keyed
		switch {
		case ch == channels.SMS && hold:
			rows, err = d.store.AudiencePhonesQuiet(ctx, aud, next.LastKey, group*size)
		case ch == channels.SMS:
			rows, err = d.store.AudiencePhones(ctx, aud, next.LastKey, group*size)
		case hold:
			rows, err = d.store.AudienceDevicesQuiet(ctx, aud, app, next.LastKey, group*size)
		default:
			rows, err = d.store.AudienceDevices(ctx, aud, app, next.LastKey, group*size)
		}
		if err != nil {
			return err
		}
		if len(rows) < group*size {
			next.Done = true
		}
		for len(rows) > 0 {
			page := rows[:min(size, len(rows))]
			rows = rows[len(page):]
			var addrs []string
			held := map[int64][]string{} // by the Unix second of their release
			now := d.now()
			for _, k := range page {
				if at := d.release(k, ch, hold, now); at.After(now) {
					held[at.Unix()] = append(held[at.Unix()], k.Address)
				} else {
					addrs = append(addrs, k.Address)
				}
			}
			if len(addrs) > 0 {
				rec, err := d.fanoutRecord(env, p, ch, next.Batches, addrs)
				if err != nil {
					return err
				}
				recs = append(recs, rec)
			}
			// Held addresses wait as scheduled batches, published when their
			// window ends (durable; a plan started again schedules the same
			// ids, which is a no-op).
			for at, batch := range held {
				if err := d.holdBatch(ctx, env, p, ch, next.Batches, batch, time.Unix(at, 0)); err != nil {
					return err
				}
			}
			next.LastKey, next.Batches, next.Targeted = page[len(page)-1].Key, next.Batches+1, next.Targeted+int64(len(page))
		}
		if len(recs) > 0 {
			if err := d.pub.Write(ctx, recs...); err != nil {
				return err
			}
		}
		// Cancelled while this group was being planned? Record progress
		// anyway; the senders skip batches of a cancelled notification.
		if err := d.store.AdvancePlan(ctx, p.NotificationID, string(ch), next, d.now()); err != nil {
			return err
		}
		prog = next
		if urgent {
			group = min(2*group, planGroup)
		}
		if d.planHook != nil {
			d.planHook(prog.Batches)
		}
		if prog.Done {
			d.log.Info("plan complete", slog.String("notification_id", p.NotificationID), slog.String("channel", string(ch)),
				slog.Int("batches", prog.Batches), slog.Int64("targeted", prog.Targeted))
			return nil
		}
		if cur, err := d.store.Plan(ctx, p.NotificationID, string(ch), d.now()); err == nil && cur.Cancelled {
			d.log.Info("plan cancelled; the rest of the audience is not planned", slog.String("notification_id", p.NotificationID))
			return nil
		}
	}
}

// release is when a delivery to k may go: now, or for a plan that holds,
// the end of the subscriber's quiet hours and — for SMS — of the
// province's night, whichever comes last.
func (d *Dispatcher) release(k sqlstore.Keyed, ch channels.Name, hold bool, now time.Time) time.Time {
	if !hold {
		return now
	}
	at := now
	for range 4 { // a night and a window that overlap push each other on
		was := at
		if k.Quiet != nil {
			at = k.Quiet.Until(at)
		}
		if ch == channels.SMS && d.cfg.SMSNight != nil {
			at = d.cfg.SMSNight.Until(at)
		}
		if at.Equal(was) {
			break
		}
	}
	return at
}

// holdBatch stores the part of batch seq held until at as a scheduled
// fan-out, which the outbox publishes on the plan's lane when due.
func (d *Dispatcher) holdBatch(ctx context.Context, env producer.Envelope, p producer.Plan, ch channels.Name, seq int, addrs []string, at time.Time) error {
	id := fmt.Sprintf("%s-%s-%06d-held-%d", p.NotificationID, ch, seq, at.Unix())
	fe, err := producer.NewEnvelope(id, producer.KindFanout, env.Lane, id, env.CreatedAt, env.ExpiresAt, "",
		producer.Fanout{NotificationID: p.NotificationID, Batch: seq, Channel: string(ch), Recipients: addrs,
			Title: p.Title, Body: p.Body, Data: p.Data, Priority: p.Priority, Collapse: p.Collapse, Ack: p.Ack})
	if err != nil {
		return err
	}
	it, err := producer.NewOutboxItem(id, HeldSubject(p), at, fe)
	if err != nil {
		return err
	}
	return d.store.Schedule(ctx, it, d.now())
}

// HeldSubject is the subject of a plan's batches held for quiet hours:
// "held:" and its collapse key (an outage schedule's notices share one),
// else its notification id. Cancelling the subject's scheduled items
// drops what is still held.
func HeldSubject(p producer.Plan) string {
	if p.Collapse != "" {
		return "held:" + p.Collapse
	}
	return "held:" + p.NotificationID
}

// fanoutRecord is batch seq of a plan: its id is derived from the plan so
// a batch published again after a crash is recognisably the same one.
func (d *Dispatcher) fanoutRecord(env producer.Envelope, p producer.Plan, ch channels.Name, seq int, addrs []string) (producer.Record, error) {
	id := fmt.Sprintf("%s-%s-%06d", p.NotificationID, ch, seq)
	fe, err := producer.NewEnvelope(id, producer.KindFanout, env.Lane, id, env.CreatedAt, env.ExpiresAt, "",
		producer.Fanout{NotificationID: p.NotificationID, Batch: seq, Channel: string(ch), Recipients: addrs,
			Title: p.Title, Body: p.Body, Data: p.Data, Priority: p.Priority, Collapse: p.Collapse, Ack: p.Ack})
	if err != nil {
		return producer.Record{}, err
	}
	b, err := json.Marshal(fe)
	if err != nil {
		return producer.Record{}, fmt.Errorf("dispatcher: plan: %w", err)
	}
	return producer.Record{Topic: d.cfg.Names.Lane(env.Lane), Key: id, Value: b, Headers: map[string]string{"kind": producer.KindFanout}}, nil
}
