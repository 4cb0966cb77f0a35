"""Masking of the secrets inside structured options (plugins/module_utils/secrets.py), with ansible-core's own
argument validation (which lists the no_log values) and remove_values (which masks a result with them)."""

from __future__ import annotations

import json

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values

from ansible_collections.winkube.gmsa.plugins.module_utils.connection.k8s import k8s_argument_spec
from ansible_collections.winkube.gmsa.plugins.module_utils.secrets import mask_structured_secrets
from ansible_collections.winkube.gmsa.plugins.module_utils.connection.winrm import CLUSTER_OPTION

TOKEN = 'eyJhbGciOiJSUzI1NiJ9.tok-en-secret-123'
KEY_DATA = 'LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tc2VjcmV0a2V5'
KUBECONFIG = {
    'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'lab',
    'clusters': [{'name': 'lab', 'cluster': {'server': 'https://127.0.0.1:6443', 'certificate-authority-data': 'Q0FEQVRB'}}],
    'contexts': [{'name': 'lab', 'context': {'cluster': 'lab', 'user': 'admin', 'namespace': 'default'}}],
    'users': [{'name': 'admin', 'user': {'token': TOKEN, 'client-key-data': KEY_DATA}},
              {'name': 'aws', 'user': {'exec': {'apiVersion': 'client.authentication.k8s.io/v1beta1', 'command': 'aws',
                                                'args': ['--secret-arg', 'exec-arg-secret'],
                                                'env': [{'name': 'AWS_SECRET', 'value': 'exec-env-secret'}]}}}],
}
SECRETS = [TOKEN, KEY_DATA, 'exec-arg-secret', 'exec-env-secret']
# What a real result says, which the masking must leave readable.
LEGIT = {'apiVersion': 'windows.k8s.io/v1', 'namespace': 'default', 'msg': 'cannot reach https://127.0.0.1:6443 (context lab)'}


class Module:
    """What mask_structured_secrets uses of AnsibleModule, filled by ansible-core's own validator."""

    def __init__(self, spec, params):
        result = ArgumentSpecValidator(spec).validate(params)
        assert not result.error_messages, result.error_messages
        self.argument_spec, self.params, self.no_log_values = spec, result.validated_parameters, set(result._no_log_values)

    def masked(self, value):
        return json.dumps(remove_values(value, self.no_log_values))


def result_with(module, kubeconfig):
    return dict(LEGIT, invocation={'module_args': {'kubeconfig': kubeconfig}}, error='token %s rejected' % TOKEN)


def test_plain_no_log_mangles_legit_output_and_narrowing_fixes_it():
    module = Module(k8s_argument_spec(), {'kubeconfig': KUBECONFIG})
    # ansible-core alone (kubeconfig no_log): every string of the kubeconfig is masked wherever it appears
    plain = module.masked(result_with(module, KUBECONFIG))
    assert 'windows.k8s.io/v1"' not in plain and '127.0.0.1:6443' not in plain
    mask_structured_secrets(module)
    out = module.masked(result_with(module, KUBECONFIG))
    for secret in SECRETS:
        assert secret not in out
    for text in ('windows.k8s.io/v1', '"default"', 'https://127.0.0.1:6443', 'context lab', 'client.authentication.k8s.io/v1beta1'):
        assert text in out, text


def test_inline_kubeconfig_text_is_masked_whole_and_its_token_alone():
    import yaml
    text = yaml.safe_dump(KUBECONFIG)
    module = mask_structured_secrets(Module(k8s_argument_spec(), {'kubeconfig': text}))
    out = module.masked(dict(result_with(module, text), echoed=text))
    for secret in SECRETS:
        assert secret not in out
    assert 'windows.k8s.io/v1' in out


def test_kubeconfig_path_is_not_masked():
    module = mask_structured_secrets(Module(k8s_argument_spec(), {'kubeconfig': '/etc/lab/kubeconfig'}))
    assert 'kubeconfig file /etc/lab/kubeconfig does not exist' in module.masked({'msg': 'kubeconfig file /etc/lab/kubeconfig does not exist'})


def test_nested_kubeconfig_and_other_no_log_values_stay_masked():
    spec = {'cluster': CLUSTER_OPTION, 'password': {'type': 'str', 'no_log': True}}
    # the password happens to equal a non-secret kubeconfig string: it must stay masked
    params = {'cluster': {'kubeconfig': KUBECONFIG, 'api_key': 'api-key-secret'}, 'password': 'lab'}
    module = mask_structured_secrets(Module(spec, params))
    out = module.masked({'a': TOKEN, 'b': 'api-key-secret', 'c': 'lab', 'd': 'windows.k8s.io/v1'})
    assert TOKEN not in out and 'api-key-secret' not in out and '"lab"' not in out
    assert 'windows.k8s.io/v1' in out


def test_plugin_input_is_masked_in_credspecs_and_host_account_config():
    spec = {'credspec': {'type': 'raw', 'no_log': True}, 'host_account_config': {'type': 'dict', 'no_log': True}}
    credspec = {'CmsPlugins': ['ActiveDirectory'], 'DomainJoinConfig': {'DnsName': 'contoso.test'},
                'ActiveDirectoryConfig': {'HostAccountConfig': {'PortableCcgVersion': '1', 'PluginGUID': '{G}',
                                                                'PluginInput': 'user=ccg;password=plugin-secret'}}}
    module = mask_structured_secrets(Module(spec, {'credspec': json.dumps(credspec),
                                                   'host_account_config': {'plugin_guid': 'x', 'plugin_input': {'pw': 'other-secret'}}}))
    out = module.masked({'credspec': credspec, 'hac': {'plugin_input': {'pw': 'other-secret'}}})
    assert 'plugin-secret' not in out and 'other-secret' not in out
    assert 'contoso.test' in out and 'ActiveDirectory' in out
