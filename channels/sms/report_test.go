package sms

import (
	"errors"
	"testing"

	"github.com/loa-hub/loa"
)

func TestParseReport(t *testing.T) {
	for _, tc := range []struct {
		name   string
		f      ReportFormat
		body   string
		want   Report
		code   string // of the error, "" for none
		errFld string
	}{
		{"esms delivered", ReportFormat{Kind: ReportESMS}, `{"SMSID":"e-1","Phone":"0912345678","SendStatus":5}`,
			Report{ProviderID: "e-1", Phone: "0912345678", Status: loa.StatusDelivered, Reason: "delivery report: SendStatus 5"}, "", ""},
		{"esms on the way", ReportFormat{Kind: ReportESMS}, `{"SMSID":"e-1","SendStatus":"2"}`,
			Report{ProviderID: "e-1", Reason: "delivery report: SendStatus 2"}, "", ""},
		{"esms bad status", ReportFormat{Kind: ReportESMS}, `{"SMSID":"e-1","SendStatus":"five"}`, Report{}, loa.EInvalid, "SendStatus"},
		{"speedsms undelivered", ReportFormat{Kind: ReportSpeedSMS}, `{"type":"report","tranId":7,"status":3}`,
			Report{ProviderID: "7", Status: loa.StatusUndelivered, Reason: "delivery report: status 3"}, "", ""},
		{"speedsms incoming message", ReportFormat{Kind: ReportSpeedSMS}, `{"type":"sms","phone":"84912345678"}`, Report{}, "", ""},
		{"webhook custom fields", ReportFormat{Kind: ReportWebhook, IDField: "msg", StatusField: "dlr"}, `{"msg":"w-9","dlr":"DELIVRD"}`,
			Report{ProviderID: "w-9", Status: loa.StatusDelivered, Reason: "delivery report: DELIVRD"}, "", ""},
		{"webhook missing id", ReportFormat{Kind: ReportWebhook}, `{"status":"failed"}`, Report{}, loa.EInvalid, "gateway_id"},
		{"webhook id of another kind", ReportFormat{Kind: ReportWebhook}, `{"gateway_id":{},"status":"failed"}`, Report{}, loa.EInvalid, "gateway_id"},
		{"not an object", ReportFormat{Kind: ReportESMS}, `[1]`, Report{}, loa.EMalformed, ""},
		{"empty", ReportFormat{Kind: ReportESMS}, ` `, Report{}, loa.EMalformed, ""},
	} {
		got, err := ParseReport(tc.f, []byte(tc.body))
		if tc.code != "" {
			e, ok := errors.AsType[*loa.Error](err)
			if !ok || e.Code != tc.code || e.Field != tc.errFld {
				t.Errorf("%s: err %v, want code %s on %q", tc.name, err, tc.code, tc.errFld)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
	if _, err := ParseReport(ReportFormat{Kind: "smpp"}, []byte(`{}`)); err == nil || loa.ErrorCode(err) != loa.EInternal {
		t.Errorf("unknown kind: %v", err)
	}
}
