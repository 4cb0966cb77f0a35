"""Faults in the middle of a run, against the real servers.

* kube-apiserver killed (SIGKILL of its saved process group) while credential_spec and credential_spec_rbac
  converge 70 credential specs, 70 ClusterRoles and 140 RoleBindings, and started again from the same command
  line: after a short outage the same run finishes (the transport's retries); after an outage longer than
  the retry budget the run fails with a message saying so, and a rerun finishes. Either way the state read
  back is exactly the declared one, and one more run changes nothing.
* Samba DC stopped (SIGKILL of its process group) while one gmsa call creates 60 accounts, kept down longer
  than the LDAP retry budget, then the SAME domain started again (lab/samba/start.sh --keep): the run fails
  saying the connection was lost and that a rerun completes; the rerun finishes, the directory holds every
  declared account exactly once with the declared attributes, and one more run changes nothing.
* Samba DC frozen (SIGSTOP of its process group, SIGCONT 6 s later) while one gmsa call creates 40 accounts
  with a 2 s LDAP timeout: the in-flight add times out, the client reconnects and repeats it; the DC, once
  thawed, also executes the timed-out add, so the repeat meets "already exists" and the module adopts the
  account (the same run finishes, within its retry budget).
* The webhook's serving certificate expired (an expired certificate and its CA put into its Secret): the next
  webhook run detects it, rotates, and the configurations trust the new CA.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kubernetes import client  # noqa: E402

from test_gmsa import attrs_of, read, uid  # noqa: E402

N_SPECS = 70
N_GMSAS = 40
N_GMSAS_STOPPED = 60
SAMBA = Path(__file__).resolve().parents[2] / 'lab' / 'samba'
SELECTOR = 'app.kubernetes.io/managed-by=winkube.gmsa'


# -- helpers ---------------------------------------------------------------------------------------------

def start_playbook(ansible_env, tmp_path, play: str, extra: dict, label: str):
    work = tmp_path / label
    work.mkdir()
    (work / 'play.yml').write_text(textwrap.dedent(play))
    (work / 'vars.json').write_text(json.dumps(extra))
    cmd = [str(Path(sys.executable).parent / 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
           str(work / 'play.yml'), '-e', '@%s' % (work / 'vars.json')]
    return subprocess.Popen(cmd, env=ansible_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc, timeout=600):
    out, err = proc.communicate(timeout=timeout)
    results = {}
    try:
        for play in json.loads(out).get('plays', []):
            for task in play.get('tasks', []):
                results[task['task']['name']] = task['hosts'].get('localhost', {})
    except ValueError:
        pass
    return proc.returncode, results, out, err


class ApiServer:
    """Kill and restart the lab's kube-apiserver by its saved process group id, same command line."""

    children = []  # processes this module started: reaped after a kill (a zombie still answers kill 0)

    def __init__(self, lab):
        self.lab = lab
        self.pgid_file = Path(lab.state_dir) / 'pids' / 'kube-apiserver.pgid'
        self.log = Path(lab.state_dir) / 'logs' / 'kube-apiserver.log'
        self.cmd = None

    def kill(self):
        pgid = int(self.pgid_file.read_text())
        self.cmd = Path('/proc/%d/cmdline' % pgid).read_bytes().rstrip(b'\0').split(b'\0')
        assert self.cmd and self.cmd[0].endswith(b'kube-apiserver'), self.cmd
        os.killpg(pgid, signal.SIGKILL)
        for child in self.children:
            if child.pid == pgid:
                child.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        raise AssertionError('kube-apiserver did not die')

    def start(self):
        with open(self.log, 'ab') as log:
            proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.children.append(proc)
        self.pgid_file.write_text('%d\n' % proc.pid)  # so that lab/k8s/stop.sh stops this one
        self.cmd = None
        return proc

    def wait_ready(self, timeout=90):
        import urllib3
        pool = urllib3.PoolManager(cert_reqs='CERT_REQUIRED', ca_certs=self.lab.ca_cert,
                                   cert_file=self.lab.admin_cert, key_file=self.lab.admin_key)
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                response = pool.request('GET', self.lab.api_url + '/readyz', timeout=2, retries=False)
                if response.status == 200:
                    return
                last = response.status
            except Exception as exc:  # pylint: disable=broad-except
                last = exc
            time.sleep(0.2)
        raise AssertionError('kube-apiserver not ready %ss after the restart (%s); log tail:\n%s'
                             % (timeout, last, self.log.read_text()[-3000:]))


def credspec(name):
    return {'CmsPlugins': ['ActiveDirectory'],
            'DomainJoinConfig': {'Sid': 'S-1-5-21-1-2-3', 'MachineAccountName': name,
                                 'Guid': '244818ae-87ac-4fcd-92ec-e79e5252348a', 'DnsTreeName': 'contoso.test',
                                 'DnsName': 'contoso.test', 'NetBiosName': 'CONTOSO'},
            'ActiveDirectoryConfig': {'GroupManagedServiceAccounts': [
                {'Name': name, 'Scope': 'contoso.test'}, {'Name': name, 'Scope': 'CONTOSO'}]}}


K8S_CONVERGE = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: specs
      winkube.gmsa.credential_spec:
        kubeconfig: "{{ kubeconfig }}"
        credential_specs: "{{ specs }}"
    - name: rbac
      winkube.gmsa.credential_spec_rbac:
        kubeconfig: "{{ kubeconfig }}"
        missing_namespace: create
        bindings: "{{ bindings }}"
"""


def declared_k8s(tag):
    names = ['gmsa-%s-%02d' % (tag, i) for i in range(N_SPECS)]
    namespaces = ['flt-%s-a' % tag, 'flt-%s-b' % tag]
    specs = [{'name': n, 'credspec': credspec(n)} for n in names]
    bindings = [{'credential_spec': n, 'use_by': [{'namespace': ns, 'service_accounts': ['app-%d' % i, 'default']}
                                                  for ns in namespaces]}
                for i, n in enumerate(names)]
    return names, namespaces, specs, bindings


def read_back_k8s(api, tag, names, namespaces):
    """Assert the API server holds exactly the declared objects for this tag."""
    custom, rbac = client.CustomObjectsApi(api), client.RbacAuthorizationV1Api(api)
    specs = {i['metadata']['name']: i for i in custom.list_cluster_custom_object(
        'windows.k8s.io', 'v1', 'gmsacredentialspecs')['items'] if '-%s-' % tag in i['metadata']['name']}
    assert sorted(specs) == names
    for name, item in specs.items():
        assert item['credspec'] == credspec(name)
    roles = {r.metadata.name: r for r in rbac.list_cluster_role(label_selector=SELECTOR).items
             if '-%s-' % tag in r.metadata.name}
    assert sorted(roles) == sorted('winkube-gmsa-use-%s' % n for n in names)
    for i, name in enumerate(names):
        rule = roles['winkube-gmsa-use-%s' % name].rules
        assert len(rule) == 1 and rule[0].verbs == ['use'] and rule[0].resource_names == [name]
    for ns in namespaces:
        bindings = {b.metadata.name: b for b in rbac.list_namespaced_role_binding(ns).items}
        assert sorted(bindings) == sorted('winkube-gmsa-use-%s' % n for n in names)
        for i, name in enumerate(names):
            binding = bindings['winkube-gmsa-use-%s' % name]
            assert binding.role_ref.name == 'winkube-gmsa-use-%s' % name
            assert sorted((s.kind, s.name, s.namespace) for s in binding.subjects) == sorted(
                [('ServiceAccount', 'app-%d' % i, ns), ('ServiceAccount', 'default', ns)])


def count_partial(api, tag):
    """Declared objects of this tag that exist so far (ClusterRoles + RoleBindings + credential specs)."""
    rbac, custom = client.RbacAuthorizationV1Api(api), client.CustomObjectsApi(api)
    roles = [r for r in rbac.list_cluster_role(label_selector=SELECTOR).items if '-%s-' % tag in r.metadata.name]
    bindings = [b for b in rbac.list_role_binding_for_all_namespaces(label_selector=SELECTOR).items
                if '-%s-' % tag in b.metadata.name]
    specs = [i for i in custom.list_cluster_custom_object('windows.k8s.io', 'v1', 'gmsacredentialspecs',
                                                          label_selector=SELECTOR)['items']
             if '-%s-' % tag in i['metadata']['name']]
    return len(specs) + len(roles) + len(bindings)


def cleanup_k8s(api, tag, names, namespaces):
    custom, rbac, core = client.CustomObjectsApi(api), client.RbacAuthorizationV1Api(api), client.CoreV1Api(api)
    for name in names:
        for call in (lambda: custom.delete_cluster_custom_object('windows.k8s.io', 'v1', 'gmsacredentialspecs', name),
                     lambda: rbac.delete_cluster_role('winkube-gmsa-use-%s' % name)):
            try:
                call()
            except client.ApiException:
                pass
    for ns in namespaces:
        try:
            core.delete_namespace(ns)
        except client.ApiException:
            pass


# -- kube-apiserver killed mid-converge -------------------------------------------------------------------

@pytest.mark.parametrize('outage', [2, 28], ids=['outage-2s-within-retry-budget', 'outage-28s-beyond-budget'])
def test_apiserver_killed_mid_converge(outage, k8s_lab, ansible_env, tmp_path, run_playbook):
    api = k8s_lab.api_client()
    assert run_playbook('- hosts: localhost\n  gather_facts: false\n  tasks:\n    - name: crd\n'
                        '      winkube.gmsa.crd: {kubeconfig: "%s"}\n' % k8s_lab.kubeconfig).rc == 0
    tag = 'k%s' % uid()
    names, namespaces, specs, bindings = declared_k8s(tag)
    total = len(names) * (2 + len(namespaces))
    server = ApiServer(k8s_lab)
    extra = {'kubeconfig': k8s_lab.kubeconfig, 'specs': specs, 'bindings': bindings}
    try:
        proc = start_playbook(ansible_env, tmp_path, K8S_CONVERGE, extra, 'first')
        seen, started = 0, time.monotonic()
        while time.monotonic() - started < 120:
            seen = count_partial(api, tag)
            if seen >= 3 or proc.poll() is not None:
                break
            time.sleep(0.02)
        assert proc.poll() is None and 0 < seen < total, 'missed the window: %d of %d objects, rc %s' % (
            seen, total, proc.poll())
        server.kill()
        killed_at = time.monotonic()
        time.sleep(outage)
        server.start()
        server.wait_ready()
        down = time.monotonic() - killed_at
        rc, results, out, err = finish(proc)
        failed = [t for t in results.values() if t.get('failed')]
        print('\nkilled with %d of %d objects written; API server away %.1f s; first run rc %s'
              % (seen, total, down, rc))
        if outage < 5:
            # the messages first: pytest shortens a long assertion text, and they say why the run failed
            assert rc == 0, ' | '.join(str(t.get('msg')) for t in failed) + ' || ' + err[-2000:]
        else:
            assert rc != 0 and failed, 'a %ss outage should exceed the retry budget' % outage
            msg = failed[0]['msg']
            assert 'cannot reach the API server' in msg and 'tried' in msg, msg
            rerun = run_playbook(K8S_CONVERGE, extra_vars=extra)
            assert rerun.rc == 0, rerun
        read_back_k8s(api, tag, names, namespaces)
        again = run_playbook(K8S_CONVERGE, extra_vars=extra)
        assert again.rc == 0 and not again.changed, again
    finally:
        if server.cmd is not None:  # the test failed between kill and start
            server.start()
            server.wait_ready()
        cleanup_k8s(api, tag, names, namespaces)


# -- Samba DC frozen mid-run ----------------------------------------------------------------------------

GMSA_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: gmsa
      winkube.gmsa.gmsa: "{{ ad | combine({'accounts': accounts, 'timeout': 2}) }}"
"""


def marker_entries(samba_lab, tag):
    return read(samba_lab, '(sAMAccountName=%s*)' % tag,
                ['sAMAccountName', 'servicePrincipalName', 'description', 'objectClass'])


def test_domain_controller_frozen_mid_run(samba_lab, ansible_env, tmp_path, run_playbook):
    tag = 'fz%s' % uid()
    accounts = [{'name': '%s%02d' % (tag, i), 'description': 'frozen %d' % i,
                 'service_principal_names': {'set': ['HTTP/%s%02d.%s' % (tag, i, samba_lab.dns_domain)]}}
                for i in range(N_GMSAS)]
    extra = {'ad': samba_lab.module_args(), 'accounts': accounts}
    pgid = int((samba_lab.state_dir / 'pgid').read_text())
    frozen_for = 6.0
    try:
        proc = start_playbook(ansible_env, tmp_path, GMSA_PLAY, extra, 'gmsa')
        seen, started = 0, time.monotonic()
        while time.monotonic() - started < 120:
            seen = len(marker_entries(samba_lab, tag))
            if seen >= 2 or proc.poll() is not None:
                break
            time.sleep(0.03)
        assert proc.poll() is None and 0 < seen < N_GMSAS, 'missed the window: %d of %d, rc %s' % (
            seen, N_GMSAS, proc.poll())
        os.killpg(pgid, signal.SIGSTOP)
        try:
            time.sleep(frozen_for)
        finally:
            os.killpg(pgid, signal.SIGCONT)
        rc, results, _out, err = finish(proc)
        assert rc == 0, (results, err[-2000:])
        # the adopt path: the timed-out add that the thawed DC executed met "already exists" on its repeat
        adopted = results['gmsa']['created_concurrently']
        assert adopted and set(adopted) <= {a['name'] for a in accounts}, results['gmsa']
        entries = marker_entries(samba_lab, tag)
        sams = sorted(attrs_of(e)['sAMAccountName'][0] for e in entries)
        assert sams == sorted('%s$' % a['name'] for a in accounts)  # all there, none twice
        for entry in entries:
            attrs = attrs_of(entry)
            name = attrs['sAMAccountName'][0][:-1]
            index = int(name[-2:])
            assert attrs['description'] == ['frozen %d' % index]
            assert attrs['servicePrincipalName'] == ['HTTP/%s.%s' % (name, samba_lab.dns_domain)]
            assert 'msDS-GroupManagedServiceAccount' in attrs['objectClass']
        again = run_playbook(GMSA_PLAY, extra_vars=extra)
        assert again.rc == 0 and not again.changed, again
    finally:
        try:
            os.killpg(pgid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        conn = samba_lab.ldap()
        try:
            for entry in read(samba_lab, '(sAMAccountName=%s*)' % tag, ['cn']):
                conn.delete(entry['dn'])
        finally:
            conn.unbind()


class DomainController:
    """Kill the lab's Samba DC by its saved process group and start the same domain again (start.sh --keep)."""

    def __init__(self, samba_lab):
        self.lab = samba_lab
        self.down = False

    def kill(self):
        pgid = int((self.lab.state_dir / 'pgid').read_text())
        os.killpg(pgid, signal.SIGKILL)
        self.down = True
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        raise AssertionError('samba (process group %d) did not die' % pgid)

    def start(self):
        proc = subprocess.run([str(SAMBA / 'start.sh'), '--keep'], capture_output=True, text=True, check=False,
                              timeout=300)
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
        assert '--keep: starting the domain already provisioned' in proc.stderr, proc.stderr
        self.down = False


def domain_identity(samba_lab):
    """objectGUID and objectSid of the domain object: they differ between two provisioned domains."""
    conn = samba_lab.ldap()
    try:
        conn.search(samba_lab.base_dn, '(objectClass=domainDNS)', search_scope='BASE',
                    attributes=['objectGUID', 'objectSid'])
        raw = conn.response[0]['raw_attributes']
        return raw['objectGUID'][0], raw['objectSid'][0]
    finally:
        conn.unbind()


def test_domain_controller_stopped_mid_run_and_the_same_domain_restarted(samba_lab, ansible_env, tmp_path,
                                                                         run_playbook):
    tag = 'st%s' % uid()
    accounts = [{'name': '%s%02d' % (tag, i), 'description': 'stopped %d' % i,
                 'allowed_to_retrieve_password': {'set': ['Domain Admins']},
                 'service_principal_names': {'set': ['HTTP/%s%02d.%s' % (tag, i, samba_lab.dns_domain)]}}
                for i in range(N_GMSAS_STOPPED)]
    extra = {'ad': samba_lab.module_args(), 'accounts': accounts}
    domain = domain_identity(samba_lab)
    dc = DomainController(samba_lab)
    outage = 30.0  # longer than the LDAP retry budget (retry.ESTABLISHED: 20 s of waiting in all)
    try:
        proc = start_playbook(ansible_env, tmp_path, GMSA_PLAY, extra, 'gmsa-stopped')
        seen, started = 0, time.monotonic()
        while time.monotonic() - started < 120:
            seen = len(marker_entries(samba_lab, tag))
            if seen >= 2 or proc.poll() is not None:
                break
            time.sleep(0.03)
        assert proc.poll() is None and 0 < seen < N_GMSAS_STOPPED, 'missed the window: %d of %d, rc %s' % (
            seen, N_GMSAS_STOPPED, proc.poll())
        dc.kill()
        killed_at = time.monotonic()
        rc, results, _out, err = finish(proc, timeout=outage + 120)
        failed_after = time.monotonic() - killed_at
        assert failed_after < outage, 'the run did not give up while the DC was down (%.1f s)' % failed_after
        time.sleep(max(0.0, outage - (time.monotonic() - killed_at)))
        dc.start()
        print('\nDC killed with %d of %d accounts written; the run gave up after %.1f s (rc %s); DC down %.1f s'
              % (seen, N_GMSAS_STOPPED, failed_after, rc, time.monotonic() - killed_at))
        assert rc != 0, 'the run cannot have finished with the DC down %.0f s' % outage
        msg = results['gmsa']['msg']
        assert 'connection to the domain controller was lost' in msg and 'rerun completes' in msg, msg
        assert 'tried' in msg, msg  # it retried before giving up
        assert domain_identity(samba_lab) == domain, 'start.sh --keep provisioned a new domain'
        assert len(marker_entries(samba_lab, tag)) >= seen, 'accounts written before the kill were lost'

        rerun = run_playbook(GMSA_PLAY, extra_vars=extra)
        assert rerun.rc == 0, rerun
        entries = marker_entries(samba_lab, tag)
        sams = sorted(attrs_of(e)['sAMAccountName'][0] for e in entries)
        assert sams == sorted('%s$' % a['name'] for a in accounts)  # all there, none twice
        for entry in entries:
            attrs = attrs_of(entry)
            name = attrs['sAMAccountName'][0][:-1]
            assert entry['dn'].lower() == ('CN=%s,CN=Managed Service Accounts,%s' % (name, samba_lab.base_dn)).lower()
            assert attrs['description'] == ['stopped %d' % int(name[-2:])]
            assert attrs['servicePrincipalName'] == ['HTTP/%s.%s' % (name, samba_lab.dns_domain)]
            assert 'msDS-GroupManagedServiceAccount' in attrs['objectClass']
        again = run_playbook(GMSA_PLAY, extra_vars=extra)
        assert again.rc == 0 and not again.changed, again
    finally:
        if dc.down:
            dc.start()
        conn = samba_lab.ldap()
        try:
            for entry in read(samba_lab, '(sAMAccountName=%s*)' % tag, ['cn']):
                conn.delete(entry['dn'])
        finally:
            conn.unbind()


# -- expired webhook certificate ------------------------------------------------------------------------

HOOK_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: webhook
      winkube.gmsa.webhook:
        kubeconfig: "{{ kubeconfig }}"
        name: "{{ hook }}"
        namespace: "{{ hook }}"
        webhook_url: "https://127.0.0.1:9/"
"""


def expired_tls(names):
    """A CA and a serving certificate (for names) that expired yesterday, with its key, as PEM text."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'expired test CA')])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=400))
          .not_valid_after(now + datetime.timedelta(days=400))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    sans = [x509.IPAddress(ipaddress.ip_address(n)) if n.replace('.', '').isdigit() else x509.DNSName(n) for n in names]
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=100)).not_valid_after(now - datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False).sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return (ca.public_bytes(pem).decode(), cert.public_bytes(pem).decode(),
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode())


def test_expired_webhook_certificate_is_rotated(k8s_lab, run_playbook):
    from cryptography import x509

    api = k8s_lab.api_client()
    core, adm = client.CoreV1Api(api), client.AdmissionregistrationV1Api(api)
    hook = 'exp-%s' % uid()
    extra = {'kubeconfig': k8s_lab.kubeconfig, 'hook': hook}
    try:
        first = run_playbook(HOOK_PLAY, extra_vars=extra)
        assert first.rc == 0, first.results.get('webhook', {}).get('msg', first)
        names = first.results['webhook']['tls']['names']
        ca_pem, cert_pem, key_pem = expired_tls(names)
        # written as the module's own field manager would have written it a year ago
        data = {k: base64.b64encode(v.encode()).decode()
                for k, v in (('ca.crt', ca_pem), ('tls.crt', cert_pem), ('tls.key', key_pem))}
        import urllib3
        pool = urllib3.PoolManager(cert_reqs='CERT_REQUIRED', ca_certs=k8s_lab.ca_cert, cert_file=k8s_lab.admin_cert,
                                   key_file=k8s_lab.admin_key)
        body = {'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': '%s-tls' % hook, 'namespace': hook},
                'type': core.read_namespaced_secret('%s-tls' % hook, hook).type, 'data': data}
        response = pool.request('PATCH', '%s/api/v1/namespaces/%s/secrets/%s-tls?fieldManager=winkube.gmsa&force=true'
                                % (k8s_lab.api_url, hook, hook), body=json.dumps(body).encode(),
                                headers={'Content-Type': 'application/apply-patch+yaml'})
        assert response.status == 200, response.data
        stored = core.read_namespaced_secret('%s-tls' % hook, hook).data
        assert base64.b64decode(stored['tls.crt']).decode() == cert_pem

        rotated = run_playbook(HOOK_PLAY, extra_vars=extra)
        assert rotated.rc == 0 and rotated.changed, rotated.results.get('webhook', {}).get('msg', rotated)
        tls = rotated.results['webhook']['tls']
        assert tls['action'] == 'rotate' and any('expires' in r for r in tls['reasons']), tls
        data = core.read_namespaced_secret('%s-tls' % hook, hook).data
        new_cert = x509.load_pem_x509_certificate(base64.b64decode(data['tls.crt']))
        new_ca = base64.b64decode(data['ca.crt']).decode()
        assert new_cert.not_valid_after_utc > datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=300)
        assert base64.b64decode(data['tls.crt']).decode() != cert_pem and new_ca != ca_pem
        for config in (adm.read_mutating_webhook_configuration(hook), adm.read_validating_webhook_configuration(hook)):
            bundle = base64.b64decode(config.webhooks[0].client_config.ca_bundle).decode()
            assert new_ca.strip() in bundle
        # Nothing serves the new certificate at the URL (port 9), so the next run keeps trusting the previous CA
        # (it has not expired; only its serving certificate had) and says why, rather than cut off the webhook.
        settled = run_playbook(HOOK_PLAY, extra_vars=extra)
        tls = settled.results['webhook']['tls']
        assert settled.rc == 0 and tls['action'] == 'keep', settled
        assert 'https://127.0.0.1:9/' in tls['previous_ca_kept'] and tls['previous_ca_trusted'] is True, tls
        for config in (adm.read_mutating_webhook_configuration(hook), adm.read_validating_webhook_configuration(hook)):
            bundle = base64.b64decode(config.webhooks[0].client_config.ca_bundle).decode()
            assert [c.strip() for c in bundle.split('-----END CERTIFICATE-----') if c.strip()] == \
                [c.strip() for c in (ca_pem + new_ca).split('-----END CERTIFICATE-----') if c.strip()]
        final = run_playbook(HOOK_PLAY, extra_vars=extra)
        assert final.rc == 0 and not final.changed, final
    finally:
        for call in (lambda: adm.delete_mutating_webhook_configuration(hook),
                     lambda: adm.delete_validating_webhook_configuration(hook),
                     lambda: core.delete_namespace(hook)):
            try:
                call()
            except client.ApiException:
                pass
