// An SMSC built on the npm package smpp (an independent SMPP 3.4
// implementation), for Loa's interoperability test: it binds one account,
// answers submit_sm with a message id, reassembles concatenated messages
// (UDH or SAR) with the package's own decoding, sends a DELIVRD receipt
// for each part, and prints one JSON line per event on stdout:
//   {"event":"listening","port":N}
//   {"event":"bound","system_id":…}
//   {"event":"message","to":…,"from":…,"source_ton":…,"source_npi":…,"data_coding":…,"text":…,"parts":N,"ids":[…]}
//   {"event":"receipt_acked","id":…,"status":N}
// Usage: NODE_PATH=<node_modules> node node_smsc.js SYSTEM_ID PASSWORD
const smpp = require('smpp');
const [systemID, password] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
let next = 0x7a000000;
const partials = new Map();

function stamp(d) {
  const p = (n) => String(n).padStart(2, '0');
  return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) + p(d.getUTCHours()) + p(d.getUTCMinutes());
}

const server = smpp.createServer((session) => {
  session.on('error', () => {});
  session.on('bind_transceiver', (pdu) => {
    if (pdu.system_id !== systemID || pdu.password !== password) {
      session.send(pdu.response({command_status: smpp.ESME_RBINDFAIL}));
      session.close();
      return;
    }
    session.send(pdu.response({system_id: 'node-smsc'}));
    out({event: 'bound', system_id: pdu.system_id});
  });
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => { session.send(pdu.response()); session.close(); });
  session.on('submit_sm', (pdu) => {
    const id = (next++).toString(16);
    session.send(pdu.response({message_id: id}));
    const sm = pdu.short_message || {};
    let ref = null, total = 1, seq = 1;
    for (const h of sm.udh || []) {
      if (h[0] === 0x00) { ref = h[2]; total = h[3]; seq = h[4]; }
      if (h[0] === 0x08) { ref = h.readUInt16BE(2); total = h[4]; seq = h[5]; }
    }
    if (pdu.sar_total_segments) { ref = pdu.sar_msg_ref_num; total = pdu.sar_total_segments; seq = pdu.sar_segment_seqnum; }
    const text = typeof sm.message === 'string' ? sm.message : Buffer.from(sm.message || []).toString('latin1');
    const key = pdu.destination_addr + '/' + ref;
    const p = partials.get(key) || {texts: [], ids: [], got: 0};
    if (p.texts[seq - 1] === undefined) p.got++;
    p.texts[seq - 1] = text; p.ids[seq - 1] = id;
    partials.set(key, p);
    if (p.got === total) {
      partials.delete(key);
      out({event: 'message', to: pdu.destination_addr, from: pdu.source_addr, source_ton: pdu.source_addr_ton,
        source_npi: pdu.source_addr_npi, dest_ton: pdu.dest_addr_ton, dest_npi: pdu.dest_addr_npi,
        data_coding: pdu.data_coding, registered_delivery: pdu.registered_delivery,
        text: p.texts.join(''), parts: total, ids: p.ids});
    }
    if (pdu.registered_delivery & 1) {
      const now = stamp(new Date());
      session.deliver_sm({
        source_addr_ton: pdu.dest_addr_ton, source_addr_npi: pdu.dest_addr_npi, source_addr: pdu.destination_addr,
        dest_addr_ton: pdu.source_addr_ton, dest_addr_npi: pdu.source_addr_npi, destination_addr: pdu.source_addr,
        esm_class: smpp.ESM_CLASS.MC_DELIVERY_RECEIPT,
        short_message: `id:${id} sub:001 dlvrd:001 submit date:${now} done date:${now} stat:DELIVRD err:000 text:`,
        receipted_message_id: id, message_state: smpp.MESSAGE_STATE.DELIVERED,
      }, (resp) => out({event: 'receipt_acked', id, status: resp.command_status}));
    }
  });
});
server.listen(0, '127.0.0.1', () => out({event: 'listening', port: server.address().port}));
process.stdin.on('end', () => process.exit(0)); // the test closes stdin to stop it
process.stdin.resume();
