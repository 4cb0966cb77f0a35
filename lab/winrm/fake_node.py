# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab endpoint's imitation of the node scripts of plugins/module_utils/winrm/scripts.py (registry_dword,
preflight_facts, node_refresh) and the lab-only echo, on a fake host's recorded state. An imitation, not PowerShell:
server.py loads every lab/winrm/fake_*.py and runs these when the collection's bootstrap names them."""

from __future__ import annotations

import copy

HNS_KEY = 'HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\hns\\State'
CCG_KEY = 'HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\CCG\\COMClasses'


def fake_registry_dword(host, data):
    key = str(data['key'])
    name = str(data['name'])
    want = int(data['value'])
    values = host['registry'].get(key)
    key_exists = values is not None
    before = copy.deepcopy(values.get(name)) if key_exists and name in values else None
    changed = not (before and before['type'] == 'DWord' and int(before['value']) == want)
    if changed and not data.get('check_mode'):
        host['registry'].setdefault(key, {})[name] = {'type': 'DWord', 'value': want}
        after = copy.deepcopy(host['registry'][key][name])
    elif changed:
        after = {'type': 'DWord', 'value': want}
    else:
        after = before
    return {'computer_name': host['computer_name'], 'key_existed': key_exists, 'before': before, 'after': after,
            'changed': changed, 'written': bool(changed and not data.get('check_mode'))}


def fake_preflight_facts(host, data):
    domain = str(data.get('domain') or '')
    if not domain and host['domain']['joined']:
        domain = host['domain']['name']
    dns = srv = None
    targets = [t for t in (data.get('domain_controllers') or []) if t]
    if domain:
        addresses = host['dns'].get(domain)
        dns = {'name': domain, 'addresses': addresses or [],
               'error': None if addresses else 'No such host is known'}
        srv_name = '_ldap._tcp.dc._msdcs.' + domain
        srv_targets = host['srv'].get(srv_name)
        srv = {'name': srv_name, 'targets': srv_targets or [],
               'error': None if srv_targets else '%s : DNS name does not exist' % srv_name}
        if not targets:
            targets = list(srv['targets'][:3])
        if not targets:
            targets = [domain]
    ports = []
    for target in targets:
        for port in data.get('ports') or []:
            state = host['tcp'].get('%s:%s' % (target, port))
            if state is True:
                ports.append({'target': target, 'port': int(port), 'open': True, 'error': None})
            else:
                ports.append({'target': target, 'port': int(port), 'open': False,
                              'error': state if isinstance(state, str) else
                              'no answer within %s ms' % data.get('timeout_ms')})
    hns = (host['registry'].get(HNS_KEY) or {}).get('EnableCompartmentNamespace')
    # ccg.exe plugins: a COM class is registered when the registry dict has its key (HKEY_LOCAL_MACHINE\...)
    prefix = CCG_KEY.lower() + '\\'
    classes = [k[len(prefix):] for k in host['registry'] if k.lower().startswith(prefix) and '\\' not in k[len(prefix):]]
    key_exists = any(k.lower() == CCG_KEY.lower() or k.lower().startswith(prefix) for k in host['registry'])
    ccg = {'com_classes_key': key_exists, 'com_classes': classes, 'ccg_exe': host.get('ccg_exe', True),
           'plugins': [{'guid': str(g), 'registered': str(g).lower() in [c.lower() for c in classes]}
                       for g in data.get('ccg_plugin_guids') or [] if g]}
    return {
        'computer_name': host['computer_name'],
        'dns_host_name': host['dns_host_name'],
        'os': copy.deepcopy(host['os']),
        'domain': copy.deepcopy(host['domain']),
        'hns_compartment_namespace': hns['value'] if hns else None,
        'services': copy.deepcopy(host['services']),
        'dns': dns,
        'dc_srv': srv,
        'ports': ports,
        'ccg': ccg,
    }


def fake_echo(host, data):
    """Lab-only script name: hands the decoded data back, for tests of the transport of data."""
    return {'computer_name': host['computer_name'], 'data': data}


def fake_node_refresh(host, data):
    """NODE_REFRESH: records the klist purge and answers Test-ADServiceAccount from host['gmsa_access']."""
    me = host['computer_name'].upper() + '$'
    listed = me in [str(c).upper() for c in data.get('computers') or []]
    purge = bool(listed and data.get('purge'))
    if purge and not data.get('check_mode'):
        host.setdefault('commands', []).append('klist.exe -li 0x3e7 purge')
    tests = []
    for name in [g for g in data.get('gmsas') or [] if g] if listed else []:
        if not host.get('rsat_ad', True):
            tests.append({'gmsa': str(name), 'ok': None, 'error': 'Test-ADServiceAccount is not available on this node '
                          '(Install-WindowsFeature RSAT-AD-PowerShell)'})
            continue
        host.setdefault('commands', []).append(['Test-ADServiceAccount', '-Identity', str(name)])
        tests.append({'gmsa': str(name), 'ok': bool((host.get('gmsa_access') or {}).get(str(name), True)), 'error': None})
    return {'computer_name': host['computer_name'], 'listed': listed, 'changed': purge,
            'purged': bool(purge and not data.get('check_mode')), 'purge_output': None, 'tests': tests}


FAKE_SCRIPTS = {'registry_dword': fake_registry_dword, 'preflight_facts': fake_preflight_facts, 'echo': fake_echo,
                'node_refresh': fake_node_refresh}
