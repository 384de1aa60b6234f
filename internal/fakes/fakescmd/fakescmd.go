// Package fakescmd is the loa-fakes command: every provider fake (FCM,
// eSMS, SpeedSMS, webhook, SMTP, an SMPP SMSC) started together, with the
// LOA_* variables that point `loa dev` at them. It lives outside the loa
// binary so that the fakes never ship with it.
package fakescmd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/loa-hub/loa/internal/fakes"
	"github.com/loa-hub/loa/internal/fakes/fcmfake"
)

// fakeProjectID is the FCM project the fakes pretend to be.
const fakeProjectID = "loa-fake"

// fakeSMS are the SMS fakes loa dev is pointed at, in failover order.
var fakeSMS = []string{"esms", "speedsms"}

// Run starts every provider fake (FCM, eSMS, SpeedSMS, webhook, SMTP, an
// SMPP SMSC), prints where they listen and the LOA_* variables that point
// `loa dev` at them, and runs until ctx ends. The SMS fakes' delivery
// reports go to Loa (--loa, by default defaultLoa) with each provider's
// callback token, as a gateway account configured with Loa's callback
// URL and token posts them. args are the command's flags.
func Run(ctx context.Context, args []string, defaultLoa string, log *slog.Logger, stdout io.Writer) error {
	fs := flag.NewFlagSet("loa-fakes", flag.ContinueOnError)
	fs.SetOutput(stdout)
	loaURL := fs.String("loa", defaultLoa, "base URL of the Loa API that receives the SMS fakes' delivery reports")
	fcmRecord := fs.String("fcm-record", "all", "what the FCM fake keeps: all (every message), counts (a count per token) or total (one number)")
	infoFile := fs.String("info-file", "", "also write the fakes' URLs and the LOA_* variables to this file as JSON, for tools")
	if err := fs.Parse(args); err != nil {
		return err
	}
	base := strings.TrimSuffix(*loaURL, "/")

	tokens := map[string]string{}
	for _, name := range fakeSMS {
		tokens[name] = randomHex(16)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	smtpPassword := "fake-" + randomHex(8)
	smppPassword := randomHex(4) // SMPP passwords are at most 8 octets
	set, err := fakes.Start(ctx, fakes.Options{
		CallbackBase: base + "/v1/callbacks/sms/", CallbackTokens: tokens,
		SMTPUsername: "loa", SMTPPassword: smtpPassword, FCMRecord: *fcmRecord,
		SMPPSystemID: "loa", SMPPPassword: smppPassword,
	})
	if err != nil {
		return err
	}
	defer set.Close()

	dir, err := os.MkdirTemp("", "loa-fakes-")
	if err != nil {
		return fmt.Errorf("fakes: %w", err)
	}
	defer os.RemoveAll(dir)
	creds := filepath.Join(dir, "fcm-service-account.json")
	if err := fcmfake.WriteServiceAccount(creds, fakeProjectID, set.FCM.TokenURL()); err != nil {
		return err
	}

	u := set.URLs()
	env := [][2]string{
		{"LOA_FCM_PROJECT_ID", fakeProjectID},
		{"LOA_FCM_ENDPOINT", u.FCMEndpoint},
		{"LOA_FCM_CREDENTIALS_FILE", creds},
		{"LOA_FCM_INSECURE_TLS", "1"},
		{"LOA_SMS_PROVIDERS", strings.Join(fakeSMS, ",")},
		{"LOA_SMS_ESMS_TYPE", "esms"},
		{"LOA_SMS_ESMS_URL", u.ESMS},
		{"LOA_SMS_ESMS_API_KEY", "fake-api-key"},
		{"LOA_SMS_ESMS_SECRET_KEY", "fake-secret-key"},
		{"LOA_SMS_ESMS_BRANDNAME", "LOA"},
		{"LOA_SMS_ESMS_CALLBACK_TOKEN", tokens["esms"]},
		// eSMS takes the report URL with each message.
		{"LOA_SMS_ESMS_CALLBACK_URL", base + "/v1/callbacks/sms/esms?token=" + tokens["esms"]},
		{"LOA_SMS_SPEEDSMS_TYPE", "speedsms"},
		{"LOA_SMS_SPEEDSMS_URL", u.SpeedSMS},
		{"LOA_SMS_SPEEDSMS_ACCESS_TOKEN", "fake-access-token"},
		{"LOA_SMS_SPEEDSMS_SENDER", "LOA"},
		{"LOA_SMS_SPEEDSMS_CALLBACK_TOKEN", tokens["speedsms"]},
		{"LOA_SMTP_HOST", set.SMTP.Host()},
		{"LOA_SMTP_PORT", fmt.Sprint(set.SMTP.Port())},
		{"LOA_SMTP_USERNAME", "loa"},
		{"LOA_SMTP_PASSWORD", smtpPassword},
		{"LOA_SMTP_FROM", "loa@example.vn"},
		{"LOA_SMTP_INSECURE_TLS", "1"},
		// The fake SMSC, ready as provider "smsc": add it to
		// LOA_SMS_PROVIDERS (e.g. smsc,esms,speedsms) to send over SMPP.
		{"LOA_SMS_SMSC_TYPE", "smpp"},
		{"LOA_SMS_SMSC_HOST", HostOf(u.SMPP)},
		{"LOA_SMS_SMSC_PORT", PortOf(u.SMPP)},
		{"LOA_SMS_SMSC_SYSTEM_ID", "loa"},
		{"LOA_SMS_SMSC_PASSWORD", smppPassword},
		{"LOA_SMS_SMSC_SOURCE_ADDR", "LOA"},
	}
	if *infoFile != "" {
		if err := writeFakesInfo(*infoFile, u, env); err != nil {
			return err
		}
	}
	printFakes(stdout, u, env, base)
	log.Info("loa-fakes: running", slog.String("control", u.Control))

	<-ctx.Done()
	log.Info("loa-fakes: stopping")
	set.Close() // waits for the delivery reports under way
	return nil
}

// fakesInfo is what --info-file holds.
type fakesInfo struct {
	URLs fakes.URLs        `json:"urls"`
	Env  map[string]string `json:"env"` // the LOA_* variables printed as export lines
}

// writeFakesInfo writes the file whole (through a rename), so a tool that
// waits for it never reads half of it.
func writeFakesInfo(path string, u fakes.URLs, env [][2]string) error {
	info := fakesInfo{URLs: u, Env: map[string]string{}}
	for _, kv := range env {
		info.Env[kv[0]] = kv[1]
	}
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		return fmt.Errorf("fakes: --info-file: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("fakes: --info-file: %w", err)
	}
	return nil
}

// HostOf is the host of a host:port address.
func HostOf(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }

// PortOf is the port of a host:port address.
func PortOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

func printFakes(w io.Writer, u fakes.URLs, env [][2]string, loaBase string) {
	fmt.Fprintf(w, "\n  Loa provider fakes are running.\n\n")
	for _, line := range strings.Split(strings.TrimRight(u.String(), "\n"), "\n") {
		fmt.Fprintf(w, "    %s\n", line)
	}
	fmt.Fprintf(w, "\n  Point `loa dev` at them: paste this into its shell (new values each time loa-fakes starts),\n"+
		"  then run `make run` there. SMS delivery reports go to %s.\n\n", loaBase)
	for _, kv := range env {
		fmt.Fprintf(w, "export %s=%s\n", kv[0], shellQuote(kv[1]))
	}
	fmt.Fprintf(w, `
  Inject a fault (see internal/fakes/fault for every field; fakes: fcm, esms, speedsms, webhook, smtp):
    # FCM answers 503 UNAVAILABLE to everything for 2 minutes: watch the breaker open
    curl -s -X POST -d '{"outage_for":"2m","retry_after":"5s"}' %[1]s/fcm/_fault
    # the eSMS gateway is down: SMS fails over to SpeedSMS
    curl -s -X POST -d '{"status":503}' %[1]s/esms/_fault
    # 200 ms of latency on every SpeedSMS call
    curl -s -X POST -d '{"latency":"200ms"}' %[1]s/speedsms/_fault
    # one device token is gone (FCM answers 404 UNREGISTERED for it)
    curl -s -X POST -d '{"recipients":{"demo-device-token-1":"UNREGISTERED"}}' %[1]s/fcm/_fault
    # back to normal, and what a fake received
    curl -s -X DELETE %[1]s/fcm/_fault
    curl -s %[1]s/fcm/_messages
  Ctrl-C stops them.

`, u.Control)
}

// randomHex returns n random bytes in hex. crypto/rand.Read does not
// fail on the platforms Go supports.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:,@%+=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
