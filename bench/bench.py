"""Scale benchmark of winkube.gmsa against the local lab (see bench/README.md).

For each N: N gMSAs (each with an SPN), the host group granted on all of them, N GMSACredentialSpecs, N
ClusterRoles and 2N RoleBindings (two namespaces). Sides (SIDES below), each run through three phases
with ansible-playbook on every object of the run (nothing is sampled or extrapolated):

    ours            one module call per kind (gmsa accounts=, host_group gmsas=, credential_spec,
                    credential_spec_rbac)
    baseline        the typical playbook: winkube.gmsa.gmsa and host_group once per gMSA (loop),
                    kubernetes.core.k8s once per Kubernetes object (loop, no apply)
    k8s_loop_apply  kubernetes.core.k8s once per object (loop), apply: true
    k8s_list_apply  kubernetes.core.k8s once, definition = the list of all objects, apply: true
    k8s_list_ssa    the same with server-side apply (a field manager)
    ldap_cg         community.general ldap_entry + ldap_attrs, one task per account each
    floor           (optional) ours.yml's four tasks and arguments, each module doing nothing: Ansible's own cost

    converge  first run on an empty lab
    noop      the same again: must change nothing
    change1   one gMSA changed (its description, and one more service account in one RoleBinding)

A peer run that takes longer than the budget (--budget) is killed and reported as "did not finish"; its
later phases, and the side at larger N, are then not run.

Measured per phase: wall time and CPU time (user+system of the ansible-playbook tree) and the load of the
machine (load average before/after, share of the machine's CPU busy); Kubernetes API requests counted by
the API server itself (apiserver_request_total deltas from /metrics, per verb and resource) and as the
modules report them (api_requests); LDAP operations counted on the wire by a TLS-terminating proxy between
the modules and the DC (bench/ldap_count_proxy.py) and as the modules report them (ldap_operations); peak
memory: max RSS of the ansible-playbook process tree (getrusage of the waited-for child, i.e. the largest
single process) and the peaks of the summed PSS and RSS of the whole tree sampled every 0.2 s.

The JSON report is written after every side, so a run that dies later keeps what it measured.
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
import signal
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


def process_tree(pid):
    """pid and all its descendants (from /proc), parents first."""
    kids = _children_map()
    todo, tree = [pid], []
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(kids.get(pid, []))
    return tree


def kill_tree(pid):
    """SIGKILL pid and every descendant: ansible's worker processes start sessions of their own (setsid), so
    killing the process group alone leaves them behind."""
    tree = process_tree(pid)
    for member in tree:
        try:
            os.kill(member, signal.SIGKILL)
        except OSError:
            pass
    return tree


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
            tree = process_tree(self.pid)
            sizes = [_memory_kb(p) for p in tree]
            self.peak_rss_kb = max(self.peak_rss_kb, sum(size[0] for size in sizes))
            self.peak_pss_kb = max(self.peak_pss_kb, sum(size[1] for size in sizes))
            self.peak_processes = max(self.peak_processes, len(tree))
            self.done.wait(self.interval)


def _busy_jiffies():
    """(busy, total) CPU jiffies of the whole machine (/proc/stat): how much else was running."""
    fields = [int(v) for v in Path('/proc/stat').read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


class Runner(object):
    def __init__(self, args, workdir, collections, k8s, proxy):
        self.args, self.workdir, self.k8s, self.proxy = args, workdir, k8s, proxy
        python = args.python
        self.playbook_bin = str(Path(python).parent / 'ansible-playbook')
        self.env = dict(os.environ)
        self.env.update(
            ANSIBLE_COLLECTIONS_PATH=str(collections),
            ANSIBLE_CALLBACK_PLUGINS=str(BENCH / 'callback_plugins'),
            ANSIBLE_FILTER_PLUGINS=str(BENCH / 'filter_plugins'),
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

    def run(self, playbook, extra_vars, label, budget=None, pythonpath=None):
        """One ansible-playbook run, measured. `budget` (seconds): the run is killed (its whole process group)
        when it has not finished by then and reported as did_not_finish."""
        self.seq += 1
        # the run's data comes as inventory variables (group_vars), as a user's inventory holds it; extra vars
        # (-e @file) would cost every side more: ansible-core deep-copies them for every task
        inventory = self.workdir / ('inventory-%02d' % self.seq)
        (inventory / 'group_vars').mkdir(parents=True)
        (inventory / 'hosts').write_text('localhost ansible_connection=local\n')
        (inventory / 'group_vars' / 'all.json').write_text(json.dumps(extra_vars))
        stats_file = self.workdir / ('stats-%02d.json' % self.seq)
        out_file = self.workdir / ('out-%02d-%s.log' % (self.seq, re.sub(r'[^a-z0-9]+', '-', label.lower())))
        cmd = [self.playbook_bin, '-i', str(inventory / 'hosts'), str(BENCH / 'playbooks' / playbook)]
        env = dict(self.env, BENCH_STATS_FILE=str(stats_file))
        if pythonpath:
            env['PYTHONPATH'] = pythonpath + (':' + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
        if self.profile is not None:
            cmd = [self.args.python, '-m', 'pyinstrument', '--show-all', '-r', 'text', '-o',
                   str(self.profile / ('controller-%02d-%s.txt' % (self.seq, out_file.stem))), cmd[0]] + cmd[1:]
            env['PYTHONPATH'] = args_path = self.args.pyinstrument_path
            assert args_path
        metrics_before = self.k8s.metrics()
        ldap_before = self.proxy.snapshot()
        trace_start = len(self.proxy.trace) if self.proxy.trace is not None else 0
        errors_start = len(self.proxy.errors)
        load_before = [round(v, 2) for v in os.getloadavg()]
        busy_before = _busy_jiffies()
        started = time.monotonic()
        timed_out = False
        with open(out_file, 'w') as out:
            proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=str(self.workdir),
                                    start_new_session=True)
            sampler = TreeSampler(proc.pid)
            sampler.start()
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if budget and time.monotonic() - started > budget and not timed_out:
                    timed_out = True
                    kill_tree(proc.pid)  # the whole tree: forks and module processes
                time.sleep(0.05)
            proc.returncode = os.waitstatus_to_exitcode(status)
            sampler.done.set()
            sampler.join()
        wall = time.monotonic() - started
        busy_after = _busy_jiffies()
        time.sleep(0.05)  # the proxy threads forward the last bytes
        ldap_after = self.proxy.snapshot()
        metrics_after = self.k8s.metrics()
        tasks = json.loads(stats_file.read_text()) if stats_file.exists() else []
        failed = not timed_out and (proc.returncode != 0 or any(t['failed'] for t in tasks))
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
        busy = busy_after[0] - busy_before[0]
        total = busy_after[1] - busy_before[1]
        return {
            'label': label,
            'loadavg_before': load_before,
            'loadavg_after': [round(v, 2) for v in os.getloadavg()],
            'loadavg_1min_after': round(os.getloadavg()[0], 2),
            # share of the machine's CPUs busy during the run (everything: this run, the lab servers, others)
            'machine_cpu_busy': round(busy / float(total), 3) if total else None,
            'rc': proc.returncode,
            'failed': failed,
            'did_not_finish': timed_out,
            'dnf_reason': ('did not finish in the budget of %d s (killed after %.0f s)' % (budget, wall)
                           if timed_out else None),
            'wall_seconds': round(wall, 3),
            # user+system CPU of ansible-playbook and every descendant it waited for (module processes)
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
    """Admin LDAP access for setup and cleanup. A new connection per operation: a run can leave this idle
    for an hour, and the DC closes idle connections (a cleanup once died of that and lost the report)."""

    def __init__(self, samba):
        self.samba = samba
        self.base_dn = samba['SAMBA_BASE_DN']
        self.dns = samba['SAMBA_DNS_DOMAIN']
        self._connect().unbind()  # fail early on a bad bind

    def _connect(self):
        import ldap3

        ca_file = self.samba['SAMBA_CA_FILE']

        class _Tls(ldap3.Tls):
            def wrap_socket(self, connection, do_handshake=False):
                context = ssl.create_default_context(cafile=ca_file)
                connection.socket = context.wrap_socket(connection.socket, server_hostname=connection.server.host,
                                                        do_handshake_on_connect=do_handshake)

        server = ldap3.Server(self.samba['SAMBA_SERVER'], port=int(self.samba['SAMBA_LDAPS_PORT']), use_ssl=True,
                              tls=_Tls(), get_info=ldap3.NONE, connect_timeout=10)
        conn = ldap3.Connection(server, user=self.samba['SAMBA_ADMIN_UPN'],
                                password=Path(self.samba['SAMBA_PASSWORD_FILE']).read_text(), receive_timeout=120,
                                raise_exceptions=False)
        if not conn.bind():
            raise RuntimeError('LDAP bind failed: %s' % conn.result)
        return conn

    def computer_dn(self, name):
        return 'CN=%s,CN=Computers,%s' % (name, self.base_dn)

    def add_computers(self, names):
        conn = self._connect()
        try:
            for name in names:
                conn.add(self.computer_dn(name), ['top', 'person', 'organizationalPerson', 'user', 'computer'],
                         {'sAMAccountName': name + '$', 'userAccountControl': '4096',
                          'dNSHostName': '%s.%s' % (name.lower(), self.dns)})
        finally:
            conn.unbind()

    def delete_prefixed(self, prefix):
        """Delete every object whose cn starts with prefix (gMSAs, the host group, the computers)."""
        for attempt in range(3):
            conn = None
            try:
                conn = self._connect()
                deleted = 0
                while True:  # a page at a time (a DC returns 1,000 at most per page) until none is left
                    conn.search(self.base_dn, '(cn=%s*)' % prefix, attributes=['cn'], paged_size=1000)
                    dns = [e['dn'] for e in conn.response if e.get('type') == 'searchResEntry']
                    if not dns:
                        return deleted
                    done = sum(1 for dn in dns if conn.delete(dn))
                    if not done:  # the DC refuses them: another pass would find the same objects forever
                        raise RuntimeError('the DC deleted none of %d objects %s*: %s' % (len(dns), prefix, conn.result))
                    deleted += done
            except Exception as exc:  # pylint: disable=broad-except  # reconnect and retry: cleanup must finish
                log('LDAP cleanup attempt %d failed: %r' % (attempt + 1, exc))
                time.sleep(2)
            finally:
                if conn is not None:
                    try:
                        conn.unbind()
                    except Exception:  # pylint: disable=broad-except
                        pass
        raise RuntimeError('LDAP cleanup of %s* failed three times' % prefix)


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


def versions(python, ldap_pythonpath=None):
    code = ('import ansible.release, ldap3, kubernetes, json\n'
            'from importlib import metadata\n'
            'out = {"ansible_core": ansible.release.__version__, "ldap3": ldap3.__version__,'
            ' "kubernetes_client": kubernetes.__version__}\n'
            'for name in ("community.general", "kubernetes.core"):\n'
            '    ns, coll = name.split(".")\n'
            '    try:\n'
            '        mod = __import__("ansible_collections.%s.%s" % (ns, coll), fromlist=["x"])\n'
            '        path = list(mod.__path__)[0] + "/MANIFEST.json"\n'
            '        out[name] = json.load(open(path))["collection_info"]["version"]\n'
            '    except Exception as exc:\n'
            '        out[name] = None\n'
            'try:\n'
            '    import ldap\n'
            '    out["python_ldap"] = ldap.__version__\n'
            'except ImportError:\n'
            '    out["python_ldap"] = None\n'
            'print(json.dumps(out))\n')
    env = dict(os.environ)
    if ldap_pythonpath:
        env['PYTHONPATH'] = ldap_pythonpath
    proc = subprocess.run([python, '-c', code], capture_output=True, text=True, check=False, env=env)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        return {'error': proc.stderr[-500:]}


# The sides: ours, and the peers at their best and as typically written. Each runs converge, noop, change1
# on every object of the run (no sampling); `backends` says what part of the work it does.
SIDES = {
    'ours': {'playbook': 'ours.yml', 'backends': ('ad', 'k8s'),
             'title': 'winkube.gmsa: gmsa, host_group, credential_spec, credential_spec_rbac, one call per kind'},
    # ours with the Kubernetes writes one at a time (write_concurrency=1): before/after of the concurrency
    'ours_serial': {'playbook': 'ours.yml', 'backends': ('ad', 'k8s'), 'vars': {'bench_write_concurrency': 1},
                    'optional': True,
                    'title': 'winkube.gmsa as ours, Kubernetes writes one at a time (write_concurrency: 1)'},
    'baseline': {'playbook': 'baseline.yml', 'backends': ('ad', 'k8s'), 'per_item': True,
                 'title': 'typical playbook: winkube.gmsa.gmsa / host_group per account, kubernetes.core.k8s '
                          'per object (no apply)'},
    'k8s_loop_apply': {'playbook': 'k8s_loop_apply.yml', 'backends': ('k8s',), 'per_item': True,
                       'title': 'kubernetes.core.k8s per object (loop), apply: true'},
    'k8s_list_apply': {'playbook': 'k8s_list_apply.yml', 'backends': ('k8s',),
                       'title': 'kubernetes.core.k8s, one task, definition = list of all objects, apply: true'},
    'k8s_list_ssa': {'playbook': 'k8s_list_ssa.yml', 'backends': ('k8s',),
                     'title': 'kubernetes.core.k8s, one task, definition = list of all objects, server-side apply'},
    'ldap_cg': {'playbook': 'ldap_cg.yml', 'backends': ('ad',),
                'title': 'community.general ldap_entry + ldap_attrs, one task per account each'},
    # Ansible's own cost under ours.yml: the same four tasks and arguments, each module doing nothing
    'floor': {'playbook': 'floor.yml', 'backends': (), 'optional': True,
              'title': "Ansible's floor: ours.yml's four tasks and arguments, each calling a module that does "
                       "nothing (bench/playbooks/library/bench_floor.py)"},
}
PEER_K8S_BEST = ('k8s_list_apply', 'k8s_list_ssa')


def side_vars(side, desired, labs_vars, directory):
    extra = dict(labs_vars, bench_gmsas=desired.gmsas(), bench_host_group=desired.host_group)
    extra.update(SIDES[side].get('vars', {}))
    if side.startswith('ours') or side == 'floor':
        extra.update(bench_credential_specs=desired.credential_specs(), bench_bindings=desired.bindings())
    if side == 'baseline' or side.startswith('k8s_'):
        extra['bench_k8s_objects'] = desired.k8s_objects()
    if side == 'ldap_cg':
        extra['bench_host_group'] = dict(desired.host_group, member_dns=[
            directory.computer_dn(node[:-1]) for node in desired.host_group['members']])
    return extra


def run_side(runner, side, desired, labs_vars, k8s, directory, prefix, budget, pythonpath=None, keep=False):
    """Three phases on one side, then every object it made is deleted (the next side starts empty) unless keep."""
    results = {}
    for phase in PHASES:
        if phase == 'change1':
            desired.change_one()
        label = '%s N=%d %s' % (side, desired.n, phase)
        previous = [p for p in results.values() if p.get('did_not_finish') or p.get('skipped')]
        if previous:
            results[phase] = {'label': label, 'skipped': True, 'failed': False, 'did_not_finish': True,
                              'dnf_reason': 'not run: %s' % (previous[0]['dnf_reason'],)}
            continue
        log('%s ...' % label)
        result = runner.run(SIDES[side]['playbook'], side_vars(side, desired, labs_vars, directory), label,
                            budget=budget, pythonpath=pythonpath if side == 'ldap_cg' else None)
        result['items'] = desired.n
        log('%s: %.1f s (cpu %.1f s), k8s %d requests (%d writes), ldap %d ops (%d writes), tree pss %.0f MB, '
            'load %s -> %s%s%s'
            % (label, result['wall_seconds'], result['cpu_seconds'], result['k8s']['requests'],
               result['k8s']['writes'], result['ldap']['requests'], result['ldap']['writes'],
               result['tree_peak_pss_mb'], result['loadavg_before'][0], result['loadavg_after'][0],
               '  FAILED' if result['failed'] else '', '  DID NOT FINISH' if result['did_not_finish'] else ''))
        results[phase] = result
    if keep:
        log('%s: its objects are left in the labs (--keep-objects), prefix %s' % (side, prefix))
        return results, 0
    log('cleanup after %s: deleting the objects' % side)
    k8s_cleanup(k8s, desired)
    deleted = directory.delete_prefixed(prefix)
    return results, deleted


def _task_seconds(result, backend):
    """Summed wall time of a run's tasks of one backend ('AD ' or 'K8s ', the task name prefixes)."""
    total = 0.0
    for task in result.get('tasks') or []:
        if task['name'].startswith(backend):
            total += task['seconds']
    return total


def _measured(result):
    return bool(result) and not result.get('did_not_finish') and not result.get('failed')


def side_figures(result):
    """The per-phase figures of one side as the report rows carry them (None: did not finish / not run)."""
    if not result:
        return None
    if not _measured(result):
        figures = {'did_not_finish': bool(result.get('did_not_finish')), 'failed': bool(result.get('failed')),
                   'reason': result.get('dnf_reason') or ('failed, see %s' % result.get('log'))}
        if 'k8s' in result:  # how far a killed run got (its CPU time is lost with the killed process tree)
            figures['done_before_kill'] = {
                'k8s_requests': result['k8s']['requests'], 'k8s_writes': result['k8s']['writes'],
                'ldap_ops': result['ldap']['requests'], 'ldap_writes': result['ldap']['writes'],
                'loadavg_before': result.get('loadavg_before'), 'loadavg_after': result.get('loadavg_after')}
        return figures
    return {
        'wall_s': result['wall_seconds'], 'cpu_s': result['cpu_seconds'],
        'ad_tasks_s': round(_task_seconds(result, 'AD '), 3), 'k8s_tasks_s': round(_task_seconds(result, 'K8s '), 3),
        'k8s_requests': result['k8s']['requests'], 'k8s_writes': result['k8s']['writes'],
        'ldap_ops': result['ldap']['requests'], 'ldap_writes': result['ldap']['writes'],
        'tree_peak_pss_mb': result['tree_peak_pss_mb'], 'tree_peak_rss_mb': result['tree_peak_rss_mb'],
        'max_rss_mb': result['max_rss_mb'], 'loadavg_before': result.get('loadavg_before'),
        'loadavg_after': result.get('loadavg_after'), 'machine_cpu_busy': result.get('machine_cpu_busy'),
    }


def best_peers(figs):
    """community.general for AD plus the faster one-task kubernetes.core configuration, summed (two
    ansible-playbook runs: one start-up, about 1 s, is counted twice, in the peers' disfavour)."""
    ad = figs.get('ldap_cg')
    k8s_options = [(figs[s]['wall_s'], s) for s in PEER_K8S_BEST if figs.get(s) and 'wall_s' in figs[s]]
    if not ad or 'wall_s' not in ad or not k8s_options:
        return None
    k8s_side = min(k8s_options)[1]
    k = figs[k8s_side]
    return {'sides': ['ldap_cg', k8s_side], 'wall_s': round(ad['wall_s'] + k['wall_s'], 3),
            'cpu_s': round(ad['cpu_s'] + k['cpu_s'], 3),
            'k8s_requests': k['k8s_requests'], 'k8s_writes': k['k8s_writes'],
            'ldap_ops': ad['ldap_ops'], 'ldap_writes': ad['ldap_writes'],
            'tree_peak_pss_mb': max(ad['tree_peak_pss_mb'], k['tree_peak_pss_mb'])}


def summarise(n, sides):
    """Per-phase rows: every side's figures, ours against the typical playbook and the best peers."""
    rows = []
    for phase in PHASES:
        figs = dict((side, side_figures(results.get(phase))) for side, results in sides.items() if results)
        o, b, floor = figs.get('ours'), figs.get('baseline'), figs.get('floor')
        best = best_peers(figs)
        o_ok, b_ok = o and 'wall_s' in o, b and 'wall_s' in b
        floor_ok = o_ok and floor and 'wall_s' in floor
        row = {
            'n': n, 'phase': phase, 'sides': figs, 'best_peers': best,
            'speedup_vs_best_peers': round(best['wall_s'] / o['wall_s'], 2) if best and o_ok else None,
            # the same in CPU time of the ansible-playbook trees: less sensitive to a load that differs
            'cpu_ratio_vs_best_peers': round(best['cpu_s'] / o['cpu_s'], 2) if best and o_ok and o['cpu_s'] else None,
            # the typical playbook (kept names: the CI smoke test and older reports read them)
            'ours_wall_s': o['wall_s'] if o_ok else None,
            'baseline_wall_s': b['wall_s'] if b_ok else None,
            'baseline_extrapolated': False,
            'ours_over_baseline': round(o['wall_s'] / b['wall_s'], 4) if o_ok and b_ok else None,
            'speedup': round(b['wall_s'] / o['wall_s'], 1) if o_ok and b_ok else None,
            'ad_speedup': round(b['ad_tasks_s'] / o['ad_tasks_s'], 1) if o_ok and b_ok and o['ad_tasks_s'] else None,
            'k8s_speedup': (round(b['k8s_tasks_s'] / o['k8s_tasks_s'], 1)
                            if o_ok and b_ok and o['k8s_tasks_s'] else None),
            # what our modules cost above Ansible's own work for the same four calls (side `floor`)
            'ours_above_floor_s': round(o['wall_s'] - floor['wall_s'], 3) if floor_ok else None,
            'ours_above_floor_cpu_s': round(o['cpu_s'] - floor['cpu_s'], 3) if floor_ok else None,
        }
        for key in ('k8s_requests', 'k8s_writes', 'ldap_ops', 'ldap_writes', 'tree_peak_pss_mb', 'max_rss_mb'):
            row['ours_' + key] = o.get(key) if o else None
            row['baseline_' + key] = b.get(key) if b_ok else None
        rows.append(row)
    return rows


def check_targets(n, ours, objects, rows):
    noop = ours['noop']
    if not _measured(noop) or not _measured(ours['converge']):
        return {'measured': False}
    lists = noop['k8s']['lists_by_resource']
    # ours makes one call per kind family: credential_spec (credspecs) and credential_spec_rbac
    # (namespaces, clusterroles, rolebindings): at most one LIST of each resource per phase
    too_many = dict((k, v) for k, v in lists.items() if v > 1)
    by_phase = dict((r['phase'], r) for r in rows)
    measured = [p for p in ours.values() if _measured(p)]
    targets = {
        'noop_zero_k8s_writes': noop['k8s']['writes'] == 0,
        'noop_zero_ldap_writes': noop['ldap']['writes'] == 0,
        'noop_at_most_one_list_per_kind_per_call': not too_many,
        'noop_lists_by_resource': lists,
        'peak_tree_pss_mb': max(p['tree_peak_pss_mb'] for p in measured),
        'peak_tree_rss_sum_mb': max(p['tree_peak_rss_mb'] for p in measured),
        'k8s_requests_per_object_noop': round(noop['k8s']['requests'] / float(objects['k8s_objects']), 4),
        'ldap_ops_per_object_noop': round(noop['ldap']['requests'] / float(objects['ad_objects']), 4),
        'noop_ms_per_gmsa': round(1000.0 * noop['wall_seconds'] / n, 3),
        'converge_ms_per_gmsa': round(1000.0 * ours['converge']['wall_seconds'] / n, 3),
        # the targets of issue 19 (wall times depend on the load: see loadavg in each phase)
        'memory_under_300mb': all(p['tree_peak_pss_mb'] < 300 for p in measured),
        'noop_wall_s': noop['wall_seconds'],
        'converge_wall_s': ours['converge']['wall_seconds'],
    }
    if n == 500:
        targets['noop_under_3s'] = noop['wall_seconds'] < 3.0
        targets['converge_under_15s'] = ours['converge']['wall_seconds'] < 15.0
    if n >= 2000:
        targets['noop_under_8s'] = noop['wall_seconds'] < 8.0
    best_noop = by_phase['noop'].get('speedup_vs_best_peers')
    best_conv = by_phase['converge'].get('speedup_vs_best_peers')
    # issue 19's ratios are targets at N=500 and above (smaller N: see the rows)
    if best_noop is not None and n >= 500:
        targets['noop_at_least_5x_faster_than_best_peers'] = best_noop >= 5
    if best_conv is not None and n >= 500:
        targets['converge_at_least_2x_faster_than_best_peers'] = best_conv >= 2
    if by_phase['noop'].get('speedup') is not None:
        targets['noop_at_least_20x_faster_than_baseline'] = by_phase['noop']['speedup'] >= 20
    return targets


def rebuild(path):
    """Recompute the rows, targets and table of a report JSON from its measurements (no lab needed)."""
    report = json.loads(Path(path).read_text())
    report['rows'] = []
    for n, size in report['sizes'].items():
        rows = summarise(int(n), size['sides'])
        report['rows'].extend(rows)
        size['targets'] = check_targets(int(n), size['sides']['ours'], size['objects'], rows)
    report['table'] = print_table(report['rows'])
    Path(path).write_text(json.dumps(report, indent=1))
    print(report['table'])


def _cell(fig, key, fmt='%s'):
    if not fig:
        return '-'
    if key not in fig:
        return 'DNF' if fig.get('did_not_finish') else 'FAIL'
    return fmt % fig[key]


def print_table(rows):
    sides = []
    for r in rows:
        sides.extend(s for s in r['sides'] if s not in sides)
    head = ['N', 'phase'] + ['%s s' % s for s in sides] + ['best peers s', 'x vs best', 'x vs typical']
    lines = [head]
    for r in rows:
        line = [str(r['n']), r['phase']] + [_cell(r['sides'].get(s), 'wall_s', '%.1f') for s in sides]
        line += ['%.1f' % r['best_peers']['wall_s'] if r['best_peers'] else '-',
                 '%.1f' % r['speedup_vs_best_peers'] if r['speedup_vs_best_peers'] else '-',
                 '%.1f' % r['speedup'] if r['speedup'] else '-']
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = []
    for j, line in enumerate(lines):
        text.append('  '.join(cell.rjust(widths[i]) if i != 1 else cell.ljust(widths[i])
                              for i, cell in enumerate(line)))
        if j == 0:
            text.append('  '.join('-' * w for w in widths))
    return '\n'.join(text)


def write_report(report, output):
    """Written after every side: a run that dies later (or is killed) still leaves its measurements."""
    report['rows'] = [r for size in report['sizes'].values() for r in size.get('rows', [])]
    tmp = output.with_suffix('.tmp')
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(output)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('sizes', nargs='*', type=int, default=None, help='values of N (default: 10)')
    default_sides = ','.join(s for s in SIDES if not SIDES[s].get('optional'))
    parser.add_argument('--sides', default=default_sides,
                        help='comma-separated sides to run (default: %s; also: %s)' % (
                            default_sides, ','.join(s for s in SIDES if SIDES[s].get('optional'))))
    parser.add_argument('--ours-only-above', type=int, default=0,
                        help='for N above this, run only our side and its floor (e.g. N=2000, where the peers '
                             'cannot finish)')
    parser.add_argument('--per-item-up-to', type=int, default=0,
                        help='run the per-item sides (baseline, k8s_loop_apply: one task per object) only up to this N')
    parser.add_argument('--per-item-budget', type=float, default=None,
                        help='the budget of one run of a per-item side (default: --budget)')
    parser.add_argument('--no-baseline', action='store_true', help='only measure our modules (= --sides ours)')
    parser.add_argument('--budget', type=float, default=float(os.environ.get('BENCH_BUDGET', 900)),
                        help='seconds one ansible-playbook run of a peer side may take; one that takes longer is '
                             'killed and reported as did not finish, its later phases and larger N are not run '
                             '(default 900)')
    parser.add_argument('--ldap-pythonpath', default=os.environ.get('BENCH_LDAP_PYTHONPATH', ''),
                        help='folder with python-ldap for the community.general side '
                             '(pip install --target DIR python-ldap)')
    parser.add_argument('--samba-env', help='env file of a running Samba lab (default: start/reuse one)')
    parser.add_argument('--k8s-env', help='env file of a running Kubernetes lab (default: start one)')
    parser.add_argument('--k8s-lab-state', default=os.environ.get('BENCH_K8S_LAB_STATE', '/tmp/winkube-bench-lab'),
                        help='WINKUBE_LAB_STATE for the Kubernetes lab the benchmark starts')
    parser.add_argument('--keep-labs', action='store_true', help='leave the labs the benchmark started running')
    parser.add_argument('--keep-objects', action='store_true',
                        help="leave the objects of the run in the labs (to profile a module call against them; one "
                             "side and one N only, since the next would collide with them)")
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
    sides = ['ours'] if args.no_baseline else [s.strip() for s in args.sides.split(',') if s.strip()]
    unknown = [s for s in sides if s not in SIDES]
    if unknown:
        parser.error('--sides: unknown %s (known: %s)' % (', '.join(unknown), ', '.join(SIDES)))
    if 'ours' not in sides:
        parser.error('--sides must include ours')
    sides = [s for s in SIDES if s in sides]  # fixed order
    sizes = args.sizes or [10]
    if args.keep_objects and (len(sides) > 1 or len(sizes) > 1):
        parser.error('--keep-objects: give one side (--sides ours) and one N')
    per_item_budget = args.budget if args.per_item_budget is None else args.per_item_budget
    stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
    output = Path(args.output) if args.output else BENCH / 'results' / ('bench-%s.json' % stamp)
    output.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix='winkube-bench-'))
    collections = workdir / 'collections'
    (collections / 'ansible_collections' / 'winkube').mkdir(parents=True)
    (collections / 'ansible_collections' / 'winkube' / 'gmsa').symlink_to(REPO)
    models = load_models(collections)
    vers = versions(args.python, args.ldap_pythonpath)
    if 'ldap_cg' in sides and not vers.get('python_ldap'):
        raise SystemExit('the ldap_cg side needs python-ldap: run bash bench/install-python-ldap.sh once, outside '
                         'scripts/isolated (or pip install --target DIR python-ldap and pass --ldap-pythonpath DIR), '
                         'or leave ldap_cg out of --sides')
    report = {'date': datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
              'machine': machine(), 'versions': vers, 'command': ' '.join(sys.argv), 'budget_s': args.budget,
              'per_item_budget_s': per_item_budget,
              'sides': dict((s, SIDES[s]['title']) for s in sides), 'sizes': {}, 'rows': []}
    log('work folder %s' % workdir)
    cpu_start = os.times()
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
                         'base_dn': samba['SAMBA_BASE_DN'], 'dns_domain': samba['SAMBA_DNS_DOMAIN']},
            'bench_k8s': {'kubeconfig': k8s_env['KUBECONFIG']},
        }
        dnf_at = {}  # side -> the N at which it did not finish in the budget
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
            for index, n in enumerate(sizes):
                run_prefix = prefix + 'abcdefghij'[index % 10]  # cn prefix; 4 digits follow
                nodes = ['%sNode%d$' % (run_prefix, k) for k in (1, 2)]
                size = report['sizes'][str(n)] = {'sides': {}, 'skipped_sides': {}}
                for side in sides:
                    if side not in ('ours', 'floor') and args.ours_only_above and n > args.ours_only_above:
                        size['skipped_sides'][side] = 'not run above N=%d (--ours-only-above)' % args.ours_only_above
                        continue
                    per_item = SIDES[side].get('per_item')
                    if per_item and args.per_item_up_to and n > args.per_item_up_to:
                        size['skipped_sides'][side] = 'not run above N=%d (--per-item-up-to)' % args.per_item_up_to
                        continue
                    budget = per_item_budget if per_item else args.budget
                    if side in dnf_at:
                        size['skipped_sides'][side] = ('not run: did not finish in the budget of %d s at N=%d'
                                                       % (budget, dnf_at[side]))
                        continue
                    directory.add_computers([node[:-1] for node in nodes])
                    # a fresh desired state per side: change1 of the previous side is undone
                    desired = Desired(models, domain, n, run_prefix, samba['SAMBA_DNS_DOMAIN'], namespaces, nodes)
                    size['objects'] = desired.object_counts()
                    size['prefix'] = run_prefix
                    if side == 'ours':
                        log('N=%d: %s' % (n, json.dumps(size['objects'])))
                    results, dummy = run_side(runner, side, desired, labs_vars, k8s, directory, run_prefix,
                                              budget=None if side.startswith('ours') else budget,
                                              pythonpath=args.ldap_pythonpath, keep=args.keep_objects)
                    size['sides'][side] = results
                    if any(p.get('did_not_finish') for p in results.values()):
                        dnf_at[side] = n
                    size['rows'] = summarise(n, size['sides'])
                    size['targets'] = check_targets(n, size['sides']['ours'], size['objects'], size['rows'])
                    write_report(report, output)
        finally:
            # leftovers of an interrupted run (normally each side cleans up after itself)
            try:
                if not args.keep_objects and directory.delete_prefixed(prefix):
                    log('deleted leftover directory objects %s*' % prefix)
            finally:
                for ns in namespaces if not args.keep_objects else ():
                    k8s.request('DELETE', '/api/v1/namespaces/%s' % ns)
                proxy.stop()
                if os.environ.get('BENCH_KEEP_WORKDIR') != '1':
                    shutil.rmtree(workdir, ignore_errors=True)
    cpu_end = os.times()
    report['machine']['loadavg_at_end'] = list(os.getloadavg())
    report['bench_process_cpu_s'] = round(sum(cpu_end[:4]) - sum(cpu_start[:4]), 1)
    report['table'] = print_table(report['rows'])
    write_report(report, output)
    print(report['table'])
    for n, data in report['sizes'].items():
        print('N=%s targets: %s' % (n, json.dumps(data.get('targets'))))
        for side, reason in data['skipped_sides'].items():
            print('N=%s %s: %s' % (n, side, reason))
    print('JSON: %s' % output)
    failed = any(p.get('failed') for d in report['sizes'].values() for results in d['sides'].values()
                 for p in results.values())
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
