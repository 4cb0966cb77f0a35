# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection options shared by every module that talks to Active Directory.
    DOCUMENTATION = r"""
options:
  server:
    description:
      - Host name or IP address of the domain controller to talk to.
      - Can also be set with the E(GMSA_AD_SERVER) environment variable.
    type: str
    required: true
  port:
    description:
      - TCP port of the LDAP service.
      - Defaults to V(636) with O(encryption=ldaps) and V(389) otherwise.
    type: int
  encryption:
    description:
      - How the LDAP session is protected.
      - V(ldaps) is TLS from the first byte, V(starttls) upgrades a plain connection on port 389,
        V(none) sends everything in the clear and is only accepted together with O(auth_method=kerberos)
        or O(auth_method=ntlm), which sign and seal the session themselves.
    type: str
    choices: [ldaps, starttls, none]
    default: ldaps
  auth_method:
    description:
      - How to bind.
      - V(simple) sends O(username) and O(password) inside the TLS session; O(username) may be a
        distinguished name, a user principal name (C(user@domain)) or C(DOMAIN\\user).
      - V(ntlm) needs O(username) as C(DOMAIN\\user) and an MD4 implementation; the module
        uses pycryptodome or pycryptodomex for MD4 when OpenSSL 3 has none. It is ldap3's Microsoft
        (Sicily) NTLM bind, which Windows domain controllers accept; Samba does not, and the module then
        fails with a message saying so.
      - V(kerberos) uses the credential cache of the controller (C(kinit) first) and needs the
        Python C(gssapi) package.
    type: str
    choices: [simple, ntlm, kerberos]
    default: simple
  username:
    description:
      - Account to bind as. Required unless O(auth_method=kerberos).
      - Can also be set with the E(GMSA_AD_USERNAME) environment variable.
    type: str
  password:
    description:
      - Password of O(username). Never logged or returned.
      - Can also be set with the E(GMSA_AD_PASSWORD) environment variable.
    type: str
  ca_file:
    description:
      - PEM file with the certificate authorities that signed the domain controller's certificate.
      - Defaults to the controller's system trust store.
    type: path
  validate_certs:
    description:
      - Whether to verify the domain controller's TLS certificate and host name.
      - Only turn this off for a throw-away lab; the module warns when it is off.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for the TCP connection and for each LDAP answer.
    type: int
    default: 10
  base_dn:
    description:
      - Distinguished name of the domain naming context, for example C(DC=contoso,DC=com).
      - Read from the domain controller's RootDSE (C(defaultNamingContext)) when not given.
    type: str
requirements:
  - ldap3 >= 2.9
"""
