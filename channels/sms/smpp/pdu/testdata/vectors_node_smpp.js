// Prints the byte vectors of pdu_test.go that come from the npm package
// smpp 0.5.1: npm install smpp@0.5.1 && node vectors_node_smpp.js
const smpp = require('smpp');
function show(label, cmd, opts, seq, status) {
  const p = new smpp.PDU(cmd, opts);
  p.sequence_number = seq || 1;
  if (status) p.command_status = status;
  console.log(label, p.toBuffer().toString('hex'));
}
show('bind_transceiver', 'bind_transceiver', {system_id: 'loa', password: 'secret', system_type: '', interface_version: 0x34}, 1);
show('submit_sm_ucs2', 'submit_sm', {source_addr_ton: 5, source_addr_npi: 0, source_addr: 'LOA', dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: '84912345678', registered_delivery: 1, data_coding: 8, validity_period: '000000000500000R', short_message: Buffer.from('0054006800f4006e0067', 'hex')}, 3);
show('deliver_sm_receipt', 'deliver_sm', {source_addr_ton: 1, source_addr_npi: 1, source_addr: '84912345678', dest_addr_ton: 5, dest_addr_npi: 0, destination_addr: 'LOA', esm_class: 4, short_message: Buffer.from('id:7 sub:001 dlvrd:000 submit date:2611230824 done date:2611231024 stat:EXPIRED err:000 text:'), receipted_message_id: '7', message_state: 3}, 12);
show('submit_sm_resp', 'submit_sm_resp', {message_id: 'abc-1'}, 3);
show('data_sm', 'data_sm', {source_addr_ton: 1, source_addr_npi: 1, source_addr: '84912345678', dest_addr_ton: 0, dest_addr_npi: 0, destination_addr: '8088', esm_class: 0, registered_delivery: 0, data_coding: 0, message_payload: Buffer.from('hello')}, 4);
