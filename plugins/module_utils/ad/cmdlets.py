# -*- coding: utf-8 -*-
# Copyright: winkube.gmsa contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PowerShell of the AD modules' ``backend: winrm``: constant scripts around the ActiveDirectory cmdlets.

Each script is a constant ``param($Data)`` script block, made of the constant COMMON helpers and a constant
body; user values (LDAP filters built by ``ldap_client.escape_filter_value``, DNs, names, descriptions,
passwords) arrive only inside ``$Data``, the one JSON document the runner sends on stdin (see runner.py).

Values travel both ways in one encoding: a string is a string; ``{"b": base64}`` is binary (byte[]);
``{"i": "123"}`` an integer; ``{"sd": base64}`` a security descriptor (ActiveDirectorySecurity built from its
binary form). Read values come back as strings or ``{"b": ...}`` (SIDs, GUIDs, security descriptors and
byte arrays in their binary form), so the LDAP backend's codecs read them unchanged.

``$Data.server`` (optional) is passed as ``-Server`` to every AD cmdlet; the KDS cmdlets have no such
parameter and use the host they run on (a domain controller).

NOT VERIFIED AGAINST WINDOWS: the tests run this code only against lab/winrm (fake_ad.py imitates these
scripts against a Samba AD DC); the PowerShell itself has never run in this project's tests.
"""

from __future__ import annotations

from ansible_collections.winkube.gmsa.plugins.module_utils.winrm.scripts import Script

COMMON = r"""Import-Module ActiveDirectory -ErrorAction Stop -Verbose:$false
$winkubeServer = @{}
if ($Data.server) { $winkubeServer['Server'] = [string]$Data.server }
$winkubeInvariant = [System.Globalization.CultureInfo]::InvariantCulture
function ConvertTo-WinkubeValue($Value) {
    if ($Value -is [byte[]]) { return @{ b = [System.Convert]::ToBase64String($Value) } }
    if ($Value -is [System.Security.Principal.SecurityIdentifier]) {
        $bytes = New-Object byte[] $Value.BinaryLength
        $Value.GetBinaryForm($bytes, 0)
        return @{ b = [System.Convert]::ToBase64String($bytes) }
    }
    if ($Value -is [guid]) { return @{ b = [System.Convert]::ToBase64String($Value.ToByteArray()) } }
    if ($Value -is [System.DirectoryServices.ActiveDirectorySecurity]) {
        return @{ b = [System.Convert]::ToBase64String($Value.GetSecurityDescriptorBinaryForm()) }
    }
    if ($Value -is [datetime]) { return $Value.ToUniversalTime().ToString('yyyyMMddHHmmss.0Z', $winkubeInvariant) }
    if ($Value -is [bool]) { if ($Value) { return 'TRUE' } else { return 'FALSE' } }
    if ($Value -is [System.Enum]) { return [System.Convert]::ToString([int64]$Value, $winkubeInvariant) }
    if ($Value -is [System.IFormattable]) { return $Value.ToString($null, $winkubeInvariant) }
    return [string]$Value
}
function ConvertTo-WinkubeAttributes($Object, $Names) {
    $attributes = @{}
    foreach ($name in @($Names)) {
        $values = @()
        foreach ($value in @($Object[[string]$name])) {
            if ($null -ne $value) { $values += , (ConvertTo-WinkubeValue $value) }
        }
        if ($values.Count -gt 0) { $attributes[[string]$name] = $values }
    }
    return $attributes
}
function ConvertFrom-WinkubeValue($Item) {
    if ($Item -is [string]) { return $Item }
    if ($null -ne $Item.b) { return [byte[]][System.Convert]::FromBase64String([string]$Item.b) }
    if ($null -ne $Item.sd) {
        $sd = New-Object System.DirectoryServices.ActiveDirectorySecurity
        $sd.SetSecurityDescriptorBinaryForm([System.Convert]::FromBase64String([string]$Item.sd))
        return $sd
    }
    if ($null -ne $Item.i) {
        $number = [int64]::Parse([string]$Item.i, $winkubeInvariant)
        if ($number -ge [int32]::MinValue -and $number -le [int32]::MaxValue) { return [int32]$number }
        return $number
    }
    return [string]$Item.s
}
function ConvertFrom-WinkubeTable($Items) {
    $table = @{}
    foreach ($item in @($Items)) {
        if ($null -eq $item) { continue }
        $values = @(foreach ($value in @($item.values)) { ConvertFrom-WinkubeValue $value })
        if ($values.Count -eq 1) { $table[[string]$item.name] = $values[0] } else { $table[[string]$item.name] = $values }
    }
    return $table
}
function Get-WinkubeIdentity($Object) {
    $props = @{ Identity = $Object.DistinguishedName; Properties = @('objectSid', 'objectGUID') }
    $found = Get-ADObject @props @winkubeServer
    return @{ dn = [string]$found.DistinguishedName; objectSid = (ConvertTo-WinkubeValue $found['objectSid'][0]);
              objectGUID = (ConvertTo-WinkubeValue $found.ObjectGUID) }
}
"""


def _script(name, body):
    return Script(name, 'param($Data)\n' + COMMON + body)


# The facts the LDAP backend reads from the RootDSE and the domain object. $Data: server, base_dn (or null),
# root_dse_attributes (list of names).
AD_FACTS = _script('ad_facts', r"""
$dse = Get-ADRootDSE @winkubeServer
$identity = [string]$Data.base_dn
if (-not $identity) { $identity = [string]$dse.defaultNamingContext }
$domain = Get-ADDomain -Identity $identity @winkubeServer
@{
    root_dse = (ConvertTo-WinkubeAttributes $dse $Data.root_dse_attributes)
    domain = @{
        distinguished_name = [string]$domain.DistinguishedName
        dns_root = [string]$domain.DNSRoot
        netbios_name = [string]$domain.NetBIOSName
        forest = [string]$domain.Forest
        objectSid = (ConvertTo-WinkubeValue $domain.DomainSID)
        objectGUID = (ConvertTo-WinkubeValue $domain.ObjectGUID)
    }
    user = [string][System.Security.Principal.WindowsIdentity]::GetCurrent().Name
    computer_name = [string]$env:COMPUTERNAME
}
""")

# One search, every object and every asked attribute in one answer. $Data: server, base, filter (an LDAP
# filter built with escaped values), scope (Base, OneLevel, Subtree), attributes (list), size_limit (0: all).
AD_SEARCH = _script('ad_search', r"""
$search = @{ LDAPFilter = [string]$Data.filter; SearchBase = [string]$Data.base; SearchScope = [string]$Data.scope;
             ResultPageSize = 1000 }
$names = @($Data.attributes | Where-Object { $_ })
if ($names.Count -gt 0) { $search['Properties'] = [string[]]$names }
if ([int]$Data.size_limit -gt 0) { $search['ResultSetSize'] = [int]$Data.size_limit }
$objects = @(foreach ($object in @(Get-ADObject @search @winkubeServer)) {
    @{ dn = [string]$object.DistinguishedName; attributes = (ConvertTo-WinkubeAttributes $object $names) }
})
@{ objects = $objects }
""")

# Create one object with the cmdlet of its kind. $Data: server, kind (service_account, group, user, object),
# dn, name, path, object_class, sam_account_name, dns_host_name, user_principal_name, enabled,
# password_never_expires, group_scope, group_category, password (user), other_attributes [{name, values}].
AD_NEW = _script('ad_new', r"""
$new = @{ Name = [string]$Data.name; Path = [string]$Data.path; PassThru = $true }
$other = ConvertFrom-WinkubeTable $Data.other_attributes
if ($other.Count -gt 0) { $new['OtherAttributes'] = $other }
switch ([string]$Data.kind) {
    'service_account' {
        $new['SamAccountName'] = [string]$Data.sam_account_name
        $new['DNSHostName'] = [string]$Data.dns_host_name
        $new['Enabled'] = [bool]$Data.enabled
        $created = New-ADServiceAccount @new @winkubeServer
    }
    'group' {
        $new['SamAccountName'] = [string]$Data.sam_account_name
        $new['GroupScope'] = [string]$Data.group_scope
        $new['GroupCategory'] = [string]$Data.group_category
        $created = New-ADGroup @new @winkubeServer
    }
    'user' {
        $new['SamAccountName'] = [string]$Data.sam_account_name
        if ($Data.user_principal_name) { $new['UserPrincipalName'] = [string]$Data.user_principal_name }
        if ($null -ne $Data.password) {
            $new['AccountPassword'] = ConvertTo-SecureString -String ([string]$Data.password) -AsPlainText -Force
        }
        $new['Enabled'] = [bool]$Data.enabled
        $new['PasswordNeverExpires'] = [bool]$Data.password_never_expires
        try {
            $created = New-ADUser @new @winkubeServer
        }
        catch {
            # New-ADUser creates the account before it sets the password: remove a half-made account so that
            # a failed password (policy) leaves nothing behind, as the LDAP backend's single add does.
            $record = $_
            try { Remove-ADUser -Identity ([string]$Data.dn) -Confirm:$false @winkubeServer } catch { }
            throw $record
        }
    }
    default {
        $new['Type'] = [string]$Data.object_class
        $created = New-ADObject @new @winkubeServer
    }
}
Get-WinkubeIdentity $created
""")

# Change one object: Remove, Add, Replace, Clear in one Set-ADServiceAccount / Set-ADObject call (the cmdlets
# apply them in that order), and the password with Set-ADAccountPassword -Reset. $Data: server, kind
# (service_account or object), identity (DN), remove, add, replace ([{name, values}]), clear (names), password.
AD_SET = _script('ad_set', r"""
$identity = [string]$Data.identity
if ($null -ne $Data.password) {
    $secure = ConvertTo-SecureString -String ([string]$Data.password) -AsPlainText -Force
    Set-ADAccountPassword -Identity $identity -Reset -NewPassword $secure @winkubeServer
}
$set = @{ Identity = $identity }
foreach ($operation in @('Remove', 'Add', 'Replace')) {
    $table = ConvertFrom-WinkubeTable $Data.($operation.ToLowerInvariant())
    if ($table.Count -gt 0) { $set[$operation] = $table }
}
$clear = @($Data.clear | Where-Object { $_ })
if ($clear.Count -gt 0) { $set['Clear'] = [string[]]$clear }
if ($set.Count -gt 1) {
    if ([string]$Data.kind -eq 'service_account') { Set-ADServiceAccount @set @winkubeServer }
    else { Set-ADObject @set @winkubeServer }
}
@{ dn = $identity }
""")

# Delete one object. $Data: server, kind (service_account or object), identity (DN).
AD_REMOVE = _script('ad_remove', r"""
$identity = [string]$Data.identity
if ([string]$Data.kind -eq 'service_account') { Remove-ADServiceAccount -Identity $identity -Confirm:$false @winkubeServer }
else { Remove-ADObject -Identity $identity -Confirm:$false @winkubeServer }
@{ dn = $identity }
""")

# Whether a password works for an account (one authenticated read with it; a failure counts as a failed logon,
# as the LDAP backend's bind does). $Data: server, identity (DN), username (DOMAIN\sam), password.
AD_TEST_PASSWORD = _script('ad_test_password', r"""
$secure = ConvertTo-SecureString -String ([string]$Data.password) -AsPlainText -Force
$credential = New-Object System.Management.Automation.PSCredential ([string]$Data.username, $secure)
try {
    $null = Get-ADObject -Identity ([string]$Data.identity) -Credential $credential @winkubeServer
    @{ valid = $true }
}
catch [System.Security.Authentication.AuthenticationException] {
    @{ valid = $false; message = [string]$_.Exception.Message }
}
""")

# The forest's KDS root keys as Get-KdsRootKey shows them (the secret itself stays on the host: only its
# length is returned). $Data: none used.
AD_KDS_KEYS = _script('ad_kds_keys', r"""
$keys = @(foreach ($key in @(Get-KdsRootKey)) {
    $config = $key.ServerConfiguration
    @{
        id = [string]$key.KeyId
        version = [string]$key.VersionNumber
        create_time = [string]$key.CreationTime.ToFileTimeUtc()
        use_start_time = [string]$key.EffectiveTime.ToFileTimeUtc()
        kdf_algorithm = $(if ($config) { [string]$config.KdfAlgorithm } else { $null })
        kdf_parameters = $(if ($config -and $config.KdfParameters) { ConvertTo-WinkubeValue ([byte[]]$config.KdfParameters) } else { $null })
        key_length = $(if ($key.KeyValue) { $key.KeyValue.Length } else { 0 })
        domain_controller = [string]$key.DomainController
    }
})
@{ keys = $keys }
""")

# Add a KDS root key. $Data: effective_immediately (bool) or effective_time (FILETIME, UTC, as a string).
AD_KDS_ADD = _script('ad_kds_add', r"""
if ($Data.effective_immediately) { $id = Add-KdsRootKey -EffectiveImmediately }
else { $id = Add-KdsRootKey -EffectiveTime ([datetime]::FromFileTimeUtc([int64]::Parse([string]$Data.effective_time, $winkubeInvariant))) }
@{ id = [string]$id }
""")

AD_SCRIPTS = dict((script.name, script) for script in (
    AD_FACTS, AD_SEARCH, AD_NEW, AD_SET, AD_REMOVE, AD_TEST_PASSWORD, AD_KDS_KEYS, AD_KDS_ADD))
