"""Independent Open311 GeoReport v2 clients from PyPI against Loa.

usage: open311_clients.py ENDPOINT API_KEY PHOTO

- three 0.8.0 (Code for America) posts a request with a photo (multipart
  "media") and reads it back, its token and the list, in JSON. three was
  written for Python 2; its one Python 2 name, itertools.ifilter, is
  provided before it is imported. Its code is not changed.
- georeport 0.3.1 reads the service list, a service definition, the
  requests and one request, in JSON and in XML (it does not post).
"""
import itertools
import sys

itertools.ifilter = filter  # three's only Python 2 name

import georeport  # noqa: E402
import three  # noqa: E402

endpoint, key, photo = sys.argv[1], sys.argv[2], sys.argv[3]


def check(cond, what):
    if not cond:
        print("FAILED:", what)
        sys.exit(1)
    print("ok:", what)


t = three.Three(endpoint, api_key=key, format="json")
services = t.services()
check(any(s["service_code"] == "moi-truong" for s in services), "three: services list")
with open(photo, "rb") as media:
    posted = t.post("moi-truong", address="48 Bạch Đằng", name="Le Cuong", phone="0912000111",
                    description="Cống thoát nước bị tắc", lat="15.8768", long="108.3291", media=media)
check(t.post_response.status_code == 200, "three: post answered %d %s" % (t.post_response.status_code, posted))
rid = posted[0]["service_request_id"]
check(rid, "three: post returned a service_request_id")
got = t.request(rid)
check(got[0]["service_request_id"] == rid and got[0]["status"] == "open", "three: read the request back")
check("Le Cuong" not in str(got) and "0912000111" not in str(got), "three: no personal data in the public answer")
check(t.token(rid)[0]["service_request_id"] == rid, "three: token")
check(any(r["service_request_id"] == rid for r in t.requests("moi-truong")), "three: requests of the service")

for fmt in ("json", "xml"):
    g = georeport.GeoReport(endpoint, output_format=fmt)
    svc = g.get_service_list()
    if isinstance(svc, dict):
        svc = [svc]
    check(any(s["service_code"] == "moi-truong" for s in svc), "georeport %s: service list" % fmt)
    d = g.get_service_definition("moi-truong")
    check(d["service_code"] == "moi-truong", "georeport %s: service definition" % fmt)
    reqs = g.get_service_requests(service_code="moi-truong")
    if isinstance(reqs, dict):
        reqs = [reqs]
    check(any(r["service_request_id"] == rid for r in reqs), "georeport %s: requests" % fmt)
    one = g.get_service_request(rid)
    check(one["service_request_id"] == rid and one["status"] == "open", "georeport %s: one request" % fmt)
    check(g.get_service_requests(service_request_id=rid, status="open") is not None, "georeport %s: filtered requests" % fmt)

print("all Open311 client checks passed")
