package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// overview is GET /v1/ops/overview.
type overview struct {
	At    time.Time `json:"at"`
	Since time.Time `json:"since"`
	Lag   []struct {
		Lane      string `json:"lane"`
		Partition int    `json:"partition"`
		Lag       int64  `json:"lag"`
	} `json:"lag"`
	LagError         string     `json:"lag_error"`
	DeadLetters      int64      `json:"dead_letters"`
	OldestDeadLetter *time.Time `json:"oldest_dead_letter"`
	ScheduledDue     int64      `json:"scheduled_due"`
	ScheduledOverdue int64      `json:"scheduled_overdue"`
	StoreError       string     `json:"store_error"`
	Throughput       []struct {
		Channel   string  `json:"channel"`
		Status    string  `json:"status"`
		PerSecond float64 `json:"per_second"`
	} `json:"throughput"`
	Breakers []struct {
		Provider    string `json:"provider"`
		State       int    `json:"state"`
		StateName   string `json:"state_name"`
		Transitions []struct {
			At    time.Time `json:"at"`
			To    string    `json:"to"`
			Count int       `json:"count"`
		} `json:"transitions"`
	} `json:"breakers"`
	RateWaits []struct {
		Provider string  `json:"provider"`
		Seconds  float64 `json:"seconds"`
	} `json:"rate_limit_waits"`
	QueueTime []struct {
		Lane  string  `json:"lane"`
		P50   float64 `json:"p50"`
		P99   float64 `json:"p99"`
		Count float64 `json:"count"`
	} `json:"queue_time"`
	Sources []struct {
		Name  string `json:"name"`
		Error string `json:"error"`
	} `json:"sources"`
}

// laneLag sums the lag per lane, keeping the partitions.
type laneLag struct {
	Lane       string
	Total      int64
	Partitions []struct {
		Partition int
		Lag       int64
	}
}

func (c *Console) opsOverview(w http.ResponseWriter, r *http.Request) {
	var o overview
	if _, err := c.get(r, "/v1/ops/overview", nil, &o); err != nil {
		c.fail(w, r, err)
		return
	}
	var lanes []laneLag
	for _, l := range o.Lag {
		i := slices.IndexFunc(lanes, func(x laneLag) bool { return x.Lane == l.Lane })
		if i < 0 {
			lanes = append(lanes, laneLag{Lane: l.Lane})
			i = len(lanes) - 1
		}
		lanes[i].Total += l.Lag
		lanes[i].Partitions = append(lanes[i].Partitions, struct {
			Partition int
			Lag       int64
		}{l.Partition, l.Lag})
	}
	// Each lane's throughput: its sends (one queue-time observation each)
	// over the overview's window.
	laneRate := map[string]string{}
	if secs := o.At.Sub(o.Since).Seconds(); secs > 0 {
		for _, q := range o.QueueTime {
			laneRate[q.Lane] = strconv.FormatFloat(math.Round(q.Count/secs*100)/100, 'f', -1, 64)
		}
	}
	p := c.basePage(r, "ops.title", "ops")
	p.Data = map[string]any{"O": o, "Lanes": lanes, "LaneRate": laneRate}
	c.render(w, r, http.StatusOK, "ops", p)
}

// deadLetterItem is one dead letter.
type deadLetterItem struct {
	ID         string     `json:"id"`
	Reason     string     `json:"reason"`
	Topic      string     `json:"topic"`
	Partition  int        `json:"partition"`
	Offset     int64      `json:"offset"`
	Channel    string     `json:"channel"`
	Recipient  string     `json:"recipient"`
	Provider   string     `json:"provider"`
	Attempts   int        `json:"attempts"`
	At         time.Time  `json:"at"`
	ReplayedAt *time.Time `json:"replayed_at"`
	ReplayedBy string     `json:"replayed_by"`
	Replayable bool       `json:"replayable"`
	EventID    string     `json:"event_id"`
	Kind       string     `json:"kind"`
	Lane       string     `json:"lane"`
	History    []struct {
		At       time.Time `json:"at"`
		Provider string    `json:"provider"`
		Class    string    `json:"class"`
		Reason   string    `json:"reason"`
	} `json:"history"`
}

// deadLetters lists a page of dead letters, filtered in the page by
// state, channel and a text in the reason, provider or recipient.
func (c *Console) deadLetters(w http.ResponseWriter, r *http.Request) {
	var list struct {
		Items []deadLetterItem `json:"items"`
		Next  string           `json:"next"`
	}
	q := url.Values{"limit": {"100"}}
	if b := r.URL.Query().Get("before"); b != "" {
		q.Set("before", b)
	}
	if _, err := c.get(r, "/v1/ops/deadletters", q, &list); err != nil {
		c.fail(w, r, err)
		return
	}
	state, channel, text := r.URL.Query().Get("state"), r.URL.Query().Get("channel"), strings.ToLower(r.URL.Query().Get("q"))
	items := list.Items[:0]
	for _, d := range list.Items {
		switch {
		case state == "waiting" && d.ReplayedAt != nil, state == "replayed" && d.ReplayedAt == nil:
			continue
		case channel != "" && d.Channel != channel:
			continue
		case text != "" && !strings.Contains(strings.ToLower(d.Reason+" "+d.Provider+" "+d.Recipient+" "+d.ID), text):
			continue
		}
		items = append(items, d)
	}
	p := c.basePage(r, "dl.title", "deadletters")
	if n := r.URL.Query().Get("replayed"); n != "" {
		p.Flash = fmt.Sprintf(translator(lang(r))("dl.done"), atoi(n))
	}
	if e := r.URL.Query().Get("failed"); e != "" {
		p.Error = translator(lang(r))("dl.failed") + ": " + e
	}
	p.Data = map[string]any{"Items": items, "Next": list.Next, "State": state, "Channel": channel, "Q": r.URL.Query().Get("q")}
	c.render(w, r, http.StatusOK, "deadletters", p)
}

func atoi(s string) int {
	n := 0
	for _, ch := range s {
		if ch < '0' || ch > '9' || n > 1e6 {
			return n
		}
		n = n*10 + int(ch-'0')
	}
	return n
}

func (c *Console) deadLetter(w http.ResponseWriter, r *http.Request) {
	var d deadLetterItem
	if _, err := c.get(r, "/v1/ops/deadletters/"+url.PathEscape(r.PathValue("id")), nil, &d); err != nil {
		c.fail(w, r, err)
		return
	}
	p := c.basePage(r, "dl.title", "deadletters")
	p.Data = d
	c.render(w, r, http.StatusOK, "deadletter", p)
}

func (c *Console) replayOne(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := c.api(r, http.MethodPost, "/v1/ops/deadletters/"+url.PathEscape(id)+"/replay", nil, nil); err != nil {
		var prob *problem
		if errors.As(err, &prob) && prob.Status == http.StatusConflict {
			http.Redirect(w, r, Prefix+"ops/deadletters?failed="+url.QueryEscape(id+": "+prob.Detail), http.StatusSeeOther)
			return
		}
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"ops/deadletters?replayed=1", http.StatusSeeOther)
}

// replaySelected replays each selected dead letter once; those the API
// refuses (already replayed, not an event) are listed.
func (c *Console) replaySelected(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	ids := r.PostForm["id"]
	if len(ids) > 100 {
		ids = ids[:100]
	}
	done := 0
	var failed []string
	for _, id := range ids {
		if _, err := c.api(r, http.MethodPost, "/v1/ops/deadletters/"+url.PathEscape(id)+"/replay", nil, nil); err != nil {
			var prob *problem
			if !errors.As(err, &prob) || prob.Status >= 500 {
				c.fail(w, r, err)
				return
			}
			failed = append(failed, id+": "+prob.Detail)
			continue
		}
		done++
	}
	q := url.Values{"replayed": {fmt.Sprint(done)}}
	if len(failed) > 0 {
		q.Set("failed", strings.Join(failed, "; "))
	}
	http.Redirect(w, r, Prefix+"ops/deadletters?"+q.Encode(), http.StatusSeeOther)
}

func (c *Console) scheduled(w http.ResponseWriter, r *http.Request) {
	var list struct {
		Items []struct {
			ID        string    `json:"id"`
			Kind      string    `json:"kind"`
			Subject   string    `json:"subject"`
			DueAt     time.Time `json:"due_at"`
			Attempts  int       `json:"attempts"`
			LastError string    `json:"last_error"`
			Overdue   bool      `json:"overdue"`
		} `json:"items"`
	}
	if _, err := c.get(r, "/v1/ops/scheduled", url.Values{"within": {"24h"}, "limit": {"200"}}, &list); err != nil {
		c.fail(w, r, err)
		return
	}
	p := c.basePage(r, "sc.title", "scheduled")
	p.Data = list.Items
	c.render(w, r, http.StatusOK, "scheduled", p)
}

// audit searches the audit log (GET /v1/audit: admins).
func (c *Console) audit(w http.ResponseWriter, r *http.Request) {
	q := url.Values{"limit": {"100"}}
	for _, k := range []string{"actor", "target", "route", "before"} {
		if v := strings.TrimSpace(r.URL.Query().Get(k)); v != "" {
			q.Set(k, v)
		}
	}
	var list struct {
		Items []map[string]any `json:"items"`
		Next  string           `json:"next"`
	}
	var raw json.RawMessage
	if _, err := c.get(r, "/v1/audit", q, &raw); err != nil {
		c.fail(w, r, err)
		return
	}
	_ = json.Unmarshal(raw, &list)
	p := c.basePage(r, "au.title", "audit")
	p.Data = map[string]any{"Items": list.Items, "Next": list.Next, "Actor": q.Get("actor"), "Target": q.Get("target"), "Route": q.Get("route")}
	c.render(w, r, http.StatusOK, "audit", p)
}
