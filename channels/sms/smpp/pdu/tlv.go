package pdu

import (
	"encoding/binary"
	"fmt"
)

// Tag is an optional parameter's tag (section 5.3.2).
type Tag uint16

// The tags Loa uses.
const (
	TagUserMessageReference  Tag = 0x0204
	TagSourcePort            Tag = 0x020A
	TagDestinationPort       Tag = 0x020B
	TagSarMsgRefNum          Tag = 0x020C
	TagSarTotalSegments      Tag = 0x020E
	TagSarSegmentSeqnum      Tag = 0x020F
	TagSCInterfaceVersion    Tag = 0x0210
	TagPayloadType           Tag = 0x0019
	TagReceiptedMessageID    Tag = 0x001E
	TagNetworkErrorCode      Tag = 0x0423
	TagMessagePayload        Tag = 0x0424
	TagDeliveryFailureReason Tag = 0x0425
	TagMessageState          Tag = 0x0427
)

// TLV is one optional parameter.
type TLV struct {
	Tag   Tag
	Value []byte
}

// TLVs is a body's optional parameters in the order they came.
type TLVs []TLV

// Get returns the value of the first TLV with tag.
func (ts TLVs) Get(tag Tag) ([]byte, bool) {
	for _, t := range ts {
		if t.Tag == tag {
			return t.Value, true
		}
	}
	return nil, false
}

// Uint returns the value of tag read as a big-endian integer of 1, 2 or 4
// octets.
func (ts TLVs) Uint(tag Tag) (uint32, bool) {
	v, ok := ts.Get(tag)
	if !ok {
		return 0, false
	}
	switch len(v) {
	case 1:
		return uint32(v[0]), true
	case 2:
		return uint32(binary.BigEndian.Uint16(v)), true
	case 4:
		return binary.BigEndian.Uint32(v), true
	}
	return 0, false
}

// String returns the value of tag as a C-octet string, without its
// terminator (receipted_message_id is one).
func (ts TLVs) String(tag Tag) (string, bool) {
	v, ok := ts.Get(tag)
	if !ok {
		return "", false
	}
	for i, c := range v {
		if c == 0 {
			return string(v[:i]), true
		}
	}
	return string(v), true
}

// U8 returns a one-octet TLV.
func U8(tag Tag, v uint8) TLV { return TLV{Tag: tag, Value: []byte{v}} }

// U16 returns a two-octet TLV.
func U16(tag Tag, v uint16) TLV { return TLV{Tag: tag, Value: binary.BigEndian.AppendUint16(nil, v)} }

// CString returns a TLV holding s and a NUL terminator.
func CString(tag Tag, s string) TLV { return TLV{Tag: tag, Value: append([]byte(s), 0)} }

func (ts TLVs) encode(e *encoder) error {
	for _, t := range ts {
		if len(t.Value) > 0xFFFF {
			return fmt.Errorf("TLV 0x%04X is %d octets, at most 65535", uint16(t.Tag), len(t.Value))
		}
		e.u16(uint16(t.Tag))
		e.u16(uint16(len(t.Value)))
		e.buf = append(e.buf, t.Value...)
	}
	return nil
}

// decodeTLVs reads TLVs to the end of the body.
func decodeTLVs(d *decoder) TLVs {
	var ts TLVs
	for d.err == nil && len(d.rest()) > 0 {
		tag := d.u16("TLV tag")
		n := d.u16("TLV length")
		v := d.bytes(fmt.Sprintf("TLV 0x%04X", tag), int(n))
		if d.err == nil {
			ts = append(ts, TLV{Tag: Tag(tag), Value: append([]byte(nil), v...)})
		}
	}
	return ts
}
