// Package otp provides Loa's one-time codes: SMS codes for citizens, TOTP
// for officials, recovery codes, and the encryption of TOTP secrets at rest.
//
// # SMS codes
//
// SMSCodes issues 6-digit codes and verifies them. Everything about a code
// is short-lived, so it lives in Redis only, and each operation is a single
// Lua script, which makes the limits race-free across any number of Loa
// instances: per phone a cooldown and a sliding window of sends, per client
// address (IPv6: per /64) a sliding window, at most MaxAttempts wrong codes
// per challenge, and single use. A resend voids the previous challenge of
// the same phone and purpose. Redis holds only HMAC-SHA256(secret,
// challengeID|code); the plain code is returned once by Issue, for the SMS,
// and this package never stores or logs it. Render the message with
// SMSText.
//
// Constant-time comparison matters where a comparison can leak something
// about a secret an attacker is trying to learn. The SMS code is compared
// as its HMAC, inside Redis, with ordinary string equality: both sides are
// HMACs under a server secret the attacker does not have, so timing could
// at most reveal a prefix of an HMAC, which says nothing about the code.
// Comparisons done in Go (TOTP codes, recovery-code hashes) use
// crypto/subtle.
//
// Redis keys, under SMSConfig.KeyPrefix (default "otp:{sms}:"):
//
//	ch:<challenge id>        hash: mac, phone, purpose, exp, attempts, state
//	active:<phone>:<purpose> string: the current challenge id
//	sent:<phone>             sorted set: sends in the window, scored by ms
//	ip:<address or /64>      sorted set: sends in the window, scored by ms
//
// A script touches several of them, so on Redis Cluster the prefix must
// carry a hash tag, as the default does; NewSMSCodes refuses a prefix
// without one on a sharded client.
//
// # TOTP
//
// GenerateTOTPKey makes an enrolment key (secret, otpauth:// URI, QR PNG);
// MatchTOTP finds the time step a code belongs to; TOTPVerifier adds replay
// refusal (the last accepted step, kept durably by the consumer's
// FactorStore, RFC 6238 §5.2) and lockout after repeated failures (kept in
// Redis). Secrets are stored sealed with a Sealer (AES-256-GCM), whose key
// comes from LOA_SECRET_KEY_FILE through LoadSealerKeyFile. Recovery codes
// (NewRecoveryCodes, MatchRecoveryCode) are stored as keyed hashes.
//
// # Time
//
// Every time decision uses an injected clock (SMSConfig.Now,
// TOTPVerifier.Now), passed to the Redis scripts as an argument and
// compared there with times stored in the keys. Redis TTLs only collect
// garbage. Tests therefore move a fake clock instead of sleeping, and behave
// the same on miniredis and on a real Redis.
package otp
