package slapd

import "strings"

// config is slapd.conf (slapd.conf(5), slapd.access(5) of OpenLDAP 2.5). The access rules are
// what the tests check the bot against: whatever the bot shows a user must be exactly what
// these rules let that user read.
func (s *Server) config() string {
	r := strings.NewReplacer("DIR", s.dir, "BASE", Base, "SERVICE", ServiceDN, "HRGROUP", HRGroupDN)
	hide := ""
	if s.opts.HideProxyControl {
		hide = "access to dn.base=\"\" attrs=supportedControl by * none\n"
	}
	return r.Replace(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile DIR/slapd.pid
argsfile DIR/slapd.args

# RFC 4370 proxied authorization: an identity may assume those its authzTo names.
authz-policy to
# SASL EXTERNAL: the client certificate's subject is the bot's service entry.
authz-regexp "^cn=onbehalf-bot,ou=services,o=contoso$" "SERVICE"

TLSCACertificateFile DIR/ca.pem
TLSCertificateFile DIR/server.pem
TLSCertificateKeyFile DIR/server.key
TLSVerifyClient allow

disallow bind_anon

` + hide + `access to dn.base="" by * read
access to dn.base="cn=Subschema" by * read

database mdb
maxsize 16777216
suffix "BASE"
directory DIR/db

access to attrs=userPassword
	by anonymous auth
	by * none
access to attrs=authzTo
	by self auth
	by * none
access to dn.subtree="ou=hr,BASE"
	by dn.exact="SERVICE" read
	by group.exact="HRGROUP" read
	by * none
access to dn.subtree="ou=people,BASE" attrs=homePhone,employeeNumber
	by dn.exact="SERVICE" read
	by self read
	by group.exact="HRGROUP" read
	by * none
access to *
	by dn.exact="SERVICE" read
	by users read
	by * none
`)
}

// data is the directory, loaded with slapadd.
const data = `dn: dc=contoso,dc=example
objectClass: dcObject
objectClass: organization
o: Contoso
dc: contoso

dn: ou=people,dc=contoso,dc=example
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=contoso,dc=example
objectClass: organizationalUnit
ou: groups

dn: ou=hr,dc=contoso,dc=example
objectClass: organizationalUnit
ou: hr

dn: ou=contractors,dc=contoso,dc=example
objectClass: organizationalUnit
ou: contractors

dn: ou=services,dc=contoso,dc=example
objectClass: organizationalUnit
ou: services

dn: uid=alice,ou=people,dc=contoso,dc=example
objectClass: inetOrgPerson
uid: alice
cn: Alice Example
sn: Example
givenName: Alice
mail: alice@contoso.example
title: HR Partner
homePhone: +1 555 0101
employeeNumber: ` + AliceOID + `

dn: uid=bob,ou=people,dc=contoso,dc=example
objectClass: inetOrgPerson
uid: bob
cn: Bob Example
sn: Example
givenName: Bob
mail: bob@contoso.example
title: Engineer
homePhone: +1 555 0102
employeeNumber: ` + BobOID + `

dn: uid=carol,ou=people,dc=contoso,dc=example
objectClass: inetOrgPerson
uid: carol
cn: Carol Sample
sn: Sample
givenName: Carol
mail: carol@contoso.example
mail: shared@contoso.example
title: Finance Analyst
homePhone: +1 555 0103
employeeNumber: ` + CarolOID + `

dn: uid=dave,ou=people,dc=contoso,dc=example
objectClass: inetOrgPerson
uid: dave
cn: Dave Sample
sn: Sample
mail: shared@contoso.example
title: Finance Analyst

dn: uid=mallory,ou=contractors,dc=contoso,dc=example
objectClass: inetOrgPerson
uid: mallory
cn: Mallory Contractor
sn: Contractor
mail: mallory@contoso.example
title: Contractor
employeeNumber: ` + MalloryOID + `

dn: cn=admin,dc=contoso,dc=example
objectClass: inetOrgPerson
cn: admin
sn: Administrator
mail: admin@contoso.example
employeeNumber: ` + AdminOID + `

dn: cn=hr,ou=groups,dc=contoso,dc=example
objectClass: groupOfNames
cn: hr
description: Human resources
member: uid=alice,ou=people,dc=contoso,dc=example

dn: cn=hr-record-bob,ou=hr,dc=contoso,dc=example
objectClass: document
documentIdentifier: hr-record-bob
cn: hr-record-bob
description: Salary review for Bob Example: band 4

dn: cn=hr-record-alice,ou=hr,dc=contoso,dc=example
objectClass: document
documentIdentifier: hr-record-alice
cn: hr-record-alice
description: Salary review for Alice Example: band 5

dn: cn=onbehalf-bot,ou=services,dc=contoso,dc=example
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: onbehalf-bot
userPassword: ` + ServicePassword + `
authzTo: dn.subtree:ou=people,dc=contoso,dc=example
`
