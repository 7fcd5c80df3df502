package deploycheck

import (
	"fmt"
	"strings"
)

// The Microsoft.CognitiveServices types infra/ declares, for when shared/bicep-types has no
// file for them: the writable and read-only properties and the enums of
// Microsoft.CognitiveServices/accounts@2024-10-01 and accounts/deployments@2024-10-01 as
// published in Azure/bicep-types-az (commit 1f896de2db96,
// generated/cognitiveservices/microsoft.cognitiveservices/2024-10-01/types.json), transcribed
// for the properties a deployment of this kind uses. A property left out here is reported as
// unknown, so the fallback is never looser than the published type. Once the published file
// is in shared/bicep-types (or a directory named by BICEP_TYPES_EXTRA), it is used instead.

// typeBuilder writes bicep-types entries into one array, returning references to them.
type typeBuilder struct{ arr []map[string]any }

func (b *typeBuilder) add(v map[string]any) map[string]any {
	b.arr = append(b.arr, v)
	return map[string]any{"$ref": fmt.Sprintf("#/%d", len(b.arr)-1)}
}

func (b *typeBuilder) str() map[string]any { return b.add(map[string]any{"$type": "StringType"}) }
func (b *typeBuilder) boolean() map[string]any {
	return b.add(map[string]any{"$type": "BooleanType"})
}
func (b *typeBuilder) integer() map[string]any { return b.add(map[string]any{"$type": "IntegerType"}) }

// enum is a union of string literals; open adds any string (an extensible enum upstream).
func (b *typeBuilder) enum(open bool, values ...string) map[string]any {
	var els []any
	for _, v := range values {
		els = append(els, b.add(map[string]any{"$type": "StringLiteralType", "value": v}))
	}
	if open {
		els = append(els, b.str())
	}
	return b.add(map[string]any{"$type": "UnionType", "elements": els})
}

// prop is a property: its type reference and flags (1 required, 2 read-only).
type prop struct {
	typ   map[string]any
	flags int
}

func (b *typeBuilder) object(name string, props map[string]prop, additional map[string]any) map[string]any {
	ps := map[string]any{}
	for k, p := range props {
		ps[k] = map[string]any{"type": p.typ, "flags": float64(p.flags)}
	}
	o := map[string]any{"$type": "ObjectType", "name": name, "properties": ps}
	if additional != nil {
		o["additionalProperties"] = additional
	}
	return b.add(o)
}

func cognitiveServicesFallback() []map[string]any {
	b := &typeBuilder{}
	str := b.str()
	sku := func() map[string]any {
		return b.object("Sku", map[string]prop{
			"name": {str, flagRequired}, "tier": {b.enum(true, "Free", "Basic", "Standard", "Premium", "Enterprise"), 0},
			"size": {str, 0}, "family": {str, 0}, "capacity": {b.integer(), 0},
		}, nil)
	}
	tags := b.object("Tags", map[string]prop{}, str)
	top := func(extra map[string]prop) map[string]prop {
		m := map[string]prop{"id": {str, 10}, "name": {str, 9}, "type": {str, 10}, "apiVersion": {str, 10},
			"etag": {str, flagReadOnly}, "systemData": {b.object("SystemData", map[string]prop{}, nil), flagReadOnly}, "tags": {tags, 0}, "sku": {sku(), 0}}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	account := b.object("Microsoft.CognitiveServices/accounts", top(map[string]prop{
		"kind": {str, 0}, "location": {str, 0},
		"identity": {b.object("Identity", map[string]prop{
			"type":                   {b.enum(false, "None", "SystemAssigned", "UserAssigned", "SystemAssigned, UserAssigned"), 0},
			"tenantId":               {str, flagReadOnly},
			"principalId":            {str, flagReadOnly},
			"userAssignedIdentities": {b.object("IdentityUserAssignedIdentities", map[string]prop{}, b.object("UserAssignedIdentity", map[string]prop{}, nil)), 0},
		}, nil), 0},
		"properties": {b.object("AccountProperties", map[string]prop{
			"provisioningState":             {str, flagReadOnly},
			"endpoint":                      {str, flagReadOnly},
			"endpoints":                     {b.object("AccountPropertiesEndpoints", map[string]prop{}, str), flagReadOnly},
			"dateCreated":                   {str, flagReadOnly},
			"customSubDomainName":           {str, 0},
			"disableLocalAuth":              {b.boolean(), 0},
			"publicNetworkAccess":           {b.enum(true, "Enabled", "Disabled"), 0},
			"restrictOutboundNetworkAccess": {b.boolean(), 0},
			"dynamicThrottlingEnabled":      {b.boolean(), 0},
			"networkAcls": {b.object("NetworkRuleSet", map[string]prop{
				"defaultAction": {b.enum(true, "Allow", "Deny"), 0},
				"bypass":        {b.enum(true, "None", "AzureServices"), 0},
			}, nil), 0},
		}, nil), 0},
	}), nil)
	deployment := b.object("Microsoft.CognitiveServices/accounts/deployments", top(map[string]prop{
		"properties": {b.object("DeploymentProperties", map[string]prop{
			"provisioningState": {str, flagReadOnly},
			"model": {b.object("DeploymentModel", map[string]prop{
				"publisher": {str, 0}, "format": {str, 0}, "name": {str, 0}, "version": {str, 0}, "source": {str, 0},
			}, nil), 0},
			"raiPolicyName":        {str, 0},
			"versionUpgradeOption": {b.enum(true, "OnceNewDefaultVersionAvailable", "OnceCurrentVersionExpired", "NoAutoUpgrade"), 0},
			"currentCapacity":      {b.integer(), 0},
		}, nil), 0},
	}), nil)
	b.add(map[string]any{"$type": "ResourceType", "name": "Microsoft.CognitiveServices/accounts@2024-10-01", "body": account})
	b.add(map[string]any{"$type": "ResourceType", "name": "Microsoft.CognitiveServices/accounts/deployments@2024-10-01", "body": deployment})
	return b.arr
}

// addFallback indexes the fallback's resource types that no published file provided.
func (bt *bicepTypes) addFallback(name string, arr []map[string]any) {
	bt.files[name] = arr
	for _, x := range arr {
		if x["$type"] != "ResourceType" {
			continue
		}
		key := strings.ToLower(x["name"].(string))
		if _, ok := bt.body[key]; ok {
			continue
		}
		bt.file[key] = name
		bt.body[key] = bt.deref(name, x["body"])
	}
}
