"""Scale benchmark of winkube.gmsa against the local lab (see bench/README.md).

For each N: N gMSAs (each with an SPN), the host group granted on all of them, N GMSACredentialSpecs, N
ClusterRoles and 2N RoleBindings (two namespaces). Two sides, each run through three phases with
ansible-playbook:

    ours      bench/playbooks/ours.yml      one module call per kind (gmsa accounts=, host_group gmsas=,
                                            credential_spec, credential_spec_rbac)
    baseline  bench/playbooks/baseline.yml  winkube.gmsa.gmsa and host_group once per gMSA (loop),
                                            kubernetes.core.k8s once per Kubernetes object (loop)

    converge  first run on an empty lab
    noop      the same again: must change nothing
    change1   one gMSA changed (its description, and one more service account in one RoleBinding)

Measured per phase: wall time of ansible-playbook; Kubernetes API requests counted by the API server itself
(apiserver_request_total deltas from /metrics, per verb and resource) and as the modules report them
(api_requests); LDAP operations counted on the wire by a TLS-terminating proxy between the modules and the
DC (bench/ldap_count_proxy.py) and as the modules report them (ldap_operations); peak memory: max RSS of
the ansible-playbook process tree (getrusage of the waited-for child, i.e. the largest single process)
and the peaks of the summed PSS and RSS of the whole tree sampled every 0.2 s.

Between the two sides every object is deleted, so the baseline creates the same objects again.
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import http.client
import json
import os
import platform
import re
import secrets
import shlex
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlparse

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from ldap_count_proxy import LdapCountingProxy  # noqa: E402  pylint: disable=wrong-import-position

PHASES = ('converge', 'noop', 'change1')
K8S_KINDS = ('gmsacredentialspecs', 'clusterroles', 'rolebindings', 'namespaces')
WRITE_VERBS = ('POST', 'PUT', 'PATCH', 'APPLY', 'DELETE', 'DELETECOLLECTION')
# Requests of the lab's own controllers, not of the playbook (kwok heartbeats, leader leases, scheduler...)
BACKGROUND = ('leases', 'nodes', 'pods', 'events', 'endpoints', 'endpointslices', 'serviceaccounts',
              'configmaps', 'secrets', 'replicasets', 'deployments', 'tokenreviews', 'subjectaccessreviews',
              'localsubjectaccessreviews', 'flowschemas', 'prioritylevelconfigurations', 'apiservices',
              'servicecidrs', 'ipaddresses', 'services', 'csinodes', 'storageclasses', 'volumeattachments')
BACKGROUND_PATHS = ('/readyz', '/healthz', '/livez', '/metrics')


def log(msg):
    print('[bench %s] %s' % (time.strftime('%H:%M:%S'), msg), file=sys.stderr, flush=True)


def read_env(path):
    env = {}
    for line in Path(path).read_text().splitlines():
        if '=' in line and not line.startswith('#'):
            key, dummy, value = line.partition('=')
            parsed = shlex.split(value)
            env[key] = parsed[0] if parsed else ''
    return env


# ---------------------------------------------------------------------------------------------------------
# labs

class Labs(object):
    """The Samba DC (shared, reference-counted like tests/integration/fixtures_samba.py) and a k8s lab."""

    def __init__(self, args):
        self.args = args
        self.samba_env = None
        self.k8s_env = None
        self._users = None
        self._started_samba = False
        self._started_k8s = False

    def __enter__(self):
        if self.args.samba_env:
            self.samba_env = read_env(self.args.samba_env)
        else:
            root = Path(os.environ.get('WINKUBE_LAB_STATE') or REPO / 'lab' / '.state')
            root.mkdir(parents=True, exist_ok=True)
            self._users = open(root / 'samba.users', 'a+')  # noqa: SIM115 - held while the benchmark runs
            fcntl.flock(self._users, fcntl.LOCK_SH)
            proc = subprocess.run([str(REPO / 'lab' / 'samba' / 'start.sh')], capture_output=True, text=True,
                                  check=False)
            if proc.returncode != 0:
                raise SystemExit('lab/samba/start.sh failed:\n%s%s' % (proc.stdout, proc.stderr))
            self._started_samba = 'reusing' not in proc.stderr
            self.samba_env = read_env(proc.stdout.strip().splitlines()[-1])
        if self.args.k8s_env:
            self.k8s_env = read_env(self.args.k8s_env)
        else:
            env = dict(os.environ, WINKUBE_LAB_STATE=self.args.k8s_lab_state)
            for script in ('build.sh', 'stop.sh', 'start.sh'):
                proc = subprocess.run(['bash', str(REPO / 'lab' / 'k8s' / script)], env=env, capture_output=True,
                                      text=True, check=False)
                if proc.returncode != 0:
                    raise SystemExit('lab/k8s/%s failed:\n%s%s' % (script, proc.stdout, proc.stderr[-3000:]))
            self._started_k8s = True
            self.k8s_env = read_env(proc.stdout.strip().splitlines()[-1])
        return self

    def __exit__(self, *exc):
        if self._started_k8s and not self.args.keep_labs:
            subprocess.run(['bash', str(REPO / 'lab' / 'k8s' / 'stop.sh')], check=False, capture_output=True,
                           env=dict(os.environ, WINKUBE_LAB_STATE=self.args.k8s_lab_state))
        if self._users is not None:
            fcntl.flock(self._users, fcntl.LOCK_UN)
            if self._started_samba and not self.args.keep_labs:
                try:
                    fcntl.flock(self._users, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    pass  # someone else uses the DC now; the last one out stops it
                else:
                    subprocess.run([str(REPO / 'lab' / 'samba' / 'stop.sh')], check=False, capture_output=True)
                    fcntl.flock(self._users, fcntl.LOCK_UN)
            self._users.close()


class K8sHttp(object):
    """Tiny admin client (client certificate from the lab env) for setup, cleanup and /metrics."""

    def __init__(self, env):
        url = urlparse(env['K8S_API_URL'])
        self.host, self.port = url.hostname, url.port
        self.ctx = ssl.create_default_context(cafile=env['K8S_CA_CERT'])
        self.ctx.load_cert_chain(env['K8S_ADMIN_CERT'], env['K8S_ADMIN_KEY'])

    def request(self, method, path, body=None, ok=(200, 201, 202, 404, 409)):
        for dummy in range(30):
            status, text = self._request(method, path, body, ok + (429,))
            if status != 429:
                return status, text
            time.sleep(1)  # e.g. storage of a just-created CRD still initialising
        raise RuntimeError('%s %s -> 429 for 30 s' % (method, path))

    def _request(self, method, path, body, ok):
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=120)
        try:
            headers = {'Accept': 'application/json', 'User-Agent': 'winkube-bench-admin'}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers['Content-Type'] = 'application/json'
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode('utf-8', 'replace')
            if resp.status not in ok:
                raise RuntimeError('%s %s -> %s %s' % (method, path, resp.status, text[:500]))
            return resp.status, text
        finally:
            conn.close()

    def metrics(self):
        """{(verb, group, resource, subresource): count} of apiserver_request_total."""
        dummy, text = self.request('GET', '/metrics', ok=(200,))
        totals = {}
        for line in text.splitlines():
            if not line.startswith('apiserver_request_total{'):
                continue
            labels_text, dummy, value = line.rpartition('} ')
            labels = dict(re.findall(r'(\w+)="([^"]*)"', labels_text))
            key = (labels.get('verb', ''), labels.get('group', ''), labels.get('resource', ''),
                   labels.get('subresource', ''), labels.get('dry_run', ''))
            totals[key] = totals.get(key, 0) + int(float(value))
        return totals


def k8s_delta(after, before):
    """Requests the playbook made, from two /metrics snapshots.

    Left out, because the lab's controllers make them all the time (measured idle: about 10 discovery GETs and
    12 openapi/v3 GETs a minute): requests on resources only the controllers use (BACKGROUND), WATCHes and
    discovery (/api, /apis, /openapi). Discovery is reported apart as ``discovery_with_background``.
    """
    by, discovery = {}, 0
    for key, value in after.items():
        diff = value - before.get(key, 0)
        verb, group, resource, subresource, dry_run = key
        if diff <= 0 or resource in BACKGROUND or subresource in BACKGROUND_PATHS or verb == 'WATCH':
            continue
        if not resource:
            discovery += diff
            continue
        name = '%s %s%s%s' % (verb, resource, '/' + subresource if subresource else '',
                              ' (dry-run)' if dry_run else '')
        by[name] = by.get(name, 0) + diff
    lists = dict((k.split(' ', 1)[1], v) for k, v in by.items() if k.startswith('LIST '))
    return {
        'requests': sum(by.values()),
        'writes': sum(v for k, v in by.items() if k.split(' ')[0] in WRITE_VERBS),
        'lists_by_resource': lists,
        'by_verb_resource': dict(sorted(by.items())),
        'discovery_with_background': discovery,
    }


# ---------------------------------------------------------------------------------------------------------
# the desired state

def load_models(collections):
    sys.path.insert(0, str(collections))
    from ansible_collections.winkube.gmsa.plugins.module_utils.models import crd as crd_model
    from ansible_collections.winkube.gmsa.plugins.module_utils.models import credential_spec as cs_model
    from ansible_collections.winkube.gmsa.plugins.module_utils.models import names as names_model
    from ansible_collections.winkube.gmsa.plugins.module_utils.models import rbac as rbac_model
    return crd_model, cs_model, names_model, rbac_model


class Desired(object):
    def __init__(self, models, domain, n, prefix, dns_domain, namespaces, nodes):
        self.crd_model, self.cs_model, self.names, self.rbac = models
        self.domain, self.n, self.prefix = domain, n, prefix
        self.namespaces = namespaces
        self.accounts = []
        for i in range(n):
            name = '%s%04d' % (prefix, i)
            self.accounts.append({
                'name': name,
                'description': 'winkube.gmsa bench %d' % i,
                'spns': {'set': ['HTTP/%s.%s' % (name.lower(), dns_domain)]},
                '_credspec': self.names.credential_spec_name(name),
                '_use_by': [{'namespace': ns, 'service_accounts': ['default', 'app']} for ns in namespaces],
            })
        self.host_group = {'name': '%sHosts' % prefix, 'members': nodes}

    def change_one(self):
        first = self.accounts[0]
        first['description'] += ' (changed)'
        first['_use_by'][0]['service_accounts'] = ['default', 'app', 'extra']

    def gmsas(self):
        return [dict((k, v) for k, v in a.items() if not k.startswith('_')) for a in self.accounts]

    def credential_specs(self):
        return [{'name': a['_credspec'], 'credspec': self.cs_model.build_credential_spec(self.domain, a['name'])}
                for a in self.accounts]

    def bindings(self):
        return [{'credential_spec': a['_credspec'], 'use_by': a['_use_by']} for a in self.accounts]

    def k8s_objects(self):
        """The objects our modules build, in the order kubernetes.core.k8s gets them."""
        objects = []
        for spec in self.credential_specs():
            objects.append(self.crd_model.build_credential_spec(spec['name'], spec['credspec']))
        for binding in self.bindings():
            objects.extend(self.rbac.build_rbac(binding['credential_spec'], binding['use_by']))
        return objects

    def object_counts(self):
        return {'gmsas': self.n, 'host_groups': 1, 'ad_objects': self.n + 1,
                'credential_specs': self.n, 'cluster_roles': self.n,
                'role_bindings': self.n * len(self.namespaces), 'k8s_objects': self.n * (2 + len(self.namespaces))}


# ---------------------------------------------------------------------------------------------------------
# measuring one ansible-playbook run

def _children_map():
    kids = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat.rpartition(')')[2].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _memory_kb(pid):
    """(RSS, PSS) of a process in kB; PSS shares pages between the forked ansible processes fairly."""
    rss = pss = 0
    try:
        with open('/proc/%d/smaps_rollup' % pid) as handle:
            for line in handle:
                if line.startswith('Rss:'):
                    rss = int(line.split()[1])
                elif line.startswith('Pss:'):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


class TreeSampler(threading.Thread):
    """Peak summed RSS and PSS of a process and all its descendants, sampled every `interval` seconds."""

    def __init__(self, pid, interval=0.2):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_rss_kb = self.peak_pss_kb = 0
        self.peak_processes = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            kids = _children_map()
            todo, tree = [self.pid], []
            while todo:
                pid = todo.pop()
                tree.append(pid)
                todo.extend(kids.get(pid, []))
            sizes = [_memory_kb(p) for p in tree]
            self.peak_rss_kb = max(self.peak_rss_kb, sum(size[0] for size in sizes))
            self.peak_pss_kb = max(self.peak_pss_kb, sum(size[1] for size in sizes))
            self.peak_processes = max(self.peak_processes, len(tree))
            self.done.wait(self.interval)


class Runner(object):
    def __init__(self, args, workdir, collections, k8s, proxy):
        self.args, self.workdir, self.k8s, self.proxy = args, workdir, k8s, proxy
        python = args.python
        self.playbook_bin = str(Path(python).parent / 'ansible-playbook')
        self.env = dict(os.environ)
        self.env.update(
            ANSIBLE_COLLECTIONS_PATH=str(collections),
            ANSIBLE_CALLBACK_PLUGINS=str(BENCH / 'callback_plugins'),
            ANSIBLE_STDOUT_CALLBACK='bench_stats',
            ANSIBLE_LOCALHOST_WARNING='False',
            ANSIBLE_INVENTORY_UNPARSED_WARNING='False',
            ANSIBLE_PYTHON_INTERPRETER=python,
            ANSIBLE_RETRY_FILES_ENABLED='False',
            ANSIBLE_NOCOLOR='True',
            ANSIBLE_DEPRECATION_WARNINGS='False',
            ANSIBLE_HOME=str(workdir / 'ansible-home'),
        )
        self.env.pop('ANSIBLE_CONFIG', None)
        self.profile = None
        if args.profile:
            # every module process and the controller's main process under pyinstrument (times are inflated)
            self.profile = Path(args.profile).resolve()
            self.profile.mkdir(parents=True, exist_ok=True)
            self.env.update(ANSIBLE_PYTHON_INTERPRETER=str(BENCH / 'profile_python.sh'), BENCH_REAL_PYTHON=python,
                            BENCH_PROFILE_DIR=str(self.profile), BENCH_PYINSTRUMENT_PATH=args.pyinstrument_path)
        self.seq = 0

    def run(self, playbook, extra_vars, label):
        self.seq += 1
        vars_file = self.workdir / ('vars-%02d.json' % self.seq)
        vars_file.write_text(json.dumps(extra_vars))
        stats_file = self.workdir / ('stats-%02d.json' % self.seq)
        out_file = self.workdir / ('out-%02d-%s.log' % (self.seq, re.sub(r'[^a-z0-9]+', '-', label.lower())))
        cmd = [self.playbook_bin, '-i', 'localhost,', '-c', 'local', str(BENCH / 'playbooks' / playbook),
               '-e', '@%s' % vars_file]
        env = dict(self.env, BENCH_STATS_FILE=str(stats_file))
        if self.profile is not None:
            cmd = [self.args.python, '-m', 'pyinstrument', '--show-all', '-r', 'text', '-o',
                   str(self.profile / ('controller-%02d-%s.txt' % (self.seq, out_file.stem))), cmd[0]] + cmd[1:]
            env['PYTHONPATH'] = args_path = self.args.pyinstrument_path
            assert args_path
        metrics_before = self.k8s.metrics()
        ldap_before = self.proxy.snapshot()
        trace_start = len(self.proxy.trace) if self.proxy.trace is not None else 0
        errors_start = len(self.proxy.errors)
        started = time.monotonic()
        with open(out_file, 'w') as out:
            proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=str(self.workdir))
            sampler = TreeSampler(proc.pid)
            sampler.start()
            dummy, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            sampler.done.set()
            sampler.join()
        wall = time.monotonic() - started
        time.sleep(0.05)  # the proxy threads forward the last bytes
        ldap_after = self.proxy.snapshot()
        metrics_after = self.k8s.metrics()
        tasks = json.loads(stats_file.read_text()) if stats_file.exists() else []
        failed = proc.returncode != 0 or any(t['failed'] for t in tasks)
        if failed:
            log('%s FAILED (rc %s), output in %s:\n%s'
                % (label, proc.returncode, out_file, out_file.read_text()[-6000:]))
        reported_api, reported_ldap = {}, {}
        for task in tasks:
            for key in ('requests', 'writes'):
                reported_api[key] = reported_api.get(key, 0) + task['api_requests'].get(key, 0)
                reported_ldap_key = {'requests': 'searches', 'writes': 'writes'}[key]
                reported_ldap[reported_ldap_key] = (reported_ldap.get(reported_ldap_key, 0)
                                                    + task['ldap_operations'].get(reported_ldap_key, 0))
        return {
            'label': label,
            'loadavg_1min_after': round(os.getloadavg()[0], 2),
            'rc': proc.returncode,
            'failed': failed,
            'wall_seconds': round(wall, 3),
            'cpu_seconds': round(usage.ru_utime + usage.ru_stime, 3),
            'max_rss_mb': round(usage.ru_maxrss / 1024.0, 1),
            'tree_peak_rss_mb': round(sampler.peak_rss_kb / 1024.0, 1),
            'tree_peak_pss_mb': round(sampler.peak_pss_kb / 1024.0, 1),
            'tree_peak_processes': sampler.peak_processes,
            'k8s': k8s_delta(metrics_after, metrics_before),
            'ldap': dict(LdapCountingProxy.delta(ldap_after, ldap_before),
                         proxy_errors=self.proxy.errors[errors_start:]),
            'reported': {'api_requests': reported_api, 'ldap_operations': reported_ldap},
            'tasks': tasks,
            'log': str(out_file),
            'ldap_trace': self.proxy.trace[trace_start:] if self.proxy.trace is not None else None,
            'output_tail': out_file.read_text()[-6000:] if failed else None,
        }


# ---------------------------------------------------------------------------------------------------------
# setup and cleanup outside the measurement (direct LDAP / HTTP as the admin)

class Directory(object):
    def __init__(self, samba):
        import ldap3

        ca_file = samba['SAMBA_CA_FILE']

        class _Tls(ldap3.Tls):
            def wrap_socket(self, connection, do_handshake=False):
                context = ssl.create_default_context(cafile=ca_file)
                connection.socket = context.wrap_socket(connection.socket, server_hostname=connection.server.host,
                                                        do_handshake_on_connect=do_handshake)

        server = ldap3.Server(samba['SAMBA_SERVER'], port=int(samba['SAMBA_LDAPS_PORT']), use_ssl=True, tls=_Tls(),
                              get_info=ldap3.NONE, connect_timeout=10)
        self.conn = ldap3.Connection(server, user=samba['SAMBA_ADMIN_UPN'],
                                     password=Path(samba['SAMBA_PASSWORD_FILE']).read_text(), receive_timeout=60,
                                     raise_exceptions=False)
        if not self.conn.bind():
            raise RuntimeError('LDAP bind failed: %s' % self.conn.result)
        self.base_dn = samba['SAMBA_BASE_DN']
        self.dns = samba['SAMBA_DNS_DOMAIN']

    def add_computer(self, name):
        dn = 'CN=%s,CN=Computers,%s' % (name, self.base_dn)
        self.conn.add(dn, ['top', 'person', 'organizationalPerson', 'user', 'computer'],
                      {'sAMAccountName': name + '$', 'userAccountControl': '4096',
                       'dNSHostName': '%s.%s' % (name.lower(), self.dns)})
        return dn

    def delete_prefixed(self, prefix):
        """Delete every object whose cn starts with prefix (gMSAs, the host group, the computers)."""
        self.conn.search(self.base_dn, '(cn=%s*)' % prefix, attributes=['cn'], paged_size=1000)
        dns = [e['dn'] for e in self.conn.response if e.get('type') == 'searchResEntry']
        for dn in dns:
            self.conn.delete(dn)
        return len(dns)

    def close(self):
        self.conn.unbind()


def k8s_cleanup(k8s, desired):
    """Delete the credential specs, ClusterRoles and RoleBindings of this run (label selector, in chunks)."""
    names = [a['_credspec'] for a in desired.accounts]
    label = desired.names.CREDSPEC_LABEL
    for i in range(0, len(names), 100):
        values = ','.join(desired.names.credspec_label_value(n) for n in names[i:i + 100])
        selector = quote('%s in (%s)' % (label, values))
        k8s.request('DELETE', '/apis/windows.k8s.io/v1/gmsacredentialspecs?labelSelector=' + selector)
        k8s.request('DELETE', '/apis/rbac.authorization.k8s.io/v1/clusterroles?labelSelector=' + selector)
        for ns in desired.namespaces:
            k8s.request('DELETE', '/apis/rbac.authorization.k8s.io/v1/namespaces/%s/rolebindings?labelSelector=%s'
                        % (ns, selector))


# ---------------------------------------------------------------------------------------------------------

def machine():
    cpu = ''
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    for line in Path('/proc/meminfo').read_text().splitlines():
        if line.startswith('MemTotal:'):
            mem_kb = int(line.split()[1])
    return {'nproc': os.cpu_count(), 'memory_gb': round(mem_kb / 1024.0 / 1024.0, 1), 'cpu': cpu,
            'kernel': platform.release(), 'python': platform.python_version(),
            'loadavg_at_start': list(os.getloadavg())}


def versions(python):
    out = subprocess.run([python, '-c', 'import ansible.release, ldap3, kubernetes; '
                          'print(ansible.release.__version__, ldap3.__version__, kubernetes.__version__)'],
                         capture_output=True, text=True, check=False).stdout.split()
    return dict(zip(('ansible_core', 'ldap3', 'kubernetes_client'), out))


def run_side(runner, side, desired, labs_vars, n_items, k8s, directory, prefix):
    """Three phases on one side. n_items: how many gMSAs the side's playbook gets (baseline sampling)."""
    results = {}
    sub = desired if n_items == desired.n else None
    for phase in PHASES:
        if phase == 'change1':
            desired.change_one()
        gmsas = desired.gmsas()[:n_items]
        if side == 'ours':
            extra = dict(labs_vars, bench_gmsas=gmsas, bench_host_group=desired.host_group,
                         bench_credential_specs=desired.credential_specs()[:n_items],
                         bench_bindings=desired.bindings()[:n_items])
            playbook = 'ours.yml'
        else:
            per = 2 + len(desired.namespaces)
            extra = dict(labs_vars, bench_gmsas=gmsas, bench_host_group=desired.host_group,
                         bench_k8s_objects=desired.k8s_objects_ordered(n_items, per))
            playbook = 'baseline.yml'
        label = '%s N=%d %s%s' % (side, desired.n, phase, '' if sub else ' (first %d items)' % n_items)
        log('%s ...' % label)
        result = runner.run(playbook, extra, label)
        result['items'] = n_items
        log('%s: %.1f s, k8s %d requests (%d writes), ldap %d ops (%d writes), max rss %.0f MB, tree pss %.0f MB%s'
            % (label, result['wall_seconds'], result['k8s']['requests'], result['k8s']['writes'],
               result['ldap']['requests'], result['ldap']['writes'], result['max_rss_mb'],
               result['tree_peak_pss_mb'], '  FAILED' if result['failed'] else ''))
        results[phase] = result
    # reset for the other side: the phase-3 change is undone by rebuilding Desired in main()
    log('cleanup after %s: deleting the objects' % side)
    k8s_cleanup(k8s, desired)
    deleted = directory.delete_prefixed(prefix)
    return results, deleted


def _ordered(self, n_items, per):
    """kubernetes.core gets the first n_items gMSAs' objects: credspecs first, then their RBAC."""
    objects = self.k8s_objects()
    specs, rbac = objects[:self.n], objects[self.n:]
    return specs[:n_items] + rbac[:n_items * (per - 1)]


Desired.k8s_objects_ordered = _ordered


def _task_seconds(result, backend):
    """Summed wall time of a run's tasks of one backend ('AD ' or 'K8s ', the task name prefixes)."""
    words = {'AD ': ('gmsa', 'host_group'), 'K8s ': ('credential_spec', 'kubernetes.core')}[backend]
    total = 0.0
    for task in result['tasks']:
        name = task['name']
        if name.startswith(backend) or name.startswith(words):  # (names before the prefixes were added)
            total += task['seconds']
    return total


def _scaled(base, phase, side_key, key, scale):
    """A baseline counter scaled from the sample to N. In change1 only the no-op part is per item: the one
    change is the same whatever N is, so it is added unscaled."""
    value = base[phase][side_key][key]
    if scale == 1:
        return value
    if phase == 'change1':
        noop = base['noop'][side_key][key]
        return round(noop * scale + (value - noop))
    return round(value * scale)


def summarise(n, ours, base, scale):
    """Per-phase rows and ratios; base values scaled by `scale` when the baseline ran on a sample."""
    rows = []
    for phase in PHASES:
        o, b = ours[phase], base[phase] if base else None
        b_wall = b['wall_seconds'] * scale if b else None
        rows.append({
            'n': n, 'phase': phase,
            'ours_wall_s': o['wall_seconds'],
            'baseline_wall_s': round(b_wall, 2) if b else None,
            'baseline_extrapolated': scale != 1,
            'ours_over_baseline': round(o['wall_seconds'] / b_wall, 4) if b else None,
            'speedup': round(b_wall / o['wall_seconds'], 1) if b else None,
            # the same ratio per backend, from the tasks' own wall time (no ansible-playbook start-up)
            'ad_speedup': round(_task_seconds(b, 'AD ') * scale / _task_seconds(o, 'AD '), 1) if b else None,
            'k8s_speedup': round(_task_seconds(b, 'K8s ') * scale / _task_seconds(o, 'K8s '), 1) if b else None,
            'ours_k8s_requests': o['k8s']['requests'], 'ours_k8s_writes': o['k8s']['writes'],
            'ours_k8s_lists': o['k8s']['lists_by_resource'],
            'baseline_k8s_requests': _scaled(base, phase, 'k8s', 'requests', scale) if b else None,
            'baseline_k8s_writes': _scaled(base, phase, 'k8s', 'writes', scale) if b else None,
            'ours_ldap_ops': o['ldap']['requests'], 'ours_ldap_writes': o['ldap']['writes'],
            'baseline_ldap_ops': _scaled(base, phase, 'ldap', 'requests', scale) if b else None,
            'baseline_ldap_writes': _scaled(base, phase, 'ldap', 'writes', scale) if b else None,
            'ours_max_rss_mb': o['max_rss_mb'], 'ours_tree_peak_rss_mb': o['tree_peak_rss_mb'],
            'ours_tree_peak_pss_mb': o['tree_peak_pss_mb'],
            'baseline_tree_peak_pss_mb': b['tree_peak_pss_mb'] if b else None,
            'baseline_max_rss_mb': b['max_rss_mb'] if b else None,
            'baseline_tree_peak_rss_mb': b['tree_peak_rss_mb'] if b else None,
        })
    return rows


def rebuild(path):
    """Recompute the rows, targets and table of a report JSON from its measurements (no lab needed)."""
    report = json.loads(Path(path).read_text())
    report['rows'] = []
    for n, size in report['sizes'].items():
        rows = summarise(int(n), size['ours'], size['baseline'], size['baseline_scale'])
        report['rows'].extend(rows)
        size['targets'] = check_targets(int(n), size['ours'], size['objects'])
        if size['baseline']:
            size['targets']['noop_at_least_20x_faster_than_baseline'] = rows[1]['speedup'] >= 20
    report['table'] = print_table(report['rows'])
    Path(path).write_text(json.dumps(report, indent=1))
    print(report['table'])


def check_targets(n, ours, objects):
    noop = ours['noop']
    lists = noop['k8s']['lists_by_resource']
    # ours makes one call per kind family: credential_spec (credspecs) and credential_spec_rbac
    # (namespaces, clusterroles, rolebindings): at most one LIST of each resource per phase
    too_many = dict((k, v) for k, v in lists.items() if v > 1)
    return {
        'noop_zero_k8s_writes': noop['k8s']['writes'] == 0,
        'noop_zero_ldap_writes': noop['ldap']['writes'] == 0,
        'noop_at_most_one_list_per_kind_per_call': not too_many,
        'noop_lists_by_resource': lists,
        'noop_wall_under_20s': noop['wall_seconds'] < 20.0 if n >= 500 else None,
        # the whole ansible-playbook tree (controller, worker fork, module process), shared pages counted once
        'memory_under_300mb': all(p['tree_peak_pss_mb'] < 300 for p in ours.values()),
        'peak_tree_pss_mb': max(p['tree_peak_pss_mb'] for p in ours.values()),
        'peak_tree_rss_sum_mb': max(p['tree_peak_rss_mb'] for p in ours.values()),
        'k8s_requests_per_object_noop': round(noop['k8s']['requests'] / float(objects['k8s_objects']), 4),
        'ldap_ops_per_object_noop': round(noop['ldap']['requests'] / float(objects['ad_objects']), 4),
    }


def print_table(rows):
    head = ('N', 'phase', 'ours s', 'base s', 'ours/base', 'x faster', 'AD x', 'k8s x', 'k8s req o/b', 'k8s wr o/b',
            'ldap ops o/b', 'ldap wr o/b', 'tree PSS MB o/b', 'max RSS MB o/b')
    lines = [head]
    for r in rows:
        ext = '*' if r['baseline_extrapolated'] else ''
        lines.append((str(r['n']), r['phase'], '%.1f' % r['ours_wall_s'],
                      '%.1f%s' % (r['baseline_wall_s'], ext) if r['baseline_wall_s'] is not None else '-',
                      '%.3f' % r['ours_over_baseline'] if r['ours_over_baseline'] is not None else '-',
                      '%.1f' % r['speedup'] if r['speedup'] is not None else '-',
                      '%.1f' % r['ad_speedup'] if r['ad_speedup'] is not None else '-',
                      '%.1f' % r['k8s_speedup'] if r['k8s_speedup'] is not None else '-',
                      '%s/%s%s' % (r['ours_k8s_requests'], r['baseline_k8s_requests'], ext),
                      '%s/%s%s' % (r['ours_k8s_writes'], r['baseline_k8s_writes'], ext),
                      '%s/%s%s' % (r['ours_ldap_ops'], r['baseline_ldap_ops'], ext),
                      '%s/%s%s' % (r['ours_ldap_writes'], r['baseline_ldap_writes'], ext),
                      '%.0f/%s' % (r['ours_tree_peak_pss_mb'], '%.0f' % r['baseline_tree_peak_pss_mb']
                                   if r['baseline_tree_peak_pss_mb'] else '-'),
                      '%.0f/%s' % (r['ours_max_rss_mb'], '%.0f' % r['baseline_max_rss_mb']
                                   if r['baseline_max_rss_mb'] else '-')))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = []
    for j, line in enumerate(lines):
        text.append('  '.join(cell.rjust(widths[i]) if i not in (1,) else cell.ljust(widths[i])
                              for i, cell in enumerate(line)))
        if j == 0:
            text.append('  '.join('-' * w for w in widths))
    return '\n'.join(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('sizes', nargs='*', type=int, default=None, help='values of N (default: 10)')
    parser.add_argument('--baseline-sample', type=int, default=int(os.environ.get('BENCH_BASELINE_SAMPLE', 50)),
                        help='run the baseline on at most this many gMSAs and scale it linearly to N '
                             '(marked extrapolated); 0 = always the full N (default 50)')
    parser.add_argument('--no-baseline', action='store_true', help='only measure our modules')
    parser.add_argument('--samba-env', help='env file of a running Samba lab (default: start/reuse one)')
    parser.add_argument('--k8s-env', help='env file of a running Kubernetes lab (default: start one)')
    parser.add_argument('--k8s-lab-state', default=os.environ.get('BENCH_K8S_LAB_STATE', '/tmp/winkube-bench-lab'),
                        help='WINKUBE_LAB_STATE for the Kubernetes lab the benchmark starts')
    parser.add_argument('--keep-labs', action='store_true', help='leave the labs the benchmark started running')
    parser.add_argument('--python', default=os.environ.get('BENCH_PYTHON', sys.executable))
    parser.add_argument('--profile', metavar='DIR',
                        help='profile every module process and the controller with pyinstrument into DIR '
                             '(times measured then are not comparable)')
    parser.add_argument('--pyinstrument-path', default=os.environ.get('BENCH_PYINSTRUMENT_PATH', ''),
                        help='folder with pyinstrument (pip install --target DIR pyinstrument)')
    parser.add_argument('--output', help='JSON file to write (default bench/results/bench-<time>.json)')
    parser.add_argument('--rebuild', metavar='JSON', help='only recompute the rows and table of a report')
    args = parser.parse_args(argv)
    if args.rebuild:
        rebuild(args.rebuild)
        return 0
    sizes = args.sizes or [10]
    stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
    output = Path(args.output) if args.output else BENCH / 'results' / ('bench-%s.json' % stamp)
    output.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix='winkube-bench-'))
    collections = workdir / 'collections'
    (collections / 'ansible_collections' / 'winkube').mkdir(parents=True)
    (collections / 'ansible_collections' / 'winkube' / 'gmsa').symlink_to(REPO)
    models = load_models(collections)
    report = {'date': datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
              'machine': machine(), 'versions': versions(args.python), 'command': ' '.join(sys.argv),
              'baseline_sample': args.baseline_sample, 'sizes': {}, 'rows': []}
    log('work folder %s' % workdir)
    with Labs(args) as labs:
        samba, k8s_env = labs.samba_env, labs.k8s_env
        k8s = K8sHttp(k8s_env)
        proxy = LdapCountingProxy(samba['SAMBA_SERVER'], int(samba['SAMBA_LDAPS_PORT']), samba['SAMBA_CA_FILE'],
                                  str(workdir)).start()
        runner = Runner(args, workdir, collections, k8s, proxy)
        directory = Directory(samba)
        prefix = 'wkb' + secrets.token_hex(2)[:3]
        namespaces = ['%s-a' % prefix, '%s-b' % prefix]
        labs_vars = {
            'bench_ad': {'server': '127.0.0.1', 'port': proxy.port, 'username': samba['SAMBA_ADMIN_UPN'],
                         'password': Path(samba['SAMBA_PASSWORD_FILE']).read_text(), 'ca_file': proxy.ca_file,
                         'base_dn': samba['SAMBA_BASE_DN']},
            'bench_k8s': {'kubeconfig': k8s_env['KUBECONFIG']},
        }
        try:
            for ns in namespaces:
                k8s.request('POST', '/api/v1/namespaces', {'apiVersion': 'v1', 'kind': 'Namespace',
                                                           'metadata': {'name': ns}})
            domain_file = workdir / 'domain.json'
            setup = runner.run('setup.yml', dict(labs_vars, bench_out=str(domain_file)), 'setup')
            if setup['failed']:
                raise SystemExit('setup failed, see %s' % setup['log'])
            domain = json.loads(domain_file.read_text())
            # a just-created CRD answers 429 until its storage is ready: wait here, not in the measurement
            k8s.request('GET', '/apis/windows.k8s.io/v1/gmsacredentialspecs?limit=1', ok=(200,))
            for n in sizes:
                run_prefix = prefix + 'abcdefghij'[sizes.index(n) % 10]  # cn prefix; 4 digits follow
                nodes = ['%sNode%d$' % (run_prefix, k) for k in (1, 2)]
                for node in nodes:
                    directory.add_computer(node[:-1])
                desired = Desired(models, domain, n, run_prefix, samba['SAMBA_DNS_DOMAIN'], namespaces, nodes)
                objects = desired.object_counts()
                log('N=%d: %s' % (n, json.dumps(objects)))
                ours, dummy = run_side(runner, 'ours', desired, labs_vars, n, k8s, directory, run_prefix)
                base, scale, sample = None, 1.0, n
                if not args.no_baseline:
                    for node in nodes:
                        directory.add_computer(node[:-1])
                    desired = Desired(models, domain, n, run_prefix, samba['SAMBA_DNS_DOMAIN'], namespaces, nodes)
                    sample = n if not args.baseline_sample else min(n, args.baseline_sample)
                    scale = float(n) / sample
                    base, dummy = run_side(runner, 'baseline', desired, labs_vars, sample, k8s, directory, run_prefix)
                else:
                    directory.delete_prefixed(run_prefix)
                rows = summarise(n, ours, base, scale)
                report['rows'].extend(rows)
                report['sizes'][str(n)] = {
                    'objects': objects, 'prefix': run_prefix, 'baseline_items': sample, 'baseline_scale': scale,
                    'ours': ours, 'baseline': base, 'targets': check_targets(n, ours, objects),
                }
                if base:
                    report['sizes'][str(n)]['targets']['noop_at_least_20x_faster_than_baseline'] = (
                        rows[1]['speedup'] is not None and rows[1]['speedup'] >= 20)
                output.write_text(json.dumps(report, indent=1))
        finally:
            # leftovers of an interrupted run (normally each side cleans up after itself)
            if directory.delete_prefixed(prefix):
                log('deleted leftover directory objects %s*' % prefix)
            for ns in namespaces:
                k8s.request('DELETE', '/api/v1/namespaces/%s' % ns)
            directory.close()
            proxy.stop()
            if os.environ.get('BENCH_KEEP_WORKDIR') != '1':
                shutil.rmtree(workdir, ignore_errors=True)
    table = print_table(report['rows'])
    report['table'] = table
    output.write_text(json.dumps(report, indent=1))
    print(table)
    print('(* baseline ran on the first %d gMSAs and is scaled linearly to N; o/b = ours/baseline)'
          % args.baseline_sample if any(r['baseline_extrapolated'] for r in report['rows']) else
          '(o/b = ours/baseline)')
    for n, data in report['sizes'].items():
        print('N=%s targets: %s' % (n, json.dumps(data['targets'])))
    print('JSON: %s' % output)
    failed = any(p['failed'] for d in report['sizes'].values() for side in ('ours', 'baseline')
                 for p in (d[side] or {}).values())
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
