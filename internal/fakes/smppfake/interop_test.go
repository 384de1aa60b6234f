package smppfake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/loa-hub/loa/channels/sms/smpp/pdu"
	"github.com/loa-hub/loa/internal/fakes/smppfake"
	"github.com/loa-hub/loa/internal/testenv"
)

// TestSmpplibClientInterop: Python smpplib, an independent SMPP client,
// binds to the fake SMSC, submits a GSM-7 message and a 3-part UCS-2
// Vietnamese one cut by smpplib itself, and gets a delivery receipt for
// every part it submitted.
func TestSmpplibClientInterop(t *testing.T) {
	python := testenv.Tool(t, "LOA_TEST_SMPPLIB_PYTHON")
	fake, err := smppfake.New(smppfake.Options{SystemID: "pylib", Password: "pw123"})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	long := strings.Repeat("Lũ khẩn cấp trên sông Thu Bồn, mực nước tại Hội An 3,2 m. ", 3)
	msgs, _ := json.Marshal([][2]string{{"84912345678", "Ma xac thuc: 123456"}, {"84933333333", long}})
	host, port, _ := strings.Cut(fake.Addr(), ":")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "testdata/smpplib_client.py", host, port, "pylib", "pw123")
	cmd.Stdin = bytes.NewReader(msgs)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("smpplib client: %v\n%s", err, stderr.String())
	}
	var got struct {
		IDs      []string `json:"ids"`
		Receipts []struct {
			ID     string `json:"id"`
			TextID string `json:"text_id"`
			Stat   string `json:"stat"`
			Source string `json:"source"`
			State  int    `json:"state"`
		} `json:"receipts"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("smpplib client output %q: %v", out, err)
	}
	if fake.Count() != 2 {
		t.Fatalf("fake got %d whole messages, want 2: %+v", fake.Count(), fake.Messages())
	}
	byTo := map[string]smppfake.Message{}
	for _, m := range fake.Messages() {
		byTo[m.To] = m
	}
	if m := byTo["84912345678"]; m.Text != "Ma xac thuc: 123456" || m.DataCoding != pdu.CodingDefault || m.From != "PYLIB" ||
		m.SourceTON != 5 || m.DestTON != 1 || m.DestNPI != 1 || m.RegisteredDelivery != 1 {
		t.Errorf("GSM-7 message: %+v", m)
	}
	if m := byTo["84933333333"]; m.Text != long || m.Parts != 3 || m.DataCoding != pdu.CodingUCS2 || m.Concat != "udh8" {
		t.Errorf("UCS-2 message: %d parts (%s), coding %d, text %q", m.Parts, m.Concat, m.DataCoding, m.Text)
	}
	if len(got.IDs) != 4 || len(got.Receipts) != 4 {
		t.Fatalf("smpplib saw %d submit_sm_resp and %d receipts, want 4 and 4: %+v", len(got.IDs), len(got.Receipts), got)
	}
	ids := map[string]bool{}
	for _, id := range got.IDs {
		ids[id] = true
	}
	for _, r := range got.Receipts {
		if !ids[r.ID] || r.TextID != r.ID || r.Stat != "DELIVRD" || r.State != 2 {
			t.Errorf("receipt %+v does not match a submitted id", r)
		}
	}
	if err := fake.WaitAcked(ctx, 4); err != nil {
		t.Errorf("receipts acknowledged: %v (%+v)", err, fake.Receipts())
	}
	if fake.Unbinds() != 1 {
		t.Errorf("smpplib's unbind was not answered")
	}
}
