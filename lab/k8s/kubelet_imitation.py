"""Kubelet imitation (and kube-proxy imitation) for the lab: runs upstream's windows-gmsa webhook binary the way a
kubelet would run the pod of the Deployment that the collection's ``webhook`` module created.

This is NOT a kubelet. The lab has none (kwok fakes the nodes, so the Deployment's pods are only objects). This
process does the kubelet's part for one Deployment, on this host:

- reads the Deployment's pod template (first container: args, literal env values, volumeMounts; the pod's
  serviceAccountName) and runs the webhook binary with those args and env. The container's file system does
  not exist here, so env values and args under a volume's mountPath are rewritten to the folder that mirrors
  that volume (the only liberty taken);
- mirrors each mounted Secret's keys (``items`` honoured) as files, written the way the kubelet's AtomicWriter
  writes them (``..<timestamp>`` folder, ``..data`` symlink swapped atomically, one symlink per file), and
  rewrites them when the Secret changes, without restarting the process, as the kubelet updates mounted
  Secrets (it polls every 0.5 s; a kubelet takes up to its sync period);
- gives the process in-cluster configuration: inside ``unshare -m`` a tmpfs over /run holds
  /var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}, the token from the TokenRequest API
  for the pod's service account (so the module's RBAC is what the webhook gets);
- restarts the process when the pod template changes (a rollout; here stop then start, where a real
  RollingUpdate starts the new pod first) and when it exits (as a kubelet restarts a container);
- kube-proxy imitation: for each Service of the namespace selecting the pod, adds the Service's ClusterIP to
  the loopback interface (removed at exit; refused when the host already has that address; the tests run in
  a private network namespace, scripts/isolated, where nothing else sees it) so kube-apiserver's
  ``clientConfig.service`` calls reach the process with real TLS name checks (``<svc>.<ns>.svc``). When the
  Service port differs from the container port a forwarder listens on ClusterIP:port; while the process is
  restarting it holds new connections (up to 10 s) instead of refusing them, as a real Service would route to
  the pod that still runs.

State in --dir: ``status.json`` (pid, ready, restarts, template hash, Secret versions, ClusterIPs),
``volumes/<name>/``, ``serviceaccount/``, ``webhook.log``. Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

RUN_WITH_SERVICE_ACCOUNT = r'''
set -e
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/secrets/kubernetes.io/serviceaccount
cp "$SA_SRC/token" "$SA_SRC/ca.crt" "$SA_SRC/namespace" /run/secrets/kubernetes.io/serviceaccount/
unset SA_SRC
exec "$@"
'''


def log(msg):
    sys.stderr.write('[kubelet-imitation %s] %s\n' % (time.strftime('%H:%M:%S'), msg))
    sys.stderr.flush()


class Api(object):
    def __init__(self, url, ca, cert, key):
        self.url = url.rstrip('/')
        self.ctx = ssl.create_default_context(cafile=ca)
        self.ctx.load_cert_chain(cert, key)

    def request(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={'Content-Type': 'application/json', 'Accept': 'application/json'})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=10) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def get(self, path):
        return self.request('GET', path)


def atomic_write(target, files):
    """The kubelet's AtomicWriter layout: target/..TS/<files>, target/..data -> ..TS, target/<file> -> ..data/<file>."""
    os.makedirs(target, exist_ok=True)
    ts_name = '..%s.%d' % (time.strftime('%Y_%m_%d_%H_%M_%S'), time.monotonic_ns())
    ts_dir = os.path.join(target, ts_name)
    os.mkdir(ts_dir, 0o755)
    for rel, data in files.items():
        path = os.path.join(ts_dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as handle:
            handle.write(data)
        os.chmod(path, 0o644)  # a Secret volume's defaultMode (420)
    data_link = os.path.join(target, '..data')
    old = os.readlink(data_link) if os.path.islink(data_link) else None
    tmp_link = os.path.join(target, '..data_tmp')
    if os.path.lexists(tmp_link):
        os.unlink(tmp_link)
    os.symlink(ts_name, tmp_link)
    os.rename(tmp_link, data_link)
    for rel in files:
        top = rel.split('/')[0]
        link = os.path.join(target, top)
        if not os.path.lexists(link):
            os.symlink(os.path.join('..data', top), link)
    if old:
        subprocess.run(['rm', '-rf', os.path.join(target, old)], check=False)


def secret_files(secret, volume_secret):
    data = {k: base64.b64decode(v) for k, v in (secret.get('data') or {}).items()}
    items = volume_secret.get('items')
    if not items:
        return data
    return {item['path']: data[item['key']] for item in items if item['key'] in data}


class Forwarder(object):
    """kube-proxy imitation for a Service port that differs from the container port: ClusterIP:port -> 127.0.0.1:target."""

    def __init__(self, address, port, target):
        self.target = target
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        self.sock.listen(128)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            conn, dummy = self.sock.accept()
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        deadline = time.monotonic() + 10
        while True:
            try:
                backend = socket.create_connection(('127.0.0.1', self.target), timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    conn.close()
                    return
                time.sleep(0.05)
        backend.settimeout(None)
        for src, dst in ((conn, backend), (backend, conn)):
            threading.Thread(target=self.pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def pipe(src, dst):
        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class Imitation(object):
    def __init__(self, args):
        self.args = args
        self.api = Api(args.api_url, args.ca, args.cert, args.key)
        self.dir = args.dir
        self.proc = None
        self.template_hash = None
        self.secret_versions = {}
        self.restarts = 0
        self.cluster_ips = {}
        self.forwarders = {}
        self.error = ''
        self.port = None

    # --- the pod ------------------------------------------------------------------------------------
    def desired(self):
        ns, name = self.args.namespace, self.args.deployment
        dep = self.api.get('/apis/apps/v1/namespaces/%s/deployments/%s' % (ns, name))
        if dep is None:
            return None
        template = dep['spec']['template']
        return template

    def volumes(self, template):
        """{mountPath: (volume name, files)} for the first container's Secret mounts."""
        spec = template['spec']
        container = spec['containers'][0]
        by_name = {v['name']: v for v in spec.get('volumes') or []}
        out = {}
        for mount in container.get('volumeMounts') or []:
            vol = by_name.get(mount['name']) or {}
            if 'secret' not in vol:
                raise ValueError('volume %r is not a Secret volume; the imitation mirrors Secrets only' % mount['name'])
            secret = self.api.get('/api/v1/namespaces/%s/secrets/%s' % (self.args.namespace, vol['secret']['secretName']))
            if secret is None:
                raise ValueError('Secret %s/%s of volume %r does not exist (the kubelet would wait for it)' % (
                    self.args.namespace, vol['secret']['secretName'], mount['name']))
            out[mount['mountPath'].rstrip('/')] = (mount['name'], secret_files(secret, vol['secret']),
                                                   secret['metadata']['resourceVersion'])
        return out

    def rewrite(self, value, mounts):
        for mount_path, (vol_name, dummy, dummy2) in mounts.items():
            if value == mount_path or value.startswith(mount_path + '/'):
                return os.path.join(self.dir, 'volumes', vol_name) + value[len(mount_path):]
            for prefix in ('=',):  # --flag=/mount/path
                key, sep, rest = value.partition(prefix)
                if sep and (rest == mount_path or rest.startswith(mount_path + '/')):
                    return key + sep + os.path.join(self.dir, 'volumes', vol_name) + rest[len(mount_path):]
        return value

    def token(self, sa):
        body = {'apiVersion': 'authentication.k8s.io/v1', 'kind': 'TokenRequest', 'spec': {'expirationSeconds': 172800}}
        resp = self.api.request('POST', '/api/v1/namespaces/%s/serviceaccounts/%s/token' % (self.args.namespace, sa), body)
        if resp is None:
            raise ValueError('service account %s/%s does not exist' % (self.args.namespace, sa))
        return resp['status']['token']

    def start(self, template, mounts):
        spec = template['spec']
        container = spec['containers'][0]
        if container.get('command'):
            raise ValueError('container command is set; the imitation runs the webhook binary itself')
        env = {'PATH': os.environ.get('PATH', '/usr/bin:/bin'), 'KUBERNETES_SERVICE_HOST': '127.0.0.1',
               'KUBERNETES_SERVICE_PORT': str(self.args.api_port)}
        for item in container.get('env') or []:
            if 'value' not in item:
                raise ValueError('env %s uses valueFrom, which the imitation does not resolve' % item['name'])
            env[item['name']] = self.rewrite(item['value'], mounts)
        args = [self.rewrite(a, mounts) for a in container.get('args') or []]
        sa_dir = os.path.join(self.dir, 'serviceaccount')
        os.makedirs(sa_dir, exist_ok=True)
        sa = spec.get('serviceAccountName') or 'default'
        for fname, data in (('token', self.token(sa)), ('namespace', self.args.namespace)):
            with open(os.path.join(sa_dir, fname), 'w') as handle:
                handle.write(data)
        with open(self.args.ca, 'rb') as src, open(os.path.join(sa_dir, 'ca.crt'), 'wb') as dst:
            dst.write(src.read())
        env['SA_SRC'] = sa_dir
        self.port = int(env.get('HTTPS_PORT', '443'))
        logfile = open(os.path.join(self.dir, 'webhook.log'), 'ab')
        cmd = ['unshare', '-m', '--propagation', 'private', 'sh', '-c', RUN_WITH_SERVICE_ACCOUNT, 'sh',
               self.args.binary] + args
        log('starting %s %s as service account %s/%s' % (self.args.binary, ' '.join(args), self.args.namespace, sa))
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT)
        logfile.close()

    def stop(self):
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def ready(self):
        """The readiness probe as a kubelet runs it: HTTPS GET /health, certificate not verified."""
        if self.proc is None or self.proc.poll() is not None or not self.port:
            return False
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen('https://127.0.0.1:%d/health' % self.port, context=ctx, timeout=2) as resp:
                return 200 <= resp.status < 400
        except (OSError, urllib.error.URLError):
            return False

    # --- the Services -------------------------------------------------------------------------------
    def route_services(self, template):
        labels = template['metadata'].get('labels') or {}
        container = template['spec']['containers'][0]
        named = {p.get('name'): p['containerPort'] for p in container.get('ports') or []}
        svcs = self.api.get('/api/v1/namespaces/%s/services' % self.args.namespace) or {'items': []}
        for svc in svcs['items']:
            sel = svc['spec'].get('selector') or {}
            ip = svc['spec'].get('clusterIP')
            if not sel or not ip or ip == 'None' or any(labels.get(k) != v for k, v in sel.items()):
                continue
            if ip not in self.cluster_ips.values():
                if subprocess.run(['ip', '-o', 'addr', 'show', 'to', ip + '/32'], check=True, capture_output=True,
                                  text=True).stdout.strip():
                    raise ValueError('%s is already an address of this host: not taking it for Service %s' % (
                        ip, svc['metadata']['name']))
                subprocess.run(['ip', 'addr', 'add', ip + '/32', 'dev', 'lo'], check=True, capture_output=True)
                log('kube-proxy imitation: Service %s has ClusterIP %s on lo' % (svc['metadata']['name'], ip))
            self.cluster_ips[svc['metadata']['name']] = ip
            for port in svc['spec'].get('ports') or []:
                target = port.get('targetPort', port['port'])
                target = named.get(target, target) if isinstance(target, str) else target
                key = (ip, port['port'])
                if int(target) != int(port['port']) and key not in self.forwarders:
                    self.forwarders[key] = Forwarder(ip, port['port'], int(target))
                    log('kube-proxy imitation: %s:%s -> 127.0.0.1:%s' % (ip, port['port'], target))

    def unroute(self):
        for ip in set(self.cluster_ips.values()):
            subprocess.run(['ip', 'addr', 'del', ip + '/32', 'dev', 'lo'], check=False, capture_output=True)

    # --- the loop -----------------------------------------------------------------------------------
    def write_status(self):
        status = {'pid': self.proc.pid if self.proc else None, 'ready': self.ready(), 'restarts': self.restarts,
                  'template_hash': self.template_hash, 'secret_versions': self.secret_versions,
                  'cluster_ips': self.cluster_ips, 'port': self.port, 'error': self.error}
        tmp = os.path.join(self.dir, 'status.json.tmp')
        with open(tmp, 'w') as handle:
            json.dump(status, handle)
        os.rename(tmp, os.path.join(self.dir, 'status.json'))

    def sync(self):
        template = self.desired()
        if template is None:
            self.error = 'Deployment %s/%s not found' % (self.args.namespace, self.args.deployment)
            self.stop()
            self.template_hash = None
            return
        mounts = self.volumes(template)
        thash = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:16]
        for mount_path, (vol_name, files, version) in mounts.items():
            if self.secret_versions.get(vol_name) != version:
                atomic_write(os.path.join(self.dir, 'volumes', vol_name), files)
                if vol_name in self.secret_versions:
                    log('Secret of volume %s changed (resourceVersion %s): files updated' % (vol_name, version))
                self.secret_versions[vol_name] = version
        if thash != self.template_hash:
            if self.template_hash is not None:
                log('pod template changed: rollout (stop, then start)')
            self.stop()
            self.start(template, mounts)
            self.template_hash = thash
        elif self.proc is None or self.proc.poll() is not None:
            self.restarts += 1
            log('webhook exited (rc %s): restart %d' % (self.proc.returncode if self.proc else None, self.restarts))
            time.sleep(min(5, 0.5 * self.restarts))
            self.start(template, mounts)
        self.route_services(template)
        self.error = ''

    def run(self):
        stopping = []
        signal.signal(signal.SIGTERM, lambda *a: stopping.append(1))
        signal.signal(signal.SIGINT, lambda *a: stopping.append(1))
        try:
            while not stopping:
                try:
                    self.sync()
                except (ValueError, OSError, urllib.error.URLError, KeyError) as exc:
                    self.error = str(exc)
                    log('sync failed: %s' % exc)
                self.write_status()
                time.sleep(0.5)
        finally:
            self.stop()
            self.unroute()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    for opt in ('namespace', 'deployment', 'dir', 'binary', 'api-url', 'ca', 'cert', 'key', 'api-port'):
        parser.add_argument('--' + opt, required=True)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    Imitation(args).run()


if __name__ == '__main__':
    main()
