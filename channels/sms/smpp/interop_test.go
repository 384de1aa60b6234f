package smpp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/loa-hub/loa/channels/sms/smpp"
	"github.com/loa-hub/loa/channels/sms/smpp/pdu"
	"github.com/loa-hub/loa/internal/testenv"
)

// nodeEvent is a line the node SMSC prints.
type nodeEvent struct {
	Event      string   `json:"event"`
	Port       int      `json:"port"`
	To         string   `json:"to"`
	From       string   `json:"from"`
	SourceTON  int      `json:"source_ton"`
	SourceNPI  int      `json:"source_npi"`
	DestTON    int      `json:"dest_ton"`
	DestNPI    int      `json:"dest_npi"`
	DataCoding int      `json:"data_coding"`
	Registered int      `json:"registered_delivery"`
	Text       string   `json:"text"`
	Parts      int      `json:"parts"`
	IDs        []string `json:"ids"`
	ID         string   `json:"id"`
	Status     int      `json:"status"`
}

// TestNodeSMSCInterop: Loa's client binds to an SMSC built on the npm
// package smpp (an independent implementation), sends a GSM-7 message and
// a 3-part UCS-2 Vietnamese one with each concatenation mode, which the
// package decodes and reassembles to the same text, and matches every
// receipt the package sends.
func TestNodeSMSCInterop(t *testing.T) {
	modules := testenv.Tool(t, "LOA_TEST_NODE_SMPP")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "testdata/node_smsc.js", "loa", "pw123")
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatalf("node: %v", err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	events := make(chan nodeEvent, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e nodeEvent
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				events <- e
			}
		}
		close(events)
	}()
	// Events of one kind may come before those of another the test waits
	// for first (a part's receipt is acknowledged before the last part of
	// the other message arrives): keep them for their turn.
	var early []nodeEvent
	next := func(kind string) nodeEvent {
		t.Helper()
		for i, e := range early {
			if e.Event == kind {
				early = append(early[:i], early[i+1:]...)
				return e
			}
		}
		for {
			select {
			case e, ok := <-events:
				if !ok {
					t.Fatalf("node SMSC exited waiting for %q", kind)
				}
				if e.Event == kind {
					return e
				}
				early = append(early, e)
			case <-ctx.Done():
				t.Fatalf("no %q from the node SMSC", kind)
			}
		}
	}
	addr := "127.0.0.1:" + strconv.Itoa(next("listening").Port)

	long := vietnamese3
	for _, mode := range []smpp.Concatenation{smpp.UDH, smpp.SAR} {
		rep := newReports()
		c, err := smpp.New(smpp.Config{Name: "node", Session: smpp.SessionConfig{Addr: addr, SystemID: "loa", Password: "pw123"},
			SourceAddr: "LOA", Concatenation: mode, Reports: rep, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		cctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = c.Run(cctx); close(done) }()
		next("bound")
		results := map[string]string{}
		for to, text := range map[string]string{"84912345678": "Ma xac thuc: 123456 [5 phut]", "84933333333": long} {
			res, err := c.Send(ctx, msg(to, text))
			if err != nil {
				t.Fatalf("mode %d, %s: %v", mode, to, err)
			}
			results[res.ProviderID] = to
		}
		for range 2 {
			m := next("message")
			want := map[string]struct {
				text   string
				coding int
				parts  int
			}{"84912345678": {"Ma xac thuc: 123456 [5 phut]", int(pdu.CodingDefault), 1}, "84933333333": {long, int(pdu.CodingUCS2), 3}}[m.To]
			if m.Text != want.text || m.DataCoding != want.coding || m.Parts != want.parts || m.From != "LOA" ||
				m.SourceTON != 5 || m.SourceNPI != 0 || m.DestTON != 1 || m.DestNPI != 1 || m.Registered != 1 {
				t.Errorf("mode %d: the node SMSC got %+v", mode, m)
			}
			if results[m.IDs[0]] != m.To {
				t.Errorf("mode %d: ProviderID of %s is not its first part's id %v", mode, m.To, m.IDs)
			}
		}
		for range 4 { // one receipt per part, each answered ESME_ROK
			if a := next("receipt_acked"); a.Status != 0 {
				t.Errorf("receipt %s answered %d", a.ID, a.Status)
			}
		}
		for range 2 {
			r := rep.next(t)
			if r.Status != smpp.Delivered || !r.Matched || results[r.MessageID] == "" {
				t.Errorf("report %+v", r)
			}
		}
		stop()
		<-done
	}
}
