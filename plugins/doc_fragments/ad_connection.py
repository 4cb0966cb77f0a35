# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection options shared by every module that talks to Active Directory.
    DOCUMENTATION = r"""
options:
  backend:
    description:
      - How the module reaches Active Directory. Both backends share the module's logic, so results,
        idempotence, check mode and C(--diff) are the same.
      - V(ldap) talks LDAP (ldap3) from the controller straight to a domain controller, with the other
        options of this fragment.
      - V(winrm) runs the ActiveDirectory PowerShell cmdlets (C(Get-ADObject), C(New-ADServiceAccount),
        C(Set-ADObject), C(Get-KdsRootKey), C(Add-KdsRootKey), ...) on one Windows host reached over WinRM
        (O(winrm)), a domain controller or a management host with the ActiveDirectory module (RSAT). The
        cmdlets run as O(winrm.username); the LDAP options O(port), O(encryption), O(auth_method),
        O(username), O(password), O(ca_file), O(validate_certs), O(timeout), O(total_timeout), O(kerberos_keytab) and
        O(kerberos_ccache) are refused with it.
        The KDS cmdlets of M(winkube.gmsa.kds_root_key) must run on a domain controller.
      - B(Not verified against Windows) - with V(winrm) the collection's PowerShell has only been run against
        a local imitation of the cmdlets (see C(docs/winrm.md)), never on a real Windows host.
    type: str
    choices: [ldap, winrm]
    default: ldap
  server:
    description:
      - With O(backend=ldap) (required), host name or IP address of the domain controller to talk to.
      - With O(backend=winrm) (optional), the domain controller the cmdlets talk to (their C(-Server)
        parameter); by default the cmdlets find one themselves.
      - Can also be set with the E(GMSA_AD_SERVER) environment variable.
    type: str
  port:
    description:
      - TCP port of the LDAP service (O(backend=ldap) only).
      - Defaults to V(636) with O(encryption=ldaps) and V(389) otherwise.
    type: int
  encryption:
    description:
      - How the LDAP session is protected.
      - V(ldaps) is TLS from the first byte, V(starttls) upgrades a plain connection on port 389,
        V(none) sends everything in the clear. It is refused with O(auth_method=simple) (the password would
        travel in the clear) and with O(auth_method=kerberos), because ldap3's GSSAPI bind negotiates no SASL security
        layer (no signing, no sealing), so the session after the bind would be unprotected; use V(ldaps) or
        V(starttls) with Kerberos.
    type: str
    choices: [ldaps, starttls, none]
    default: ldaps
  auth_method:
    description:
      - How to bind.
      - V(simple) sends O(username) and O(password) inside the TLS session; O(username) may be a
        distinguished name, a user principal name (C(user@domain)) or C(DOMAIN\\user).
      - V(ntlm) needs O(username) as C(DOMAIN\\user) and MD4, which OpenSSL 3 no longer provides; ldap3
        then takes MD4 from pycryptodome (a requirement of the collection). It is ldap3's Microsoft (Sicily)
        NTLM bind, which Windows domain controllers accept. Samba does not (it ends the session during the
        exchange; it offers NTLM only inside SASL GSS-SPNEGO), and the module then fails with a message
        saying so. B(Not verified against Windows.)
      - V(kerberos) is a SASL GSSAPI bind (Python C(gssapi) package, MIT Kerberos libraries) over V(ldaps) or
        V(starttls) only. The credentials come from exactly one of O(password) (a ticket is acquired in memory
        for O(username)), O(kerberos_keytab) or O(kerberos_ccache); the default credential cache of the
        controller is never used unless O(kerberos_ccache) names it. O(server) must be the domain controller's
        fully qualified host name, because the ticket is for the service principal C(ldap/<server>). The
        realm's KDC is found through the controller's C(krb5.conf) (E(KRB5_CONFIG) to use another file).
    type: str
    choices: [simple, ntlm, kerberos]
    default: simple
  username:
    description:
      - Account to bind as (O(backend=ldap) only). Required unless O(auth_method=kerberos).
      - With O(auth_method=kerberos), the Kerberos principal C(user@REALM) (the realm in upper case); required
        with O(password) or O(kerberos_keytab), optional with O(kerberos_ccache) (the cache's principal).
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
  kerberos_keytab:
    description:
      - With O(auth_method=kerberos), a client keytab holding the keys of O(username). Tickets are kept in a
        private in-memory cache of the module, never written to a file.
    type: path
  kerberos_ccache:
    description:
      - With O(auth_method=kerberos), an existing credential cache to take the ticket from, as C(klist) names
        it (C(FILE:/tmp/krb5cc_1000), C(KCM:1000)), for example the one C(kinit) wrote.
    type: str
  timeout:
    description:
      - Seconds to wait for the TCP connection (and TLS handshake) and for each LDAP answer.
    type: int
    default: 10
  total_timeout:
    description:
      - Seconds one LDAP operation may take in all, with its retries after a lost connection or a C(busy)/
        C(unavailable) answer. A retry starts only while time is left, and each try is bounded by O(timeout),
        so an operation ends within O(total_timeout) plus about two O(timeout) (reconnect, then answer).
      - When the time runs out the module fails naming the operation and object that were not finished;
        what was written before stays, and a rerun completes the rest.
    type: int
    default: 60
  base_dn:
    description:
      - Distinguished name of the domain naming context, for example C(DC=contoso,DC=com).
      - Read from the domain controller's RootDSE (C(defaultNamingContext)) when not given.
    type: str
  winrm:
    description:
      - With O(backend=winrm) (required), how to reach the Windows host that runs the ActiveDirectory cmdlets;
        the same keys as the connection options of M(winkube.gmsa.node_registry), for one host.
      - Point it at a domain controller. On a management host that is not a domain controller, the cmdlets
        need credentials that reach the domain controller from there (the second hop), so use
        O(winrm.transport=credssp), or Kerberos with delegation.
    type: dict
    suboptions:
      hosts:
        description:
          - The one host, a host name or IP address, optionally with a port (C(dc1.contoso.com:5986)).
        type: list
        elements: str
        required: true
        aliases: [host]
      port:
        description:
          - TCP port of the WinRM service when O(winrm.hosts) names none.
          - Defaults to V(5986) with O(winrm.scheme=https) and V(5985) with O(winrm.scheme=http).
        type: int
      scheme:
        description:
          - V(https) protects the session with TLS and validates the host's certificate.
          - V(http) is only accepted with message encryption (NTLM, Kerberos or CredSSP).
        type: str
        choices: [https, http]
        default: https
      transport:
        description:
          - How to authenticate; V(basic) only with O(winrm.scheme=https).
          - Can also be set with the E(GMSA_WINRM_TRANSPORT) environment variable.
        type: str
        choices: [ntlm, kerberos, credssp, basic]
        default: ntlm
      username:
        description:
          - Account to authenticate as; the cmdlets run as this account. Required unless
            O(winrm.transport=kerberos).
          - Can also be set with the E(GMSA_WINRM_USERNAME) environment variable.
        type: str
      password:
        description:
          - Password of O(winrm.username). Never logged or returned.
          - Can also be set with the E(GMSA_WINRM_PASSWORD) environment variable.
        type: str
      validate_certs:
        description:
          - Whether to verify the host's TLS certificate and host name with O(winrm.scheme=https).
        type: bool
        default: true
      ca_trust_path:
        description:
          - PEM file (or OpenSSL hashed directory) with the certificate authorities that signed the host's
            WinRM certificate. Defaults to the trust store of the Python C(requests) package.
          - Can also be set with the E(GMSA_WINRM_CA_TRUST_PATH) environment variable.
        type: path
      message_encryption:
        description:
          - Whether WinRM messages are encrypted by the authentication protocol; V(never) is refused with
            O(winrm.scheme=http).
        type: str
        choices: [auto, always, never]
        default: auto
      operation_timeout:
        description:
          - Seconds the WinRM service may take for one WS-Management operation before answering.
        type: int
        default: 20
      read_timeout:
        description:
          - Seconds to wait for each HTTP request (connection and answer); must be greater than
            O(winrm.operation_timeout).
        type: int
        default: 30
      total_timeout:
        description:
          - Seconds one script may take on the host in all. Checked before every WinRM request, so the run
            ends within O(winrm.total_timeout) plus O(winrm.read_timeout); the failure names the script that
            did not finish, and a rerun completes it.
        type: int
        default: 300
requirements:
  - ldap3 >= 2.9 (O(backend=ldap); with O(backend=winrm) only for building search filters)
  - pywinrm >= 0.4.3 (only with O(backend=winrm))
  - gssapi >= 1.8 and the MIT Kerberos libraries (only with O(auth_method=kerberos))
"""
