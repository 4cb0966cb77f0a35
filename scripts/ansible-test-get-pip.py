"""Stand-in for the pip bootstrap script that ansible-test downloads from a host outside the package
registries. It installs pip from the interpreter's own ensurepip, then the requested pip version from
the package index, which is what the downloaded script does too."""

import subprocess
import sys

GET_PIP_ONLY_FLAGS = {'--no-setuptools', '--no-wheel'}

args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_FLAGS]
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--default-pip'], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--disable-pip-version-check', '--quiet'] + args)
