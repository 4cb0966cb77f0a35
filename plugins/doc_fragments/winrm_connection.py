# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection options shared by every module that runs PowerShell on Windows hosts over WinRM.
    DOCUMENTATION = r"""
options:
  hosts:
    description:
      - The Windows hosts to run on, each a host name or IP address, optionally with a port
        (C(win1.contoso.com:5986), C([fd00::5]:5986)).
      - The module runs on the Ansible controller (or wherever the task is delegated) and connects to each
        host itself, one WinRM session per host; a single module call can serve a whole node pool.
    type: list
    elements: str
    required: true
    aliases: [host]
  port:
    description:
      - TCP port of the WinRM service, for hosts that do not name their own.
      - Defaults to V(5986) with O(scheme=https) and V(5985) with O(scheme=http).
    type: int
  scheme:
    description:
      - V(https) (the default) protects the session with TLS and validates the host's certificate.
      - V(http) is only accepted when the messages are encrypted by the authentication protocol
        (O(transport=ntlm), V(kerberos) or V(credssp) with O(message_encryption) V(auto) or V(always)),
        which is the Windows default for WinRM over HTTP.
    type: str
    choices: [https, http]
    default: https
  transport:
    description:
      - How to authenticate.
      - V(ntlm) needs O(username) (C(DOMAIN\\user) or C(user@domain)) and O(password).
      - V(kerberos) uses O(username) as the principal and the controller's Kerberos credential cache
        (C(kinit) first); needs pywinrm's Kerberos extra (C(pywinrm[kerberos])).
      - V(credssp) needs O(username), O(password) and the Python C(requests-credssp) package.
      - V(basic) sends O(username) and O(password) in the HTTP header and is only accepted with
        O(scheme=https); Windows only allows it for local accounts.
      - Can also be set with the E(GMSA_WINRM_TRANSPORT) environment variable.
    type: str
    choices: [ntlm, kerberos, credssp, basic]
    default: ntlm
  username:
    description:
      - Account to authenticate as. Required unless O(transport=kerberos).
      - Can also be set with the E(GMSA_WINRM_USERNAME) environment variable.
    type: str
  password:
    description:
      - Password of O(username). Never logged or returned.
      - Can also be set with the E(GMSA_WINRM_PASSWORD) environment variable.
    type: str
  validate_certs:
    description:
      - Whether to verify each host's TLS certificate and host name with O(scheme=https).
      - Only turn this off for a throw-away lab; the module warns when it is off.
    type: bool
    default: true
  ca_trust_path:
    description:
      - PEM file (or OpenSSL hashed directory) with the certificate authorities that signed the hosts'
        WinRM certificates.
      - Defaults to the trust store of the Python C(requests) package (certifi), not to environment
        variables such as E(REQUESTS_CA_BUNDLE).
      - Can also be set with the E(GMSA_WINRM_CA_TRUST_PATH) environment variable.
    type: path
  message_encryption:
    description:
      - Whether WinRM messages are encrypted by the authentication protocol (pywinrm's C(message_encryption)).
      - V(auto) encrypts over HTTP and relies on TLS over HTTPS; V(always) encrypts over HTTPS too;
        V(never) is refused with O(scheme=http).
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
      - Seconds to wait for the TCP connection and each HTTP answer; must be greater than O(operation_timeout).
    type: int
    default: 30
  total_timeout:
    description:
      - Seconds one script may take on one host in all. Checked before every WinRM request, so the run on a
        host ends within O(total_timeout) plus O(read_timeout) even when the service stops answering or keeps
        answering that the command is still running; the failure names the script that did not finish, and a
        rerun completes it.
    type: int
    default: 300
  concurrency:
    description:
      - How many hosts to work on at the same time.
    type: int
    default: 4
requirements:
  - pywinrm >= 0.4.3
"""

    # The Kubernetes connection options nested under one option, for WinRM modules that also read the cluster
    # (the top-level names host and validate_certs belong to the WinRM options there).
    CLUSTER = r"""
options:
  cluster:
    description:
      - How to reach the Kubernetes API server, with the same keys as the connection options of the
        collection's Kubernetes modules (for example the C(gmsa_cluster) variable of the roles).
      - When not given, the module does not talk to Kubernetes.
      - The keys' environment variables (E(K8S_AUTH_KUBECONFIG), ...) apply only when O(cluster) is given,
        for example as an empty dictionary.
    type: dict
    suboptions:
      kubeconfig:
        description:
          - Path to a kubeconfig file, or the kubeconfig itself as a dictionary.
          - Can also be set with E(K8S_AUTH_KUBECONFIG); when neither is given the Kubernetes client's own
            default applies (E(KUBECONFIG), then C(~/.kube/config), then in-cluster configuration).
        type: raw
      context:
        description:
          - Name of the kubeconfig context to use. Defaults to the kubeconfig's current context.
          - Can also be set with E(K8S_AUTH_CONTEXT).
        type: str
      host:
        description:
          - URL of the API server, for example C(https://127.0.0.1:6443). Overrides the kubeconfig's server.
          - Can also be set with E(K8S_AUTH_HOST).
        type: str
      api_key:
        description:
          - Bearer token for the API server. Never logged or returned.
          - Can also be set with E(K8S_AUTH_API_KEY).
        type: str
      ca_cert:
        description:
          - PEM file with the certificate authority of the API server.
          - Can also be set with E(K8S_AUTH_SSL_CA_CERT).
        type: path
        aliases: [ssl_ca_cert]
      client_cert:
        description:
          - PEM file with a client certificate for the API server.
          - Can also be set with E(K8S_AUTH_CERT_FILE).
        type: path
      client_key:
        description:
          - PEM file with the private key of O(cluster.client_cert).
          - Can also be set with E(K8S_AUTH_KEY_FILE).
        type: path
      validate_certs:
        description:
          - Whether to verify the API server's TLS certificate.
          - When not set, the kubeconfig decides, and a kubeconfig verifies unless it says
            C(insecure-skip-tls-verify).
          - Can also be set with E(K8S_AUTH_VERIFY_SSL).
        type: bool
        aliases: [verify_ssl]
requirements:
  - kubernetes >= 24.2.0 (only with O(cluster))
"""

    # The attributes of every node module whose action plugin runs the work on an inventory host (node_registry,
    # node_preflight_info, docker_credential_spec, node_refresh). Listed before ansible-core's attribute
    # fragments: of two fragments, the one listed first wins.
    NODE_HOST = r"""
attributes:
  action:
    support: full
    details: The action plugin runs on the controller.
  async:
    support: none
  bypass_host_loop:
    support: none
"""

    # With NODE_HOST: the node modules that also run, deprecated, from the controller (node_registry,
    # node_preflight_info, docker_credential_spec): their action group and platforms.
    NODE_ACTION = r"""
attributes:
  action_group:
    support: full
    membership:
      - winkube.gmsa.winrm
  platform:
    support: full
    platforms:
      - posix
      - windows
    details: On a Windows host of the inventory (C(ansible_connection) V(winrm) or V(psrp)) the action plugin runs the work
      through that connection; the deprecated controller-side form (O(hosts)) runs on a POSIX host and opens WinRM sessions
      itself.
"""
