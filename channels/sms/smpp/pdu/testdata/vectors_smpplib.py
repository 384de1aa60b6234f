# Prints the byte vectors of pdu_test.go that come from Python smpplib 2.2.4
# (PyPI): python3 -m venv v && v/bin/pip install smpplib==2.2.4 && v/bin/python vectors_smpplib.py
import smpplib.smpp as s, binascii, struct
class C:
    seq=0
    def next_sequence(self):
        self.seq+=1; return self.seq
    sequence=property(lambda self: self.seq)
cl=C()
def show(label, name, seq=None, status=None, **kw):
    p=s.make_pdu(name, client=cl, **kw)
    if seq is not None: p.sequence=seq
    if status is not None: p.status=status
    print(label, binascii.hexlify(p.generate()).decode())
show('bind_transceiver','bind_transceiver', system_id='loa', password='secret', system_type='', interface_version=0x34, addr_ton=0, addr_npi=0, address_range='')
show('bind_transmitter','bind_transmitter', system_id='loa', password='secret', system_type='VMA', interface_version=0x34, addr_ton=0, addr_npi=0, address_range='')
show('bind_receiver','bind_receiver', system_id='loa', password='secret', system_type='', interface_version=0x34, addr_ton=0, addr_npi=0, address_range='')
show('bind_transceiver_resp','bind_transceiver_resp', seq=1, system_id='SMSC')
show('enquire_link','enquire_link', seq=7)
show('enquire_link_resp','enquire_link_resp', seq=7)
show('unbind','unbind', seq=9)
show('unbind_resp','unbind_resp', seq=9)
show('generic_nack','generic_nack', seq=5, status=3)
show('submit_sm_gsm','submit_sm', seq=2, service_type='', source_addr_ton=5, source_addr_npi=0, source_addr='LOA', dest_addr_ton=1, dest_addr_npi=1, destination_addr='84912345678', esm_class=0, protocol_id=0, priority_flag=1, schedule_delivery_time='', validity_period='000000000500000R', registered_delivery=1, replace_if_present_flag=0, data_coding=0, sm_default_msg_id=0, short_message=b'Ma xac thuc: 123456')
text='Thông báo: lịch cắt điện ngày mai'.encode('utf-16-be')
udh=bytes([5,0,3,0x2a,2,1])
show('submit_sm_ucs2_udh','submit_sm', seq=3, service_type='', source_addr_ton=5, source_addr_npi=0, source_addr='LOA', dest_addr_ton=1, dest_addr_npi=1, destination_addr='84912345678', esm_class=0x40, protocol_id=0, priority_flag=0, schedule_delivery_time='', validity_period='', registered_delivery=1, replace_if_present_flag=0, data_coding=8, sm_default_msg_id=0, short_message=udh+text)
show('submit_sm_sar','submit_sm', seq=4, service_type='', source_addr_ton=1, source_addr_npi=1, source_addr='84900000000', dest_addr_ton=1, dest_addr_npi=1, destination_addr='84912345678', esm_class=0, protocol_id=0, priority_flag=0, schedule_delivery_time='', validity_period='', registered_delivery=1, replace_if_present_flag=0, data_coding=0, sm_default_msg_id=0, short_message=b'part two', sar_msg_ref_num=0x1234, sar_total_segments=2, sar_segment_seqnum=2)
show('submit_sm_resp','submit_sm_resp', seq=2, message_id='5f3a9c01')
show('submit_sm_resp_throttled','submit_sm_resp', seq=2, status=0x58, message_id='')
rc='id:5f3a9c01 sub:001 dlvrd:001 submit date:2611230824 done date:2611230825 stat:DELIVRD err:000 text:Ma xac thuc: 1234'
show('deliver_sm_receipt','deliver_sm', seq=77, service_type='', source_addr_ton=1, source_addr_npi=1, source_addr='84912345678', dest_addr_ton=5, dest_addr_npi=0, destination_addr='LOA', esm_class=4, protocol_id=0, priority_flag=0, schedule_delivery_time='', validity_period='', registered_delivery=0, replace_if_present_flag=0, data_coding=0, sm_default_msg_id=0, short_message=rc.encode(), receipted_message_id='5f3a9c01', message_state=2)
show('deliver_sm_mo','deliver_sm', seq=78, service_type='', source_addr_ton=1, source_addr_npi=1, source_addr='84912345678', dest_addr_ton=0, dest_addr_npi=0, destination_addr='8088', esm_class=0, protocol_id=0, priority_flag=0, schedule_delivery_time='', validity_period='', registered_delivery=0, replace_if_present_flag=0, data_coding=8, sm_default_msg_id=0, short_message='Có'.encode('utf-16-be'))
show('deliver_sm_resp','deliver_sm_resp', seq=77, message_id='')
