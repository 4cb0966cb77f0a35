"""Docker and Swarm credential specs end to end: ansible-playbook -> docker_credential_spec -> pywinrm -> the
local WinRM test endpoint (lab/winrm/server.py with lab/winrm/fake_docker.py imitating the PowerShell on a
per-host fake file system, read back through the control port).

One model, two outputs: the file's bytes are compared with the JSON the Kubernetes path produces for the same
input - the credential_spec module's ``contents`` and, through the real kube-apiserver and upstream's
windows-gmsa webhook v0.13.0 (Go's encoding/json), the ``gmsaCredentialSpec`` a pod gets.

What this cannot prove: that the PowerShell behaves on Windows as imitated (see docs/docker.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time

import pytest

from ansible_collections.winkube.gmsa.plugins.module_utils.models.credential_spec import build_credential_spec, to_bytes
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.docker_scripts import DOCKER_CREDENTIAL_SPEC
from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.scripts import BOOTSTRAP

DEFAULT_PATH = 'C:\\ProgramData\\Docker\\CredentialSpecs\\%s.json'
DAEMON_JSON = 'C:\\ProgramData\\docker\\config\\daemon.json'
DOMAIN = {'dns_name': 'contoso.test', 'netbios_name': 'CONTOSO', 'forest_dns_name': 'contoso.test',
          'domain_guid': '244818ae-87ac-4fcd-92ec-e79e5252348a',
          'domain_sid': 'S-1-5-21-2126449477-2524075714-3094792973'}
# Reaches the host as data: quotes, $(), backticks, CR/LF, HTML characters Go escapes, non-BMP unicode.
HOSTILE_SCOPE = 'x\'; Remove-Item C:\\ -Recurse; "$(whoami)" `n <b>&amp;</b> \u2028 \r\n ü 🚀 ]]> %PATH%'
HOSTS = ('WIN-NODE1', 'WIN-NODE2')


@pytest.fixture
def lab(winrm_lab):
    winrm_lab.reset()
    return winrm_lab


def _play(tasks):
    """A playbook on localhost; tasks are (name, module, args)."""
    lines = ['    - name: %s\n      %s: %s\n' % (name, module, json.dumps(args, ensure_ascii=False))
             for name, module, args in tasks]
    return '- hosts: localhost\n  gather_facts: false\n  tasks:\n' + ''.join(lines)


def run(run_playbook, lab, args, check=False, diff=False, extra=None):
    body = dict(lab.module_args(), **args)
    body['password'] = '{{ winrm_password }}'
    variables = dict(extra or {}, winrm_password=lab.password)
    result = run_playbook(_play([('run', 'winkube.gmsa.docker_credential_spec', body)]), extra_vars=variables,
                          check=check, diff=diff)
    assert lab.password not in result.stdout + result.stderr, 'the password leaked into the output'
    return result, result.results.get('run', {})


def files(lab, host):
    return {path: base64.b64decode(value) for path, value in (lab.state()[host].get('files') or {}).items()}


def spec_args(name='gmsa-webapp1', **more):
    return dict(name=name, domain=DOMAIN, account='WebApp1', **more)


def test_writes_the_model_bytes_then_changes_nothing(run_playbook, lab):
    expected = to_bytes(build_credential_spec(DOMAIN, 'WebApp1'))
    first, task = run(run_playbook, lab, spec_args())
    assert first.rc == 0, first.failures()
    assert task['changed'] is True and [h['changed'] for h in task['hosts']] == [True, True]
    for host in HOSTS:
        assert files(lab, host) == {DEFAULT_PATH % 'gmsa-webapp1': expected}
        ops = lab.state()[host]['file_ops']
        assert [op[0] for op in ops] == ['write', 'move'] and ops[0][1].endswith('.tmp') and ops[1][1] == ops[0][1]
    assert not expected.startswith(b'\xef\xbb\xbf')  # no BOM
    assert task['content'].encode('utf-8') == expected and task['sha256'] == hashlib.sha256(expected).hexdigest()
    assert task['security_opt'] == 'credentialspec=file://gmsa-webapp1.json'
    assert task['hosts'][0]['path'] == DEFAULT_PATH % 'gmsa-webapp1'
    assert task['hosts'][0]['data_root_source'] == 'default'
    assert task['swarm'] == {'config_name': 'gmsa-webapp1', 'content': expected.decode('utf-8'),
                             'config_create': 'docker config create gmsa-webapp1 gmsa-webapp1.json',
                             'credential_spec_argument': '--credential-spec="config://gmsa-webapp1"',
                             'file': None, 'file_changed': False}

    second, task = run(run_playbook, lab, spec_args())
    assert second.rc == 0, second
    assert task['changed'] is False and [h['changed'] for h in task['hosts']] == [False, False]
    assert [op[0] for op in lab.state()['WIN-NODE1']['file_ops']] == ['write', 'move']  # nothing written again

    # the script and the bootstrap are the collection's constants; the content travelled as data
    journal = lab.journal()
    assert len(journal) == 4
    for entry in journal:
        assert entry['bootstrap'] == BOOTSTRAP and entry['script'] == DOCKER_CREDENTIAL_SPEC.text
        assert base64.b64decode(entry['data']['content']) == expected
        assert entry['data_in_command_line'] is False and entry['data_in_script_text'] is False


def test_a_different_file_is_replaced_and_diff_shows_both(run_playbook, lab):
    path = DEFAULT_PATH % 'gmsa-webapp1'
    old = b'\xef\xbb\xbf{\r\n  "CmsPlugins": ["ActiveDirectory"]\r\n}'  # what Set-Content -Encoding UTF8 would leave
    lab.put_state('WIN-NODE1', {'files': {path: base64.b64encode(old).decode()}})
    lab.put_state('WIN-NODE2', {'files': {path: base64.b64encode(to_bytes(build_credential_spec(DOMAIN, 'WebApp1'))).decode()}})
    result, task = run(run_playbook, lab, spec_args(), diff=True)
    assert result.rc == 0, result
    assert [h['changed'] for h in task['hosts']] == [True, False]
    assert task['hosts'][0]['before_sha256'] == hashlib.sha256(old).hexdigest()
    assert [op[0] for op in lab.state()['WIN-NODE1']['file_ops']] == ['write', 'replace']
    diff = task['diff'][0]
    assert diff['before'] == old.decode('utf-8') and diff['after'] == task['content']
    assert diff['before_header'].endswith(path)


def test_check_mode_writes_nothing_and_predicts(run_playbook, lab):
    result, task = run(run_playbook, lab, spec_args(), check=True, diff=True)
    assert result.rc == 0, result
    assert task['changed'] is True and [h['changed'] for h in task['hosts']] == [True, True]
    assert task['diff'][0]['before'] == '' and json.loads(task['diff'][0]['after'])['CmsPlugins'] == ['ActiveDirectory']
    for host in HOSTS:
        assert files(lab, host) == {}
    assert all(entry['data']['check_mode'] is True for entry in lab.journal())


def test_absent_removes_and_then_changes_nothing(run_playbook, lab):
    assert run(run_playbook, lab, spec_args())[0].rc == 0
    check, task = run(run_playbook, lab, {'name': 'gmsa-webapp1', 'state': 'absent'}, check=True)
    assert check.rc == 0 and task['changed'] is True, check
    assert files(lab, 'WIN-NODE1') != {}
    first, task = run(run_playbook, lab, {'name': 'gmsa-webapp1', 'state': 'absent'}, diff=True)
    assert first.rc == 0 and task['changed'] is True, first
    assert task['diff'][0]['after'] == '' and task['content'] is None
    for host in HOSTS:
        assert files(lab, host) == {}
    second, task = run(run_playbook, lab, {'name': 'gmsa-webapp1', 'state': 'absent'})
    assert second.rc == 0 and task['changed'] is False, second


def test_custom_and_discovered_data_root(run_playbook, lab):
    expected = to_bytes(build_credential_spec(DOMAIN, 'WebApp1'))
    result, task = run(run_playbook, lab, spec_args(data_root='D:\\docker'))
    assert result.rc == 0, result
    assert files(lab, 'WIN-NODE1') == {'D:\\docker\\CredentialSpecs\\gmsa-webapp1.json': expected}
    assert task['hosts'][0]['data_root_source'] == 'option'
    assert task['security_opt'] == 'credentialspec=file://gmsa-webapp1.json'  # relative to the data root

    lab.reset()
    daemon = json.dumps({'data-root': 'E:\\Docker Data', 'hosts': ['npipe://']}).encode()
    lab.put_state('WIN-NODE1', {'files': {DAEMON_JSON: base64.b64encode(b'\xef\xbb\xbf' + daemon).decode()}})
    result, task = run(run_playbook, lab, spec_args(discover_data_root=True))
    assert result.rc == 0, result
    assert files(lab, 'WIN-NODE1')['E:\\Docker Data\\CredentialSpecs\\gmsa-webapp1.json'] == expected
    assert files(lab, 'WIN-NODE2') == {DEFAULT_PATH % 'gmsa-webapp1': expected}  # no daemon.json: the default
    assert [(h['data_root'], h['data_root_source']) for h in task['hosts']] == [
        ('E:\\Docker Data', 'daemon.json'), ('C:\\ProgramData\\Docker', 'default')]
    # without discover_data_root the daemon.json is not read
    result, task = run(run_playbook, lab, spec_args(name='other'))
    assert task['hosts'][0]['path'] == DEFAULT_PATH % 'other'


def test_bad_names_and_data_roots_fail_before_anything_is_written(run_playbook, lab):
    for name in ('..\\..\\Windows\\evil', 'a/b', '..', 'a..b', 'NUL', 'con.json', '-x', 'x' * 65, 'ä', ''):
        result, task = run(run_playbook, lab, spec_args(name=name))
        assert result.rc != 0, name
        assert task['msg'].startswith('nothing was written: name: '), task['msg']
        assert 'letters, digits' in task['msg']
    result, task = run(run_playbook, lab, spec_args(swarm_config_name='a b'))
    assert result.rc != 0 and 'swarm_config_name' in task['msg'], result
    for root in ('docker', 'C:docker', 'C:\\a\\..\\b', 'C:\\a"b', 'C:\\a:b'):
        result, task = run(run_playbook, lab, spec_args(data_root=root))
        assert result.rc != 0 and 'data_root: ' in task['msg'], (root, result)
    result, task = run(run_playbook, lab, {'name': 'x', 'credspec': {'CmsPlugins': ['ActiveDirectory']}})
    assert result.rc != 0 and 'credspec: ActiveDirectoryConfig is missing' in task['msg'], result
    result, task = run(run_playbook, lab, spec_args(data_root='D:\\d', discover_data_root=True))
    assert result.rc != 0 and 'exclude each other' in task['msg'], result
    result, task = run(run_playbook, lab, {'name': 'x'})
    assert result.rc != 0 and 'give credspec, or domain and account' in task['msg'], result
    result, task = run(run_playbook, lab, {'name': 'x', 'domain': dict(DOMAIN, domain_sid='S-1-5-18'),
                                           'account': 'WebApp1'})
    assert result.rc != 0 and 'domain/account: ' in task['msg'] and 'domain SID' in task['msg'], result
    assert lab.journal() == []  # no host was contacted
    for host in HOSTS:
        assert files(lab, host) == {}


def test_hostile_values_arrive_as_data(run_playbook, lab):
    accounts = [{'name': 'Batch1', 'scope': HOSTILE_SCOPE}]
    expected = to_bytes(build_credential_spec(DOMAIN, 'WebApp1', additional_accounts=accounts))
    assert b'\\u003cb\\u003e\\u0026amp;' in expected and '🚀'.encode() in expected  # Go's escaping, raw UTF-8
    # through an extra vars file: a raw U+2028 would be a line break in the playbook's YAML itself
    args = spec_args(additional_accounts='{{ accounts }}')
    result, task = run(run_playbook, lab, args, extra={'accounts': accounts})
    assert result.rc == 0, result
    assert files(lab, 'WIN-NODE2') == {DEFAULT_PATH % 'gmsa-webapp1': expected}
    for entry in lab.journal():
        assert entry['data_in_command_line'] is False and entry['data_in_script_text'] is False


def test_credspec_dict_json_text_and_resource_give_the_same_bytes(run_playbook, lab, tmp_path):
    spec = build_credential_spec(DOMAIN, 'WebApp1')
    expected = to_bytes(spec)
    resource = {'apiVersion': 'windows.k8s.io/v1', 'kind': 'GMSACredentialSpec', 'metadata': {'name': 'x'},
                'credspec': spec}
    variants = [spec, json.dumps(spec, indent=4), resource]
    for variant in variants:
        result, task = run(run_playbook, lab, {'name': 'gmsa-webapp1', 'credspec': variant})
        assert result.rc == 0, result
        assert files(lab, 'WIN-NODE1') == {DEFAULT_PATH % 'gmsa-webapp1': expected}
        assert task['changed'] is (variant is spec)


def test_swarm_file_on_the_controller(run_playbook, lab, tmp_path):
    target = tmp_path / 'swarm' / 'gmsa-webapp1.json'
    args = spec_args(swarm_file=str(target), swarm_config_name='credspec-webapp1')
    result, task = run(run_playbook, lab, args, check=True)
    assert result.rc == 0 and task['swarm']['file_changed'] is True and not target.exists(), result
    result, task = run(run_playbook, lab, args)
    assert result.rc == 0, result
    assert target.read_bytes() == files(lab, 'WIN-NODE1')[DEFAULT_PATH % 'gmsa-webapp1']
    assert task['swarm']['credential_spec_argument'] == '--credential-spec="config://credspec-webapp1"'
    assert task['swarm']['config_create'] == 'docker config create credspec-webapp1 gmsa-webapp1.json'
    lab.reset()  # the hosts lost their files; the controller's file is unchanged
    result, task = run(run_playbook, lab, args)
    assert result.rc == 0 and task['changed'] is True and task['swarm']['file_changed'] is False, result
    result, task = run(run_playbook, lab, dict(name='gmsa-webapp1', state='absent', swarm_file=str(target)))
    assert result.rc == 0 and task['swarm']['file_changed'] is True and not target.exists(), result


def test_powershell_error_on_one_host(run_playbook, lab):
    lab.put_state('WIN-NODE2', {'errors': {'docker_credential_spec': {
        'message': "Access to the path 'C:\\ProgramData\\Docker\\CredentialSpecs' is denied.",
        'category': 'PermissionDenied', 'error_id': 'UnauthorizedAccessException', 'command': 'New-Item'}}})
    result, task = run(run_playbook, lab, spec_args())
    assert result.rc != 0, result
    assert '1 of 2 hosts failed' in task['msg'] and 'is denied' in task['msg']
    assert task['hosts'][0]['changed'] is True and task['changed'] is True
    assert task['hosts'][1]['error_kind'] == 'powershell'
    assert files(lab, 'WIN-NODE1') != {}


def _wait_for(predicate, timeout=30, what='condition'):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f'timed out after {timeout}s waiting for {what} (last: {last!r})')


@pytest.mark.parametrize('scope', [
    HOSTILE_SCOPE.replace('🚀', ''),
    HOSTILE_SCOPE,
], ids=['bmp', 'non-bmp'])
def test_one_model_two_outputs_docker_file_equals_what_kubernetes_pods_get(
        run_playbook, lab, k8s_lab, gmsa_webhook, scope):
    """The Docker file's bytes == credential_spec's ``contents`` == the gmsaCredentialSpec the webhook (Go's
    encoding/json over the resource the real kube-apiserver stored) puts into a pod, for the same input -
    including characters Go escapes (<, >, &, U+2028) and non-ASCII."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    name, namespace, service_account = 'gmsa-dockerapp1', 'winkube-docker-apps', 'app'
    spec = build_credential_spec(DOMAIN, 'DockerApp1', additional_accounts=[{'name': 'Batch1', 'scope': scope}])
    k8s = dict(k8s_lab.ansible_vars())
    docker = dict(lab.module_args(), password='{{ winrm_password }}', name=name, credspec='{{ spec }}')
    hook = dict(k8s, name='gmsa-webhook-docker', namespace='winkube-gmsa-docker', webhook_url=gmsa_webhook.url,
                certificate_mode='external', ca_bundle='{{ ca_bundle }}')
    bindings = [{'credential_spec': name, 'use_by': [{'namespace': namespace, 'service_accounts': [service_account]}]}]
    tasks = [
        ('crd', 'winkube.gmsa.crd', k8s),
        ('spec', 'winkube.gmsa.credential_spec', dict(k8s, credential_specs=[{'name': name, 'credspec': '{{ spec }}'}])),
        ('rbac', 'winkube.gmsa.credential_spec_rbac', dict(k8s, bindings=bindings)),
        ('hook', 'winkube.gmsa.webhook', hook),
        ('docker', 'winkube.gmsa.docker_credential_spec', docker),
    ]
    api = k8s_lab.api_client()
    core = client.CoreV1Api(api)
    for create, body in ((core.create_namespace, {'metadata': {'name': namespace}}),
                         (lambda b: core.create_namespaced_service_account(namespace, b), {'metadata': {'name': service_account}})):
        try:
            create(body)
        except ApiException as exc:
            assert exc.status == 409
    result = run_playbook(_play(tasks), extra_vars={'winrm_password': lab.password, 'spec': spec,
                                                    'ca_bundle': gmsa_webhook.ca_bundle_pem.decode()})
    assert result.rc == 0, result.failures()
    written = files(lab, 'WIN-NODE1')[DEFAULT_PATH % name]
    assert written == to_bytes(spec)
    assert result.results['spec']['contents'][name].encode('utf-8') == written
    assert result.results['docker']['swarm']['content'].encode('utf-8') == written

    pod = {'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': 'docker-compare'},
           'spec': {'serviceAccountName': service_account, 'nodeSelector': {'kubernetes.io/os': 'windows'},
                    'securityContext': {'windowsOptions': {'gmsaCredentialSpecName': name}},
                    'containers': [{'name': 'app', 'image': 'example/iis:ltsc2022'}]}}

    def admitted():
        try:
            created = core.create_namespaced_pod(namespace, pod, dry_run='All')
        except ApiException:
            return None
        return created.spec.security_context.windows_options.gmsa_credential_spec

    try:
        from_kubernetes = _wait_for(admitted, what='the webhook to fill gmsaCredentialSpec')
    finally:  # the configuration would stay active for the rest of the session's tests
        adm = client.AdmissionregistrationV1Api(api)
        for kind in ('mutating', 'validating'):
            try:
                getattr(adm, 'delete_%s_webhook_configuration' % kind)(hook['name'])
            except ApiException as exc:
                assert exc.status == 404
    assert from_kubernetes.encode('utf-8') == written


ROLE_PLAY = """
- hosts: localhost
  gather_facts: false
  pre_tasks:
    - name: Read the domain facts for the comparison
      winkube.gmsa.domain_info: "{{ gmsa_domain }}"
      register: facts
%s
  tasks:
    - name: Run the role
      ansible.builtin.include_role:
        name: winkube.gmsa.gmsa_credspecs
        tasks_from: "{{ entry | default('main') }}"
"""
CRD_PRE_TASK = """
    - name: Install the CRD
      winkube.gmsa.crd:
        kubeconfig: "{{ gmsa_cluster.kubeconfig }}"
"""


def _task(result, suffix):
    for name, task in result.results.items():
        if name.endswith(suffix):
            return task
    raise AssertionError(f'no task ending in {suffix!r} in {sorted(result.results)}')


def _role_vars(samba_lab, lab, tmp_path, targets, cluster=None):
    return {
        'gmsa_domain': samba_lab.module_args(),
        'gmsa_cluster': cluster or {},
        'gmsa_accounts': [{'name': 'DockerApp1'}, {'name': 'DockerBatch', 'credential_spec': 'docker-batch',
                                                   'additional_accounts': ['DockerApp1']}],
        'gmsa_credspecs_targets': targets,
        'gmsa_docker': dict(lab.module_args(), swarm_output_dir=str(tmp_path / 'swarm'), data_root='D:\\docker',
                            discover_data_root=False),
    }


def _expected(result):
    facts = _task(result, 'Read the domain facts for the comparison')
    return {'gmsa-dockerapp1': to_bytes(build_credential_spec(facts, 'DockerApp1')),
            'docker-batch': to_bytes(build_credential_spec(facts, 'DockerBatch', additional_accounts=['DockerApp1']))}


def test_role_docker_target(run_playbook, lab, samba_lab, tmp_path):
    variables = _role_vars(samba_lab, lab, tmp_path, 'docker')
    check = run_playbook(ROLE_PLAY % '', extra_vars=variables, check=True)
    assert check.rc == 0, check.failures()
    assert _task(check, 'on the Docker hosts')['changed'] is True
    assert files(lab, 'WIN-NODE1') == {} and not (tmp_path / 'swarm').exists()

    first = run_playbook(ROLE_PLAY % '', extra_vars=variables)
    assert first.rc == 0, first.failures()
    expected = _expected(first)
    for host in HOSTS:
        assert files(lab, host) == {'D:\\docker\\CredentialSpecs\\%s.json' % name: content
                                    for name, content in expected.items()}
    for name, content in expected.items():
        assert (tmp_path / 'swarm' / f'{name}.json').read_bytes() == content
    second = run_playbook(ROLE_PLAY % '', extra_vars=variables)
    assert second.rc == 0 and not second.changed, second

    removed = run_playbook(ROLE_PLAY % '', extra_vars=dict(variables, entry='remove'))
    assert removed.rc == 0 and removed.changed, removed
    assert files(lab, 'WIN-NODE1') == {} and list((tmp_path / 'swarm').iterdir()) == []


def test_role_docker_target_needs_the_docker_hosts(run_playbook, lab, samba_lab, tmp_path):
    variables = _role_vars(samba_lab, lab, tmp_path, 'docker')
    del variables['gmsa_docker']
    result = run_playbook(ROLE_PLAY % '', extra_vars=variables)
    assert result.rc != 0 and 'gmsa_credspecs_targets docker needs the Docker hosts: put them in the inventory group ' \
        'windows_nodes' in result.stdout, result
    none = dict(_role_vars(samba_lab, lab, tmp_path, 'docker'), gmsa_nodes={'access': 'none'})
    result = run_playbook(ROLE_PLAY % '', extra_vars=none)
    assert result.rc != 0 and 'gmsa_nodes.access is none' in result.stdout, result
    bad = run_playbook(ROLE_PLAY % '', extra_vars=dict(_role_vars(samba_lab, lab, tmp_path, 'swarm')))
    assert bad.rc != 0 and "Validating arguments against arg spec 'main'" in bad.stdout, bad
    assert lab.journal() == []


def test_role_both_targets_one_inventory(run_playbook, lab, samba_lab, k8s_lab, tmp_path):
    from kubernetes import client

    variables = _role_vars(samba_lab, lab, tmp_path, 'both', cluster={'kubeconfig': k8s_lab.kubeconfig})
    first = run_playbook(ROLE_PLAY % CRD_PRE_TASK, extra_vars=variables)
    assert first.rc == 0, first.failures()
    expected = _expected(first)
    contents = _task(first, 'Ensure one credential spec per gMSA')['contents']
    custom = client.CustomObjectsApi(k8s_lab.api_client())
    for name, content in expected.items():
        assert contents[name].encode('utf-8') == content == files(lab, 'WIN-NODE2')['D:\\docker\\CredentialSpecs\\%s.json' % name]
        stored = custom.get_cluster_custom_object('windows.k8s.io', 'v1', 'gmsacredentialspecs', name)['credspec']
        assert stored == json.loads(content)
    second = run_playbook(ROLE_PLAY % CRD_PRE_TASK, extra_vars=variables)
    assert second.rc == 0 and not second.changed, second

    removed = run_playbook(ROLE_PLAY % CRD_PRE_TASK, extra_vars=dict(variables, entry='remove'))
    assert removed.rc == 0, removed
    assert files(lab, 'WIN-NODE1') == {}
    names = [i['metadata']['name'] for i in custom.list_cluster_custom_object('windows.k8s.io', 'v1', 'gmsacredentialspecs')['items']]
    assert not set(expected) & set(names)


def test_role_docker_target_on_the_inventory_hosts(run_playbook, lab, samba_lab, tmp_path):
    """gmsa_docker without hosts: the Docker hosts are the inventory group's (here the group named by
    gmsa_nodes.inventory_group), reached through Ansible's winrm connection plugin with their inventory variables;
    the same bytes on every host and in the Swarm files; removal; a second run unchanged."""
    from test_winrm_inventory import inventory
    inv = tmp_path / 'docker_hosts.yml'
    inv.write_text(inventory(lab, tmp_path).read_text().replace('windows_nodes', 'docker_hosts'))
    variables = _role_vars(samba_lab, lab, tmp_path, 'docker')
    variables['gmsa_docker'] = {k: v for k, v in variables['gmsa_docker'].items()
                                if k in ('swarm_output_dir', 'data_root', 'discover_data_root')}
    variables['gmsa_nodes'] = {'access': 'winrm', 'inventory_group': 'docker_hosts'}
    args = ('-i', str(inv))
    write_task = "Write each gMSA's credential spec on the Docker hosts of the inventory"
    check = run_playbook(ROLE_PLAY % '', extra_vars=variables, check=True, diff=True, args=args)
    assert check.rc == 0, check.failures()
    assert files(lab, 'WIN-NODE1') == {} and not (tmp_path / 'swarm').exists()
    # check mode predicts the Swarm file (once per gMSA, with the first host's item) and shows it in the diff
    items = _task(check, write_task)['results']
    assert [(i['item'][1], i['swarm']['file_changed']) for i in items] == \
        [('WIN-NODE1', True), ('WIN-NODE2', False), ('WIN-NODE1', True), ('WIN-NODE2', False)]
    swarm_file = str(tmp_path / 'swarm' / 'gmsa-dockerapp1.json')
    assert items[0]['swarm']['file'] == swarm_file and items[1]['swarm']['file'] is None
    assert [d['after_header'] for d in items[0]['diff']][-1] == swarm_file and items[0]['diff'][-1]['before'] == ''

    first = run_playbook(ROLE_PLAY % '', extra_vars=variables, args=args)
    assert first.rc == 0, first.failures()
    expected = _expected(first)
    for host in HOSTS:
        assert files(lab, host) == {'D:\\docker\\CredentialSpecs\\%s.json' % name: content
                                    for name, content in expected.items()}, host
    for name, content in expected.items():
        # the exact bytes of the hosts' files on every ansible-core (2.17's templating once re-serialised them)
        assert (tmp_path / 'swarm' / f'{name}.json').read_bytes() == content
        assert (tmp_path / 'swarm' / f'{name}.json').stat().st_mode & 0o777 == 0o644
    assert all(e.get('bootstrap_recognised') for e in lab.journal() if e.get('name') == 'docker_credential_spec')
    second = run_playbook(ROLE_PLAY % '', extra_vars=variables, args=args)
    assert second.rc == 0 and not second.changed, second

    # a Swarm file with the same JSON in other bytes (what a re-serialising copy wrote) is replaced
    respaced = json.dumps(json.loads(expected['docker-batch'])).encode()
    (tmp_path / 'swarm' / 'docker-batch.json').write_bytes(respaced)
    third = run_playbook(ROLE_PLAY % '', extra_vars=variables, args=args)
    assert third.rc == 0 and [i['swarm']['file_changed'] for i in _task(third, write_task)['results']] == \
        [False, False, True, False], third
    assert (tmp_path / 'swarm' / 'docker-batch.json').read_bytes() == expected['docker-batch'] != respaced

    removed = run_playbook(ROLE_PLAY % '', extra_vars=dict(variables, entry='remove'), args=args)
    assert removed.rc == 0 and removed.changed, removed
    assert files(lab, 'WIN-NODE1') == {} and files(lab, 'WIN-NODE2') == {} and list((tmp_path / 'swarm').iterdir()) == []
