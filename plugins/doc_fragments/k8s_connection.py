# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection options shared by every module that talks to the Kubernetes API server.
    # Environment variable names match kubernetes.core so existing AWX credentials work unchanged.
    DOCUMENTATION = r"""
options:
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
      - PEM file with the private key of O(client_cert).
      - Can also be set with E(K8S_AUTH_KEY_FILE).
    type: path
  validate_certs:
    description:
      - Whether to verify the API server's TLS certificate.
      - When not set, the kubeconfig decides, and a kubeconfig verifies unless it says
        C(insecure-skip-tls-verify). Verification is therefore on unless someone turns it off.
      - Can also be set with E(K8S_AUTH_VERIFY_SSL).
    type: bool
    aliases: [verify_ssl]
requirements:
  - kubernetes >= 24.2.0
notes:
  - Every Kubernetes API request is bounded - 10 seconds to connect, 30 seconds for the answer, and retries (connection
    refused or reset, HTTP 429 and 5xx) only while less than 60 seconds have passed since the request started. When
    the time runs out the module fails naming the request that was not done; what was done before stays, and a rerun
    completes the rest.
  - The kubeconfig is read as the kubernetes Python package reads it (several files in E(KUBECONFIG) merged, the
    first cluster, context or user of a name winning). Token, token file, client certificate, user name and
    password, and in-cluster service-account credentials are read by the collection itself; exec credential
    plugins and auth-provider entries are run through the kubernetes package, which is therefore still required.
  - Requests go through the kubeconfig's C(proxy-url), else through the proxy of E(HTTPS_PROXY) (E(HTTP_PROXY) for an
    C(http) server, E(ALL_PROXY) for both) unless E(NO_PROXY) names the API server (a host, a domain suffix, an IP
    network or C(*)).
"""
