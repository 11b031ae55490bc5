import httpx, pytest
from tests.test_feedback import site, world, Site, SECRET  # noqa
from tests.test_hooks import TOKEN

def test_fuzz(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    tok = site.token(site.world.customers[0])
    c = site.client
    hdr = {"Authorization": f"Bearer {TOKEN}"}
    reqs = [
        ("GET", f"/feedback/{tok}?score=%C2%B2", {}, None),
        ("GET", f"/feedback/{tok}?score=%D9%A3", {}, None),
        ("GET", f"/feedback/{tok}?score=" + "9"*5000, {}, None),
        ("GET", f"/feedback/{tok}?score=%FF", {}, None),
        ("GET", f"/feedback/{tok}?score=+7", {}, None),
        ("GET", f"/feedback/{tok}?score=7&score=8", {}, None),
        ("GET", f"/feedback/{tok}?score=%00", {}, None),
        ("GET", f"/feedback/%C2%B2?score=1", {}, None),
        ("GET", f"/feedback/%FF%FE?score=1", {}, None),
        ("GET", f"/feedback/" + "A"*100000 + "?score=1", {}, None),
        ("POST", f"/feedback/{tok}/comment", {"content-type": "application/x-www-form-urlencoded"}, b"score=%C2%B2&comment=x"),
        ("POST", f"/feedback/{tok}/comment", {"content-type": "application/x-www-form-urlencoded"}, b"score=" + b"9"*5000),
        ("POST", f"/feedback/{tok}/comment", {"content-type": "application/x-www-form-urlencoded"}, b"\xff\xfe=\xff"),
        ("POST", f"/feedback/{tok}/comment", {"content-type": "application/x-www-form-urlencoded"}, b"score=5&comment=%00%00"),
        ("POST", f"/feedback/{tok}/comment", {"content-type": "application/x-www-form-urlencoded; charset=latin-1"}, b"score=5"),
        ("POST", f"/feedback/{tok}/comment", {"content-type": "application/x-www-form-urlencoded"}, b"&"*5000),
        ("POST", f"/feedback/{tok}/comment", {}, b"score=5"),
        ("POST", f"/feedback/{tok}/comment", {"content-type": "multipart/form-data; boundary=x"}, b"--x\r\n"),
        ("POST", f"/hooks/generic", {**hdr, "content-type": "application/json"}, b"[" * 100000),
        ("POST", f"/hooks/generic", {**hdr, "content-type": "application/json"}, b'{"alerts": [{"key": "a", "startsAt": "' + b"9"*5000 + b'"}]}'),
        ("POST", f"/hooks/generic", {**hdr, "content-type": "application/json"}, b'{"alerts": 1' + b"0"*5000 + b'}'),
        ("POST", f"/hooks/generic", {**hdr, "content-type": "application/json"}, b'{"alerts": 1e999}'),
        ("POST", f"/hooks/generic", {**hdr, "content-type": "text/plain"}, b'{"alerts": []}'),
        ("POST", f"/hooks/generic", {**hdr, "content-type": "multipart/form-data"}, b'xx'),
        ("POST", f"/hooks/alertmanager", {**hdr, "content-type": "application/json"}, b'{"version": "4", "groupKey": "k", "status": "firing", "alerts": [{"status": "firing", "labels": {}, "startsAt": "\xc2\xb2"}]}'),
        ("POST", f"/hooks/alertmanager", {**hdr, "content-type": "application/json"}, b'\xff'),
        ("POST", f"/hooks/%C2%B2", {**hdr}, b'{}'),
        ("GET", f"/healthz?x=%FF", {}, None),
        ("GET", f"/metrics?%FF", {}, None),
        ("POST", f"/healthz", {}, b"x"),
    ]
    monkeypatch.setenv("OUTAGECOMMS_HOOKS_TOKEN", TOKEN)
    for m, p, h, b in reqs:
        try:
            r = c.request(m, p, headers=h, content=b)
        except Exception as e:
            print("EXC", m, p[:70], h.get("content-type"), (b or b"")[:40], repr(e)); continue
        print(r.status_code, m, p[:70], h.get("content-type"), (b or b"")[:40], r.text[:150].replace("\n"," "))

import socket
def test_raw(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTAGECOMMS_HOOKS_TOKEN", TOKEN)
    port = int(site.base.rsplit(":", 1)[1])
    for raw in [
        b"POST /hooks/generic HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\nContent-Length: " + b"9"*5000 + b"\r\n\r\n{}",
        b"POST /hooks/generic HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\nContent-Length: 99999999999999999999999\r\n\r\n{}",
        b"POST /hooks/generic HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + b"f"*5000 + b"\r\n",
        b"GET /feedback/\xc2\xb2 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /feedback/abc?score=\xc2\xb2 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: \xff\xfe\r\n\r\n",
    ]:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(raw)
        try:
            data = s.recv(300)
        except Exception as e:
            data = repr(e).encode()
        print("RAW", raw[:60], data[:120])
        s.close()
