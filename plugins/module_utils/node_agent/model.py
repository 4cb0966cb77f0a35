# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node agent: a HostProcess DaemonSet on the Windows nodes. Pure, no I/O.

``desired_objects(config)`` gives the Kubernetes objects of the agent; ``read_reports(...)`` turns the report
ConfigMaps the agents publish (one per node, labelled, read with one LIST) into per-node verdicts, with the
same preflight checks as node_preflight_info (module_utils/winrm/preflight.py) and the gMSA pods each node must
recreate.

Where the agents publish: one ConfigMap per node in the agent's own namespace, labelled
``winkube.gmsa/node-agent-report=v1``. The agent's Role allows get/create/patch of ConfigMaps in that namespace
only. A Node annotation or condition would need ``patch`` on nodes (or nodes/status) cluster-wide, which lets
any agent relabel, taint or mark NotReady every node of the cluster; a report ConfigMap can only mislead the
collection about that namespace's reports.

The agent's PowerShell is constant (module_utils/node_agent/agent_script.py plus the WinRM path's own
REGISTRY_DWORD, PREFLIGHT_FACTS and NODE_REFRESH scripts) and ships in a ConfigMap; the node mode, domain and
the rest of the configuration reach it as environment variables from a second ConfigMap, never as script text.
"""

from __future__ import annotations

import hashlib
import json

from ansible_collections.winkube.gmsa.plugins.module_utils.models.names import (
    dns1123_label_error,
    managed_labels,
)
from ansible_collections.winkube.gmsa.plugins.module_utils.node_agent.agent_script import AGENT_SCRIPT
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm import preflight
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.scripts import NODE_REFRESH, PREFLIGHT_FACTS, REGISTRY_DWORD

# An image without any OS layer, usable on every Windows Server version (HostProcess containers do not share
# the host-compatibility rule of other Windows containers); the agent runs the host's own powershell.exe.
DEFAULT_IMAGE = 'mcr.microsoft.com/oss/kubernetes/windows-host-process-containers-base-image:v1.0.0'
DEFAULT_NAMESPACE = 'winkube-gmsa-node-agent'
NAME = 'gmsa-node-agent'
COMPONENT = 'node-agent'
REPORT_LABEL = 'winkube.gmsa/node-agent-report'
REPORT_VERSION = 'v1'
REPORT_SELECTOR = '%s=%s' % (REPORT_LABEL, REPORT_VERSION)
REFRESH_CONFIGMAP = 'gmsa-node-agent-refresh'
SCRIPTS_CONFIGMAP = 'gmsa-node-agent-scripts'
CONFIG_CONFIGMAP = 'gmsa-node-agent-config'
SYSTEM_ACCOUNT = 'NT AUTHORITY\\SYSTEM'
WINDOWS_SELECTOR = 'kubernetes.io/os=windows'
SCRIPT_DIR = 'winkube-gmsa'  # mount path of the scripts, under the container's sandbox mount point

# The agent's command: constant text; the scripts sit under the sandbox mount point (containerd 1.6) or at
# the mount path itself (containerd 1.7+, where CONTAINER_SANDBOX_MOUNT_POINT still names the volume root).
COMMAND = ['powershell.exe', '-NoLogo', '-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-Command',
           "& (Join-Path $env:CONTAINER_SANDBOX_MOUNT_POINT '%s\\agent.ps1')" % SCRIPT_DIR]

SCRIPT_FILES = {
    'agent.ps1': AGENT_SCRIPT,
    'registry_dword.ps1': REGISTRY_DWORD.text,
    'preflight_facts.ps1': PREFLIGHT_FACTS.text,
    'node_refresh.ps1': NODE_REFRESH.text,
}


def _sha256(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode('utf-8')).hexdigest()


def agent_config(mode='domain_joined', domain=None, ccg_plugin_guids=None, ports=None, interval=300,
                 timeout_ms=2000, registry_fix=True, api_server=None):
    """The agent's configuration as ConfigMap data (strings), plus its digest (the report carries it)."""
    data = {
        'mode': 'portable' if mode in ('portable', 'non_domain_joined') else 'domain_joined',
        'domain': domain or '',
        'ccg_plugin_guids': json.dumps(sorted(ccg_plugin_guids or [])),
        'ports': json.dumps(list(ports or preflight.DEFAULT_PORTS)),
        'interval_seconds': str(int(interval)),
        'timeout_ms': str(int(timeout_ms)),
        'registry_fix': 'true' if registry_fix else 'false',
        'api_server': api_server or '',
    }
    return data, _sha256([data, SCRIPT_FILES])[:16]


def check_options(namespace, image, interval):
    """Error messages for bad options (empty when all is well)."""
    errors = []
    problem = dns1123_label_error(namespace, 'namespace')
    if problem:
        errors.append(problem + '; set namespace to another name')
    if not image or any(ch.isspace() for ch in image):
        errors.append('image %r is not an image reference; give e.g. %s or your mirror of it' % (image, DEFAULT_IMAGE))
    if interval < 30:
        errors.append('interval must be at least 30 seconds (each run reads the registry and opens TCP connections '
                      'to the domain controllers)')
    return errors


def object_refs(namespace):
    """(apiVersion, kind, namespace, name) of every object the agent consists of, in deletion order."""
    return [
        ('apps/v1', 'DaemonSet', namespace, NAME),
        ('rbac.authorization.k8s.io/v1', 'RoleBinding', namespace, NAME),
        ('rbac.authorization.k8s.io/v1', 'Role', namespace, NAME),
        ('v1', 'ServiceAccount', namespace, NAME),
        ('v1', 'ConfigMap', namespace, SCRIPTS_CONFIGMAP),
        ('v1', 'ConfigMap', namespace, CONFIG_CONFIGMAP),
        ('v1', 'Namespace', None, namespace),
    ]


def agent_rules():
    """The agent's only rights: its own namespace's ConfigMaps (its report, the refresh request)."""
    return [{'apiGroups': [''], 'resources': ['configmaps'], 'verbs': ['get', 'create', 'patch']}]


def desired_objects(namespace=DEFAULT_NAMESPACE, image=DEFAULT_IMAGE, config=None, image_pull_secrets=None):
    """The agent's objects, in apply order. config: (data, digest) of agent_config()."""
    data, digest = config or agent_config()
    labels = managed_labels(COMPONENT)

    def meta(name, extra=None):
        return {'name': name, 'namespace': namespace, 'labels': dict(labels, **(extra or {}))}

    namespace_meta = {'name': namespace, 'labels': dict(labels, **{
        # HostProcess pods are allowed by the privileged Pod Security level only
        'pod-security.kubernetes.io/enforce': 'privileged'})}
    env = [
        {'name': 'WINKUBE_NODE_NAME', 'valueFrom': {'fieldRef': {'fieldPath': 'spec.nodeName'}}},
        {'name': 'WINKUBE_NAMESPACE', 'valueFrom': {'fieldRef': {'fieldPath': 'metadata.namespace'}}},
        {'name': 'WINKUBE_CONFIG_DIGEST', 'value': digest},
        {'name': 'WINKUBE_REPORT_LABEL', 'value': REPORT_LABEL},
        {'name': 'WINKUBE_REPORT_VERSION', 'value': REPORT_VERSION},
        {'name': 'WINKUBE_REFRESH_CONFIGMAP', 'value': REFRESH_CONFIGMAP},
    ]
    env.extend({'name': 'WINKUBE_' + key.upper(),
                'valueFrom': {'configMapKeyRef': {'name': CONFIG_CONFIGMAP, 'key': key}}} for key in sorted(data))
    pod_spec = {
        'serviceAccountName': NAME,
        'nodeSelector': {'kubernetes.io/os': 'windows'},
        # every Windows node, also tainted ones (os=windows:NoSchedule is a common taint of Windows pools)
        'tolerations': [{'operator': 'Exists'}],
        'hostNetwork': True,
        'securityContext': {'windowsOptions': {'hostProcess': True, 'runAsUserName': SYSTEM_ACCOUNT}},
        'containers': [{
            'name': 'agent',
            'image': image,
            'command': list(COMMAND),
            'env': env,
            'volumeMounts': [{'name': 'scripts', 'mountPath': SCRIPT_DIR, 'readOnly': True}],
            'resources': {'requests': {'cpu': '10m', 'memory': '50Mi'}, 'limits': {'memory': '200Mi'}},
        }],
        'volumes': [{'name': 'scripts', 'configMap': {'name': SCRIPTS_CONFIGMAP}}],
        'terminationGracePeriodSeconds': 10,
    }
    if image_pull_secrets:
        pod_spec['imagePullSecrets'] = [{'name': name} for name in image_pull_secrets]
    selector = {'app.kubernetes.io/name': NAME}
    return [
        {'apiVersion': 'v1', 'kind': 'Namespace', 'metadata': namespace_meta},
        {'apiVersion': 'v1', 'kind': 'ServiceAccount', 'metadata': meta(NAME)},
        {'apiVersion': 'rbac.authorization.k8s.io/v1', 'kind': 'Role', 'metadata': meta(NAME), 'rules': agent_rules()},
        {'apiVersion': 'rbac.authorization.k8s.io/v1', 'kind': 'RoleBinding', 'metadata': meta(NAME),
         'roleRef': {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'Role', 'name': NAME},
         'subjects': [{'kind': 'ServiceAccount', 'name': NAME, 'namespace': namespace}]},
        {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': meta(SCRIPTS_CONFIGMAP), 'data': dict(SCRIPT_FILES)},
        {'apiVersion': 'v1', 'kind': 'ConfigMap', 'metadata': meta(CONFIG_CONFIGMAP), 'data': data},
        {'apiVersion': 'apps/v1', 'kind': 'DaemonSet', 'metadata': meta(NAME, extra=selector),
         'spec': {
             'selector': {'matchLabels': selector},
             'updateStrategy': {'type': 'RollingUpdate', 'rollingUpdate': {'maxUnavailable': '25%'}},
             'template': {'metadata': {'labels': dict(labels, **selector),
                                       'annotations': {'winkube.gmsa/config-digest': digest}},
                          'spec': pod_spec}}},
    ]


def refresh_request(namespace, request_id, computers, gmsas, purge=True):
    """The ConfigMap that asks the agents on the listed computers to purge their SYSTEM tickets and test gMSAs."""
    return {'apiVersion': 'v1', 'kind': 'ConfigMap',
            'metadata': {'name': REFRESH_CONFIGMAP, 'namespace': namespace, 'labels': managed_labels(COMPONENT)},
            'data': {'request_id': request_id, 'computers': json.dumps(sorted(set(computers))),
                     'gmsas': json.dumps(list(gmsas)), 'purge': 'true' if purge else 'false'}}


# ---------------------------------------------------------------------------------------------------------
# reading the reports

def parse_report(configmap):
    """The report document of a report ConfigMap, or None when it is not one (wrong shape, bad JSON)."""
    data = (configmap or {}).get('data') or {}
    try:
        report = json.loads(data.get('report.json') or 'null')
    except ValueError:
        return None
    if not isinstance(report, dict) or not report.get('node'):
        return None
    return report


def _time(value):
    """RFC 3339 text as comparable text (the API server and the agent both write UTC, ...Z)."""
    return value or None


def pods_started_before(pods, node_name, fixed_at):
    """gMSA pods on node_name that started before fixed_at (still running): they lack the fix."""
    from ansible_collections.winkube.gmsa.plugins.module_utils.k8s.nodes import gmsa_names, pod_summary
    if not fixed_at:
        return []
    out = []
    for pod in pods:
        spec, status = pod.get('spec') or {}, pod.get('status') or {}
        if spec.get('nodeName') != node_name or status.get('phase') in ('Succeeded', 'Failed') or not gmsa_names(pod):
            continue
        started = status.get('startTime') or (pod.get('metadata') or {}).get('creationTimestamp')
        if started and started < fixed_at:
            summary = pod_summary(pod, node_name)
            summary['started'] = started
            out.append(summary)
    return sorted(out, key=lambda p: (p['namespace'] or '', p['name'] or ''))


def read_reports(nodes, configmaps, digest, mode, domain, ccg_plugins, pods=None, request_id=None, computers=()):
    """Per Windows node: its report (current when it carries digest), checks, verdict and pods to recreate.

    nodes: the Windows Node objects; configmaps: the report ConfigMaps; pods: every pod (or None: not read).
    Returns (results, waiting) where waiting names the nodes without a current report, and, with request_id,
    the nodes of the listed computers that have not answered that refresh request yet.
    """
    listed = set(str(c).upper() for c in computers)
    # node_preflight_info's name of the portable mode
    preflight_mode = 'non_domain_joined' if mode in ('portable', 'non_domain_joined') else 'domain_joined'
    reports = {}
    for configmap in configmaps:
        report = parse_report(configmap)
        if report is not None:
            reports[report['node']] = report
    results, waiting = [], []
    for node in sorted(nodes, key=lambda n: n['metadata']['name']):
        name = node['metadata']['name']
        labels = node['metadata'].get('labels') or {}
        report = reports.get(name)
        entry = {'node_name': name, 'reported': False, 'current': False, 'reported_at': None, 'computer_name': None,
                 'verdict': None, 'checks': [], 'registry': None, 'fixed_at': None, 'pods_to_recreate': [],
                 'refresh': None, 'error': None}
        if report is None:
            waiting.append(name)
            results.append(entry)
            continue
        entry.update(reported=True, current=report.get('config_digest') == digest,
                     reported_at=report.get('reported_at'), computer_name=report.get('computer_name'),
                     registry=report.get('registry'), fixed_at=_time(report.get('fixed_at')),
                     error=report.get('error'), refresh=report.get('refresh'))
        answered = (report.get('refresh') or {}).get('request_id') == request_id
        computer = (entry['computer_name'] or '').upper() + '$'
        if not entry['current'] or (request_id and computer in listed and not answered):
            waiting.append(name)
        if report.get('error'):
            entry['checks'] = [preflight.check('agent', preflight.FAIL, 'the agent failed: %s' % report['error'],
                                               'see the agent pod\'s log (kubectl logs -n <namespace> <pod>)')]
            entry['verdict'] = preflight.FAIL
        elif isinstance(report.get('facts'), dict):
            evaluation = preflight.evaluate(report['facts'], mode=preflight_mode, domain=domain, node_name=name,
                                            k8s_node={'found': True, 'labels': labels}, ccg_plugins=ccg_plugins)
            entry['checks'], entry['verdict'] = evaluation['checks'], evaluation['verdict']
        if pods is not None:
            entry['pods_to_recreate'] = pods_started_before(pods, name, entry['fixed_at'])
        results.append(entry)
    return results, waiting


def problems(results):
    """Every failing check as 'node: check: detail (fix: ...)'."""
    out = []
    for entry in results:
        for item in entry['checks']:
            if item['status'] == preflight.FAIL:
                out.append('%s: %s: %s (fix: %s)' % (entry['node_name'], item['name'], item['detail'], item['fix']))
    return out
