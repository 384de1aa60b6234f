package otp

import (
	"fmt"
	"time"
)

// Purposes of an SMS code. A challenge records its purpose, and the caller
// of SMSCodes.Verify must check it.
const (
	PurposeRegister    = "register"     // citizen or organisation registration
	PurposeLogin       = "login"        // sign-in second factor (officials' SMS fallback)
	PurposeReset       = "reset"        // password reset
	PurposeVerifyPhone = "verify_phone" // confirming a changed phone number
	PurposeMFA         = "mfa"          // an official's second factor for a shared app of the province
)

// Purposes lists every purpose, for validation and tests.
func Purposes() []string {
	return []string{PurposeRegister, PurposeLogin, PurposeReset, PurposeVerifyPhone, PurposeMFA}
}

// smsTemplate returns the text for purpose: Vietnamese without diacritics,
// because many brandname routes only carry GSM-7, and short enough that with
// the longest code and validity it fits in one 160-character segment. The
// code comes first so that it shows in a lock-screen preview. Verbs: %s code,
// %s validity.
func smsTemplate(purpose string) (string, bool) {
	switch purpose {
	case PurposeRegister:
		return "%s la ma xac thuc dang ky tai khoan Loa cua ban. Ma co hieu luc %s. Khong chia se ma nay cho bat ky ai.", true
	case PurposeLogin:
		return "%s la ma dang nhap Loa cua ban. Ma co hieu luc %s. Khong chia se ma nay cho bat ky ai.", true
	case PurposeReset:
		return "%s la ma dat lai mat khau Loa cua ban. Ma co hieu luc %s. Khong chia se ma nay. Neu ban khong yeu cau, hay bo qua tin nhan nay.", true
	case PurposeMFA:
		return "%s la ma xac thuc cua ban cho ung dung dung chung cua tinh (qua Loa). Ma co hieu luc %s. Khong chia se ma nay cho bat ky ai.", true
	case PurposeVerifyPhone:
		return "%s la ma xac thuc so dien thoai cho tai khoan Loa cua ban. Ma co hieu luc %s. Khong chia se ma nay cho bat ky ai.", true
	}
	return "", false
}

func knownPurpose(purpose string) bool {
	_, ok := smsTemplate(purpose)
	return ok
}

// SMSText renders the SMS for purpose with code (6 digits) valid for ttl
// (whole minutes read "N phut", otherwise "N giay"). The result is ASCII, in
// the GSM-7 basic character set and at most 160 characters. Errors:
// ErrUnknownPurpose, or ErrInvalidInput for a malformed code or ttl under a
// second or over a day.
func SMSText(purpose, code string, ttl time.Duration) (string, error) {
	tmpl, ok := smsTemplate(purpose)
	if !ok {
		return "", fmt.Errorf("otp: sms text: %q: %w", purpose, ErrUnknownPurpose)
	}
	if len(code) != SMSCodeDigits || !allDigits(code) {
		return "", fmt.Errorf("otp: sms text: code: %w", ErrInvalidInput)
	}
	if ttl < time.Second || ttl > 24*time.Hour {
		return "", fmt.Errorf("otp: sms text: ttl %s: %w", ttl, ErrInvalidInput)
	}
	validity := fmt.Sprintf("%d giay", int64(ttl/time.Second))
	if ttl%time.Minute == 0 {
		validity = fmt.Sprintf("%d phut", int64(ttl/time.Minute))
	}
	return fmt.Sprintf(tmpl, code, validity), nil
}
