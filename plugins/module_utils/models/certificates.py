# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The webhook's certificate set: a private CA and a serving certificate signed by it.

Pure: no I/O besides the random numbers that key generation needs. The CA private key is never kept:
each rotation creates a new CA and a new serving certificate, and the webhook configurations carry
the old and the new CA while the switch happens (see plan_tls and ca_bundle).
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress

HAS_CRYPTOGRAPHY = True
CRYPTOGRAPHY_IMPORT_ERROR = None
try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError as exc:  # pragma: no cover - exercised by the sanity import test
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = exc

SECRET_CERT = 'tls.crt'
SECRET_KEY = 'tls.key'
SECRET_CA = 'ca.crt'


def service_dns_names(service, namespace):
    """The names the API server uses for a webhook Service: <svc>.<ns>.svc and the cluster-local form."""
    return ['%s.%s.svc' % (service, namespace), '%s.%s.svc.cluster.local' % (service, namespace)]


def _utc(value):
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.timezone.utc)
    return value


def _not_after(cert):
    return _utc(getattr(cert, 'not_valid_after_utc', None) or cert.not_valid_after)


def _not_before(cert):
    return _utc(getattr(cert, 'not_valid_before_utc', None) or cert.not_valid_before)


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode('ascii')


def _cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode('ascii')


def _san_entries(names):
    entries = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return entries


def generate_ca(common_name, now, days):
    """(cert_pem, key_pem) of a new self-signed CA."""
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _cert_pem(cert), _key_pem(key)


def generate_serving(ca_cert_pem, ca_key_pem, names, now, days):
    """(cert_pem, key_pem) of a serving certificate for names (DNS names or IP addresses)."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem.encode('ascii'))
    ca_key = serialization.load_pem_private_key(ca_key_pem.encode('ascii'), password=None)
    key = _key()
    not_after = min(now + datetime.timedelta(days=days), _not_after(ca_cert))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_san_entries(names)), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return _cert_pem(cert), _key_pem(key)


def split_pem_bundle(text):
    """The certificates of a PEM bundle, each as its own PEM string."""
    marker = '-----END CERTIFICATE-----'
    parts = []
    for chunk in (text or '').split(marker):
        start = chunk.find('-----BEGIN CERTIFICATE-----')
        if start >= 0:
            parts.append(chunk[start:] + marker + '\n')
    return parts


def ca_bundle(*pems):
    """A PEM bundle of the given certificates without duplicates, in order."""
    seen = []
    for pem in pems:
        for cert in split_pem_bundle(pem):
            if cert not in seen:
                seen.append(cert)
    return ''.join(seen)


def expired(pem, now=None):
    """Whether the certificate has expired: nothing it signs can be trusted any more, so keeping it trusted is moot."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return _not_after(x509.load_pem_x509_certificate(pem.encode('ascii'))) <= now


def fingerprint(pem):
    return hashlib.sha256(pem.encode('ascii')).hexdigest() if pem else ''


def describe(cert_pem):
    """Facts about a certificate, for return values and planning."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode('ascii'))
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
        names += [str(n) for n in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    return {
        'subject': cert.subject.rfc4514_string(),
        'issuer': cert.issuer.rfc4514_string(),
        'not_before': _not_before(cert).isoformat(),
        'not_after': _not_after(cert).isoformat(),
        'names': names,
        'serial': '%x' % cert.serial_number,
        'sha256': cert.fingerprint(hashes.SHA256()).hex(),
    }


def _signed_by(cert, ca_cert):
    try:
        cert.verify_directly_issued_by(ca_cert)
        return True
    except AttributeError:  # cryptography < 40: compare issuer and key identifier instead
        if cert.issuer != ca_cert.subject:
            return False
        try:
            aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
            ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
            return aki == ski
        except x509.ExtensionNotFound:
            return True
    except Exception:
        return False


def _key_matches(cert, key_pem):
    try:
        key = serialization.load_pem_private_key(key_pem.encode('ascii'), password=None)
    except Exception:
        return False
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return (key.public_key().public_bytes(serialization.Encoding.DER, spki)
            == cert.public_key().public_bytes(serialization.Encoding.DER, spki))


class TLSPlan(object):
    """What to do with the webhook's certificates.

    action: keep | create | rotate.  ca_pem/cert_pem/key_pem: the set to serve after this run.
    previous_ca_pem: the CA being replaced (rotate only), to keep in the caBundle during the switch.
    """

    def __init__(self, action, ca_pem, cert_pem, key_pem, previous_ca_pem=None, reasons=None):
        self.action = action
        self.ca_pem = ca_pem
        self.cert_pem = cert_pem
        self.key_pem = key_pem
        self.previous_ca_pem = previous_ca_pem
        self.reasons = reasons or []

    @property
    def changed(self):
        return self.action != 'keep'

    def transition_bundle(self):
        """caBundle to publish before the serving certificate changes: old and new CA."""
        return ca_bundle(self.previous_ca_pem or '', self.ca_pem)

    def final_bundle(self):
        return ca_bundle(self.ca_pem)


def assess(current, names, now, renew_before_days):
    """Reasons why the current set (dict with tls.crt, tls.key, ca.crt as text) cannot be kept."""
    if not current or not all(current.get(k) for k in (SECRET_CERT, SECRET_KEY, SECRET_CA)):
        return ['no certificate yet']
    try:
        cert = x509.load_pem_x509_certificate(current[SECRET_CERT].encode('ascii'))
        ca_cert = x509.load_pem_x509_certificate(split_pem_bundle(current[SECRET_CA])[0].encode('ascii'))
    except Exception as exc:
        return ['the stored certificate cannot be parsed (%s)' % exc]
    reasons = []
    margin = datetime.timedelta(days=renew_before_days)
    if _not_after(cert) - margin <= now:
        reasons.append('the serving certificate expires on %s, within renew_before_days=%s'
                       % (_not_after(cert).date().isoformat(), renew_before_days))
    if _not_after(ca_cert) - margin <= now:
        reasons.append('the CA expires on %s, within renew_before_days=%s'
                       % (_not_after(ca_cert).date().isoformat(), renew_before_days))
    if _not_before(cert) > now:
        reasons.append('the serving certificate is not valid yet')
    have = set(describe(current[SECRET_CERT])['names'])
    missing = [n for n in names if n not in have]
    if missing:
        reasons.append('the serving certificate does not cover %s' % ', '.join(missing))
    if not _signed_by(cert, ca_cert):
        reasons.append('the serving certificate is not signed by the stored CA')
    if not _key_matches(cert, current[SECRET_KEY]):
        reasons.append('the private key does not match the serving certificate')
    return reasons


def plan_tls(current, names, now=None, renew_before_days=30, validity_days=365, force_rotate=False,
             ca_name='winkube-gmsa-webhook-ca'):
    """Keep the current certificate set while it is valid for names, else make a new CA and certificate."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if validity_days <= renew_before_days:
        raise ValueError('cert_validity_days (%s) must be larger than renew_before_days (%s)'
                         % (validity_days, renew_before_days))
    reasons = assess(current, names, now, renew_before_days)
    if force_rotate and not reasons:
        reasons = ['rotation forced']
    if not reasons:
        return TLSPlan('keep', current[SECRET_CA], current[SECRET_CERT], current[SECRET_KEY])
    ca_pem, ca_key_pem = generate_ca('%s %s' % (ca_name, now.strftime('%Y%m%dT%H%M%S')), now, validity_days + 1)
    cert_pem, key_pem = generate_serving(ca_pem, ca_key_pem, names, now, validity_days)
    previous = current.get(SECRET_CA) if current else None
    action = 'rotate' if previous and reasons != ['no certificate yet'] else 'create'
    return TLSPlan(action, ca_pem, cert_pem, key_pem, previous_ca_pem=previous if action == 'rotate' else None,
                   reasons=reasons)
