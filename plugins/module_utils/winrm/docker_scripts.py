# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PowerShell of the Docker features: constant ``param($Data)`` scripts, run through the shared runner.

Like plugins/module_utils/winrm/scripts.py: every user value reaches these scripts as data (the one JSON
document the runner sends on stdin), never as script text.

NOT VERIFIED AGAINST WINDOWS: the tests run this code only against a local WS-Management endpoint that
imitates these scripts' behaviour (lab/winrm/fake_docker.py); the PowerShell itself has never run in this
project's tests.
"""

from __future__ import annotations

from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.scripts import Script

# Ensure (or remove) one file in the CredentialSpecs folder of Docker's data root.
# $Data:
#   state          'present' or 'absent'
#   file_name      e.g. 'gmsa-webapp1.json' (validated by the module: no path separators, no '..')
#   data_root      Docker's data root, or null
#   discover       bool: with data_root null, read 'data-root' from daemon_config
#   daemon_config  path of Docker's daemon.json (C:\ProgramData\docker\config\daemon.json)
#   default_root   the data root when none is given or found (C:\ProgramData\Docker)
#   content        base64 of the file's bytes (state=present)
#   sha256         hex SHA-256 of those bytes (state=present)
#   max_before     largest existing file whose content is sent back for the diff
#   check_mode     bool: only compare
# The file is written as raw bytes (UTF-8 without BOM: Set-Content -Encoding UTF8 would add one in
# PowerShell 5.1) to a temporary file in the same folder, then moved over the old one.
DOCKER_CREDENTIAL_SPEC = Script('docker_credential_spec', r"""param($Data)
function Get-WinkubeSha256([byte[]]$Bytes) {
    $sha = [System.Security.Cryptography.SHA256]::Create()
    try { return ([System.BitConverter]::ToString($sha.ComputeHash($Bytes)) -replace '-', '').ToLowerInvariant() }
    finally { $sha.Dispose() }
}
$root = [string]$Data.data_root
$source = 'option'
if (-not $root) {
    $root = [string]$Data.default_root
    $source = 'default'
    $config = [string]$Data.daemon_config
    if ($Data.discover -and (Test-Path -LiteralPath $config -PathType Leaf)) {
        $settings = [System.IO.File]::ReadAllText($config) | ConvertFrom-Json
        $found = $settings.PSObject.Properties['data-root']
        if ($found -and [string]$found.Value) {
            $root = [string]$found.Value
            $source = 'daemon.json'
        }
    }
}
$folder = Join-Path -Path $root -ChildPath 'CredentialSpecs'
$path = Join-Path -Path $folder -ChildPath ([string]$Data.file_name)
$existed = Test-Path -LiteralPath $path -PathType Leaf
$beforeSha = $null
$beforeContent = $null
$beforeSize = $null
if ($existed) {
    $old = [System.IO.File]::ReadAllBytes($path)
    $beforeSha = Get-WinkubeSha256 $old
    $beforeSize = $old.Length
    if ($old.Length -le [int]$Data.max_before) { $beforeContent = [System.Convert]::ToBase64String($old) }
}
if ($Data.state -eq 'absent') {
    $changed = [bool]$existed
    if ($changed -and -not $Data.check_mode) { Remove-Item -LiteralPath $path -Force }
    $afterSha = $null
}
else {
    $want = [string]$Data.sha256
    $changed = $beforeSha -ne $want
    $afterSha = $want
    if ($changed -and -not $Data.check_mode) {
        $bytes = [System.Convert]::FromBase64String([string]$Data.content)
        if ((Get-WinkubeSha256 $bytes) -ne $want) { throw 'the content arrived damaged (SHA-256 mismatch); nothing was written' }
        $null = New-Item -ItemType Directory -Path $folder -Force
        $temp = Join-Path -Path $folder -ChildPath ('.' + [System.Guid]::NewGuid().ToString('N') + '.tmp')
        try {
            [System.IO.File]::WriteAllBytes($temp, $bytes)
            if (Test-Path -LiteralPath $path -PathType Leaf) { [System.IO.File]::Replace($temp, $path, $null) }
            else { [System.IO.File]::Move($temp, $path) }
        }
        finally {
            if (Test-Path -LiteralPath $temp) { Remove-Item -LiteralPath $temp -Force }
        }
        $afterSha = Get-WinkubeSha256 ([System.IO.File]::ReadAllBytes($path))
    }
}
@{
    computer_name = [string]$env:COMPUTERNAME
    data_root = $root
    data_root_source = $source
    path = $path
    existed = [bool]$existed
    before_sha256 = $beforeSha
    before_size = $beforeSize
    before_content = $beforeContent
    after_sha256 = $afterSha
    changed = [bool]$changed
    written = [bool]($changed -and -not $Data.check_mode)
}
""")

SCRIPTS = dict((script.name, script) for script in (DOCKER_CREDENTIAL_SPEC,))
