#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pod_gmsa_check
short_description: Run the gMSA troubleshooting ladder inside running Windows pods
version_added: 0.1.0
description:
  - For each selected pod, reads the pod and runs, through the API server's C(pods/exec) (what C(kubectl exec)
    does), the troubleshooting steps of the Kubernetes documentation's I(Configure GMSA for Windows Pods and
    containers) page, stopping at the first that fails, and returns every step's command, exit code and output
    with a diagnosis and the next step.
  - "The ladder: the pod references a credential spec and the webhook filled in its contents;
    C(nltest.exe /parentdomain) (did the credential spec reach the container? 1722 C(RPC_S_SERVER_UNAVAILABLE)
    means no); C(nslookup.exe <domain>) (DNS, and so the way to the domain controllers);
    C(nltest.exe /query) (the secure channel); with O(sc_reset=true), when the secure channel is down,
    C(nltest.exe /sc_reset:<domain>) and C(nltest.exe /query) again."
  - Read-only unless O(sc_reset=true) and a reset is needed; C(changed) is true only when a reset was run.
    Check mode never resets.
  - Commands are sent as argument lists, never as a shell string; O(domain) is checked to be a DNS name first.
  - The task fails when a pod cannot be checked or, with O(fail_on=problem) (the default), when any pod's
    diagnosis is not V(healthy) or V(repaired); the per-pod results are returned in every case.
  - B(Not verified against Windows.) The collection's tests run this module against a real kube-apiserver whose
    exec requests kwok serves on fake nodes by running imitation C(nltest.exe)/C(nslookup.exe) scripts that
    print output shaped like the documented examples (C(lab/k8s/fake-windows-tools)). The real tools'
    output on a Windows container, their exit codes and the exact wording of less common failures have not
    been checked here.
author:
  - winkube.gmsa contributors (@winkube)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - winkube.gmsa.k8s_connection
options:
  namespace:
    description: Namespace of the pods.
    type: str
    required: true
  pods:
    description:
      - Names of the pods to check. A name that does not exist gives the diagnosis C(pod_not_found).
      - Exactly one of O(pods) and O(label_selector) is required.
    type: list
    elements: str
  label_selector:
    description:
      - Check every pod of O(namespace) matching this label selector (for example C(app=iis)), at most
        O(max_pods). No match fails the task.
    type: str
  container:
    description:
      - Container to run the commands in.
      - Defaults, per pod, to the first container with its own C(gmsaCredentialSpecName), else the first container.
    type: str
  domain:
    description:
      - DNS name of the Active Directory domain of the gMSA (for example C(contoso.com)), used by C(nslookup) and
        C(nltest /sc_reset) and compared with what C(nltest /parentdomain) reports.
    type: str
    required: true
  sc_reset:
    description:
      - When the secure channel is down, run C(nltest /sc_reset:<domain>) and check again. This changes the
        container's state (it resets its secure channel); skipped in check mode.
    type: bool
    default: false
  timeout:
    description: Seconds each command may run.
    type: int
    default: 60
  max_pods:
    description: Most pods one O(label_selector) may select (the rest are not checked and a warning says so).
    type: int
    default: 20
  fail_on:
    description:
      - V(problem) fails the task when any pod's diagnosis status is V(problem) or V(error); V(never) only reports
        (a pod that could not be read still fails the task).
    type: str
    choices: [problem, never]
    default: problem
attributes:
  action_group:
    support: full
    membership:
      - winkube.gmsa.k8s
  check_mode:
    support: full
    details: Can run in check mode; the read-only steps run, a reset is skipped and reported.
  diff_mode:
    support: none
    details: Nothing is diffed; the only change, a secure channel reset, is reported per pod.
  platform:
    support: full
    platforms: posix
    details: Runs where the task runs (usually the controller); talks HTTPS to the Kubernetes API server.
notes:
  - Needs the C(create) verb on C(pods/exec) and C(get)/C(list) on C(pods) in O(namespace).
  - The container image must contain C(nltest.exe) and C(nslookup.exe) (Windows Server Core and Windows
    images do; Nano Server images do not have nltest).
seealso:
  - module: winkube.gmsa.workload_gmsa
  - module: winkube.gmsa.node_preflight_info
  - name: Configure GMSA for Windows Pods and containers (Troubleshooting)
    description: The Kubernetes documentation this ladder follows.
    link: https://kubernetes.io/docs/tasks/configure-pod-container/configure-gmsa/#troubleshooting
"""

EXAMPLES = r"""
- name: Check the pods of the iis Deployment
  winkube.gmsa.pod_gmsa_check:
    namespace: web
    label_selector: app=iis
    domain: contoso.com
  register: gmsa_check

- name: Show each pod's diagnosis
  ansible.builtin.debug:
    msg: "{{ gmsa_check.pods | map(attribute='diagnosis') | list }}"

- name: Check one pod and try to repair its secure channel
  winkube.gmsa.pod_gmsa_check:
    namespace: web
    pods: [iis-7776966999-n5nzr]
    container: iis
    domain: contoso.com
    sc_reset: true
    fail_on: never
"""

RETURN = r"""
healthy:
  description: Whether every pod's diagnosis status is V(healthy) or V(repaired).
  returned: always
  type: bool
  sample: false
pods:
  description: One entry per pod, in the order of O(pods) or by name for O(label_selector).
  returned: always
  type: list
  elements: dict
  contains:
    namespace:
      description: Namespace of the pod.
      type: str
    name:
      description: Name of the pod.
      type: str
    node:
      description: Node the pod runs on (V(null) when not scheduled or not found).
      type: str
    phase:
      description: The pod's phase (V(null) when not found).
      type: str
    container:
      description: Container the commands ran in.
      type: str
    credential_spec:
      description: The C(gmsaCredentialSpecName) the container runs with (container or pod level).
      type: str
    credential_spec_filled:
      description: Whether the webhook filled in the credential spec contents (C(gmsaCredentialSpec)).
      type: bool
    reset_performed:
      description: Whether C(nltest /sc_reset) ran in this pod.
      type: bool
    steps:
      description:
        - The commands run, in order, each with C(name) (C(parent_domain), C(dns), C(secure_channel),
          C(sc_reset), C(secure_channel_after_reset)), C(command) (argument list), C(status) (V(pass),
          V(fail), V(skip) or V(error) when it could not run), C(detail), C(exit_code) (V(null) when the API
          server did not report one), C(stdout), C(stderr), C(exec_error) and C(parsed) (what was read from
          the output, e.g. C(status_code), C(status), C(domain), C(addresses), C(trusted_dc)).
      type: list
      elements: dict
    diagnosis:
      description:
        - C(status) (V(healthy), V(repaired), V(problem) or V(error)), C(stage) (V(healthy), V(repaired),
          V(pod_not_found), V(pod_not_running), V(no_credential_spec), V(credential_spec_not_expanded),
          V(credential_spec_not_applied), V(wrong_domain), V(dns), V(secure_channel),
          V(secure_channel_reset_failed), V(exec_failed)), C(summary), C(next_step) (V(null) when healthy) and
          C(detail).
      type: dict
      sample:
        status: problem
        stage: credential_spec_not_applied
        summary: "nltest /parentdomain failed: the credential spec did not reach the container"
        next_step: "check that the node can run gMSA containers (winkube.gmsa.node_preflight_info: ...), ..."
        detail: nltest /parentdomain failed (1722 RPC_S_SERVER_UNAVAILABLE)
api_requests:
  description: Requests sent to the API server to read the pods (the exec streams are not counted).
  returned: always
  type: dict
  sample: {requests: 1, by_method: {GET: 1}, writes: 0, objects: 0}
"""

from ansible_collections.winkube.gmsa.plugins.module_utils.strict import AnsibleModule

from ansible_collections.winkube.gmsa.plugins.module_utils.k8s import pod_ladder
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.client import (
    ApiError,
    K8sError,
    build_configuration,
    connect,
    require_kubernetes,
)
from ansible_collections.winkube.gmsa.plugins.module_utils.connection.k8s import k8s_argument_spec
from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.engine import Engine
from ansible_collections.winkube.gmsa.plugins.module_utils.models.names import (
    dns1123_label_error,
    dns1123_subdomain_error,
)


def read_pods(engine, namespace, names, selector, max_pods):
    """[(name, pod or None)] and warnings."""
    warnings = []
    if selector:
        items = sorted(engine.list('v1', 'Pod', namespace, label_selector=selector),
                       key=lambda p: p['metadata']['name'])
        if not items:
            raise K8sError('no pod in namespace %s matches the label selector %r' % (namespace, selector))
        if len(items) > max_pods:
            warnings.append('%d pods match %r; only the first %d (by name) were checked (max_pods)'
                            % (len(items), selector, max_pods))
            items = items[:max_pods]
        return [(p['metadata']['name'], p) for p in items], warnings
    pods = []
    for name in names:
        pods.append((name, engine.get(('v1', 'Pod', namespace, name))))
    return pods, warnings


def check_pod(module, core_api, namespace, name, pod):
    params = module.params
    domain = params['domain']
    result = {'namespace': namespace, 'name': name, 'node': None, 'phase': None, 'container': None,
              'credential_spec': None, 'credential_spec_filled': False, 'reset_performed': False, 'steps': []}
    if pod is None:
        result['diagnosis'] = pod_ladder.diagnosis('pod_not_found', domain)
        return result
    spec, status = pod.get('spec') or {}, pod.get('status') or {}
    container = params['container'] or pod_ladder.default_container(pod)
    result.update(node=spec.get('nodeName'), phase=status.get('phase'), container=container)
    names = [c.get('name') for c in spec.get('containers') or []]
    if container not in names:
        result['diagnosis'] = pod_ladder.diagnosis('exec_failed', domain, 'the pod has no container %s (containers: %s)'
                                                   % (container, ', '.join(names)))
        return result
    result['credential_spec'], result['credential_spec_filled'] = pod_ladder.credential_spec_of(pod, container)
    if status.get('phase') != 'Running':
        result['diagnosis'] = pod_ladder.diagnosis('pod_not_running', domain, 'phase %s' % status.get('phase'))
        return result

    def run(argv):
        return pod_ladder.exec_in_pod(core_api, namespace, name, container, argv, params['timeout'])

    steps, diagnosis, reset = pod_ladder.run_ladder(pod, container, domain, run, sc_reset=params['sc_reset'],
                                                    check_mode=module.check_mode)
    result.update(steps=steps, diagnosis=diagnosis, reset_performed=reset)
    return result


def main():
    module = AnsibleModule(
        argument_spec=k8s_argument_spec(
            namespace=dict(type='str', required=True),
            pods=dict(type='list', elements='str'),
            label_selector=dict(type='str'),
            container=dict(type='str'),
            domain=dict(type='str', required=True),
            sc_reset=dict(type='bool', default=False),
            timeout=dict(type='int', default=60),
            max_pods=dict(type='int', default=20),
            fail_on=dict(type='str', choices=['problem', 'never'], default='problem'),
        ),
        required_one_of=[('pods', 'label_selector')],
        mutually_exclusive=[('pods', 'label_selector')],
        supports_check_mode=True,
    )
    params = module.params
    problems = []
    try:
        params['domain'] = pod_ladder.check_domain_name(params['domain'])
    except ValueError as exc:
        problems.append(str(exc))
    for value, what, check in [(params['namespace'], 'namespace', dns1123_label_error)] + \
            [(n, 'pods', dns1123_subdomain_error) for n in params['pods'] or []] + \
            ([(params['container'], 'container', dns1123_label_error)] if params['container'] else []):
        error = check(value, what)
        if error:
            problems.append(error)
    if params['pods'] is not None and not params['pods']:
        problems.append('pods is empty: name at least one pod, or use label_selector')
    if params['label_selector'] is not None and not params['label_selector'].strip():
        problems.append('label_selector is empty')
    for option in ('timeout', 'max_pods'):
        if params[option] < 1:
            problems.append('%s must be at least 1' % option)
    if problems:
        module.fail_json(msg='invalid options, nothing was run: ' + '; '.join(problems))

    require_kubernetes(module)
    from kubernetes import client as k8s_client

    engine = None
    try:
        transport = connect(params)
        engine = Engine(transport, check_mode=module.check_mode)
        pods, warnings = read_pods(engine, params['namespace'], params['pods'] or [], params['label_selector'],
                                   params['max_pods'])
        # exec into pods goes through the kubernetes package's websocket client: its own Configuration
        core_api = k8s_client.CoreV1Api(k8s_client.ApiClient(build_configuration(params)))
        results = [check_pod(module, core_api, params['namespace'], name, pod) for name, pod in pods]
    except (K8sError, ApiError) as exc:
        failure = {'msg': str(exc), 'changed': False, 'pods': [], 'healthy': False}
        if engine is not None:
            failure['api_requests'] = engine.stats()
        module.fail_json(**failure)
    for warning in warnings:
        module.warn(warning)
    healthy = all(p['diagnosis']['status'] in ('healthy', 'repaired') for p in results)
    result = dict(changed=any(p['reset_performed'] for p in results), healthy=healthy, pods=results,
                  api_requests=engine.stats())
    if params['fail_on'] == 'problem' and not healthy:
        module.fail_json(msg='gMSA check found problems: ' + '; '.join(
            '%s/%s: %s (next: %s)' % (p['namespace'], p['name'], p['diagnosis']['summary'], p['diagnosis']['next_step'])
            for p in results if p['diagnosis']['status'] not in ('healthy', 'repaired')), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
