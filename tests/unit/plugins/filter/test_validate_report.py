"""winkube.gmsa.validate_report: the gmsa_validate role's diagnosis per gMSA, from what the role gathered."""

from __future__ import annotations

import copy

from ansible_collections.winkube.gmsa.plugins.filter.validate_report import FilterModule

report = FilterModule().filters()['validate_report']

DOMAIN = {'dns_name': 'contoso.com', 'netbios_name': 'CONTOSO', 'domain_guid': '244818ae-87ac-4fcd-92ec-e79e5252348a',
          'domain_sid': 'S-1-5-21-2126449477-2524075714-3094792973', 'forest_dns_name': 'contoso.com', 'kds_root_key_usable': True}
NODES = {'mode': 'domain_joined', 'host_group': 'ContainerHosts', 'computers': []}
ACCOUNTS = [{'name': 'WebApp1', 'spns': ['HTTP/web1.contoso.com'], 'workloads': [{'namespace': 'web', 'name': 'iis'}]},
            {'name': 'Batch1', 'credential_spec': 'batch'}]
FOUND = [{'name': 'WebApp1', 'sam_account_name': 'WebApp1$', 'service_principal_names': ['HTTP/web1.contoso.com'],
          'allowed_to_retrieve_password': [{'sam_account_name': 'ContainerHosts'}]},
         {'name': 'Batch1', 'sam_account_name': 'BATCH1$', 'service_principal_names': [],
          'allowed_to_retrieve_password': [{'sam_account_name': 'containerhosts'}, {'sam_account_name': None}]}]


def run(accounts=None, nodes=None, found=None, **kwargs):
    kwargs.setdefault('domain', DOMAIN)
    return report(copy.deepcopy(accounts or ACCOUNTS), nodes=nodes or NODES, found=FOUND if found is None else found, **kwargs)


def by_gmsa(entries):
    return {entry['gmsa']: entry for entry in entries}


def test_nothing_wrong_gives_ok_and_the_steps_inside_a_pod():
    out = run()
    assert [(e['gmsa'], e['credential_spec'], e['ok'], e['problems']) for e in out] == [
        ('WebApp1', 'gmsa-webapp1', True, []), ('Batch1', 'batch', True, [])]
    assert out[0]['next_step'].startswith('none from the controller') and 'nltest /sc_verify:contoso.com' in out[0]['next_step']
    assert out[0]['portable'] is None and out[0]['access'] == [] and out[0]['pods'] == []


def test_a_missing_gmsa_and_an_unusable_kds_root_key_come_first_in_that_order():
    domain = dict(DOMAIN, kds_root_key_usable=False, kds_root_key={'usable_from': '2026-12-06T08:00:00Z'})
    entry = by_gmsa(run(found=FOUND[1:], domain=domain))['WebApp1']
    assert entry['problems'] == ['no KDS root key is usable yet, so no gMSA password can be derived',
                                 'the gMSA WebApp1 does not exist in Active Directory']
    assert entry['next_step'] == 'wait until 2026-12-06T08:00:00Z (Add-KdsRootKey -EffectiveImmediately still waits for replication)'


def test_password_readers_and_spns_are_compared_case_insensitively():
    found = copy.deepcopy(FOUND)
    found[0]['allowed_to_retrieve_password'] = [{'sam_account_name': 'Other'}]
    found[0]['service_principal_names'] = []
    found[1]['service_principal_names'] = ['http/WEB1.contoso.com']
    entry = by_gmsa(run(found=found))['WebApp1']
    assert entry['problems'] == [
        'containerhosts may not retrieve the password of WebApp1',
        'SPN HTTP/web1.contoso.com is registered on Batch1 too (duplicate SPNs break Kerberos)',
        'SPN HTTP/web1.contoso.com is not registered on WebApp1']
    assert entry['next_step'] == 'grant them: run the gmsa_ad role'
    # without a host group the computers themselves must be allowed
    entry = by_gmsa(run(nodes={'mode': 'domain_joined', 'host_group': '', 'computers': ['NODE1$', 'containerhosts']}))['WebApp1']
    assert entry['problems'] == ['node1$ may not retrieve the password of WebApp1']


def test_drift_in_the_other_roles_results_is_reported_per_gmsa():
    results = {
        'ad_gmsa': {'accounts': [{'name': 'WebApp1', 'changed': True}, {'name': 'Batch1', 'changed': False}]},
        'ad_host_group': {'changed': True},
        'cluster_crd': {'objects': [{'kind': 'CustomResourceDefinition', 'action': 'updated'}]},
        'cluster_webhook': {'objects': [{'kind': 'Service', 'action': 'created'}, {'kind': 'Service', 'action': 'updated'},
                                        {'kind': 'Deployment', 'action': 'unchanged'}]},
        'nodes_registry': {'nodes': [{'host': 'win1', 'changed': True}, {'host': 'win2', 'changed': False}, {'host': 'win3'}]},
        'credspecs_specs': {'objects': [{'name': 'gmsa-webapp1', 'action': 'created'}, {'name': 'batch', 'action': 'updated'}]},
        'credspecs_rbac': {'objects': [
            {'kind': 'ClusterRole', 'name': 'winkube-gmsa-use-gmsa-webapp1', 'action': 'created'},
            {'kind': 'RoleBinding', 'name': 'winkube-gmsa-use-batch', 'namespace': 'jobs', 'action': 'updated'},
            {'kind': 'RoleBinding', 'name': 'winkube-gmsa-use-other', 'namespace': 'jobs', 'action': 'created'}]},
        'credspecs_workloads': {'objects': [{'kind': 'Deployment', 'namespace': 'web', 'name': 'iis', 'action': 'updated'},
                                            {'kind': 'StatefulSet', 'namespace': 'web', 'name': 'iis', 'action': 'updated'}]},
    }
    out = by_gmsa(run(results=results))
    cluster = ['the host group ContainerHosts is missing, or lacks some of ',
               'the GMSACredentialSpec CRD is missing or differs',
               'the admission webhook differs from gmsa_cluster.webhook (Service)',
               'EnableCompartmentNamespace is not 1 on win1 (gMSA pods there cannot reach SMB shares by name)']
    assert out['WebApp1']['problems'] == ['the attributes of WebApp1 in Active Directory differ from gmsa_accounts'] + cluster + [
        'the credential spec gmsa-webapp1 does not exist (pods naming it are refused with 404)',
        'ClusterRole winkube-gmsa-use-gmsa-webapp1 cluster-wide is missing: the service accounts of gmsa_accounts[].use_by may not use '
        'gmsa-webapp1 (pods refused with 403)',
        'Deployment web/iis does not name gmsa-webapp1']
    assert out['Batch1']['problems'] == cluster + [
        'the credential spec batch differs from the domain facts',
        'RoleBinding winkube-gmsa-use-batch in jobs is different: the service accounts of gmsa_accounts[].use_by may not use '
        'batch (pods refused with 403)']
    assert out['Batch1']['next_step'].startswith('run the gmsa_ad role, then reboot the added nodes')


def test_a_skipped_credential_spec_task_means_no_crd():
    entry = run(results={'credspecs_specs': {'skipped': True}})[1]
    assert entry['problems'] == ['the credential spec batch cannot exist without the CRD']


def test_failed_comparisons_go_to_the_gmsas_they_name_else_to_all():
    out = by_gmsa(run(errors=['gMSA webapp1 could not be read', 'the API server did not answer']))
    assert out['WebApp1']['problems'] == ['checking failed: gMSA webapp1 could not be read', 'checking failed: the API server did not answer']
    assert out['Batch1']['problems'] == ['checking failed: the API server did not answer']


def test_access_answers_and_pods_go_to_their_credential_spec():
    access = [{'credential_spec': 'batch', 'namespace': 'jobs', 'service_account': 'runner', 'allowed': False, 'reason': 'no rule', 'x': 1},
              {'credential_spec': 'batch', 'namespace': 'jobs', 'service_account': 'ok', 'allowed': True, 'reason': 'rule'}]
    pods = [{'credential_spec': 'batch', 'namespace': 'jobs', 'name': 'p1',
             'diagnosis': {'status': 'problem', 'stage': 'parentdomain', 'summary': 'error 1722', 'next_step': 'apply the spec'}},
            {'credential_spec': 'batch', 'namespace': 'jobs', 'name': 'p2', 'diagnosis': {'status': 'healthy', 'stage': 'done'}},
            {'credential_spec': 'batch', 'namespace': 'jobs', 'name': 'p3'}]
    out = by_gmsa(run(access=access, pods=pods))
    assert out['WebApp1']['ok'] and out['WebApp1']['access'] == [] and out['WebApp1']['pods'] == []
    batch = out['Batch1']
    assert batch['problems'] == [
        'service account jobs/runner may not use batch (the API server answers no; the webhook refuses its pods with 403)',
        'pod jobs/p1: error 1722', 'pod jobs/p3: ?']
    assert batch['next_step'].endswith('check who removed RoleBinding winkube-gmsa-use-batch in jobs')
    assert batch['access'] == [{'namespace': 'jobs', 'service_account': 'runner', 'allowed': False, 'reason': 'no rule'},
                               {'namespace': 'jobs', 'service_account': 'ok', 'allowed': True, 'reason': 'rule'}]
    assert batch['pods'] == [{'pod': 'jobs/p1', 'status': 'problem', 'stage': 'parentdomain', 'next_step': 'apply the spec'},
                             {'pod': 'jobs/p2', 'status': 'healthy', 'stage': 'done', 'next_step': None},
                             {'pod': 'jobs/p3', 'status': 'error', 'stage': None, 'next_step': None}]


def test_portable_mode_checks_the_identity_and_names_the_plugin_guid():
    nodes = {'mode': 'portable', 'host_group': 'ContainerHosts', 'computers': [],
             'portable_identity': {'name': 'ccg-reader$'},
             'host_account_config': {'plugin': 'azure_key_vault', 'object_id': '2bd7c3b8-0f4e-4e0c-9d6a-2f1d7f3c8a11',
                                     'secret_uri': 'https://kv1.vault.azure.net/secrets/u'}}
    results = {'credspecs_specs': {'objects': [{'name': 'gmsa-webapp1', 'action': 'updated'}]},
               'ad_portable_identity': {'user': {'sid': None}}}
    entry = by_gmsa(run(nodes=nodes, results=results))['WebApp1']
    assert entry['portable'] == {'identity': 'ccg-reader', 'plugin_guid': '{CCC2A336-D7F3-4818-A213-272B7924213E}'}
    assert entry['problems'] == [
        'the portable identity ccg-reader does not exist, so the ccg.exe plugin has no account to retrieve the password with',
        'the credential spec gmsa-webapp1 differs from the domain facts (portable: it must carry HostAccountConfig with PluginGUID '
        '{CCC2A336-D7F3-4818-A213-272B7924213E})']
    # the identity with its SID found: only the spec remains
    results['ad_portable_identity'] = {'user': {'sid': 'S-1-5-21-1-2-3-1200'}}
    assert len(by_gmsa(run(nodes=nodes, results=results))['WebApp1']['problems']) == 1


def test_a_long_gmsa_name_gets_the_modules_credential_spec_name():
    entry = run(accounts=[{'name': 'W' * 300}], found=[])[0]
    assert entry['credential_spec'] == 'gmsa-' + 'w' * 248
