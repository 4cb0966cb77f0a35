# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PowerShell the collection runs on Windows hosts: constants, never built from user values.

Every script is a constant ``param($Data)`` script block. The runner sends it, together with the one JSON
document of input data, to the constant BOOTSTRAP through stdin (base64 of UTF-8 JSON), so no user value is
ever part of any PowerShell text. The bootstrap runs the script block with the decoded data as its only
argument and writes one line ``WINKUBE-GMSA-RESULT:<base64 of UTF-8 JSON>`` to stdout.

NOT VERIFIED AGAINST WINDOWS: the tests run this code only against a local WS-Management endpoint that
imitates these scripts' behaviour (lab/winrm); the PowerShell itself has never run in this project's tests.
"""

from __future__ import annotations

import hashlib

RESULT_MARKER = 'WINKUBE-GMSA-RESULT:'


class Script(object):
    """A named constant PowerShell script block taking ``param($Data)``."""

    def __init__(self, name, text):
        self.name = name
        self.text = text
        self.sha256 = hashlib.sha256(text.encode('utf-8')).hexdigest()

    def __repr__(self):
        return '<Script %s %s>' % (self.name, self.sha256[:12])


# Read stdin ($input, as Ansible's own WinRM bootstrap does), decode the payload, run the script block with the
# data as its argument and report one JSON document. Errors: the terminating error's message, category,
# fully qualified error id and the command that raised it.
BOOTSTRAP = r"""$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$winkubeRaw = $input | Out-String
function Write-WinkubeResult {
    param($Value, [int]$Code)
    $json = ConvertTo-Json -InputObject $Value -Depth 16 -Compress
    $bytes = [System.Text.Encoding]::UTF8.GetBytes($json)
    [Console]::Out.WriteLine('WINKUBE-GMSA-RESULT:' + [System.Convert]::ToBase64String($bytes))
    [Console]::Out.Flush()
    exit $Code
}
try {
    $text = [System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String(($winkubeRaw -replace '\s', '')))
    $payload = ConvertFrom-Json -InputObject $text
    $source = [System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String([string]$payload.script))
    $block = [ScriptBlock]::Create($source)
    $value = & $block $payload.data
    Write-WinkubeResult -Value @{ ok = $true; result = $value } -Code 0
}
catch {
    $record = $_
    $command = $null
    if ($record.InvocationInfo -and $record.InvocationInfo.MyCommand) { $command = [string]$record.InvocationInfo.MyCommand.Name }
    $line = $null
    if ($record.InvocationInfo) { $line = $record.InvocationInfo.ScriptLineNumber }
    Write-WinkubeResult -Value @{
        ok = $false
        error = @{
            message = [string]$record.Exception.Message
            category = [string]$record.CategoryInfo.Category
            error_id = [string]$record.FullyQualifiedErrorId
            exception = [string]$record.Exception.GetType().FullName
            command = $command
            line = $line
        }
    } -Code 1
}
"""


# Ensure a REG_DWORD value. $Data: key (e.g. HKEY_LOCAL_MACHINE\SYSTEM\...), name, value (int), check_mode (bool).
REGISTRY_DWORD = Script('registry_dword', r"""param($Data)
$path = 'Registry::' + [string]$Data.key
$name = [string]$Data.name
$want = [int]$Data.value
function Get-WinkubeValue {
    if (-not (Test-Path -LiteralPath $path)) { return $null }
    $item = Get-Item -LiteralPath $path
    if (@($item.GetValueNames()) -notcontains $name) { return $null }
    return @{ type = [string]$item.GetValueKind($name); value = $item.GetValue($name, $null, 'DoNotExpandEnvironmentNames') }
}
$keyExists = Test-Path -LiteralPath $path
$before = Get-WinkubeValue
$changed = -not ($before -and $before.type -eq 'DWord' -and [int64]$before.value -eq $want)
if ($changed -and -not $Data.check_mode) {
    if (-not $keyExists) { $null = New-Item -Path $path -Force }
    $null = New-ItemProperty -LiteralPath $path -Name $name -PropertyType DWord -Value $want -Force
    $after = Get-WinkubeValue
}
elseif ($changed) {
    $after = @{ type = 'DWord'; value = $want }
}
else {
    $after = $before
}
@{
    computer_name = [string]$env:COMPUTERNAME
    key_existed = [bool]$keyExists
    before = $before
    after = $after
    changed = [bool]$changed
    written = [bool]($changed -and -not $Data.check_mode)
}
""")


# Read-only facts for node_preflight_info. $Data: domain (str or null: the node's own domain), domain_controllers
# (list of str; null: found through the domain's _ldap._tcp.dc._msdcs SRV records), ports (list of int),
# timeout_ms (int), ccg_plugin_guids (optional list of '{GUID}' strings, checked by the module to be GUIDs:
# whether each has a COM class key under HKLM\SYSTEM\CurrentControlSet\Control\CCG\COMClasses).
PREFLIGHT_FACTS = Script('preflight_facts', r"""param($Data)
function Get-WinkubeRegistry([string]$Path, [string]$Name) {
    try { return (Get-ItemProperty -LiteralPath $Path -Name $Name -ErrorAction Stop).$Name } catch { return $null }
}
function Get-WinkubeExecutable([string]$PathName) {
    if (-not $PathName) { return $null }
    if ($PathName.StartsWith('"')) { return $PathName.Substring(1, $PathName.IndexOf('"', 1) - 1) }
    return ($PathName -split ' ')[0]
}
function Get-WinkubeVersion([string]$Exe) {
    if (-not $Exe -or -not (Test-Path -LiteralPath $Exe)) { return $null }
    try {
        $out = & $Exe --version 2>$null | Select-Object -First 1
        if ($out) { return [string]$out }
    } catch { }
    return [string](Get-Item -LiteralPath $Exe).VersionInfo.ProductVersion
}
function Test-WinkubePort([string]$Target, [int]$Port, [int]$Timeout) {
    $client = New-Object System.Net.Sockets.TcpClient
    try {
        $task = $client.ConnectAsync($Target, $Port)
        if ($task.Wait($Timeout)) { return @{ target = $Target; port = $Port; open = [bool]$client.Connected; error = $null } }
        return @{ target = $Target; port = $Port; open = $false; error = ('no answer within ' + $Timeout + ' ms') }
    }
    catch {
        $inner = $_.Exception
        while ($inner.InnerException) { $inner = $inner.InnerException }
        return @{ target = $Target; port = $Port; open = $false; error = [string]$inner.Message }
    }
    finally { $client.Dispose() }
}
$current = 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion'
$os = Get-CimInstance -ClassName Win32_OperatingSystem
$cs = Get-CimInstance -ClassName Win32_ComputerSystem
$runtimes = @()
foreach ($service in @('containerd', 'docker', 'kubelet')) {
    $svc = Get-CimInstance -ClassName Win32_Service -Filter ("Name='" + $service + "'")
    if ($svc) {
        $exe = Get-WinkubeExecutable ([string]$svc.PathName)
        $runtimes += @{ name = $service; state = [string]$svc.State; start_mode = [string]$svc.StartMode; path = $exe; version = (Get-WinkubeVersion $exe) }
    }
}
$domain = [string]$Data.domain
if (-not $domain -and $cs.PartOfDomain) { $domain = [string]$cs.Domain }
$dns = $null
$srv = $null
$targets = @($Data.domain_controllers | Where-Object { $_ })
if ($domain) {
    $dns = @{ name = $domain; addresses = @(); error = $null }
    try { $dns.addresses = @([System.Net.Dns]::GetHostAddresses($domain) | ForEach-Object { $_.IPAddressToString }) }
    catch { $dns.error = [string]$_.Exception.InnerException.Message; if (-not $dns.error) { $dns.error = [string]$_.Exception.Message } }
    $srv = @{ name = ('_ldap._tcp.dc._msdcs.' + $domain); targets = @(); error = $null }
    try {
        $answers = Resolve-DnsName -Name $srv.name -Type SRV -DnsOnly -ErrorAction Stop
        $srv.targets = @($answers | Where-Object { $_.NameTarget } | ForEach-Object { [string]$_.NameTarget })
    }
    catch { $srv.error = [string]$_.Exception.Message }
    if ($targets.Count -eq 0) { $targets = @($srv.targets | Select-Object -First 3) }
    if ($targets.Count -eq 0) { $targets = @($domain) }
}
$ccgRoot = 'HKLM:\SYSTEM\CurrentControlSet\Control\CCG\COMClasses'
$ccg = @{ com_classes_key = [bool](Test-Path -LiteralPath $ccgRoot); com_classes = @(); plugins = @()
          ccg_exe = [bool](Test-Path -LiteralPath (Join-Path $env:SystemRoot 'System32\ccg.exe')) }
if ($ccg.com_classes_key) { $ccg.com_classes = @(Get-ChildItem -LiteralPath $ccgRoot | ForEach-Object { [string]$_.PSChildName }) }
foreach ($guid in @($Data.ccg_plugin_guids | Where-Object { $_ })) {
    $ccg.plugins += @{ guid = [string]$guid; registered = [bool](Test-Path -LiteralPath ($ccgRoot + '\' + [string]$guid)) }
}
$ports = @()
foreach ($target in $targets) {
    foreach ($port in @($Data.ports)) { $ports += Test-WinkubePort $target ([int]$port) ([int]$Data.timeout_ms) }
}
@{
    computer_name = [string]$env:COMPUTERNAME
    dns_host_name = [string]$cs.DNSHostName
    os = @{
        caption = [string]$os.Caption
        version = [string]$os.Version
        build = [int]$os.BuildNumber
        ubr = (Get-WinkubeRegistry $current 'UBR')
        display_version = (Get-WinkubeRegistry $current 'DisplayVersion')
        installation_type = (Get-WinkubeRegistry $current 'InstallationType')
    }
    domain = @{ joined = [bool]$cs.PartOfDomain; name = [string]$cs.Domain }
    hns_compartment_namespace = (Get-WinkubeRegistry 'HKLM:\SYSTEM\CurrentControlSet\Services\hns\State' 'EnableCompartmentNamespace')
    services = $runtimes
    dns = $dns
    dc_srv = $srv
    ports = $ports
    ccg = $ccg
}
""")


# After the node's computer account joined the host group: purge the SYSTEM logon session's Kerberos tickets
# (they carry the group memberships of when they were issued) and ask AD whether this computer can use each
# gMSA. $Data: computers (sAMAccountNames, e.g. WIN1$: only a listed computer purges), gmsas (names),
# purge (bool), check_mode (bool). The gMSA names reach Test-ADServiceAccount through parameter binding.
NODE_REFRESH = Script('node_refresh', r"""param($Data)
$me = ([string]$env:COMPUTERNAME).ToUpperInvariant() + '$'
$listed = @($Data.computers | ForEach-Object { ([string]$_).ToUpperInvariant() }) -contains $me
$purge = [bool]($listed -and $Data.purge)
$purged = $false
$purgeOutput = $null
if ($purge -and -not $Data.check_mode) {
    $purgeOutput = (& "$env:SystemRoot\System32\klist.exe" -li 0x3e7 purge 2>&1 | Out-String)
    if ($LASTEXITCODE -ne 0) { throw ('klist -li 0x3e7 purge failed (exit code ' + $LASTEXITCODE + '): ' + $purgeOutput) }
    $purged = $true
}
$tests = @()
$cmdlet = Get-Command -Name Test-ADServiceAccount -ErrorAction SilentlyContinue
foreach ($name in @($Data.gmsas | Where-Object { $_ })) {
    if (-not $listed) { break }
    if (-not $cmdlet) {
        $missing = 'Test-ADServiceAccount is not available on this node (Install-WindowsFeature RSAT-AD-PowerShell)'
        $tests += @{ gmsa = [string]$name; ok = $null; error = $missing }
        continue
    }
    try { $tests += @{ gmsa = [string]$name; ok = [bool](Test-ADServiceAccount -Identity ([string]$name) -ErrorAction Stop); error = $null } }
    catch { $tests += @{ gmsa = [string]$name; ok = $false; error = [string]$_.Exception.Message } }
}
@{
    computer_name = [string]$env:COMPUTERNAME
    listed = [bool]$listed
    changed = $purge
    purged = [bool]$purged
    purge_output = $purgeOutput
    tests = $tests
}
""")

SCRIPTS = dict((script.name, script) for script in (REGISTRY_DWORD, PREFLIGHT_FACTS, NODE_REFRESH))
