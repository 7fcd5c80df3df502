package doctor

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// TokenStoreSubject is the federated-credential subject the Bot Service token store presents
// for an "AAD v2 with Federated Credentials" OAuth connection:
//
//	/eid1/c/pub/t/{tenant}/a/9ExAW52n_ky4ZiS_jhpJIQ/{UniqueIdentifier}
//
// where {tenant} is EncodeGUID(tenantID) and the last segment is the connection's
// UniqueIdentifier parameter, verbatim. (learn.microsoft.com
// microsoft-365/agents-sdk/azure-bot-user-authorization-federated-credentials; the "a" segment
// is the Bot Service Token Store's first-party app id 5b404cf4-a79d-4cfe-b866-24bf8e1a4921
// encoded the same way, which is how the encoding below was confirmed.)
func TokenStoreSubject(tenantID, uniqueIdentifier string) (string, error) {
	t, err := EncodeGUID(tenantID)
	if err != nil {
		return "", err
	}
	return "/eid1/c/pub/t/" + t + "/a/" + TokenStoreAppSegment + "/" + uniqueIdentifier, nil
}

// EncodeGUID is the unpadded base64url of a GUID's 16 bytes in Microsoft's mixed-endian
// order (.NET Guid.ToByteArray): the first three groups little-endian, the last two as written.
// Decoding the token store's own segment 9ExAW52n_ky4ZiS_jhpJIQ this way gives its published
// application id 5b404cf4-a79d-4cfe-b866-24bf8e1a4921 (version nibble 4, RFC 4122 variant),
// while reading the bytes in written order gives f44c405b-9da7-fe4c-…, which is not a valid
// random GUID.
func EncodeGUID(guid string) (string, error) {
	b, err := guidBytes(guid)
	if err != nil {
		return "", err
	}
	reverse(b[0:4])
	reverse(b[4:6])
	reverse(b[6:8])
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// encodeGUIDWrittenOrder is the common mistake: the bytes in the order the GUID is written.
func encodeGUIDWrittenOrder(guid string) string {
	b, err := guidBytes(guid)
	if err != nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func guidBytes(guid string) ([]byte, error) {
	h := strings.ReplaceAll(strings.TrimSpace(guid), "-", "")
	if len(h) != 32 || len(guid) != 36 {
		return nil, fmt.Errorf("doctor: %q is not a GUID", guid)
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("doctor: %q is not a GUID: %w", guid, err)
	}
	return b, nil
}

func reverse(b []byte) {
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
}
