"""node_preflight_info's decision logic: build thresholds, verdicts and fixes (pure Python)."""

from __future__ import annotations

import pytest

from ansible_collections.winkube.gmsa.plugins.module_utils.winrm import preflight


def facts(build=20348, ubr=2340, services=None, joined=True, domain='contoso.com', dns=True, ports=None, hns=1):
    return {
        'computer_name': 'WIN1',
        'os': {'caption': 'Microsoft Windows Server', 'build': build, 'ubr': ubr},
        'domain': {'joined': joined, 'name': domain if joined else 'WORKGROUP'},
        'services': services if services is not None else [
            {'name': 'containerd', 'state': 'Running', 'version': 'containerd github.com/containerd/containerd v1.7.13 7c3'},
            {'name': 'kubelet', 'state': 'Running', 'version': 'Kubernetes v1.30.2'}],
        'dns': {'name': 'contoso.com', 'addresses': ['10.0.0.4'] if dns else [], 'error': None if dns else 'not found'},
        'ports': ports if ports is not None else [
            {'target': 'dc1', 'port': p, 'open': True, 'error': None} for p in (389, 636, 88)],
        'hns_compartment_namespace': hns,
    }


def by_name(result):
    return dict((c['name'], c) for c in result['checks'])


def test_all_good_passes_with_no_fixes():
    result = preflight.evaluate(facts(), domain='contoso.com', node_name='win1',
                                k8s_node={'found': True, 'labels': {'kubernetes.io/os': 'windows'}})
    assert result['verdict'] == 'pass'
    assert all(c['fix'] is None for c in result['checks'])
    assert result['runtime'] == {'name': 'containerd', 'version': '1.7.13', 'state': 'Running'}
    assert result['kubelet_version'] == '1.30.2'


@pytest.mark.parametrize('build, ubr, runtime, status', [
    (17763, 1816, 'containerd', 'fail'),
    (17763, 1817, 'containerd', 'pass'),
    (17763, 6054, 'containerd', 'pass'),
    (17763, None, 'containerd', 'fail'),
    (17763, 1000, 'docker', 'pass'),   # the KB is about containerd
    (14393, 5000, 'containerd', 'fail'),  # Windows Server 2016
    (18363, 1000, 'containerd', 'warn'),  # 1909, semi-annual channel
    (20348, 0, 'containerd', 'pass'),
    (26100, 1, 'containerd', 'pass'),
    (None, None, 'containerd', 'fail'),
])
def test_os_build_thresholds(build, ubr, runtime, status):
    result = preflight.check_os({'os': {'build': build, 'ubr': ubr}}, runtime)
    assert result['status'] == status, result
    assert (result['fix'] is None) == (status == 'pass')
    if (build, status) == (17763, 'fail'):
        assert 'KB5000822' in result['fix'] and '17763.1817' in result['detail']


def test_runtime_checks():
    stopped = [{'name': 'containerd', 'state': 'Stopped', 'version': 'containerd v1.6.0'}]
    assert by_name(preflight.evaluate(facts(services=stopped)))['container_runtime']['status'] == 'fail'
    docker = [{'name': 'docker', 'state': 'Running', 'version': 'Docker version 20.10.9, build c2ea9bc'}]
    check = by_name(preflight.evaluate(facts(services=docker)))['container_runtime']
    assert check['status'] == 'warn' and 'containerd' in check['fix'] and '20.10.9' in check['detail']
    none = by_name(preflight.evaluate(facts(services=[])))['container_runtime']
    assert none['status'] == 'fail' and 'register-service' in none['fix']


def test_domain_membership_modes():
    result = by_name(preflight.evaluate(facts(joined=False), domain='contoso.com'))
    assert result['domain_membership']['status'] == 'fail' and 'Add-Computer' in result['domain_membership']['fix']
    result = by_name(preflight.evaluate(facts(joined=False), mode='non_domain_joined'))
    assert result['domain_membership']['status'] == 'pass'
    result = by_name(preflight.evaluate(facts(domain='fabrikam.com'), domain='contoso.com'))
    assert result['domain_membership']['status'] == 'fail' and 'fabrikam.com' in result['domain_membership']['detail']
    result = by_name(preflight.evaluate(facts(domain='CONTOSO.COM'), domain='contoso.com.'))
    assert result['domain_membership']['status'] == 'pass'


def test_dns_and_dc_reachability():
    result = by_name(preflight.evaluate(facts(dns=False)))
    assert result['domain_dns']['status'] == 'fail' and 'Set-DnsClientServerAddress' in result['domain_dns']['fix']
    closed_ldaps = [{'target': 'dc1', 'port': 389, 'open': True}, {'target': 'dc1', 'port': 88, 'open': True},
                    {'target': 'dc1', 'port': 636, 'open': False, 'error': 'refused'}]
    assert by_name(preflight.evaluate(facts(ports=closed_ldaps)))['dc_reachable']['status'] == 'warn'
    no_kerberos = [{'target': 'dc1', 'port': 389, 'open': True}, {'target': 'dc1', 'port': 88, 'open': False}]
    check = by_name(preflight.evaluate(facts(ports=no_kerberos)))['dc_reachable']
    assert check['status'] == 'fail' and '88' in check['fix']
    # one good DC is enough
    two = no_kerberos + [{'target': 'dc2', 'port': p, 'open': True} for p in (389, 636, 88)]
    assert by_name(preflight.evaluate(facts(ports=two)))['dc_reachable']['status'] == 'pass'
    assert by_name(preflight.evaluate(facts(ports=[])))['dc_reachable']['status'] == 'fail'
    no_domain = facts(ports=[])
    no_domain['dns'] = None
    checks = by_name(preflight.evaluate(no_domain))
    assert checks['domain_dns']['status'] == 'skip' and checks['dc_reachable']['status'] == 'skip'


def test_compartment_and_kubernetes_node():
    assert by_name(preflight.evaluate(facts(hns=None)))['compartment_namespace']['status'] == 'warn'
    assert by_name(preflight.evaluate(facts(hns=0)))['compartment_namespace']['status'] == 'warn'
    assert by_name(preflight.evaluate(facts()))['kubernetes_node']['status'] == 'skip'
    missing = by_name(preflight.evaluate(facts(), node_name='win1', k8s_node={'found': False}))['kubernetes_node']
    assert missing['status'] == 'fail' and 'node_names' in missing['fix']
    linux = {'found': True, 'labels': {'kubernetes.io/os': 'linux'}}
    assert by_name(preflight.evaluate(facts(), node_name='n', k8s_node=linux))['kubernetes_node']['status'] == 'fail'


def test_verdicts_and_fail_on():
    assert preflight.verdict_of([{'status': 'pass'}, {'status': 'skip'}]) == 'pass'
    assert preflight.verdict_of([{'status': 'pass'}, {'status': 'warn'}]) == 'warn'
    assert preflight.verdict_of([{'status': 'warn'}, {'status': 'fail'}]) == 'fail'
    assert preflight.should_fail(['pass', 'warn'], 'fail') is False
    assert preflight.should_fail(['pass', 'warn'], 'warn') is True
    assert preflight.should_fail(['fail'], 'never') is False
    assert preflight.should_fail(['fail'], 'fail') is True


def test_version_parsing_and_node_names():
    assert preflight.version_of('containerd github.com/containerd/containerd/v2 v2.1.4 75cb2b7') == '2.1.4'
    assert preflight.version_of('Kubernetes v1.30.2') == '1.30.2'
    assert preflight.version_of('v1.7.0-rc.1') == '1.7.0-rc.1'
    assert preflight.version_of('') is None
    assert preflight.default_node_name('WIN-NODE1') == 'win-node1'
    assert preflight.default_node_name(None) is None
