# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verdicts of node_preflight_info: pure Python, no I/O.

``evaluate(facts, ...)`` turns the facts the read-only PowerShell script gathered on one Windows node (and,
optionally, that node's Kubernetes Node object) into a list of checks - each ``pass``, ``warn``, ``fail`` or
``skip`` with a detail and, unless it passed, the fix - and one verdict for the node.
"""

from __future__ import annotations

import re
import uuid

from ansible_collections.winkube.gmsa.plugins.module_utils.models.credential_spec import (
    AWS_SECRETS_MANAGER_PLUGIN_GUID,
    AZURE_KEY_VAULT_PLUGIN_GUID,
    PLUGIN_ALIASES,
)

PASS, WARN, FAIL, SKIP = 'pass', 'warn', 'fail', 'skip'
_RANK = {PASS: 0, SKIP: 0, WARN: 1, FAIL: 2}

# Windows Server releases by build number (long-term servicing channel).
WS2019_BUILD = 17763
WS2022_BUILD = 20348
WS2025_BUILD = 26100
# Windows Server 2019 needs KB5000822 (17763.1817) for gMSA with containerd.
WS2019_CONTAINERD_GMSA_UBR = 1817
RELEASES = {WS2019_BUILD: 'Windows Server 2019', WS2022_BUILD: 'Windows Server 2022',
            WS2025_BUILD: 'Windows Server 2025'}
SAC_BUILDS = {18362: '1903', 18363: '1909', 19041: '2004', 19042: '20H2'}

LDAP, LDAPS, KERBEROS = 389, 636, 88
REQUIRED_PORTS = (KERBEROS, LDAP)
OPTIONAL_PORTS = (LDAPS,)
DEFAULT_PORTS = (LDAP, LDAPS, KERBEROS)
FIREWALL_FIX = ('allow TCP/UDP 53, 88, 135, 389, 445, 464, 636, 3268 and the RPC range 49152-65535 from the node '
                'to the domain controllers (host firewall, network security groups)')
NODE_OS_LABEL = 'kubernetes.io/os'


def check(name, status, detail, fix=None):
    return {'name': name, 'status': status, 'detail': detail, 'fix': None if status in (PASS, SKIP) else fix}


def version_of(text):
    """'1.7.13' from 'containerd github.com/containerd/containerd v1.7.13 7c3a...' (None when there is none)."""
    match = re.search(r'v?(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?)', text or '')
    return match.group(1) if match else None


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def runtime_facts(facts):
    """{'containerd': {...}, 'docker': {...}, 'kubelet': {...}} from the services the script found."""
    found = {}
    for service in facts.get('services') or []:
        if isinstance(service, dict) and service.get('name'):
            entry = dict(service)
            entry['version_number'] = version_of(service.get('version'))
            found[service['name'].lower()] = entry
    return found


def check_os(facts, runtime):
    os_facts = facts.get('os') or {}
    build = _int(os_facts.get('build'))
    ubr = _int(os_facts.get('ubr'))
    label = '%s.%s' % (build, ubr if ubr is not None else '?')
    caption = os_facts.get('caption') or 'Windows'
    if build is None:
        return check('os_build', FAIL, 'the OS build number could not be read',
                     'check that the account may read Win32_OperatingSystem over WinRM')
    if build < WS2019_BUILD:
        return check('os_build', FAIL, '%s build %s is older than Windows Server 2019' % (caption, label),
                     'gMSA for Kubernetes pods needs Windows Server 2019 (build 17763) or later; '
                     'replace the node with a Windows Server 2019, 2022 or 2025 node')
    if build == WS2019_BUILD:
        if runtime == 'containerd' and (ubr is None or ubr < WS2019_CONTAINERD_GMSA_UBR):
            return check('os_build', FAIL,
                         'Windows Server 2019 build %s: gMSA with containerd needs 17763.%d or later'
                         % (label, WS2019_CONTAINERD_GMSA_UBR),
                         'install the cumulative update KB5000822 (March 2021) or any later cumulative '
                         'update, then reboot the node')
        return check('os_build', PASS, 'Windows Server 2019 build %s' % label)
    if build in SAC_BUILDS:
        return check('os_build', WARN,
                     'Windows Server version %s (build %s) is a semi-annual channel release that Kubernetes '
                     'does not support' % (SAC_BUILDS[build], label),
                     'use a long-term servicing channel release: Windows Server 2019, 2022 or 2025')
    name = RELEASES.get(build) or caption
    return check('os_build', PASS, '%s build %s' % (name, label))


def check_runtime(runtimes):
    containerd = runtimes.get('containerd')
    docker = runtimes.get('docker')
    if containerd:
        version = containerd.get('version_number') or containerd.get('version') or 'unknown version'
        if (containerd.get('state') or '').lower() != 'running':
            return check('container_runtime', FAIL,
                         'containerd %s is installed but its service is %s' % (version, containerd.get('state')),
                         'start it: Start-Service containerd; Set-Service containerd -StartupType Automatic')
        return check('container_runtime', PASS, 'containerd %s is running' % version)
    if docker:
        return check('container_runtime', WARN,
                     'only Docker Engine (%s) is installed; Kubernetes removed dockershim in 1.24'
                     % (docker.get('version_number') or docker.get('version') or 'unknown version'),
                     'install containerd and point the kubelet at it (--container-runtime-endpoint '
                     'npipe:////./pipe/containerd-containerd)')
    return check('container_runtime', FAIL, 'neither containerd nor Docker Engine is installed as a service',
                 'install containerd as a Windows service (containerd.exe --register-service) and start it')


def check_domain(facts, mode, expected_domain):
    domain = facts.get('domain') or {}
    joined = bool(domain.get('joined'))
    name = domain.get('name') or ''
    if mode == 'non_domain_joined':
        detail = ('joined to %s; ' % name if joined else 'not domain-joined; ') + \
            'credential specs of this node must use a ccg plugin (PortableCcgVersion, PluginGUID, PluginInput)'
        return check('domain_membership', PASS, detail)
    if not joined:
        return check('domain_membership', FAIL, 'the node is not joined to a domain (workgroup %s)' % (name or '?'),
                     'join it: Add-Computer -DomainName %s -Credential (Get-Credential) -Restart; or use '
                     'mode=non_domain_joined with a ccg plugin' % (expected_domain or '<domain>'))
    if expected_domain and name.lower().rstrip('.') != expected_domain.lower().rstrip('.'):
        return check('domain_membership', FAIL, 'the node is joined to %s, not %s' % (name, expected_domain),
                     'join the node to %s, or set domain to the domain its gMSAs live in (a trust between '
                     'the domains is needed otherwise)' % expected_domain)
    return check('domain_membership', PASS, 'joined to %s' % name)


def check_dns(facts):
    dns = facts.get('dns')
    if not dns:
        return check('domain_dns', SKIP, 'no domain to resolve (not domain-joined and no domain given)')
    addresses = [a for a in dns.get('addresses') or [] if a]
    if addresses:
        return check('domain_dns', PASS, '%s resolves to %s' % (dns.get('name'), ', '.join(addresses)))
    return check('domain_dns', FAIL, '%s does not resolve on the node: %s'
                 % (dns.get('name'), dns.get('error') or 'no addresses'),
                 'point the node\'s DNS client at the domain\'s DNS servers (Set-DnsClientServerAddress) or '
                 'add a conditional forwarder for %s on the DNS servers it uses' % dns.get('name'))


def check_dc(facts):
    results = [p for p in facts.get('ports') or [] if isinstance(p, dict)]
    if not results:
        if facts.get('dns'):
            return check('dc_reachable', FAIL, 'no domain controller to test (none given, none found in DNS)',
                         'fix DNS first, or give domain_controllers')
        return check('dc_reachable', SKIP, 'no domain to test')
    by_target = {}
    for result in results:
        by_target.setdefault(result.get('target'), {})[_int(result.get('port'))] = result
    good, details = [], []
    for target, ports in sorted(by_target.items(), key=lambda item: str(item[0])):
        closed = sorted(p for p, r in ports.items() if not r.get('open'))
        details.append('%s: %s' % (target, ', '.join(
            '%s %s' % (p, 'open' if ports[p].get('open') else 'closed (%s)' % (ports[p].get('error') or 'refused'))
            for p in sorted(ports))))
        if not [p for p in closed if p in REQUIRED_PORTS or p not in OPTIONAL_PORTS]:
            good.append((target, [p for p in closed if p in OPTIONAL_PORTS]))
    detail = '; '.join(details)
    if not good:
        return check('dc_reachable', FAIL, 'no domain controller answers on the required ports (%s): %s'
                     % (', '.join(str(p) for p in REQUIRED_PORTS), detail), FIREWALL_FIX)
    if all(missing for dummy, missing in good):
        return check('dc_reachable', WARN, 'LDAPS (636) is closed: %s' % detail,
                     'gMSA itself uses Kerberos and LDAP; open 636 only if tools on the node need LDAPS')
    return check('dc_reachable', PASS, detail)


def check_compartment(facts):
    value = _int(facts.get('hns_compartment_namespace'))
    if value == 1:
        return check('compartment_namespace', PASS, 'EnableCompartmentNamespace is 1')
    return check('compartment_namespace', WARN,
                 'EnableCompartmentNamespace is %s: pods using a gMSA cannot reach SMB shares by host name'
                 % ('not set' if value is None else value),
                 'run winkube.gmsa.node_registry on the node, then recreate the gMSA pods running there')


# ccg.exe plugins: COM classes registered under this key (the plugin's installer writes it; we only read it).
CCG_COM_CLASSES_KEY = 'HKLM\\SYSTEM\\CurrentControlSet\\Control\\CCG\\COMClasses'
CCG_PLUGINS = {'azure_key_vault': AZURE_KEY_VAULT_PLUGIN_GUID, 'aws': AWS_SECRETS_MANAGER_PLUGIN_GUID}
CCG_PLUGIN_NAMES = {AZURE_KEY_VAULT_PLUGIN_GUID: 'Azure Key Vault plugin', AWS_SECRETS_MANAGER_PLUGIN_GUID: 'AWS plugin'}
CCG_FIXES = {
    AZURE_KEY_VAULT_PLUGIN_GUID: 'install the Azure Key Vault ccg plugin: on AKS enable gMSA on the cluster '
                                 '(az aks update --enable-windows-gmsa), which installs it on the Windows nodes',
    AWS_SECRETS_MANAGER_PLUGIN_GUID: 'use an Amazon ECS- or EKS-optimized Windows AMI, which ships the AWS ccg plugin '
                                     '(Amazon ECS Developer Guide: domainless gMSA), or install it as that guide says',
}


def ccg_plugin_guid(value):
    """'{GUID}' (upper case, braces) from azure_key_vault, aws (or the credential_spec filter's aliases of them)
    or a GUID; ValueError otherwise."""
    text = str(value or '').strip()
    if text.lower() in PLUGIN_ALIASES:
        return CCG_PLUGINS[PLUGIN_ALIASES[text.lower()]]
    if not re.match(r'^\{?[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\}?$', text) \
            or text.startswith('{') != text.endswith('}'):
        raise ValueError('ccg_plugins: %r is neither azure_key_vault, aws nor a plugin CLSID like '
                         '{CCC2A336-D7F3-4818-A213-272B7924213E}' % (value,))
    return '{%s}' % str(uuid.UUID(text.strip('{}'))).upper()


def check_ccg(facts, mode, plugin_guids):
    """Whether the ccg.exe plugins are registered (COM class key present); needed only on non-domain-joined nodes."""
    ccg = facts.get('ccg')
    if not isinstance(ccg, dict):
        return check('ccg_plugin', SKIP, 'the node reported no ccg facts')
    registered = set(str(name).upper() for name in ccg.get('com_classes') or [])
    for entry in ccg.get('plugins') or []:
        if entry.get('registered'):
            registered.add(str(entry.get('guid')).upper())
    portable = mode == 'non_domain_joined'
    if not plugin_guids:
        if not portable:
            return check('ccg_plugin', SKIP, 'domain-joined nodes need no ccg plugin')
        if registered:
            return check('ccg_plugin', PASS, 'ccg plugins registered: %s' % ', '.join(sorted(registered)))
        return check('ccg_plugin', FAIL, 'no ccg plugin is registered (%s %s)' % (
            CCG_COM_CLASSES_KEY, 'has no subkey' if ccg.get('com_classes_key') else 'does not exist'),
            'install your credential store\'s ccg plugin on the node (see docs/portable-identity.md); name it in '
            'ccg_plugins to check for it')
    missing = [g for g in plugin_guids if g.upper() not in registered]
    named = ', '.join('%s %s' % (CCG_PLUGIN_NAMES.get(g, 'plugin'), g) for g in (missing or plugin_guids))
    if not missing:
        return check('ccg_plugin', PASS, 'registered: %s' % named)
    detail = 'not registered (no %s\\%s): %s%s' % (CCG_COM_CLASSES_KEY, missing[0], named,
                                                   '' if ccg.get('ccg_exe', True) else '; ccg.exe is missing too')
    fix = '; '.join(CCG_FIXES.get(g, 'install and register the plugin with CLSID %s (its installer writes the COM '
                                  'class key)' % g) for g in missing)
    if not portable:
        return check('ccg_plugin', WARN, detail + ' (only used by non-domain-joined nodes)', fix)
    return check('ccg_plugin', FAIL, detail, fix)


def check_node(node_name, k8s_node):
    if k8s_node is None:
        return check('kubernetes_node', SKIP, 'Kubernetes not checked (no cluster options)')
    if not k8s_node.get('found'):
        return check('kubernetes_node', FAIL, 'no Kubernetes Node named %s' % node_name,
                     'give the node\'s Kubernetes name in node_names (kubectl get nodes -o wide), or join the '
                     'node to the cluster')
    labels = k8s_node.get('labels') or {}
    value = labels.get(NODE_OS_LABEL)
    if value != 'windows':
        return check('kubernetes_node', FAIL, 'Node %s has %s=%s' % (node_name, NODE_OS_LABEL, value),
                     'this host is not the Windows node it is thought to be; check node_names (the kubelet sets '
                     '%s itself)' % NODE_OS_LABEL)
    return check('kubernetes_node', PASS, 'Node %s has %s=windows' % (node_name, NODE_OS_LABEL))


def verdict_of(checks):
    worst = max([_RANK[c['status']] for c in checks] or [0])
    return {0: PASS, 1: WARN, 2: FAIL}[worst]


def evaluate(facts, mode='domain_joined', domain=None, node_name=None, k8s_node=None, ccg_plugins=None):
    """{'verdict', 'checks', 'runtime'} for one node's facts."""
    runtimes = runtime_facts(facts)
    runtime = 'containerd' if 'containerd' in runtimes else ('docker' if 'docker' in runtimes else None)
    checks = [
        check_os(facts, runtime),
        check_runtime(runtimes),
        check_domain(facts, mode, domain),
        check_dns(facts),
        check_dc(facts),
        check_compartment(facts),
        check_ccg(facts, mode, ccg_plugins or []),
        check_node(node_name, k8s_node),
    ]
    runtime_info = None
    if runtime:
        runtime_info = {'name': runtime, 'version': runtimes[runtime].get('version_number'),
                        'state': runtimes[runtime].get('state')}
    return {'verdict': verdict_of(checks), 'checks': checks, 'runtime': runtime_info,
            'kubelet_version': (runtimes.get('kubelet') or {}).get('version_number')}


def should_fail(verdicts, fail_on):
    """Whether the module fails for these per-node verdicts; fail_on is fail, warn or never."""
    if fail_on == 'never':
        return False
    limit = _RANK[FAIL] if fail_on == 'fail' else _RANK[WARN]
    return any(_RANK[v] >= limit for v in verdicts)


def default_node_name(computer_name):
    """The kubelet registers a Windows node under its host name in lower case."""
    return (computer_name or '').lower() or None
