// Command compose-check loads a Compose file with compose-go, the library `docker compose` itself
// uses, and prints the resolved project as JSON, or the loader's error and exit status 1.
//
// Why it exists: Docker cannot run where the tests run, yet a compose file that `docker compose`
// would refuse (a bad key, a dependency on a service that does not exist, a wrong type) must fail
// `npm test`. test/compose.test.ts runs this checker, then asserts on the normalised model it prints.
//
// Usage: compose-check <compose file>
// The project is loaded with an empty environment, so every `${VAR:-default}` takes its default.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: compose-check <compose file>")
		os.Exit(2)
	}
	file, err := filepath.Abs(os.Args[1])
	if err != nil {
		fail(err)
	}
	options, err := cli.NewProjectOptions(
		[]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithEnv([]string{}),
		cli.WithConsistency(true),
	)
	if err != nil {
		fail(err)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	model, err := project.MarshalJSON()
	if err != nil {
		fail(err)
	}
	fmt.Println(string(model))
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "compose-check: %v\n", err)
	os.Exit(1)
}
