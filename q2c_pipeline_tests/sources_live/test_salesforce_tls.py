"""TLS smoke test: the real simple-salesforce client over real HTTPS to the fake on 127.0.0.1.

Everything else talks to the fake through the loopback adapter over plain HTTP; this one proves
the HTTPS path works with a certificate the session trusts explicitly (``verify`` = our CA and
``trust_env`` off, because REQUESTS_CA_BUNDLE would otherwise override ``verify``).
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from simple_salesforce import Salesforce, SalesforceLogin

from q2c_pipeline_tests.fakes.salesforce_fake import SalesforceFakeOrg, SalesforceFakeServer

ACCOUNTS = [
    {"attributes": {"type": "Account"}, "Id": f"001Hp00000TLS{n:03d}AAA", "Name": f"Acme {n}",
     "SystemModstamp": "2026-01-05T10:00:00.000+0000"}
    for n in range(3)
]


def _self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def tls_fake(tmp_path):
    cert_path, key_path = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    org = SalesforceFakeOrg({"Account": ACCOUNTS}, page_size=2)
    server = SalesforceFakeServer(org, tls=context).start()
    org.instance_host = f"127.0.0.1:{server.port}"
    yield org, server, cert_path
    server.stop()


def test_soap_login_and_paged_query_over_https_with_a_pinned_certificate(tls_fake):
    org, server, cert_path = tls_fake
    session = requests.Session()
    session.trust_env = False
    session.verify = str(cert_path)
    session_id, instance = SalesforceLogin(
        username=org.username, password=org.password, security_token=org.security_token,
        scratch_url=f"https://127.0.0.1:{server.port}", session=session,
    )
    sf = Salesforce(session_id=session_id, instance=instance, session=session)
    records = list(sf.query_all_iter("SELECT Id, Name FROM Account ORDER BY Id"))
    assert [r["Id"] for r in records] == [a["Id"] for a in ACCOUNTS]  # two pages over TLS


def test_an_untrusted_certificate_is_refused(tls_fake):
    _, server, _ = tls_fake
    session = requests.Session()
    session.trust_env = False  # the system CA bundle does not know our certificate
    session.verify = True
    with pytest.raises(requests.exceptions.SSLError):
        session.get(f"https://127.0.0.1:{server.port}/services/data/v59.0/", timeout=5)
