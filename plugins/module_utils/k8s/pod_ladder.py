# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gMSA troubleshooting ladder of the Kubernetes docs, run inside a pod (module pod_gmsa_check).

Pure part (no I/O): the commands as argv lists, the parsers of nltest/nslookup output and the diagnosis with
the next step. ``exec_in_pod`` is the only function doing I/O: one exec through the API server's
``pods/exec`` (websocket, kubernetes.stream).

The ladder (Kubernetes docs, "Configure GMSA for Windows Pods and containers", Troubleshooting):
  1. ``nltest.exe /parentdomain``: did the credential spec reach the container? (1722 RPC_S_SERVER_UNAVAILABLE:
     no)
  2. ``nslookup.exe <domain>``: can the pod resolve (and so reach) the domain?
  3. ``nltest.exe /query``: has the pod a secure channel to the domain?
  4. optionally ``nltest.exe /sc_reset:<domain>`` and ``nltest.exe /query`` again; when the reset repairs it, the
     docs' postStart hook restarting netlogon automates that (module workload_gmsa, netlogon_restart_hook).
"""

from __future__ import annotations

import json
import re

from ansible_collections.winkube.gmsa.plugins.module_utils.models.credential_spec import DNS_NAME as DOMAIN_NAME_RE

PASS, FAIL, SKIP, ERROR = 'pass', 'fail', 'skip', 'error'
SUCCESS_TEXT = 'The command completed successfully'
_STATUS = re.compile(r'Status = (\d+) (0x[0-9a-fA-F]+)(?: (\S+))?')
_FAILED = re.compile(r'failed: Status = (\d+) (0x[0-9a-fA-F]+)(?: (\S+))?')


def check_domain_name(domain):
    """The domain as a lower-case DNS name without trailing dot; ValueError naming the field otherwise."""
    value = (domain or '').strip().rstrip('.').lower()
    if not value or '.' not in value or not DOMAIN_NAME_RE.match(value):
        raise ValueError('domain %r is not the DNS name of an Active Directory domain (e.g. contoso.com): letters, '
                         'digits, "-" and "_" in dot-separated labels, no blanks, slashes or colons' % (domain,))
    return value


def commands(domain):
    """The ladder's commands as argv lists (never a shell string): name -> argv."""
    return {
        'parent_domain': ['nltest.exe', '/parentdomain'],
        'dns': ['nslookup.exe', domain],
        'secure_channel': ['nltest.exe', '/query'],
        'sc_reset': ['nltest.exe', '/sc_reset:%s' % domain],
        'secure_channel_after_reset': ['nltest.exe', '/query'],
    }


def _nltest_status(text):
    """(ok, code, symbol) from nltest output: ok when it completed and every Status is 0."""
    failed = _FAILED.search(text)
    if failed:
        return False, int(failed.group(1)), failed.group(3)
    statuses = _STATUS.findall(text)
    for code, dummy, symbol in statuses:
        if int(code) != 0:
            return False, int(code), symbol or None
    return SUCCESS_TEXT.lower() in text.lower(), 0 if statuses else None, (statuses[0][2] or None) if statuses else None


def parse_parent_domain(text):
    """{'ok', 'domain', 'status_code', 'status'} from `nltest /parentdomain` (``contoso.com. (1)`` then success)."""
    ok, code, symbol = _nltest_status(text)
    domain = None
    if ok:
        for line in text.splitlines():
            match = re.match(r'^\s*([A-Za-z0-9_.-]+?)\.?\s+\(\d+\)\s*$', line)
            if match:
                domain = match.group(1).lower()
                break
    return {'ok': ok, 'domain': domain, 'status_code': code, 'status': symbol}


def parse_nslookup(text, domain):
    """{'ok', 'addresses', 'error'} from nslookup output: the answer section must name the domain."""
    error = None
    for line in text.splitlines():
        if "can't find" in line or 'timed out' in line.lower():
            error = line.strip(' *')
    # the answer follows the server block: "Name: <domain>" then "Address(es): ..."
    answer = re.split(r'\n\s*Name:\s*', '\n' + text.replace('\r', ''), maxsplit=1)
    addresses = []
    named = False
    if len(answer) == 2:
        named = answer[1].splitlines()[0].strip().rstrip('.').lower() == domain
        addresses = re.findall(r'(\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F]*:[0-9a-fA-F:]+)', answer[1])
    ok = error is None and named and bool(addresses)
    if not ok and error is None:
        error = 'no answer for %s in the output' % domain
    return {'ok': ok, 'addresses': addresses, 'error': error}


def parse_secure_channel(text):
    """{'ok', 'status_code', 'status', 'trusted_dc'} from `nltest /query` or `nltest /sc_reset:<domain>`."""
    ok, code, symbol = _nltest_status(text)
    match = re.search(r'Trusted DC Name\s+\\\\(\S+)', text)
    return {'ok': ok, 'status_code': code, 'status': symbol, 'trusted_dc': match.group(1) if match else None}


def step(name, argv, outcome=None, status=SKIP, detail='', parsed=None):
    """One rung's record. outcome: exec_in_pod's dict (stdout, stderr, exit_code, error)."""
    outcome = outcome or {}
    return {'name': name, 'command': list(argv), 'status': status, 'detail': detail,
            'exit_code': outcome.get('exit_code'), 'stdout': outcome.get('stdout'),
            'stderr': outcome.get('stderr'), 'exec_error': outcome.get('error'), 'parsed': parsed or {}}


def ran(outcome):
    """Whether the command ran at all (output or an exit code), as opposed to exec failing."""
    return bool(outcome.get('stdout') or outcome.get('stderr')) or outcome.get('exit_code') is not None


def evaluate(name, outcome, domain):
    """(status, detail, parsed) of one rung from its exec outcome."""
    if not ran(outcome):
        return ERROR, 'the command could not be run in the container: %s' % (outcome.get('error') or 'no output'), {}
    text = (outcome.get('stdout') or '') + '\n' + (outcome.get('stderr') or '')
    if name == 'parent_domain':
        parsed = parse_parent_domain(text)
        if not parsed['ok']:
            return FAIL, 'nltest /parentdomain failed (%s %s)' % (parsed['status_code'], parsed['status']), parsed
        if parsed['domain'] and parsed['domain'] != domain:
            return FAIL, 'the container is in domain %s, not %s' % (parsed['domain'], domain), parsed
        return PASS, 'the container reports domain %s' % (parsed['domain'] or domain), parsed
    if name == 'dns':
        parsed = parse_nslookup(text, domain)
        if not parsed['ok']:
            return FAIL, 'nslookup %s: %s' % (domain, parsed['error']), parsed
        return PASS, '%s resolves to %s' % (domain, ', '.join(parsed['addresses'])), parsed
    parsed = parse_secure_channel(text)
    what = 'nltest /sc_reset' if name == 'sc_reset' else 'nltest /query'
    if not parsed['ok']:
        return FAIL, '%s: status %s %s' % (what, parsed['status_code'], parsed['status']), parsed
    return PASS, '%s: NERR_Success%s' % (what, ' (DC %s)' % parsed['trusted_dc'] if parsed['trusted_dc'] else ''), parsed


# diagnosis: stage -> (status, summary, next step); %(domain)s is filled in
DIAGNOSES = {
    'healthy': ('healthy', 'the credential spec reached the container, %(domain)s resolves and the secure channel is up',
                None),
    'repaired': ('repaired', 'the secure channel was down and nltest /sc_reset:%(domain)s repaired it',
                 'the fix lasts only for this container: add the documented postStart hook that restarts netlogon '
                 '(winkube.gmsa.workload_gmsa with netlogon_restart_hook: true) so new pods repair it themselves'),
    'pod_not_found': ('problem', 'the pod does not exist', 'check the namespace and the pod name or label selector'),
    'pod_not_running': ('problem', 'the pod is not running', 'kubectl describe pod: wait until it runs, or fix what '
                        'keeps it from starting (events, image, node selector for kubernetes.io/os=windows)'),
    'no_credential_spec': ('problem', 'the pod does not reference a GMSA credential spec',
                           'set securityContext.windowsOptions.gmsaCredentialSpecName (winkube.gmsa.workload_gmsa) '
                           'and recreate the pod'),
    'credential_spec_not_expanded': (
        'problem', 'the pod names a credential spec but its contents were not filled in (gmsaCredentialSpec is empty)',
        'the gMSA mutating webhook did not handle the pod: check the MutatingWebhookConfiguration and the webhook '
        '(winkube.gmsa.gmsa_webhook), then recreate the pod'),
    'credential_spec_not_applied': (
        'problem', 'nltest /parentdomain failed: the credential spec did not reach the container',
        'check that the node can run gMSA containers (winkube.gmsa.node_preflight_info: OS build, containerd), that the '
        'GMSACredentialSpec holds the right domain name, SID and GUID (winkube.gmsa.credential_spec), and the pod '
        'events; then recreate the pod'),
    'wrong_domain': ('problem', 'the container is joined to another domain than %(domain)s',
                     'the pod uses a credential spec of another domain: check gmsaCredentialSpecName and the '
                     'GMSACredentialSpec\'s DomainJoinConfig'),
    'dns': ('problem', 'the pod cannot resolve %(domain)s',
            'make the cluster DNS answer for %(domain)s (for example a CoreDNS forward of the zone to the domain\'s DNS '
            'servers, or the node\'s DNS settings) and allow DNS (53) and the AD ports (88, 135, 389, 445, 464, 636, '
            '3268, 49152-65535) from the pod network to the domain controllers'),
    'secure_channel': ('problem', 'the pod has no secure channel to %(domain)s (nltest /query failed)',
                       'run the check with sc_reset: true; if nltest /sc_reset:%(domain)s repairs it, add the netlogon '
                       'restart postStart hook (winkube.gmsa.workload_gmsa, netlogon_restart_hook: true)'),
    'secure_channel_reset_failed': (
        'problem', 'the pod has no secure channel to %(domain)s, and nltest /sc_reset did not repair it',
        'the pod could not log on as the gMSA: check that the node (or its host group, or the portable identity on '
        'non-domain-joined nodes) may retrieve the gMSA\'s password (winkube.gmsa.gmsa), that the credential spec\'s '
        'gMSA name, domain SID and GUID match Active Directory, and the Kerberos/LDAP ports; then recreate the pod'),
    'exec_failed': ('error', 'a command of the ladder could not be run in the container',
                    'check that the pod runs a Windows container with nltest.exe and nslookup.exe, that the container '
                    'name is right, and that you may create pods/exec in the namespace'),
}


def diagnosis(stage, domain, detail=None):
    status, summary, next_step = DIAGNOSES[stage]
    values = {'domain': domain}
    return {'status': status, 'stage': stage, 'summary': summary % values,
            'next_step': next_step % values if next_step else None, 'detail': detail}


def credential_spec_of(pod, container):
    """(name, filled) of the credential spec the container runs with: container level, else pod level."""
    spec = pod.get('spec') or {}
    pod_options = ((spec.get('securityContext') or {}).get('windowsOptions') or {})
    for item in spec.get('containers') or []:
        if item.get('name') == container:
            options = ((item.get('securityContext') or {}).get('windowsOptions') or {})
            if options.get('gmsaCredentialSpecName') or options.get('gmsaCredentialSpec'):
                return options.get('gmsaCredentialSpecName'), bool(options.get('gmsaCredentialSpec'))
    return pod_options.get('gmsaCredentialSpecName'), bool(pod_options.get('gmsaCredentialSpec'))


def default_container(pod):
    """The first container with a container-level credential spec, else the first container."""
    containers = (pod.get('spec') or {}).get('containers') or []
    for item in containers:
        if (((item.get('securityContext') or {}).get('windowsOptions') or {}).get('gmsaCredentialSpecName')):
            return item.get('name')
    return containers[0].get('name') if containers else None


def run_ladder(pod, container, domain, run, sc_reset=False, check_mode=False):
    """The ladder for one running pod. run(argv) -> exec outcome dict. Returns (steps, diagnosis, reset_done)."""
    argv = commands(domain)
    steps = []
    name, filled = credential_spec_of(pod, container)
    if not name:
        return steps, diagnosis('no_credential_spec', domain), False
    if not filled:
        return steps, diagnosis('credential_spec_not_expanded', domain, 'gmsaCredentialSpecName: %s' % name), False

    def rung(rung_name):
        outcome = run(argv[rung_name])
        status, detail, parsed = evaluate(rung_name, outcome, domain)
        steps.append(step(rung_name, argv[rung_name], outcome, status, detail, parsed))
        return status, detail

    for rung_name, stage in (('parent_domain', 'credential_spec_not_applied'), ('dns', 'dns')):
        status, detail = rung(rung_name)
        if status == ERROR:
            return steps, diagnosis('exec_failed', domain, detail), False
        if status == FAIL:
            if rung_name == 'parent_domain' and steps[-1]['parsed'].get('ok'):
                stage = 'wrong_domain'
            return steps, diagnosis(stage, domain, detail), False
    status, detail = rung('secure_channel')
    if status == ERROR:
        return steps, diagnosis('exec_failed', domain, detail), False
    if status == PASS:
        return steps, diagnosis('healthy', domain, detail), False
    if not sc_reset:
        return steps, diagnosis('secure_channel', domain, detail), False
    if check_mode:
        steps.append(step('sc_reset', argv['sc_reset'], detail='skipped in check mode (it would reset the secure '
                          'channel)'))
        return steps, diagnosis('secure_channel', domain, detail), False
    reset_status, reset_detail = rung('sc_reset')
    reset_done = reset_status != ERROR
    after_status, after_detail = rung('secure_channel_after_reset')
    if after_status == PASS:
        return steps, diagnosis('repaired', domain, after_detail), reset_done
    if ERROR in (reset_status, after_status):
        return steps, diagnosis('exec_failed', domain, reset_detail if reset_status == ERROR else after_detail), \
            reset_done
    return steps, diagnosis('secure_channel_reset_failed', domain, '%s; %s' % (reset_detail, after_detail)), reset_done


# --- I/O: one exec through the API server -------------------------------------------------------------------

def _exit_code(error_channel):
    """(exit_code, error message) from the exec error channel (a metav1.Status document)."""
    if not error_channel:
        return None, 'the exec stream ended without a status'
    try:
        status = json.loads(error_channel)
    except ValueError:
        return None, error_channel[:500]
    if status.get('status') == 'Success':
        return 0, None
    for cause in (status.get('details') or {}).get('causes') or []:
        if cause.get('reason') == 'ExitCode':
            try:
                return int(cause.get('message')), None
            except (TypeError, ValueError):
                break
    return None, status.get('message') or error_channel[:500]


def exec_in_pod(core_api, namespace, pod, container, argv, timeout):
    """Run argv in the container (no stdin, no TTY): {'stdout', 'stderr', 'exit_code', 'error'}."""
    from kubernetes.client.rest import ApiException
    from kubernetes.stream import stream

    try:
        response = stream(core_api.connect_get_namespaced_pod_exec, pod, namespace, container=container,
                          command=list(argv), stdin=False, stdout=True, stderr=True, tty=False,
                          _preload_content=False, _request_timeout=timeout)
    except ApiException as exc:
        return {'stdout': '', 'stderr': '', 'exit_code': None,
                'error': 'exec refused (HTTP %s): %s' % (exc.status, (exc.body or exc.reason or '')[:500])}
    except Exception as exc:  # pylint: disable=broad-except  # websocket handshake, TLS, connection errors
        return {'stdout': '', 'stderr': '', 'exit_code': None, 'error': 'exec failed: %s' % exc}
    stdout, stderr = [], []
    try:
        response.run_forever(timeout=timeout)
        stdout.append(response.read_stdout() or '')
        stderr.append(response.read_stderr() or '')
        finished = not response.is_open()
        error_channel = response.read_channel(3) if finished else ''
    finally:
        response.close()
    if not finished:
        return {'stdout': ''.join(stdout), 'stderr': ''.join(stderr), 'exit_code': None,
                'error': 'no result within %s seconds' % timeout}
    code, error = _exit_code(error_channel)
    return {'stdout': ''.join(stdout), 'stderr': ''.join(stderr), 'exit_code': code, 'error': error}
