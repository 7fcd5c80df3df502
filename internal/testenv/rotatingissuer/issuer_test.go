package rotatingissuer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/onbehalf/onbehalf/internal/testenv/rotatingissuer"
)

func refresh(ctx context.Context, iss *rotatingissuer.Issuer, rt string) (*oauth2.Token, error) {
	conf := oauth2.Config{ClientID: iss.ClientID(), Endpoint: oauth2.Endpoint{TokenURL: iss.TokenURL(), AuthStyle: oauth2.AuthStyleInParams}}
	return conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
}

func TestRotationAndFamilyRevocationOnReuse(t *testing.T) {
	iss := rotatingissuer.Start(t, rotatingissuer.Options{AccessTTL: time.Hour})
	ctx := context.Background()
	at0, rt0, _ := iss.Seed()

	t1, err := refresh(ctx, iss, rt0)
	if err != nil {
		t.Fatal(err)
	}
	if t1.RefreshToken == rt0 || t1.RefreshToken == "" {
		t.Fatal("refresh token did not rotate")
	}
	if !iss.Valid(t1.AccessToken) || !iss.Valid(at0) {
		t.Fatal("fresh access tokens should be valid")
	}
	// Reusing the old refresh token revokes the family: even the newest tokens die.
	_, err = refresh(ctx, iss, rt0)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("reuse: err = %v, want invalid_grant", err)
	}
	if iss.Valid(t1.AccessToken) {
		t.Fatal("access token survived family revocation")
	}
	if _, err := refresh(ctx, iss, t1.RefreshToken); !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("newest refresh token after revocation: err = %v", err)
	}
	st := iss.Stats()
	if len(st.Refreshes) != 1 || st.Reuses != 1 || st.InvalidGrants != 2 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestRejectsWrongClientAndGrant(t *testing.T) {
	iss := rotatingissuer.Start(t, rotatingissuer.Options{})
	_, rt, _ := iss.Seed()
	conf := oauth2.Config{ClientID: "someone-else", Endpoint: oauth2.Endpoint{TokenURL: iss.TokenURL(), AuthStyle: oauth2.AuthStyleInParams}}
	_, err := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_client" {
		t.Fatalf("err = %v, want invalid_client", err)
	}
	// The refused attempt must not have consumed the refresh token.
	if _, err := refresh(context.Background(), iss, rt); err != nil {
		t.Fatalf("refresh after refused client: %v", err)
	}
}
