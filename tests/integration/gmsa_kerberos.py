"""A Kerberos ticket for a gMSA from the password a node retrieved (msDS-ManagedPassword), against the lab's KDC.

The password in an MSDS-MANAGEDPASSWORD_BLOB is 256 bytes of UTF-16 that need not be valid text, so it is not
typed into kinit: Samba's own code (python3-samba's Credentials.set_utf16_password, run in Debian's
/usr/bin/python3) converts it to UTF-8 as the DC does, the AES keys are derived here with the RFC 3962
string-to-key and the gMSA's salt, those keys go into a keytab (MIT format, written here), and MIT kinit asks
the Samba KDC for a TGT with them. The KDC derives the
gMSA's keys itself from the KDS root key, so a ticket proves that the password the node got is the one the KDC
uses. A missing python3-samba or kinit fails the caller; nothing is skipped.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess

AES128, AES256 = 17, 18
# n-fold("kerberos", 128 bits), the constant of the AES key derivation ([RFC 3961] 5.1 and its test vectors)
KERBEROS_NFOLD = bytes.fromhex('6b65726265726f737b9b5b2b93132b93')
SAMBA_UTF8 = r"""
import sys
from samba.credentials import Credentials
creds = Credentials()
creds.set_utf16_password(bytes.fromhex(sys.stdin.read().strip()))
sys.stdout.write(creds.get_password().encode('utf-8', 'surrogateescape').hex())
"""


def blob_password(blob):
    """(version, current password) of an MSDS-MANAGEDPASSWORD_BLOB ([MS-ADTS] 2.2.19): version, reserved, length,
    then the offset of CurrentPassword, a NUL-terminated UTF-16 string of 256 bytes (gMSA passwords)."""
    version, _reserved, length, current = struct.unpack('<HHLH', blob[:10])
    assert length == len(blob), (length, len(blob))
    password = blob[current:current + 256]
    assert blob[current + 256:current + 258] == b'\x00\x00', 'no NUL after 256 bytes of password'
    return version, password


def aes_string_to_key(password, salt, length):
    """[RFC 3962] AES string-to-key: PBKDF2-HMAC-SHA1 (4096 iterations), then DK(tkey, "kerberos")."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    tkey = hashlib.pbkdf2_hmac('sha1', password, salt, 4096, length)
    encrypt = Cipher(algorithms.AES(tkey), modes.ECB()).encryptor()  # CBC with a zero IV over one block
    block, key = KERBEROS_NFOLD, b''
    while len(key) < length:
        block = encrypt.update(block)
        key += block
    return key[:length]


def kerberos_keys(samba_lab, sam, password):
    """{etype: key} of the gMSA ``sam`` (with $) for its UTF-16 password. The UTF-16 -> UTF-8 conversion (unpaired
    surrogates and all) is Samba's own (Credentials.set_utf16_password/get_password in /usr/bin/python3 with
    python3-samba); the salt is a computer account's: REALM + "host" + name + "." + DNS domain."""
    proc = subprocess.run(['/usr/bin/python3', '-c', SAMBA_UTF8], input=password.hex(), capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, 'python3-samba is needed to convert the password: %s' % proc.stderr[-2000:]
    utf8 = bytes.fromhex(proc.stdout)
    salt = ('%shost%s.%s' % (samba_lab.realm, sam[:-1].lower(), samba_lab.dns_domain)).encode()
    return {AES128: aes_string_to_key(utf8, salt, 16), AES256: aes_string_to_key(utf8, salt, 32)}


def write_keytab(path, principal, keys, kvno=1):
    """An MIT keytab (format 0x502) with one entry per (etype, key)."""
    name, realm = principal.rsplit('@', 1)

    def counted(data):
        return struct.pack('>H', len(data)) + data

    out = b'\x05\x02'
    for etype, key in sorted(keys.items()):
        body = struct.pack('>H', 1) + counted(realm.encode()) + counted(name.encode())
        body += struct.pack('>IIB', 1, 0, kvno & 0xFF)  # KRB5_NT_PRINCIPAL, timestamp, 8-bit kvno
        body += struct.pack('>H', etype) + counted(key) + struct.pack('>I', kvno)
        out += struct.pack('>i', len(body)) + body
    path.write_bytes(out)


def kinit_with_keys(samba_lab, tmp_path, sam, keys):
    """MIT kinit -k against the lab KDC (127.0.0.1:88); returns (returncode, kinit stderr, klist output)."""
    assert shutil.which('kinit') and shutil.which('klist'), 'kinit/klist (krb5-user) are needed'
    principal = '%s@%s' % (sam, samba_lab.realm)
    krb5_conf = tmp_path / 'krb5.conf'
    krb5_conf.write_text('[libdefaults]\n default_realm = %s\n dns_lookup_kdc = false\n dns_lookup_realm = false\n'
                         ' rdns = false\n[realms]\n %s = {\n  kdc = %s:88\n }\n'
                         % (samba_lab.realm, samba_lab.realm, samba_lab.server))
    keytab = tmp_path / ('%s.keytab' % sam.rstrip('$'))
    write_keytab(keytab, principal, keys)
    env = dict(os.environ, KRB5_CONFIG=str(krb5_conf), KRB5CCNAME='FILE:%s' % (tmp_path / 'ccache'),
               KRB5_TRACE=str(tmp_path / 'kinit.trace'))
    proc = subprocess.run(['kinit', '-k', '-t', str(keytab), principal], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    listed = subprocess.run(['klist'], env=env, capture_output=True, text=True, timeout=30, check=False)
    trace = (tmp_path / 'kinit.trace').read_text() if (tmp_path / 'kinit.trace').exists() else ''
    return proc.returncode, proc.stderr + ('\n--- kinit trace ---\n' + trace if proc.returncode else ''), listed.stdout
