"""A real IMAP server for the tests: Debian's Dovecot (``apt-get install -y
--no-install-recommends dovecot-imapd``), started in the foreground (``-F``) on free loopback
ports with a config written to the test's temp dir: maildir in tmp, one static password, TLS
with a self-signed certificate the test makes with ``openssl`` (its own CA file for the client).
``capability`` replaces what Dovecot advertises (e.g. without IDLE and MOVE, as a poorer server).
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import shutil
import signal
import ssl
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.fakes.asgi import free_port
from tests.support.inbound import wait_listening

BINARY = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)  # fmt: skip
USER = "replies"
PASSWORD = "s3cret/pass:word@1"  # a slash, a colon and an at: the URL must percent-encode them

CONFIG = """\
base_dir = {tmp}/run
state_dir = {tmp}/state
instance_name = oc-test-{name}
log_path = {tmp}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{tmp}/cert.pem
ssl_key = <{tmp}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain
{users}
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail}/%u
}}
mail_location = maildir:{mail}/%u/Maildir
{capability}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
"""


def make_certificate(folder: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 and localhost; returns it (the client's CA)."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem"),
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return folder / "cert.pem"


@dataclass
class Dovecot:
    tmp: Path
    imap_port: int
    imaps_port: int
    cafile: Path
    proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> None:
        out = (self.tmp / "dovecot.out").open("ab")
        self.proc = subprocess.Popen(
            [str(BINARY), "-F", "-c", str(self.tmp / "dovecot.conf")],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        out.close()
        try:
            wait_listening("127.0.0.1", self.imaps_port, timeout=30)
        except AssertionError:
            raise AssertionError((self.tmp / "dovecot.out").read_text(errors="replace")) from None

    def stop(self) -> None:
        if self.proc is None:
            return
        # the whole process group, as a server going down takes its sessions with it: on its
        # own the master exits at once, but an IMAP process serving an IDLE client outlives
        # it by ~15 s, its client none the wiser
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def restart(self) -> None:
        """Stop the server (its clients see the connection drop) and start it again, same ports
        and mail."""
        self.stop()
        self._start()

    def url(self, folder: str = "INBOX", *, query: str | None = None) -> str:
        from urllib.parse import quote

        q = query if query is not None else f"cafile={quote(str(self.cafile))}"
        auth = f"{quote(USER, safe='')}:{quote(PASSWORD, safe='')}"
        return f"imaps://{auth}@127.0.0.1:{self.imaps_port}/{folder}" + (f"?{q}" if q else "")

    @contextmanager
    def client(self) -> Iterator[imaplib.IMAP4_SSL]:
        """The test's own session (to append mail and look into folders)."""
        ctx = ssl.create_default_context(cafile=str(self.cafile))
        conn = imaplib.IMAP4_SSL("127.0.0.1", self.imaps_port, ssl_context=ctx, timeout=30)
        conn.login(USER, PASSWORD)
        try:
            yield conn
        finally:
            conn.logout()

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        with self.client() as c:
            typ, data = c.append(folder, None, None, raw)
            assert typ == "OK", data

    def count(self, folder: str) -> int | None:
        """Messages in ``folder`` (not counting those flagged deleted); None: no such folder."""
        with self.client() as c:
            typ, _ = c.select(f'"{folder}"', readonly=True)
            if typ != "OK":
                return None
            typ, data = c.search(None, "UNDELETED")
            return len(data[0].split())

    def log(self) -> str:
        path = self.tmp / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def running_dovecot(tmp: Path, *, capability: str | None = None) -> Iterator[Dovecot]:
    assert BINARY is not None
    tmp.mkdir(parents=True, exist_ok=True)
    cafile = make_certificate(tmp)
    if os.getuid() == 0:
        # root runs Dovecot as packaged (its dovecot/dovenull users); mail may not be uid 0,
        # and pytest's temp dirs are 0700: the mail lives in a folder of its own, for nobody
        nobody = pwd.getpwnam("nobody")
        uid, gid = nobody.pw_uid, nobody.pw_gid
        mail = Path(tempfile.mkdtemp(prefix="oc-dovecot-"))
        os.chown(mail, uid, gid)
        users = ""
    else:
        me = pwd.getpwuid(os.getuid()).pw_name
        uid, gid = os.getuid(), os.getgid()
        users = f"default_internal_user = {me}\ndefault_login_user = {me}\n"
        mail = tmp / "mail"
        mail.mkdir()
    imap_port, imaps_port = free_port(), free_port()
    conf = tmp / "dovecot.conf"
    text = CONFIG.format(
        tmp=tmp, mail=mail, name=uuid.uuid4().hex[:8], users=users, password=PASSWORD, uid=uid,
        gid=gid, imap_port=imap_port, imaps_port=imaps_port,
        capability=f"imap_capability = {capability}" if capability else "",
    )  # fmt: skip
    conf.write_text(text)
    server = Dovecot(tmp, imap_port, imaps_port, cafile)
    try:
        server._start()
        yield server
    finally:
        server.stop()
        if mail != tmp / "mail":
            shutil.rmtree(mail, ignore_errors=True)
