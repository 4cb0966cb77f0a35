# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: validate_report
short_description: The gmsa_validate role's diagnosis, one entry per gMSA
version_added: 0.1.0
author:
  - winkube.gmsa maintainers (@winkube)
description:
  - Turns what the role C(winkube.gmsa.gmsa_validate) gathered (the other roles' results in check mode,
    M(winkube.gmsa.gmsa_info), M(winkube.gmsa.credential_spec_access_info), M(winkube.gmsa.pod_gmsa_check)) into one
    entry per gMSA with its problems and the next step.
  - The checks, in the order a gMSA needs them to work, KDS root key, the account, who may retrieve its password,
    unique SPNs, the portable identity, the nodes' group membership, the CRD, the webhook and the nodes' registry,
    failed comparisons, the credential spec, RBAC, what the API server answers, the pods, the workloads.
  - Internal to the collection's roles; its options follow what the role registers.
options:
  _input:
    description: The gMSAs, C(gmsa_accounts).
    type: list
    elements: dict
    required: true
  nodes:
    description: C(gmsa_nodes) with its defaults (C(mode), C(host_group), C(computers)).
    type: dict
    default: {}
  domain:
    description: The domain facts, the result of M(winkube.gmsa.domain_info) (empty when they could not be read).
    type: dict
    default: {}
  found:
    description: The C(accounts) of M(winkube.gmsa.gmsa_info) (every gMSA of the domain).
    type: list
    elements: dict
    default: []
  results:
    description:
      - The other roles' registered results in check mode, by name, C(ad_gmsa), C(ad_host_group),
        C(ad_portable_identity), C(cluster_crd), C(cluster_webhook), C(nodes_registry), C(credspecs_specs),
        C(credspecs_rbac), C(credspecs_workloads). A missing one counts as no difference.
    type: dict
    default: {}
  errors:
    description: Why a comparison could not be made (messages); each goes to the gMSAs it names, else to all.
    type: list
    elements: str
    default: []
  access:
    description: The C(results) of M(winkube.gmsa.credential_spec_access_info).
    type: list
    elements: dict
    default: []
  pods:
    description: The C(pods) of every M(winkube.gmsa.pod_gmsa_check) result.
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
- name: The report
  ansible.builtin.set_fact:
    report: >-
      {{ gmsa_accounts | winkube.gmsa.validate_report(nodes=gmsa_nodes, domain=domain_facts,
         found=info.accounts, results={'credspecs_specs': specs_result}) }}
"""

RETURN = r"""
_value:
  description: One entry per gMSA.
  type: list
  elements: dict
  contains:
    gmsa: {description: The gMSA name., type: str}
    credential_spec: {description: Its credential spec name., type: str}
    ok: {description: Whether nothing was found wrong., type: bool}
    problems: {description: What is wrong, in the order to fix it., type: list, elements: str}
    next_step: {description: The fix of the first problem, or what to check inside a pod when there is none., type: str}
    access: {description: What the API server answered per service account., type: list, elements: dict}
    pods: {description: The diagnosis of each pod checked that runs with this credential spec., type: list, elements: dict}
    portable: {description: In portable mode the identity and the plugin GUID, else null., type: dict}
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.winkube.gmsa.plugins.module_utils.models.credential_spec import CredentialSpecError, build_credential_spec
from ansible_collections.winkube.gmsa.plugins.module_utils.models.names import (
    account_credential_spec_name,
    cluster_role_name,
    role_binding_name,
)

PORTABLE_MODES = ('portable', 'non_domain_joined')  # non_domain_joined: deprecated synonym
INSIDE_THE_POD = ('none from the controller. If a pod still cannot use the gMSA, inside it run: nltest /parentdomain '
                  '(error 1722 = the credential spec was not applied), nslookup {dns}, nltest /query, nltest /sc_verify:{dns}, '
                  'and check that the node reaches the DCs on ports 53, 88, 135, 389, 445, 636, 3268')


def _strip_dollar(name):
    """A sAMAccountName without its one trailing $."""
    name = name or ''
    return name[:-1] if name.endswith('$') else name


def _objects(result, changed_only=True):
    """The objects of a reconciler result (k8s modules), those that differ when changed_only."""
    objects = (result or {}).get('objects') or []
    return [o for o in objects if o.get('action') != 'unchanged'] if changed_only else objects


def _identity_sam(nodes):
    """The portable identity's sAMAccountName without $, '' outside portable mode or without one."""
    if nodes.get('mode') not in PORTABLE_MODES:
        return ''
    identity = nodes.get('portable_identity') or {}
    return _strip_dollar(identity.get('sam_account_name') or identity.get('name') or '')


def _plugin_guid(domain, sam, nodes):
    """The ccg.exe plugin GUID the credential spec must carry in portable mode, else None."""
    config = nodes.get('host_account_config')
    if nodes.get('mode') not in PORTABLE_MODES or not domain or not config:
        return None
    try:
        spec = build_credential_spec(domain, _strip_dollar(sam), host_account=config)
    except CredentialSpecError as exc:
        raise AnsibleFilterError('winkube.gmsa.validate_report: %s' % exc)
    return (spec['ActiveDirectoryConfig'].get('HostAccountConfig') or {}).get('PluginGUID')


def _cluster_problems(results):
    """Problems of the cluster and the nodes: they concern every gMSA."""
    out = []
    if _objects(results.get('cluster_crd')):
        out.append(('the GMSACredentialSpec CRD is missing or differs', 'install it: run the gmsa_cluster role (or playbooks/site.yml)'))
    drift = []
    for obj in _objects(results.get('cluster_webhook')):
        if obj.get('kind') not in drift:
            drift.append(obj.get('kind'))
    if drift:
        out.append(('the admission webhook differs from gmsa_cluster.webhook (%s)' % ', '.join(drift),
                    'run the gmsa_cluster role; until the webhook answers, pods naming a credential spec are refused'))
    unfixed = [node['host'] for node in (results.get('nodes_registry') or {}).get('nodes') or [] if node.get('changed')]
    if unfixed:
        out.append(('EnableCompartmentNamespace is not 1 on %s (gMSA pods there cannot reach SMB shares by name)' % ', '.join(unfixed),
                    'run the gmsa_nodes role, then recreate the gMSA pods on those nodes'))
    return out


def _ad_problems(account, info, context):
    """Problems of the account in Active Directory: attributes, password readers, SPNs."""
    out = []
    ad_result = next((r for r in (context['results'].get('ad_gmsa') or {}).get('accounts') or [] if r.get('name') == info['name']), {})
    if ad_result.get('changed'):
        out.append(('the attributes of %s in Active Directory differ from gmsa_accounts' % account['name'], 'run the gmsa_ad role'))
    allowed = [p['sam_account_name'].lower() for p in info.get('allowed_to_retrieve_password') or []
               if isinstance(p.get('sam_account_name'), str)]
    not_allowed = [name.lower() for name in context['needed'] if name.lower() not in allowed]
    if not_allowed:
        out.append(('%s may not retrieve the password of %s' % (', '.join(not_allowed), account['name']), 'grant them: run the gmsa_ad role'))
    registered = [spn.lower() for spn in info.get('service_principal_names') or []]
    for spn in account.get('spns') or []:
        others = [name for name in context['spn_owners'].get(spn.lower(), []) if name != info['name']]
        if others:
            out.append(('SPN %s is registered on %s too (duplicate SPNs break Kerberos)' % (spn, ', '.join(others)),
                        'remove it from %s (setspn -D %s <account>)' % (', '.join(others), spn)))
        if spn.lower() not in registered:
            out.append(('SPN %s is not registered on %s' % (spn, account['name']), 'run the gmsa_ad role'))
    return out


def _kubernetes_problems(account, spec, plugin_guid, context):
    """Problems of the credential spec, its RBAC, the API server's answers, the pods and the workloads."""
    out = []
    results = context['results']
    specs = results.get('credspecs_specs') or {}
    spec_objects = [o for o in _objects(specs, changed_only=False) if o.get('name') == spec]
    if specs.get('skipped'):
        out.append(('the credential spec %s cannot exist without the CRD' % spec, 'run the gmsa_cluster role, then gmsa_credspecs'))
    elif any(o.get('action') == 'created' for o in spec_objects):
        out.append(('the credential spec %s does not exist (pods naming it are refused with 404)' % spec, 'run the gmsa_credspecs role'))
    elif any(o.get('action') != 'unchanged' for o in spec_objects):
        portable = ' (portable: it must carry HostAccountConfig with PluginGUID %s)' % plugin_guid if plugin_guid else ''
        out.append(('the credential spec %s differs from the domain facts%s' % (spec, portable), 'run the gmsa_credspecs role'))
    for binding in _objects(results.get('credspecs_rbac')):
        if binding.get('name') not in (cluster_role_name(spec), role_binding_name(spec)):
            continue
        where = 'in %s' % binding['namespace'] if binding.get('namespace') else 'cluster-wide'
        state = 'missing' if binding.get('action') == 'created' else 'different'
        out.append(('%s %s %s is %s: the service accounts of gmsa_accounts[].use_by may not use %s (pods refused with 403)'
                    % (binding.get('kind'), binding['name'], where, state, spec), 'run the gmsa_credspecs role'))
    for denied in context['access'].get(spec, []):
        if denied.get('allowed'):
            continue
        out.append(('service account %s/%s may not use %s (the API server answers no; the webhook refuses its pods with 403)'
                    % (denied['namespace'], denied['service_account'], spec),
                    'run the gmsa_credspecs role (gmsa_accounts[].use_by lists it), or check who removed RoleBinding %s in %s'
                    % (role_binding_name(spec), denied['namespace'])))
    for pod in context['pods'].get(spec, []):
        diagnosis = pod.get('diagnosis') or {}
        if diagnosis.get('status', 'error') in ('problem', 'error'):
            out.append(('pod %s/%s: %s' % (pod['namespace'], pod['name'], diagnosis.get('summary', diagnosis.get('stage', '?'))),
                        diagnosis.get('next_step') or 'see the pod check above'))
    for workload in _objects(results.get('credspecs_workloads')):
        for wanted in account.get('workloads') or []:
            if (wanted.get('name'), wanted.get('namespace'), wanted.get('kind') or 'Deployment') == \
                    (workload.get('name'), workload.get('namespace'), workload.get('kind')):
                out.append(('%s %s/%s does not name %s' % (workload['kind'], workload['namespace'], workload['name'], spec),
                            'run the gmsa_credspecs role (the workload then rolls out)'))
    return out


def _by_spec(entries):
    out = {}
    for entry in entries or []:
        out.setdefault(entry.get('credential_spec'), []).append(entry)
    return out


def validate_report(accounts, nodes=None, domain=None, found=None, results=None, errors=None, access=None, pods=None):
    """One entry per gMSA: {gmsa, credential_spec, ok, problems, next_step, access, pods, portable}."""
    nodes, domain, found = nodes or {}, domain or {}, found or []
    computers = list(nodes.get('computers') or [])
    identity_sam = _identity_sam(nodes)
    group = nodes.get('host_group') or ''
    spn_owners = {}
    for other in found:
        for spn in other.get('service_principal_names') or []:
            spn_owners.setdefault(spn.lower(), []).append(other['name'])
    members = computers + ([identity_sam] if identity_sam else [])
    context = {'results': results or {}, 'spn_owners': spn_owners, 'needed': [group] if group else members,
               'access': _by_spec(access), 'pods': _by_spec(pods)}
    cluster = _cluster_problems(context['results'])
    names = [account['name'].lower() for account in accounts]
    report = []
    for account in accounts:
        spec = account_credential_spec_name(account)
        sam = (_strip_dollar(account.get('sam_account_name') or account['name']) + '$').lower()
        plugin_guid = _plugin_guid(domain, sam, nodes)
        info = next((i for i in found if isinstance(i.get('sam_account_name'), str) and i['sam_account_name'].lower() == sam), None)
        problems = []
        if domain and not domain.get('kds_root_key_usable', True):
            usable_from = (domain.get('kds_root_key') or {}).get('usable_from') or '10 hours after the key was created'
            problems.append(('no KDS root key is usable yet, so no gMSA password can be derived',
                             'wait until %s (Add-KdsRootKey -EffectiveImmediately still waits for replication)' % usable_from))
        if info is None:
            problems.append(('the gMSA %s does not exist in Active Directory' % account['name'], 'run the gmsa_ad role'))
        else:
            problems += _ad_problems(account, info, context)
        identity_result = (context['results'].get('ad_portable_identity') or {}).get('user') or {}
        if identity_sam and identity_result.get('sid') is None:
            problems.append(('the portable identity %s does not exist, so the ccg.exe plugin has no account to retrieve the password with'
                             % identity_sam, 'run the gmsa_ad role, then store its credentials where the plugin reads them '
                                             '(docs/portable-identity.md)'))
        if group and (context['results'].get('ad_host_group') or {}).get('changed'):
            problems.append(('the host group %s is missing, or lacks some of %s' % (group, ', '.join(members)),
                             'run the gmsa_ad role, then reboot the added nodes (or klist -li 0x3e7 purge) '
                             'so they get a Kerberos ticket with the new group'))
        problems += cluster
        for error in errors or []:
            mentioned = [name for name in names if name in error.lower()]
            if not mentioned or account['name'].lower() in mentioned:
                problems.append(('checking failed: ' + error, 'fix what the message names, then run playbooks/site.yml'))
        problems += _kubernetes_problems(account, spec, plugin_guid, context)
        dns = domain.get('dns_name', '<domain>')
        report.append({
            'gmsa': account['name'], 'credential_spec': spec, 'ok': not problems,
            'problems': [problem for problem, _fix in problems],
            'access': [{key: answer.get(key) for key in ('namespace', 'service_account', 'allowed', 'reason')}
                       for answer in context['access'].get(spec, [])],
            'pods': [{'pod': '%s/%s' % (pod['namespace'], pod['name']), 'status': (pod.get('diagnosis') or {}).get('status', 'error'),
                      'stage': (pod.get('diagnosis') or {}).get('stage'), 'next_step': (pod.get('diagnosis') or {}).get('next_step')}
                     for pod in context['pods'].get(spec, [])],
            'portable': {'identity': identity_sam or None, 'plugin_guid': plugin_guid} if nodes.get('mode') in PORTABLE_MODES else None,
            'next_step': problems[0][1] if problems else INSIDE_THE_POD.format(dns=dns),
        })
    return report


class FilterModule:
    def filters(self):
        return {'validate_report': validate_report}
