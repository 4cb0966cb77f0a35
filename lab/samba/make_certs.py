"""Generate the lab's own CA and the DC's server certificate (SAN 127.0.0.1, ::1, localhost, DC names).

usage: make_certs.py OUTDIR DC_FQDN
Writes OUTDIR/ca.pem, OUTDIR/ca-key.pem (0600), OUTDIR/cert.pem, OUTDIR/key.pem (0600).
Samba itself would generate a self-signed certificate for CN=<dc fqdn> without IP addresses, which
a client connecting to 127.0.0.1 cannot validate honestly; this one it can.
"""
import datetime
import ipaddress
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def write(path, data, private=False):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, 'wb') as handle:
        handle.write(data)


def main(outdir, fqdn):
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'winkube.gmsa lab'),
                         x509.NameAttribute(NameOID.COMMON_NAME, 'winkube.gmsa lab CA %s' % fqdn)])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    short = fqdn.split('.')[0]
    names = [x509.DNSName(fqdn), x509.DNSName(short), x509.DNSName('localhost'),
             x509.IPAddress(ipaddress.ip_address('127.0.0.1')), x509.IPAddress(ipaddress.ip_address('::1'))]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, fqdn)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    pkcs8 = dict(encoding=pem, format=serialization.PrivateFormat.PKCS8,
                 encryption_algorithm=serialization.NoEncryption())
    write(os.path.join(outdir, 'ca.pem'), ca.public_bytes(pem))
    write(os.path.join(outdir, 'ca-key.pem'), ca_key.private_bytes(**pkcs8), private=True)
    write(os.path.join(outdir, 'cert.pem'), cert.public_bytes(pem))
    write(os.path.join(outdir, 'key.pem'), key.private_bytes(**pkcs8), private=True)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
