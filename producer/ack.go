package producer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// AckToken is the token a device proves with that it received a
// notification: an HMAC under key of the notification id and the device's
// registration token, 128 bits in URL-safe base64. The dispatcher puts it
// in the push it sends to that device (data "ack"); an app without a
// session acknowledges with it. Knowing a device token is not enough to
// forge one, so nobody can acknowledge for someone else's phone.
func AckToken(key []byte, notificationID, deviceToken string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(notificationID))
	m.Write([]byte{0})
	m.Write([]byte(deviceToken))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// ValidAckToken reports, in constant time, whether ack is the AckToken
// of the notification and device.
func ValidAckToken(key []byte, notificationID, deviceToken, ack string) bool {
	if len(key) == 0 {
		return false
	}
	return hmac.Equal([]byte(AckToken(key, notificationID, deviceToken)), []byte(ack))
}
