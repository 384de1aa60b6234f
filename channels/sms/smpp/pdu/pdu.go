package pdu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
)

// CommandID is an SMPP command_id.
type CommandID uint32

// The command ids of SMPP 3.4 (section 5.1.2.1). A response is its
// request's id with the top bit set.
const (
	GenericNack         CommandID = 0x80000000
	BindReceiver        CommandID = 0x00000001
	BindReceiverResp    CommandID = 0x80000001
	BindTransmitter     CommandID = 0x00000002
	BindTransmitterResp CommandID = 0x80000002
	QuerySM             CommandID = 0x00000003
	QuerySMResp         CommandID = 0x80000003
	SubmitSM            CommandID = 0x00000004
	SubmitSMResp        CommandID = 0x80000004
	DeliverSM           CommandID = 0x00000005
	DeliverSMResp       CommandID = 0x80000005
	Unbind              CommandID = 0x00000006
	UnbindResp          CommandID = 0x80000006
	ReplaceSM           CommandID = 0x00000007
	ReplaceSMResp       CommandID = 0x80000007
	CancelSM            CommandID = 0x00000008
	CancelSMResp        CommandID = 0x80000008
	BindTransceiver     CommandID = 0x00000009
	BindTransceiverResp CommandID = 0x80000009
	Outbind             CommandID = 0x0000000B
	EnquireLink         CommandID = 0x00000015
	EnquireLinkResp     CommandID = 0x80000015
	SubmitMulti         CommandID = 0x00000021
	SubmitMultiResp     CommandID = 0x80000021
	AlertNotification   CommandID = 0x00000102
	DataSM              CommandID = 0x00000103
	DataSMResp          CommandID = 0x80000103
)

var commandNames = map[CommandID]string{
	GenericNack: "generic_nack", BindReceiver: "bind_receiver", BindReceiverResp: "bind_receiver_resp",
	BindTransmitter: "bind_transmitter", BindTransmitterResp: "bind_transmitter_resp",
	QuerySM: "query_sm", QuerySMResp: "query_sm_resp", SubmitSM: "submit_sm", SubmitSMResp: "submit_sm_resp",
	DeliverSM: "deliver_sm", DeliverSMResp: "deliver_sm_resp", Unbind: "unbind", UnbindResp: "unbind_resp",
	ReplaceSM: "replace_sm", ReplaceSMResp: "replace_sm_resp", CancelSM: "cancel_sm", CancelSMResp: "cancel_sm_resp",
	BindTransceiver: "bind_transceiver", BindTransceiverResp: "bind_transceiver_resp", Outbind: "outbind",
	EnquireLink: "enquire_link", EnquireLinkResp: "enquire_link_resp", SubmitMulti: "submit_multi",
	SubmitMultiResp: "submit_multi_resp", AlertNotification: "alert_notification", DataSM: "data_sm", DataSMResp: "data_sm_resp",
}

// String returns the command's name in the specification ("submit_sm").
func (c CommandID) String() string {
	if n, ok := commandNames[c]; ok {
		return n
	}
	return fmt.Sprintf("command_id(0x%08X)", uint32(c))
}

// IsResponse reports whether c is a response (generic_nack included).
func (c CommandID) IsResponse() bool { return c&0x80000000 != 0 }

// Response returns the id of c's response.
func (c CommandID) Response() CommandID { return c | 0x80000000 }

// HeaderLen is the length of the PDU header.
const HeaderLen = 16

// MaxLen is the largest command_length ReadFrom accepts by default. A
// submit_sm with every field at its maximum and a 254-octet message is
// well under 1 KiB; data_sm's message_payload may be up to 64 KiB.
const MaxLen = 70 * 1024

// PDU is one SMPP protocol data unit. The zero value is not a valid PDU:
// ID must be set, and Body must be the type the command takes (see Body)
// or nil for the commands without a body.
type PDU struct {
	ID       CommandID
	Status   Status
	Sequence uint32
	// Body is *Bind (bind_*), *BindResp (bind_*_resp), *SM (submit_sm,
	// deliver_sm), *DataSM (data_sm), *MessageIDResp (submit_sm_resp,
	// deliver_sm_resp, data_sm_resp), *Outbind, *AlertNotification, nil
	// for unbind, unbind_resp, enquire_link, enquire_link_resp and
	// generic_nack, and *Raw for any other command.
	Body Body
}

// Body is the part of a PDU after its header.
type Body interface {
	encode(e *encoder) error
	decode(d *decoder) error
}

// Raw is the body of a command this package does not decode.
type Raw []byte

func (r *Raw) encode(e *encoder) error { e.buf = append(e.buf, *r...); return nil }
func (r *Raw) decode(d *decoder) error {
	*r = append(Raw(nil), d.rest()...)
	d.off = len(d.b)
	return nil
}

// newBody returns an empty body of the type id takes, or nil for a
// command without one.
func newBody(id CommandID) Body {
	switch id {
	case BindReceiver, BindTransmitter, BindTransceiver:
		return &Bind{}
	case BindReceiverResp, BindTransmitterResp, BindTransceiverResp:
		return &BindResp{}
	case SubmitSM, DeliverSM:
		return &SM{}
	case DataSM:
		return &DataSMBody{}
	case SubmitSMResp, DeliverSMResp, DataSMResp:
		return &MessageIDResp{}
	case Outbind:
		return &OutbindBody{}
	case AlertNotification:
		return &AlertNotificationBody{}
	case Unbind, UnbindResp, EnquireLink, EnquireLinkResp, GenericNack:
		return nil
	}
	return &Raw{}
}

// Errors of decoding.
var (
	// ErrTooLong: a frame's command_length is over the reader's limit.
	ErrTooLong = errors.New("pdu: command_length over the limit")
	// ErrMalformed: the bytes are not a well-formed PDU.
	ErrMalformed = errors.New("pdu: malformed")
)

// Marshal encodes p. It returns an error when a field is over the length
// the specification allows or Body is not the type p.ID takes.
func Marshal(p *PDU) ([]byte, error) { return AppendMarshal(nil, p) }

// AppendMarshal appends the encoding of p to buf.
func AppendMarshal(buf []byte, p *PDU) ([]byte, error) {
	start := len(buf)
	e := &encoder{buf: append(buf, make([]byte, HeaderLen)...)}
	if p.Body != nil {
		if !fits(p.ID, p.Body) {
			return buf, fmt.Errorf("pdu: %s cannot carry a %T body", p.ID, p.Body)
		}
		if err := p.Body.encode(e); err != nil {
			return buf, fmt.Errorf("pdu: encode %s: %w", p.ID, err)
		}
	}
	h := e.buf[start:]
	binary.BigEndian.PutUint32(h[0:], uint32(len(h)))
	binary.BigEndian.PutUint32(h[4:], uint32(p.ID))
	binary.BigEndian.PutUint32(h[8:], uint32(p.Status))
	binary.BigEndian.PutUint32(h[12:], p.Sequence)
	return e.buf, nil
}

// fits reports whether b is the body type id takes; Raw fits any command
// that has a body.
func fits(id CommandID, b Body) bool {
	want := newBody(id)
	if want == nil {
		return false
	}
	if _, ok := b.(*Raw); ok {
		return true
	}
	return reflect.TypeOf(want) == reflect.TypeOf(b)
}

// Unmarshal decodes one whole PDU: b must be exactly command_length bytes.
//
// A response with a non-zero command_status may come without a body (the
// specification says an SMSC need not send one): its Body is then nil.
// Bytes after the mandatory fields that do not form TLVs, and a body
// shorter than its mandatory fields, are ErrMalformed.
func Unmarshal(b []byte) (*PDU, error) {
	if len(b) < HeaderLen {
		return nil, fmt.Errorf("%w: %d bytes is shorter than a header", ErrMalformed, len(b))
	}
	n := binary.BigEndian.Uint32(b[0:])
	if int64(n) != int64(len(b)) {
		return nil, fmt.Errorf("%w: command_length %d for %d bytes", ErrMalformed, n, len(b))
	}
	p := &PDU{
		ID:       CommandID(binary.BigEndian.Uint32(b[4:])),
		Status:   Status(binary.BigEndian.Uint32(b[8:])),
		Sequence: binary.BigEndian.Uint32(b[12:]),
	}
	body := b[HeaderLen:]
	p.Body = newBody(p.ID)
	if p.Body == nil {
		if len(body) != 0 {
			return nil, fmt.Errorf("%w: %s with a %d-byte body", ErrMalformed, p.ID, len(body))
		}
		return p, nil
	}
	if len(body) == 0 && p.ID.IsResponse() && p.Status != OK {
		p.Body = nil
		return p, nil
	}
	d := &decoder{b: body}
	if err := p.Body.decode(d); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, p.ID, err)
	}
	if len(d.rest()) != 0 {
		return nil, fmt.Errorf("%w: %s: %d bytes after the body", ErrMalformed, p.ID, len(d.rest()))
	}
	return p, nil
}

// ReadFrom reads one PDU from r. max bounds command_length (MaxLen when
// max ≤ 0): a longer frame is ErrTooLong and nothing more is read, since
// the stream cannot be trusted after it. io.EOF is returned only when r
// ends before the first byte of a PDU; a PDU cut short is
// io.ErrUnexpectedEOF. A frame that reads whole but does not decode is
// returned with its header fields set in p alongside the error, so the
// caller can answer it with generic_nack.
func ReadFrom(r io.Reader, max int) (p *PDU, err error) {
	if max <= 0 {
		max = MaxLen
	}
	var h [HeaderLen]byte
	if _, err := io.ReadFull(r, h[:4]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:4])
	switch {
	case n < HeaderLen:
		return nil, fmt.Errorf("%w: command_length %d is shorter than a header", ErrMalformed, n)
	case int64(n) > int64(max):
		return nil, fmt.Errorf("%w: %d > %d", ErrTooLong, n, max)
	}
	b := make([]byte, n)
	copy(b, h[:4])
	if _, err := io.ReadFull(r, b[4:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	p, err = Unmarshal(b)
	if err != nil {
		return &PDU{ID: CommandID(binary.BigEndian.Uint32(b[4:])), Status: Status(binary.BigEndian.Uint32(b[8:])),
			Sequence: binary.BigEndian.Uint32(b[12:])}, err
	}
	return p, nil
}

// encoder appends fields to a buffer.
type encoder struct{ buf []byte }

func (e *encoder) u8(v uint8)   { e.buf = append(e.buf, v) }
func (e *encoder) u16(v uint16) { e.buf = binary.BigEndian.AppendUint16(e.buf, v) }

// cstring writes s and its NUL terminator; max counts the terminator, as
// the specification's field sizes do.
func (e *encoder) cstring(field, s string, max int) error {
	if len(s)+1 > max {
		return fmt.Errorf("%s is %d octets, at most %d", field, len(s), max-1)
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return fmt.Errorf("%s holds a NUL octet", field)
		}
	}
	e.buf = append(e.buf, s...)
	e.buf = append(e.buf, 0)
	return nil
}

// decoder reads fields from a body.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) rest() []byte { return d.b[d.off:] }

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *decoder) u8(field string) uint8 {
	if d.err != nil {
		return 0
	}
	if d.off+1 > len(d.b) {
		d.fail("%s: body ends", field)
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

func (d *decoder) u16(field string) uint16 {
	if d.err != nil {
		return 0
	}
	if d.off+2 > len(d.b) {
		d.fail("%s: body ends", field)
		return 0
	}
	v := binary.BigEndian.Uint16(d.b[d.off:])
	d.off += 2
	return v
}

func (d *decoder) bytes(field string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || d.off+n > len(d.b) {
		d.fail("%s: %d octets but %d left", field, n, len(d.b)-d.off)
		return nil
	}
	v := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return v
}

// cstring reads a NUL-terminated string. Peers exceed the
// specification's sizes often enough that only the body's end bounds it.
func (d *decoder) cstring(field string) string {
	if d.err != nil {
		return ""
	}
	for i := d.off; i < len(d.b); i++ {
		if d.b[i] == 0 {
			s := string(d.b[d.off:i])
			d.off = i + 1
			return s
		}
	}
	d.fail("%s: no NUL terminator", field)
	return ""
}
