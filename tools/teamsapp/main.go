// Command teamsapp builds the Teams app package of onbehalf.
//
//	teamsapp package -dir appPackage -out appPackage/build/onbehalf.zip
//	    fills appPackage/manifest.template.json from the environment (the azd outputs
//	    TEAMS_APP_ID, BOT_APP_ID, FUNCTION_APP_HOSTNAME; optional TEAMS_APP_WEBSITE_URL,
//	    TEAMS_APP_PRIVACY_URL, TEAMS_APP_TERMS_URL) and writes the zip Teams accepts:
//	    manifest.json, color.png and outline.png at its root.
//	teamsapp icons -dir appPackage
//	    draws color.png (192×192) and outline.png (32×32, white on transparent).
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "package":
		err = runPackage(os.Args[2:])
	case "icons":
		err = runIcons(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "teamsapp:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: teamsapp package -dir DIR -out FILE.zip | teamsapp icons -dir DIR")
	os.Exit(2)
}

func runPackage(args []string) error {
	fs := flag.NewFlagSet("package", flag.ExitOnError)
	dir := fs.String("dir", "appPackage", "folder holding manifest.template.json and the icons")
	out := fs.String("out", "appPackage/build/onbehalf.zip", "zip file to write")
	_ = fs.Parse(args)
	values, err := ValuesFromEnv(os.LookupEnv)
	if err != nil {
		return err
	}
	if err := WritePackage(*dir, *out, values); err != nil {
		return err
	}
	fmt.Printf("Teams app package: %s (bot %s, host %s)\n", *out, values["BOT_APP_ID"], values["FUNCTION_APP_HOSTNAME"])
	return nil
}

func runIcons(args []string) error {
	fs := flag.NewFlagSet("icons", flag.ExitOnError)
	dir := fs.String("dir", "appPackage", "folder to write color.png and outline.png to")
	_ = fs.Parse(args)
	return WriteIcons(*dir)
}
