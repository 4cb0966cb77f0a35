"""winkube.gmsa.variable_problems: what gmsa_ad and gmsa_credspecs refuse in their variables before writing anything."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.winkube.gmsa.plugins.filter.variable_problems import FilterModule

problems = FilterModule().filters()['variable_problems']
NODES = {'mode': 'domain_joined', 'host_group': 'ContainerHosts', 'computers': []}
HOST_CONFIG = {'plugin': 'azure_key_vault', 'object_id': '11111111-2222-3333-4444-555555555555', 'secret_uri': 'https://kv1.vault.azure.net/secrets/u'}


def ad(accounts, **nodes):
    return problems({'gmsa_accounts': accounts, 'gmsa_nodes': dict(NODES, **nodes), 'gmsa_cluster': None}, 'gmsa_ad')


def credspecs(accounts, targets='kubernetes', docker=None, docker_hosts=None, **nodes):
    return problems({'gmsa_accounts': accounts, 'gmsa_nodes': dict(NODES, **nodes), 'gmsa_docker': docker or {},
                     'gmsa_credspecs_targets': targets}, 'gmsa_credspecs', docker_hosts=docker_hosts, docker_group='windows_nodes')


def test_good_variables_have_no_problem():
    assert ad([{'name': 'WebApp1', 'sam_account_name': 'WebApp1$'}]) == []
    assert credspecs([{'name': 'WebApp1', 'use_by': [{'namespace': 'web', 'service_accounts': ['iis']}],
                       'workloads': [{'namespace': 'web', 'name': 'iis'}]}]) == []


def test_ad_a_gmsa_twice_whatever_the_case_and_a_long_sam_account_name():
    assert ad([{'name': 'WebApp1'}, {'name': 'WEBAPP1'}, {'name': 'webapp1'}]) == ['gMSA webapp1 is listed more than once in gmsa_accounts']
    assert ad([{'name': 'ABCDEFGHIJKLMN'}, {'name': 'ABCDEFGHIJKLMNO'}, {'name': 'x', 'sam_account_name': 'ABCDEFGHIJKLMNO$'}]) == [
        'gMSA ABCDEFGHIJKLMNO: sAMAccountName ABCDEFGHIJKLMNO$ is longer than 15 characters; set sam_account_name',
        'gMSA x: sAMAccountName ABCDEFGHIJKLMNO$ is longer than 15 characters; set sam_account_name']


def test_ad_nodes_portable_mode_and_who_retrieves_the_password():
    assert ad([{'name': 'a'}], mode='portable') == ['gmsa_nodes.mode portable needs gmsa_nodes.host_account_config (the ccg.exe plugin)']
    assert ad([{'name': 'a'}], portable_identity={'name': 'u'}) == ['gmsa_nodes.portable_identity is only used with gmsa_nodes.mode portable']
    assert ad([{'name': 'a'}], host_group='') == ['gmsa_nodes has neither a host_group nor computers: no node could retrieve a password']
    assert ad([], host_group='') == []
    identity = {'name': 'u', 'kubernetes_secret': {'name': 's', 'namespace': 'n'}}
    assert ad([{'name': 'a'}], mode='portable', host_account_config=HOST_CONFIG, host_group='', portable_identity=identity) == [
        'gmsa_nodes.portable_identity.kubernetes_secret needs gmsa_cluster (the connection the Secret is written with)']


def test_credspecs_names_kubernetes_refuses_or_two_gmsas_share():
    assert credspecs([{'name': 'a', 'credential_spec': 'Bad_Spec'}, {'name': 'b', 'credential_spec': 'x'}, {'name': 'c', 'credential_spec': 'x'}]) == [
        'credential spec x is used by more than one gMSA',
        'credential spec name Bad_Spec is not a DNS-1123 subdomain (lower case letters, digits, - and .)']
    # WebApp1 and webapp1$ derive the same name
    assert credspecs([{'name': 'WebApp1'}, {'name': 'webapp1$'}]) == ['credential spec gmsa-webapp1 is used by more than one gMSA']


def test_credspecs_a_long_name_with_use_by_is_no_problem():
    # ClusterRole and RoleBinding names are path segment names (kubernetes pkg/apis/rbac/validation: ValidateRBACName),
    # with no length limit, so winkube-gmsa-use-<name> fits whenever the credential spec name does.
    name = 'gmsa-' + 'a' * 248  # 253 characters, the longest credential spec name
    assert credspecs([{'name': 'a', 'credential_spec': name, 'use_by': [{'namespace': 'web', 'service_accounts': ['iis']}]}]) == []


def test_credspecs_workloads_and_use_by():
    accounts = [{'name': 'a', 'workloads': [{'namespace': 'n', 'name': 'w'}, {'namespace': 'n', 'name': 'w', 'container': 'c'}],
                 'use_by': [{'namespace': 'web', 'service_accounts': []}, {'namespace': 'batch'}]},
                {'name': 'b', 'workloads': [{'namespace': 'n', 'name': 'w', 'kind': 'Deployment'}, {'namespace': 'n', 'name': 'w', 'kind': 'StatefulSet'}]}]
    assert credspecs(accounts) == [
        'Deployment n/w is wired to more than one gMSA',
        'gmsa_accounts[0] (a).use_by namespace web: service_accounts is empty; list the service accounts that may use the gMSA, or drop the entry']


def test_credspecs_docker_targets():
    long_name = [{'name': 'a' * 70}]
    assert credspecs(long_name, targets='docker', access='none') == [
        'gmsa_credspecs_targets docker writes files on the Docker hosts, but gmsa_nodes.access is none (leave the Windows hosts alone): '
        'set it to winrm or leave it out',
        'credential spec name gmsa-%s is longer than 64 characters (Docker config names)' % ('a' * 70)]
    assert credspecs([{'name': 'a'}], targets='both') == [
        'gmsa_credspecs_targets both needs the Docker hosts: put them in the inventory group windows_nodes (ansible_connection winrm or psrp) '
        'or name your group in gmsa_docker.inventory_group (gmsa_docker.hosts is the deprecated form)']
    assert credspecs([{'name': 'a'}], targets='both', docker_hosts=['win1']) == []
    assert credspecs([{'name': 'a'}], targets='docker', docker={'hosts': ['win1']}) == []
    assert credspecs(long_name) == []  # the 64 characters are Docker's limit only


def test_an_unknown_role_is_an_error():
    with pytest.raises(AnsibleFilterError, match='role must be gmsa_ad or gmsa_credspecs'):
        problems({}, 'gmsa_nodes')
