# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node agent's PowerShell: a constant, shipped in a ConfigMap beside the scripts it runs.

Not verified on Windows (docs/node-agent.md lists what to check first). Every value it works with comes from
environment variables (the DaemonSet's env, from the config ConfigMap) or from the API server, never from text
spliced into this script. It loops: runs REGISTRY_DWORD (EnableCompartmentNamespace, or only reads it when
registry_fix is false), PREFLIGHT_FACTS, and NODE_REFRESH when the refresh request names a new request id,
then server-side-applies its report ConfigMap and sleeps. The API server's certificate is checked against
the service account's ca.crt (a chain to exactly that CA, with the host name check of .NET kept).
"""

from __future__ import annotations

AGENT_SCRIPT = r"""$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$here = Split-Path -Parent $MyInvocation.MyCommand.Path
$sa = Join-Path ([string]$env:CONTAINER_SANDBOX_MOUNT_POINT) 'var\run\secrets\kubernetes.io\serviceaccount'
function Get-WinkubeBlock([string]$Name) { [ScriptBlock]::Create((Get-Content -LiteralPath (Join-Path $here $Name) -Raw)) }
$registryBlock = Get-WinkubeBlock 'registry_dword.ps1'
$preflightBlock = Get-WinkubeBlock 'preflight_facts.ps1'
$refreshBlock = Get-WinkubeBlock 'node_refresh.ps1'
Add-Type -TypeDefinition @'
using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
public static class WinkubeClusterTrust {
    static X509Certificate2 ca;
    public static void Use(string path) {
        ca = new X509Certificate2(path);
        ServicePointManager.SecurityProtocol = SecurityProtocolType.Tls12;
        ServicePointManager.ServerCertificateValidationCallback = Check;
    }
    static bool Check(object sender, X509Certificate cert, X509Chain unused, SslPolicyErrors errors) {
        if (cert == null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None) { return false; }
        X509Chain chain = new X509Chain();
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.AllowUnknownCertificateAuthority;
        chain.ChainPolicy.ExtraStore.Add(ca);
        if (!chain.Build(new X509Certificate2(cert))) { return false; }
        return chain.ChainElements[chain.ChainElements.Count - 1].Certificate.Thumbprint == ca.Thumbprint;
    }
}
'@
[WinkubeClusterTrust]::Use((Join-Path $sa 'ca.crt'))
$api = [string]$env:WINKUBE_API_SERVER
if (-not $api) { $api = 'https://' + $env:KUBERNETES_SERVICE_HOST + ':' + $env:KUBERNETES_SERVICE_PORT }
$node = [string]$env:WINKUBE_NODE_NAME
$namespace = [string]$env:WINKUBE_NAMESPACE
$reportName = 'report.' + $node
if ($reportName.Length -gt 253) { $reportName = $reportName.Substring(0, 253).TrimEnd('.', '-') }
$base = $api + '/api/v1/namespaces/' + [uri]::EscapeDataString($namespace) + '/configmaps/'

function Invoke-WinkubeApi([string]$Method, [string]$Name, $Body) {
    $headers = @{ Authorization = 'Bearer ' + (Get-Content -LiteralPath (Join-Path $sa 'token') -Raw).Trim() }
    $uri = $base + [uri]::EscapeDataString($Name)
    if ($Method -eq 'PATCH') {
        $uri += '?fieldManager=winkube-gmsa-node-agent&force=true'
        $json = ConvertTo-Json -InputObject $Body -Depth 20 -Compress
        $bytes = [System.Text.Encoding]::UTF8.GetBytes($json)
        return Invoke-RestMethod -Method Patch -Uri $uri -Headers $headers -ContentType 'application/apply-patch+yaml' -Body $bytes -UseBasicParsing
    }
    try { return Invoke-RestMethod -Method Get -Uri $uri -Headers $headers -UseBasicParsing }
    catch { if ($_.Exception.Response -and [int]$_.Exception.Response.StatusCode -eq 404) { return $null }; throw }
}

$fixedAt = $null
$lastRefresh = $null
$previous = Invoke-WinkubeApi 'GET' $reportName $null
if ($previous -and $previous.data -and $previous.data.'report.json') {
    $old = ConvertFrom-Json -InputObject $previous.data.'report.json'
    $fixedAt = $old.fixed_at
    if ($old.refresh) { $lastRefresh = $old.refresh }
}
while ($true) {
    $report = [ordered]@{ version = $env:WINKUBE_REPORT_VERSION; node = $node; config_digest = $env:WINKUBE_CONFIG_DIGEST; error = $null }
    try {
        $registry = & $registryBlock @{
            key = 'HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\hns\State'; name = 'EnableCompartmentNamespace'
            value = 1; check_mode = ($env:WINKUBE_REGISTRY_FIX -ne 'true') }
        if ($registry.written) { $fixedAt = [DateTime]::UtcNow.ToString('yyyy-MM-ddTHH:mm:ssZ') }
        $report.registry = $registry
        $report.computer_name = [string]$env:COMPUTERNAME
        $domain = $null
        if ($env:WINKUBE_DOMAIN) { $domain = [string]$env:WINKUBE_DOMAIN }
        $report.facts = & $preflightBlock @{
            domain = $domain; domain_controllers = $null; ports = @(ConvertFrom-Json -InputObject $env:WINKUBE_PORTS)
            timeout_ms = [int]$env:WINKUBE_TIMEOUT_MS; ccg_plugin_guids = @(ConvertFrom-Json -InputObject $env:WINKUBE_CCG_PLUGIN_GUIDS) }
        $request = Invoke-WinkubeApi 'GET' $env:WINKUBE_REFRESH_CONFIGMAP $null
        if ($request -and $request.data -and $request.data.request_id -and (-not $lastRefresh -or $lastRefresh.request_id -ne $request.data.request_id)) {
            $answer = & $refreshBlock @{
                computers = @(ConvertFrom-Json -InputObject $request.data.computers); gmsas = @(ConvertFrom-Json -InputObject $request.data.gmsas)
                purge = ($request.data.purge -eq 'true'); check_mode = $false }
            $answer.request_id = [string]$request.data.request_id
            $answer.at = [DateTime]::UtcNow.ToString('yyyy-MM-ddTHH:mm:ssZ')
            $lastRefresh = $answer
        }
    }
    catch { $report.error = [string]$_.Exception.Message; Write-Output ('winkube-gmsa node agent: ' + $report.error) }
    $report.fixed_at = $fixedAt
    $report.refresh = $lastRefresh
    $report.reported_at = [DateTime]::UtcNow.ToString('yyyy-MM-ddTHH:mm:ssZ')
    $configMap = @{
        apiVersion = 'v1'; kind = 'ConfigMap'
        metadata = @{ name = $reportName; namespace = $namespace
                      labels = @{ $env:WINKUBE_REPORT_LABEL = $env:WINKUBE_REPORT_VERSION; 'app.kubernetes.io/managed-by' = 'winkube.gmsa' } }
        data = @{ 'report.json' = (ConvertTo-Json -InputObject $report -Depth 20 -Compress) }
    }
    try { $null = Invoke-WinkubeApi 'PATCH' $reportName $configMap }
    catch { Write-Output ('winkube-gmsa node agent: publishing the report failed: ' + [string]$_.Exception.Message) }
    Start-Sleep -Seconds ([int]$env:WINKUBE_INTERVAL_SECONDS)
}
"""
