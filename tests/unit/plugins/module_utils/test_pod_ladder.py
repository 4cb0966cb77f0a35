"""pod_gmsa_check's ladder: parsers, diagnosis and step order on recorded outputs shaped like the documented ones
(Kubernetes "Configure GMSA" troubleshooting section, Microsoft's nltest examples)."""

from __future__ import annotations

import json

import pytest

from ansible_collections.winkube.gmsa.plugins.module_utils.k8s import pod_ladder

DOMAIN = 'contoso.com'
OK = {'parent': 'contoso.com. (1)\r\nThe command completed successfully\r\n',
      'dns': 'Server:  dc1.contoso.com\r\nAddress:  10.0.0.10\r\n\r\nName:    contoso.com\r\n'
             'Addresses:  10.0.0.10\r\n          10.0.0.11\r\n\r\n',
      'query': 'Flags: 0\r\nConnection Status = 0 0x0 NERR_Success\r\nThe command completed successfully\r\n',
      'reset': 'Flags: 30 HAS_IP  HAS_TIMESERV\r\nTrusted DC Name \\\\dc10.contoso.com\r\n'
               'Trusted DC Connection Status Status = 0 0x0 NERR_Success\r\nThe command completed successfully\r\n'}
NO_CREDSPEC = 'Getting parent domain failed: Status = 1722 0x6ba RPC_S_SERVER_UNAVAILABLE\r\n'
QUERY_DOWN = 'I_NetLogonControl failed: Status = 1722 0x6ba RPC_S_SERVER_UNAVAILABLE\r\n'
RESET_NO_DC = ('Flags: 0\r\nTrusted DC Name \r\nTrusted DC Connection Status Status = 1311 0x51f '
               'ERROR_NO_LOGON_SERVERS\r\nThe command completed successfully\r\n')
NXDOMAIN = "Server:  UnKnown\r\nAddress:  10.96.0.10\r\n\r\n*** UnKnown can't find contoso.com: Non-existent domain\r\n"
TIMEOUT = 'DNS request timed out.\r\n    timeout was 2 seconds.\r\nServer:  UnKnown\r\nAddress:  10.96.0.10\r\n'


def pod(filled=True, name='gmsa-webapp1', level='container'):
    options = {}
    if name:
        options['gmsaCredentialSpecName'] = name
    if filled:
        options['gmsaCredentialSpec'] = '{}'
    container = {'name': 'iis'}
    spec = {'containers': [{'name': 'sidecar'}, container]}
    if level == 'container':
        container['securityContext'] = {'windowsOptions': options}
    else:
        spec['securityContext'] = {'windowsOptions': options}
    return {'spec': spec}


def outcome(stdout, code=0, error=None):
    return {'stdout': stdout, 'stderr': '', 'exit_code': code, 'error': error}


def runner(answers):
    calls = []

    def run(argv):
        calls.append(list(argv))
        key = argv[1].split(':')[0].lstrip('/') if argv[0] == 'nltest.exe' else 'dns'
        value = answers[key]
        return value.pop(0) if isinstance(value, list) else value
    return run, calls


def test_parsers_on_documented_output():
    assert pod_ladder.parse_parent_domain(OK['parent']) == {'ok': True, 'domain': 'contoso.com', 'status_code': None,
                                                            'status': None}
    assert pod_ladder.parse_parent_domain('CONTOSO.COM (1)\nThe command completed successfully')['domain'] == DOMAIN
    failed = pod_ladder.parse_parent_domain(NO_CREDSPEC)
    assert failed['ok'] is False and failed['status_code'] == 1722 and failed['status'] == 'RPC_S_SERVER_UNAVAILABLE'
    assert pod_ladder.parse_nslookup(OK['dns'], DOMAIN) == {'ok': True, 'addresses': ['10.0.0.10', '10.0.0.11'],
                                                            'error': None}
    assert "can't find contoso.com" in pod_ladder.parse_nslookup(NXDOMAIN, DOMAIN)['error']
    assert pod_ladder.parse_nslookup(TIMEOUT, DOMAIN)['ok'] is False
    # the server block alone (its own name and address) is no answer for the domain
    assert pod_ladder.parse_nslookup('Server:  dc1.contoso.com\nAddress:  10.0.0.10\n', DOMAIN)['ok'] is False
    assert pod_ladder.parse_secure_channel(OK['query'])['ok'] is True
    assert pod_ladder.parse_secure_channel(OK['reset'])['trusted_dc'] == 'dc10.contoso.com'
    # nltest says "completed successfully" while the DC connection status is an error
    reset = pod_ladder.parse_secure_channel(RESET_NO_DC)
    assert reset['ok'] is False and reset['status_code'] == 1311 and reset['status'] == 'ERROR_NO_LOGON_SERVERS'
    assert pod_ladder.parse_secure_channel(QUERY_DOWN)['ok'] is False
    assert pod_ladder.parse_secure_channel('')['ok'] is False


@pytest.mark.parametrize('answers, stage', [
    ({'parentdomain': outcome(NO_CREDSPEC, 1722)}, 'credential_spec_not_applied'),
    ({'parentdomain': outcome('fabrikam.com. (1)\nThe command completed successfully')}, 'wrong_domain'),
    ({'parentdomain': outcome(OK['parent']), 'dns': outcome(NXDOMAIN, 1)}, 'dns'),
    ({'parentdomain': outcome(OK['parent']), 'dns': outcome(OK['dns']), 'query': outcome(OK['query'])}, 'healthy'),
    ({'parentdomain': outcome(OK['parent']), 'dns': outcome(OK['dns']), 'query': outcome(QUERY_DOWN, 1722)},
     'secure_channel'),
    ({'parentdomain': outcome('', None, 'exec refused (HTTP 403): forbidden')}, 'exec_failed'),
])
def test_ladder_stops_at_the_first_failing_rung(answers, stage):
    run, calls = runner(answers)
    steps, diagnosis, reset = pod_ladder.run_ladder(pod(), 'iis', DOMAIN, run)
    assert diagnosis['stage'] == stage and reset is False
    assert len(calls) == len(steps) == len(answers)
    assert (diagnosis['next_step'] is None) == (stage == 'healthy')


def test_sc_reset_repairs_then_recommends_the_hook():
    run, calls = runner({'parentdomain': outcome(OK['parent']), 'dns': outcome(OK['dns']),
                         'query': [outcome(QUERY_DOWN, 1722), outcome(OK['query'])], 'sc_reset': outcome(OK['reset'])})
    steps, diagnosis, reset = pod_ladder.run_ladder(pod(), 'iis', DOMAIN, run, sc_reset=True)
    assert reset is True and diagnosis['status'] == 'repaired'
    assert 'netlogon_restart_hook' in diagnosis['next_step']
    assert calls[3] == ['nltest.exe', '/sc_reset:contoso.com']
    assert [s['status'] for s in steps] == ['pass', 'pass', 'fail', 'pass', 'pass']


def test_sc_reset_that_fails_and_check_mode():
    answers = {'parentdomain': outcome(OK['parent']), 'dns': outcome(OK['dns']), 'query': outcome(QUERY_DOWN, 1722),
               'sc_reset': outcome(RESET_NO_DC)}
    run, calls = runner(answers)
    steps, diagnosis, reset = pod_ladder.run_ladder(pod(), 'iis', DOMAIN, run, sc_reset=True)
    assert reset is True and diagnosis['stage'] == 'secure_channel_reset_failed'
    run, calls = runner(answers)
    steps, diagnosis, reset = pod_ladder.run_ladder(pod(), 'iis', DOMAIN, run, sc_reset=True, check_mode=True)
    assert reset is False and diagnosis['stage'] == 'secure_channel'
    assert steps[-1]['status'] == 'skip' and ['nltest.exe', '/sc_reset:contoso.com'] not in calls


def test_pod_level_decisions_need_no_exec():
    run, calls = runner({})
    assert pod_ladder.run_ladder(pod(name=None, filled=False), 'iis', DOMAIN, run)[1]['stage'] == 'no_credential_spec'
    assert pod_ladder.run_ladder(pod(filled=False), 'iis', DOMAIN, run)[1]['stage'] == 'credential_spec_not_expanded'
    assert calls == []
    # pod-level credential spec applies to every container
    assert pod_ladder.credential_spec_of(pod(level='pod'), 'sidecar') == ('gmsa-webapp1', True)
    assert pod_ladder.default_container(pod()) == 'iis'
    assert pod_ladder.default_container(pod(level='pod')) == 'sidecar'


@pytest.mark.parametrize('value', ['contoso', 'contoso.com /sc_reset:x', '-x.com', 'a..com', 'contoso.com;x', '',
                                   None, 'c\u00f6ntoso.com', 'x' * 64 + '.com'])
def test_domain_validation(value):
    with pytest.raises(ValueError, match='domain'):
        pod_ladder.check_domain_name(value)


def test_domain_normalised_and_argv():
    assert pod_ladder.check_domain_name(' Contoso.COM. ') == 'contoso.com'
    assert pod_ladder.commands('contoso.com')['dns'] == ['nslookup.exe', 'contoso.com']


@pytest.mark.parametrize('channel, code, error', [
    ('{"metadata":{},"status":"Success"}', 0, None),
    (json.dumps({'status': 'Failure', 'reason': 'NonZeroExitCode', 'message': 'command terminated with non-zero exit '
                 'code: 1722', 'details': {'causes': [{'reason': 'ExitCode', 'message': '1722'}]}}), 1722, None),
    (json.dumps({'status': 'Failure', 'reason': 'InternalError', 'message': 'executable file not found'}), None,
     'executable file not found'),
    ('', None, 'the exec stream ended without a status'),
])
def test_exit_code_from_the_error_channel(channel, code, error):
    assert pod_ladder._exit_code(channel) == (code, error)
