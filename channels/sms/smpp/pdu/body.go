package pdu

import "fmt"

// InterfaceVersion is the interface_version this package speaks: 3.4.
const InterfaceVersion = 0x34

// Bind is the body of bind_transmitter, bind_receiver and
// bind_transceiver (section 4.1).
type Bind struct {
	SystemID         string // at most 15 octets
	Password         string // at most 8
	SystemType       string // at most 12
	InterfaceVersion uint8  // InterfaceVersion
	AddrTON, AddrNPI uint8
	AddressRange     string // at most 40
}

func (b *Bind) encode(e *encoder) error {
	if err := e.cstring("system_id", b.SystemID, 16); err != nil {
		return err
	}
	if err := e.cstring("password", b.Password, 9); err != nil {
		return err
	}
	if err := e.cstring("system_type", b.SystemType, 13); err != nil {
		return err
	}
	e.u8(b.InterfaceVersion)
	e.u8(b.AddrTON)
	e.u8(b.AddrNPI)
	return e.cstring("address_range", b.AddressRange, 41)
}

func (b *Bind) decode(d *decoder) error {
	b.SystemID = d.cstring("system_id")
	b.Password = d.cstring("password")
	b.SystemType = d.cstring("system_type")
	b.InterfaceVersion = d.u8("interface_version")
	b.AddrTON = d.u8("addr_ton")
	b.AddrNPI = d.u8("addr_npi")
	b.AddressRange = d.cstring("address_range")
	return d.err
}

// BindResp is the body of the bind responses: the SMSC's system_id and,
// optionally, sc_interface_version.
type BindResp struct {
	SystemID string
	TLVs     TLVs
}

func (b *BindResp) encode(e *encoder) error {
	if err := e.cstring("system_id", b.SystemID, 16); err != nil {
		return err
	}
	return b.TLVs.encode(e)
}

func (b *BindResp) decode(d *decoder) error {
	b.SystemID = d.cstring("system_id")
	b.TLVs = decodeTLVs(d)
	return d.err
}

// ESM class bits (section 5.2.12) Loa reads and writes.
const (
	// ESMClassUDHI: short_message starts with a user data header.
	ESMClassUDHI uint8 = 0x40
	// ESMClassReceipt (message type bits 2–5 = 0001): a deliver_sm that
	// is an SMSC delivery receipt.
	ESMClassReceipt uint8 = 0x04
	// ESMClassTypeMask selects the message type bits.
	ESMClassTypeMask uint8 = 0x3C
)

// Data codings (section 5.2.19) Loa sends.
const (
	CodingDefault uint8 = 0x00 // SMSC default alphabet: GSM 03.38 here
	CodingLatin1  uint8 = 0x03
	CodingUCS2    uint8 = 0x08
)

// SM is the body of submit_sm (section 4.4.1) and deliver_sm (4.6.1),
// which share one layout.
type SM struct {
	ServiceType          string // at most 5 octets
	SourceAddrTON        uint8
	SourceAddrNPI        uint8
	SourceAddr           string // at most 20
	DestAddrTON          uint8
	DestAddrNPI          uint8
	DestinationAddr      string // at most 20
	ESMClass             uint8
	ProtocolID           uint8
	PriorityFlag         uint8
	ScheduleDeliveryTime string // "" or 16 octets (section 7.1)
	ValidityPeriod       string // "" or 16 octets
	RegisteredDelivery   uint8
	ReplaceIfPresentFlag uint8
	DataCoding           uint8
	SMDefaultMsgID       uint8
	ShortMessage         []byte // at most 254 octets; longer text goes in message_payload
	TLVs                 TLVs
}

func (s *SM) encode(e *encoder) error {
	if err := e.cstring("service_type", s.ServiceType, 6); err != nil {
		return err
	}
	e.u8(s.SourceAddrTON)
	e.u8(s.SourceAddrNPI)
	if err := e.cstring("source_addr", s.SourceAddr, 21); err != nil {
		return err
	}
	e.u8(s.DestAddrTON)
	e.u8(s.DestAddrNPI)
	if err := e.cstring("destination_addr", s.DestinationAddr, 21); err != nil {
		return err
	}
	e.u8(s.ESMClass)
	e.u8(s.ProtocolID)
	e.u8(s.PriorityFlag)
	if err := timeField(e, "schedule_delivery_time", s.ScheduleDeliveryTime); err != nil {
		return err
	}
	if err := timeField(e, "validity_period", s.ValidityPeriod); err != nil {
		return err
	}
	e.u8(s.RegisteredDelivery)
	e.u8(s.ReplaceIfPresentFlag)
	e.u8(s.DataCoding)
	e.u8(s.SMDefaultMsgID)
	if len(s.ShortMessage) > 254 {
		return fmt.Errorf("short_message is %d octets, at most 254 (use message_payload)", len(s.ShortMessage))
	}
	e.u8(uint8(len(s.ShortMessage)))
	e.buf = append(e.buf, s.ShortMessage...)
	return s.TLVs.encode(e)
}

func timeField(e *encoder, field, v string) error {
	if v != "" && len(v) != 16 {
		return fmt.Errorf("%s %q must be empty or 16 octets", field, v)
	}
	return e.cstring(field, v, 17)
}

func (s *SM) decode(d *decoder) error {
	s.ServiceType = d.cstring("service_type")
	s.SourceAddrTON = d.u8("source_addr_ton")
	s.SourceAddrNPI = d.u8("source_addr_npi")
	s.SourceAddr = d.cstring("source_addr")
	s.DestAddrTON = d.u8("dest_addr_ton")
	s.DestAddrNPI = d.u8("dest_addr_npi")
	s.DestinationAddr = d.cstring("destination_addr")
	s.ESMClass = d.u8("esm_class")
	s.ProtocolID = d.u8("protocol_id")
	s.PriorityFlag = d.u8("priority_flag")
	s.ScheduleDeliveryTime = d.cstring("schedule_delivery_time")
	s.ValidityPeriod = d.cstring("validity_period")
	s.RegisteredDelivery = d.u8("registered_delivery")
	s.ReplaceIfPresentFlag = d.u8("replace_if_present_flag")
	s.DataCoding = d.u8("data_coding")
	s.SMDefaultMsgID = d.u8("sm_default_msg_id")
	n := d.u8("sm_length")
	if sm := d.bytes("short_message", int(n)); sm != nil {
		s.ShortMessage = append([]byte(nil), sm...)
	}
	s.TLVs = decodeTLVs(d)
	return d.err
}

// Text returns the message's user data: short_message, or the
// message_payload TLV when short_message is empty.
func (s *SM) Text() []byte {
	if len(s.ShortMessage) == 0 {
		if v, ok := s.TLVs.Get(TagMessagePayload); ok {
			return v
		}
	}
	return s.ShortMessage
}

// IsReceipt reports whether a deliver_sm carries an SMSC delivery receipt
// rather than a mobile-originated message.
func (s *SM) IsReceipt() bool { return s.ESMClass&ESMClassTypeMask == ESMClassReceipt }

// DataSMBody is the body of data_sm (section 4.7.1).
type DataSMBody struct {
	ServiceType        string
	SourceAddrTON      uint8
	SourceAddrNPI      uint8
	SourceAddr         string // at most 64
	DestAddrTON        uint8
	DestAddrNPI        uint8
	DestinationAddr    string // at most 64
	ESMClass           uint8
	RegisteredDelivery uint8
	DataCoding         uint8
	TLVs               TLVs
}

func (s *DataSMBody) encode(e *encoder) error {
	if err := e.cstring("service_type", s.ServiceType, 6); err != nil {
		return err
	}
	e.u8(s.SourceAddrTON)
	e.u8(s.SourceAddrNPI)
	if err := e.cstring("source_addr", s.SourceAddr, 65); err != nil {
		return err
	}
	e.u8(s.DestAddrTON)
	e.u8(s.DestAddrNPI)
	if err := e.cstring("destination_addr", s.DestinationAddr, 65); err != nil {
		return err
	}
	e.u8(s.ESMClass)
	e.u8(s.RegisteredDelivery)
	e.u8(s.DataCoding)
	return s.TLVs.encode(e)
}

func (s *DataSMBody) decode(d *decoder) error {
	s.ServiceType = d.cstring("service_type")
	s.SourceAddrTON = d.u8("source_addr_ton")
	s.SourceAddrNPI = d.u8("source_addr_npi")
	s.SourceAddr = d.cstring("source_addr")
	s.DestAddrTON = d.u8("dest_addr_ton")
	s.DestAddrNPI = d.u8("dest_addr_npi")
	s.DestinationAddr = d.cstring("destination_addr")
	s.ESMClass = d.u8("esm_class")
	s.RegisteredDelivery = d.u8("registered_delivery")
	s.DataCoding = d.u8("data_coding")
	s.TLVs = decodeTLVs(d)
	return d.err
}

// MessageIDResp is the body of submit_sm_resp, deliver_sm_resp and
// data_sm_resp: the message id (empty in deliver_sm_resp) and, for
// data_sm_resp, TLVs.
type MessageIDResp struct {
	MessageID string // at most 64 octets
	TLVs      TLVs
}

func (m *MessageIDResp) encode(e *encoder) error {
	if err := e.cstring("message_id", m.MessageID, 65); err != nil {
		return err
	}
	return m.TLVs.encode(e)
}

func (m *MessageIDResp) decode(d *decoder) error {
	if len(d.rest()) == 0 {
		return nil // some peers send deliver_sm_resp without the empty message_id
	}
	m.MessageID = d.cstring("message_id")
	m.TLVs = decodeTLVs(d)
	return d.err
}

// OutbindBody is the body of outbind (section 4.1.7).
type OutbindBody struct {
	SystemID, Password string
}

func (o *OutbindBody) encode(e *encoder) error {
	if err := e.cstring("system_id", o.SystemID, 16); err != nil {
		return err
	}
	return e.cstring("password", o.Password, 9)
}

func (o *OutbindBody) decode(d *decoder) error {
	o.SystemID = d.cstring("system_id")
	o.Password = d.cstring("password")
	return d.err
}

// AlertNotificationBody is the body of alert_notification (4.12.1).
type AlertNotificationBody struct {
	SourceAddrTON, SourceAddrNPI uint8
	SourceAddr                   string
	ESMEAddrTON, ESMEAddrNPI     uint8
	ESMEAddr                     string
	TLVs                         TLVs
}

func (a *AlertNotificationBody) encode(e *encoder) error {
	e.u8(a.SourceAddrTON)
	e.u8(a.SourceAddrNPI)
	if err := e.cstring("source_addr", a.SourceAddr, 65); err != nil {
		return err
	}
	e.u8(a.ESMEAddrTON)
	e.u8(a.ESMEAddrNPI)
	if err := e.cstring("esme_addr", a.ESMEAddr, 65); err != nil {
		return err
	}
	return a.TLVs.encode(e)
}

func (a *AlertNotificationBody) decode(d *decoder) error {
	a.SourceAddrTON = d.u8("source_addr_ton")
	a.SourceAddrNPI = d.u8("source_addr_npi")
	a.SourceAddr = d.cstring("source_addr")
	a.ESMEAddrTON = d.u8("esme_addr_ton")
	a.ESMEAddrNPI = d.u8("esme_addr_npi")
	a.ESMEAddr = d.cstring("esme_addr")
	a.TLVs = decodeTLVs(d)
	return d.err
}
