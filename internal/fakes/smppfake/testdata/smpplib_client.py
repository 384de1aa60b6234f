"""An ESME built on Python smpplib (an independent SMPP 3.4 implementation),
for Loa's interoperability test: it binds as a transceiver to the SMSC at
HOST PORT, submits every message given as JSON on stdin ([[to, text], ...])
cut into parts by smpplib's own make_parts (UDH, GSM-7 or UCS-2), waits for
every submit_sm_resp and every delivery receipt, unbinds, and prints
{"ids": [...], "receipts": [{"id", "stat", "state", "source"}, ...]} on
stdout.

Usage: python smpplib_client.py HOST PORT SYSTEM_ID PASSWORD < messages.json
"""
import json
import sys
import time

import smpplib.client
import smpplib.consts
import smpplib.gsm

host, port, system_id, password = sys.argv[1:5]
messages = json.load(sys.stdin)
ids, receipts = [], []


def sent(pdu):
    ids.append(pdu.message_id.decode() if isinstance(pdu.message_id, bytes) else pdu.message_id)


def received(pdu):
    text = pdu.short_message.decode("latin-1")
    fields = dict(f.split(":", 1) for f in text.split(" ") if ":" in f)
    rid = pdu.receipted_message_id
    if isinstance(rid, bytes):
        rid = rid.decode()
    receipts.append({"id": rid, "text_id": fields.get("id"), "stat": fields.get("stat"),
                     "state": pdu.message_state, "source": pdu.source_addr.decode()})
    return smpplib.consts.SMPP_ESME_ROK


client = smpplib.client.Client(host, int(port), timeout=10, allow_unknown_opt_params=True)
client.set_message_sent_handler(sent)
client.set_message_received_handler(received)
client.connect()
client.bind_transceiver(system_id=system_id, password=password)
total = 0
for to, text in messages:
    parts, coding, esm_class = smpplib.gsm.make_parts(text)
    for part in parts:
        client.send_message(source_addr_ton=smpplib.consts.SMPP_TON_ALNUM, source_addr_npi=0, source_addr="PYLIB",
                            dest_addr_ton=smpplib.consts.SMPP_TON_INTL, dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
                            destination_addr=to, short_message=part, data_coding=coding, esm_class=esm_class,
                            registered_delivery=True)
        total += 1
deadline = time.time() + 30
while (len(ids) < total or len(receipts) < total) and time.time() < deadline:
    client.read_once()
client.unbind()
client.disconnect()
json.dump({"ids": ids, "receipts": receipts}, sys.stdout)
