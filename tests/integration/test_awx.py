"""AWX readiness: the execution environment's build context (ansible-builder create) and site.yml run through
ansible-runner the way an AWX job runs it, with the example job template, survey and credential types of
docs/awx/ (docs/awx.md).

No AWX server and no container engine run here. What AWX itself would do is done by this module, as AWX
does it: the survey's answers (their defaults) and the job template's extra vars go into env/extravars (the
answers marked !unsafe, as AWX marks launch-time values), the credential types' injectors are rendered into
environment variables, files and extra vars, and the collection is on ANSIBLE_COLLECTIONS_PATH as it would
be inside the execution environment. Tools: ansible-builder and ansible-runner (tests/requirements-tools.txt
and tests/requirements-oldest-tools.txt, installed beside both tested ansible-core versions); without them the
tests fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import ansible_runner
import jinja2
import jinja2.meta
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
AWX = REPO / 'docs' / 'awx'
BIN = Path(sys.executable).parent
SURVEY_TYPES = ('text', 'textarea', 'password', 'integer', 'float', 'multiplechoice', 'multiselect')
COMPUTERS = ['WIN-NODE1$', 'WIN-NODE2$']
HOST_GROUP = 'AwxHosts'


def _load(name):
    return json.loads((AWX / name).read_text())


def _survey_answers(survey):
    """What AWX passes for a launch that keeps every default (checked against the question like AWX does)."""
    answers = {}
    for question in survey['spec']:
        value = question['default']
        if question['type'] in ('text', 'textarea', 'password'):
            assert question.get('min', 0) <= len(value) <= question.get('max', 1024), question
        if question['type'] == 'multiplechoice':
            assert value in question['choices'], question
        answers[question['variable']] = value
    return answers


def _template_variables(value):
    """Names the Jinja expressions in a structure refer to."""
    if isinstance(value, dict):
        return set().union(*map(_template_variables, value.values()))
    if isinstance(value, list):
        return set().union(*map(_template_variables, value)) if value else set()
    if isinstance(value, str) and '{{' in value:
        return jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(value))
    return set()


def test_survey_spec_is_well_formed_and_matches_the_job_template():
    survey = _load('survey_spec.json')
    assert set(survey) == {'name', 'description', 'spec'} and survey['name'] and survey['spec']
    variables = [q['variable'] for q in survey['spec']]
    assert len(variables) == len(set(variables)), variables
    for question in survey['spec']:
        assert {'question_name', 'variable', 'type', 'required', 'default'} <= set(question), question
        assert question['type'] in SURVEY_TYPES, question
        assert isinstance(question['required'], bool) and question['question_name'], question
        assert re.fullmatch(r'[a-z][a-z0-9_]*', question['variable']), question
        if question['type'] in ('multiplechoice', 'multiselect'):
            assert isinstance(question['choices'], list) and question['choices'], question
    _survey_answers(survey)

    template = _load('job_template.json')
    assert template['survey_enabled'] is True and template['playbook'] == 'playbooks/site.yml'
    assert (REPO / template['playbook']).is_file()
    extra_vars = yaml.safe_load(template['extra_vars'])
    # the job template builds the variable model from exactly the survey's variables: none unused, none missing
    assert set(extra_vars) == {'gmsa_accounts'}, extra_vars
    assert _template_variables(extra_vars) == set(variables)
    # the workload kinds offered are the roles' own choices
    spec = yaml.safe_load((REPO / 'roles/gmsa_credspecs/meta/argument_specs.yml').read_text())
    kinds = spec['argument_specs']['main']['options']['gmsa_accounts']['options']['workloads']['options']['kind']
    question = next(q for q in survey['spec'] if q['variable'] == 'gmsa_workload_kind')
    assert question['choices'] == kinds['choices'] and question['default'] == kinds['default']


def test_credential_types_keep_secrets_out_of_extra_vars():
    types = {t['name']: t for t in _load('credential_types.json')}
    assert set(types) == {'winkube.gmsa Active Directory', 'winkube.gmsa Kubernetes kubeconfig'}
    for kind in types.values():
        assert kind['kind'] == 'cloud'
        fields = {f['id']: f for f in kind['inputs']['fields']}
        assert set(kind['inputs']['required']) <= set(fields)
        secret = {name for name, f in fields.items() if f.get('secret')}
        assert secret, kind['name']
        for value in kind['injectors'].get('extra_vars', {}).values():
            assert not _template_variables(value) & secret, kind['name']
    ad = types['winkube.gmsa Active Directory']['injectors']['env']
    assert ad == {'GMSA_AD_SERVER': '{{ server }}', 'GMSA_AD_USERNAME': '{{ username }}', 'GMSA_AD_PASSWORD': '{{ password }}'}
    # the modules read exactly these variables
    from ansible_collections.winkube.gmsa.plugins.module_utils.ad.connection_spec import ENV_NAMES
    assert set(ad) == set(ENV_NAMES.values())


def _tool(name):
    path = BIN / name
    assert path.exists(), f'{name} is not installed beside this ansible-core (tests/requirements-tools.txt, tests/requirements-oldest-tools.txt)'
    return path


def test_ansible_builder_create_makes_a_valid_build_context(tmp_path):
    builder = _tool('ansible-builder')
    galaxy = yaml.safe_load((REPO / 'galaxy.yml').read_text())
    tarball = f"{galaxy['namespace']}-{galaxy['name']}-{galaxy['version']}.tar.gz"
    # what a user has next to execution-environment.yml after `ansible-galaxy collection build`
    source = tmp_path / 'source'
    source.mkdir()
    for name in ('execution-environment.yml', 'requirements.txt', 'bindep.txt'):
        shutil.copy(REPO / name, source / name)
    subprocess.run([str(BIN / 'ansible-galaxy'), 'collection', 'build', str(REPO), '--output-path', str(source)],
                   check=True, capture_output=True, timeout=300)
    assert (source / tarball).is_file()

    context = tmp_path / 'context'
    proc = subprocess.run([str(builder), 'create', '-f', 'execution-environment.yml', '--context', str(context),
                           '--output-filename', 'Containerfile'], cwd=source, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'No matches' not in proc.stdout + proc.stderr, proc.stdout + proc.stderr

    definition = yaml.safe_load((REPO / 'execution-environment.yml').read_text())
    containerfile = (context / 'Containerfile').read_text()
    assert f'ARG EE_BASE_IMAGE="{definition["images"]["base_image"]["name"]}"' in containerfile
    assert 'FROM $EE_BASE_IMAGE AS base' in containerfile
    assert 'COPY _build/requirements.txt requirements.txt' in containerfile
    assert 'COPY _build/bindep.txt bindep.txt' in containerfile
    assert 'ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml' in containerfile
    build = context / '_build'
    assert (build / 'requirements.txt').read_text() == (REPO / 'requirements.txt').read_text()
    assert (build / 'bindep.txt').read_text() == (REPO / 'bindep.txt').read_text()
    assert yaml.safe_load((build / 'requirements.yml').read_text()) == {
        'collections': [{'name': f'collections/{tarball}', 'type': 'file'}]}
    assert (build / 'collections' / tarball).read_bytes() == (source / tarball).read_bytes()

    # The image's galaxy stage: `ansible-galaxy collection install -r requirements.yml` in /build (= _build).
    installed = tmp_path / 'installed'
    proc = subprocess.run([str(BIN / 'ansible-galaxy'), 'collection', 'install', '--offline', '-r', 'requirements.yml',
                           '-p', str(installed)], cwd=build, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    root = installed / 'ansible_collections' / 'winkube' / 'gmsa'
    manifest = json.loads((root / 'MANIFEST.json').read_text())['collection_info']
    assert (manifest['namespace'], manifest['name'], manifest['version']) == ('winkube', 'gmsa', galaxy['version'])
    assert (root / 'playbooks' / 'site.yml').is_file()
    assert sorted(p.name for p in (root / 'roles').iterdir()) == [
        'gmsa_ad', 'gmsa_cluster', 'gmsa_credspecs', 'gmsa_nodes', 'gmsa_validate']


def _inject(credential_type, inputs, env_dir):
    """A credential type's injectors rendered as AWX renders them: (environment, extra vars); files in env_dir."""
    render = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string
    injectors = credential_type['injectors']
    filenames = {}
    for key, template in injectors.get('file', {}).items():
        path = env_dir / ('tmp_' + key.split('.', 1)[1])
        path.write_text(render(template).render(**inputs))
        path.chmod(0o600)
        filenames[key.split('.', 1)[1]] = str(path)
    context = dict(inputs, tower={'filename': filenames})
    env = {name: render(value).render(**context) for name, value in injectors.get('env', {}).items()}
    extra_vars = {name: render(value).render(**context) for name, value in injectors.get('extra_vars', {}).items()}
    return env, extra_vars


class _Unsafe(str):
    """A launch-time value: AWX writes it with the !unsafe tag so Ansible never templates it."""


def _unsafe_representer(dumper, value):
    return dumper.represent_scalar('!unsafe', str(value))


@pytest.fixture(scope='module')
def awx_lab(samba_lab, k8s_lab, gmsa_webhook):
    """The survey's application exists in the cluster, the nodes' computer accounts in the domain."""
    answers = _survey_answers(_load('survey_spec.json'))
    for node in COMPUTERS:
        name = node.rstrip('$')
        if subprocess.run(['samba-tool', 'computer', 'show', name, '-H', samba_lab.env['SAMBA_SAM_LDB']],
                          capture_output=True, check=False).returncode != 0:
            subprocess.run(['samba-tool', 'computer', 'add', name, '-H', samba_lab.env['SAMBA_SAM_LDB']],
                           capture_output=True, check=True)
    _delete_ad_objects(samba_lab, answers)

    from kubernetes import client
    from kubernetes.client.rest import ApiException

    api = k8s_lab.api_client()
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    namespace, deployment = answers['gmsa_namespace'], answers['gmsa_workload_name']
    accounts = [name.strip() for name in answers['gmsa_service_accounts'].split(',')]
    objects = [(core.create_namespace, {'metadata': {'name': namespace}})]
    objects += [(core.create_namespaced_service_account, namespace, {'metadata': {'name': name}}) for name in accounts]
    objects.append((apps.create_namespaced_deployment, namespace, {
        'metadata': {'name': deployment},
        'spec': {'replicas': 1, 'selector': {'matchLabels': {'app': deployment}},
                 'template': {'metadata': {'labels': {'app': deployment}},
                              'spec': {'serviceAccountName': accounts[0], 'nodeSelector': {'kubernetes.io/os': 'windows'},
                                       'containers': [{'name': 'app', 'image': 'example/app:1'}]}}}}))
    for call, *args in objects:
        try:
            call(*args)
        except ApiException as exc:
            if exc.status != 409:
                raise
    yield answers
    _delete_ad_objects(samba_lab, answers)
    core.delete_namespace(namespace)


def _delete_ad_objects(samba_lab, answers):
    conn = samba_lab.ldap()
    conn.search(samba_lab.base_dn, f"(|(sAMAccountName={answers['gmsa_name']}$)(sAMAccountName={HOST_GROUP}))",
                attributes=['cn'])
    for entry in conn.entries:
        conn.delete(entry.entry_dn)


def _private_data_dir(root, samba_lab, k8s_lab, gmsa_webhook, answers):
    """Lays out root as AWX lays out a private_data_dir for the job template; returns the job's environment."""
    types = {t['name']: t for t in _load('credential_types.json')}
    env_dir = root / 'env'
    env_dir.mkdir(parents=True)
    ad_env, ad_vars = _inject(types['winkube.gmsa Active Directory'], {
        'server': samba_lab.server, 'username': samba_lab.admin_username, 'password': samba_lab.admin_password,
        'ca_certificate': Path(samba_lab.ca_file).read_text()}, env_dir)
    k8s_env, k8s_vars = _inject(types['winkube.gmsa Kubernetes kubeconfig'],
                                {'kubeconfig': Path(k8s_lab.kubeconfig).read_text()}, env_dir)

    # The job's extra vars: the job template's own, the survey's answers, the credentials' extra vars.
    template_vars = yaml.safe_load(_load('job_template.json')['extra_vars'])
    launch_vars = {name: _Unsafe(value) for name, value in dict(answers, **ad_vars, **k8s_vars).items()}
    dumper = type('AwxDumper', (yaml.SafeDumper,), {})
    dumper.add_representer(_Unsafe, _unsafe_representer)
    (env_dir / 'extravars').write_text(yaml.dump(dict(template_vars, **launch_vars), Dumper=dumper))

    # The inventory describes the environment: the domain, the cluster's webhook (the lab's runs as a local
    # process) and the nodes. No secret in it.
    (root / 'inventory').mkdir()
    (root / 'inventory' / 'hosts.json').write_text(json.dumps({'all': {
        'hosts': {'localhost': {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}},
        'vars': {
            'gmsa_domain': {'ca_file': '{{ gmsa_ad_ca_file }}', 'kds_root_key': {'lab_mode': True}},
            'gmsa_cluster': {'webhook': {'url': gmsa_webhook.url, 'certificate_mode': 'external',
                                         'ca_bundle': gmsa_webhook.ca_bundle_pem.decode()}},
            'gmsa_nodes': {'host_group': HOST_GROUP, 'computers': COMPUTERS},
        }}}))
    # The project: this repository as AWX's project sync checks it out; the collection as the execution
    # environment holds it.
    (root / 'project').symlink_to(REPO)
    collections = root / 'ee' / 'ansible_collections' / 'winkube'
    collections.mkdir(parents=True)
    (collections / 'gmsa').symlink_to(REPO)
    path = str(BIN) + os.pathsep + os.environ.get('PATH', '')
    return dict(ad_env, **k8s_env, ANSIBLE_COLLECTIONS_PATH=str(root / 'ee'), ANSIBLE_LOCALHOST_WARNING='False', PATH=path)


def _k8s_state(k8s_lab, answers):
    from kubernetes import client

    api = k8s_lab.api_client()
    spec = client.CustomObjectsApi(api).get_cluster_custom_object(
        'windows.k8s.io', 'v1', 'gmsacredentialspecs', answers['gmsa_credential_spec'])['credspec']
    bindings = [b.metadata.name for b in client.RbacAuthorizationV1Api(api).list_namespaced_role_binding(answers['gmsa_namespace']).items]
    pod = client.AppsV1Api(api).read_namespaced_deployment(answers['gmsa_workload_name'], answers['gmsa_namespace']).spec.template.spec
    wired = pod.security_context.windows_options.gmsa_credential_spec_name if pod.security_context else None
    return spec, bindings, wired


def test_site_through_ansible_runner_like_an_awx_job(tmp_path, awx_lab, samba_lab, k8s_lab, gmsa_webhook):
    """site.yml twice (the second run changes nothing), then remove.yml, as AWX jobs; the objects are read back."""
    answers = awx_lab
    root = tmp_path / 'job'
    env = _private_data_dir(root, samba_lab, k8s_lab, gmsa_webhook, answers)

    def job(playbook, ident):
        # suppress_env_files: AWX's default (AWX_RUNNER_OMIT_ENV_FILES), no env/envvars file with the secrets
        return ansible_runner.run(private_data_dir=str(root), playbook=playbook, ident=ident, envvars=env,
                                  suppress_env_files=True, quiet=True, timeout=900)

    def output(ident):
        return (root / 'artifacts' / ident / 'stdout').read_text()[-6000:]

    try:
        first = job('playbooks/site.yml', 'first')
        assert (first.status, first.rc) == ('successful', 0), output('first')
        assert first.stats['changed'].get('localhost', 0) > 0, first.stats
        second = job('playbooks/site.yml', 'second')
        assert (second.status, second.rc) == ('successful', 0), output('second')
        assert second.stats['changed'].get('localhost', 0) == 0, output('second')
        assert not second.stats['failures'] and not second.stats['dark'], second.stats

        # the survey's gMSA, read back from the domain controller ...
        conn = samba_lab.ldap()
        conn.search(samba_lab.base_dn, f"(sAMAccountName={answers['gmsa_name']}$)", attributes=['servicePrincipalName'])
        assert len(conn.entries) == 1, conn.entries
        assert sorted(map(str, conn.entries[0].servicePrincipalName)) == sorted(answers['gmsa_spns'].splitlines())
        conn.search(samba_lab.base_dn, f'(sAMAccountName={HOST_GROUP})', attributes=['member'])
        assert len(conn.entries[0].member) == len(COMPUTERS)
        # ... and from the API server
        spec, bindings, wired = _k8s_state(k8s_lab, answers)
        assert spec['DomainJoinConfig']['MachineAccountName'] == answers['gmsa_name']
        assert bindings == ['winkube-gmsa-use-' + answers['gmsa_credential_spec']]
        assert wired == answers['gmsa_credential_spec']
    finally:
        # the removal job leaves the shared lab as the other test modules expect it (no CRD, no webhook)
        removed = job('playbooks/remove.yml', 'remove')
    assert (removed.status, removed.rc) == ('successful', 0), output('remove')
    conn = samba_lab.ldap()
    conn.search(samba_lab.base_dn, f"(sAMAccountName={answers['gmsa_name']}$)", attributes=['cn'])
    assert not conn.entries
    from kubernetes.client.rest import ApiException
    with pytest.raises(ApiException) as gone:
        _k8s_state(k8s_lab, answers)
    assert gone.value.status == 404  # the credential spec (or its CRD) is gone

    # The AD password came in through the environment only: no output, event, extra var or other file of the jobs
    # holds it. The exception is ansible-runner's own artifacts/<ident>/command, which records the process
    # environment, readable by its owner only (AWX removes the private_data_dir after the job).
    files = [path for path in root.rglob('*') if path.is_file() and not path.is_symlink()]
    events = [path for path in files if path.parent.name == 'job_events']
    assert events and any(answers['gmsa_name'] in path.read_text() for path in events)
    assert (root / 'artifacts' / 'first' / 'stdout') in files and not (root / 'env' / 'envvars').exists()
    for path in files:
        if path.name == 'command' and path.parent.parent.name == 'artifacts':
            assert path.stat().st_mode & 0o077 == 0, path
        else:
            assert samba_lab.admin_password not in path.read_text(errors='replace'), path
