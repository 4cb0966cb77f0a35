from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.winkube.gmsa.plugins.filter.credential_spec import FilterModule

DOMAIN = {'dns_name': 'contoso.com', 'netbios_name': 'CONTOSO', 'domain_guid': '244818ae-87ac-4fcd-92ec-e79e5252348a',
          'domain_sid': 'S-1-5-21-2126449477-2524075714-3094792973', 'forest_dns_name': 'contoso.com'}


def test_filter_builds_spec():
    spec = FilterModule().filters()['credential_spec'](DOMAIN, 'WebApp1', additional_accounts=['B'])
    assert spec['DomainJoinConfig']['MachineAccountName'] == 'WebApp1'
    assert len(spec['ActiveDirectoryConfig']['GroupManagedServiceAccounts']) == 4


def test_filter_error_is_ansible_error():
    with pytest.raises(AnsibleFilterError, match='winkube.gmsa.credential_spec: .*domain SID'):
        FilterModule().filters()['credential_spec'](dict(DOMAIN, domain_sid='S-1-5-32-544'), 'WebApp1')
