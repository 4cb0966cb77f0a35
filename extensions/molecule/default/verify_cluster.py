"""Molecule verifier: read the cluster back and try admission. Usage: verify_cluster.py KUBECONFIG EXPECTED_JSON.

EXPECTED_JSON is {"domain": "<dns name>", "accounts": gmsa_accounts}. Exits non-zero with the reasons when
anything is missing. Pods are only created as server-side dry runs (the webhooks are still called).
"""

from __future__ import annotations

import json
import re
import sys

from kubernetes import client, config
from kubernetes.client.rest import ApiException


def spec_name(account):
    if account.get('credential_spec'):
        return account['credential_spec']
    return re.sub(r'[^a-z0-9]+', '-', ('gmsa-' + account['name'].rstrip('$')).lower()).strip('-')


def pod(namespace, service_account, credspec):
    return {'apiVersion': 'v1', 'kind': 'Pod',
            'metadata': {'generateName': 'gmsa-verify-', 'namespace': namespace},
            'spec': {'serviceAccountName': service_account, 'nodeSelector': {'kubernetes.io/os': 'windows'},
                     'securityContext': {'windowsOptions': {'gmsaCredentialSpecName': credspec}},
                     'containers': [{'name': 'app', 'image': 'mcr.microsoft.com/windows/nanoserver:ltsc2022'}]}}


def main():
    kubeconfig, expected = sys.argv[1], json.loads(sys.argv[2])
    api = config.new_client_from_config(config_file=kubeconfig)
    custom, rbac = client.CustomObjectsApi(api), client.RbacAuthorizationV1Api(api)
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    problems, checked = [], 0
    unbound_sa = 'winkube-verify-unbound'
    for account in expected['accounts']:
        name = spec_name(account)
        sam = (account.get('sam_account_name') or account['name']).rstrip('$')
        try:
            spec = custom.get_cluster_custom_object('windows.k8s.io', 'v1', 'gmsacredentialspecs', name)['credspec']
        except ApiException as exc:
            problems.append('credential spec %s: %s' % (name, exc.status))
            continue
        join = spec['DomainJoinConfig']
        if join['MachineAccountName'] != sam or join['DnsName'] != expected['domain']:
            problems.append('credential spec %s names %s in %s' % (name, join['MachineAccountName'], join['DnsName']))
        role = 'winkube-gmsa-use-' + name
        rules = rbac.read_cluster_role(role).rules
        if not any('use' in r.verbs and name in (r.resource_names or []) for r in rules):
            problems.append('ClusterRole %s does not allow use of %s' % (role, name))
        for use in account.get('use_by') or []:
            binding = rbac.read_namespaced_role_binding(role, use['namespace'])
            bound = sorted(s.name for s in binding.subjects or [] if s.kind == 'ServiceAccount')
            if bound != sorted(use['service_accounts']):
                problems.append('RoleBinding %s/%s binds %s' % (use['namespace'], role, bound))
            # admission: a bound service account is admitted and gets the credential spec's contents
            created = core.create_namespaced_pod(use['namespace'], pod(use['namespace'], use['service_accounts'][0], name),
                                                 dry_run='All')
            contents = created.spec.security_context.windows_options.gmsa_credential_spec
            if not contents or json.loads(contents) != spec:
                problems.append('pod of %s/%s was admitted without the contents of %s' % (
                    use['namespace'], use['service_accounts'][0], name))
            # an unbound service account is refused by the validating webhook
            try:
                core.create_namespaced_service_account(use['namespace'], {'metadata': {'name': unbound_sa}})
            except ApiException as exc:
                if exc.status != 409:
                    raise
            try:
                core.create_namespaced_pod(use['namespace'], pod(use['namespace'], unbound_sa, name), dry_run='All')
                problems.append('pod of the unbound service account %s/%s was admitted' % (use['namespace'], unbound_sa))
            except ApiException as exc:
                if exc.status != 403 or 'not authorized' not in (exc.body or ''):
                    problems.append('unbound service account: expected 403 "not authorized", got %s %s' % (
                        exc.status, exc.body))
            finally:
                core.delete_namespaced_service_account(unbound_sa, use['namespace'])
            checked += 1
        for workload in account.get('workloads') or []:
            if (workload.get('kind') or 'Deployment') != 'Deployment':
                continue
            template = apps.read_namespaced_deployment(workload['name'], workload['namespace']).spec.template.spec
            if workload.get('container'):
                options = [c.security_context.windows_options for c in template.containers
                           if c.name == workload['container'] and c.security_context]
                value = options[0].gmsa_credential_spec_name if options and options[0] else None
            else:
                options = template.security_context.windows_options if template.security_context else None
                value = options.gmsa_credential_spec_name if options else None
            if value != name:
                problems.append('Deployment %s/%s names %r, not %s' % (workload['namespace'], workload['name'], value, name))
    if problems:
        print('\n'.join(problems))
        return 1
    print('ok: %d credential specs, %d admission round trips' % (len(expected['accounts']), checked))
    return 0


if __name__ == '__main__':
    sys.exit(main())
