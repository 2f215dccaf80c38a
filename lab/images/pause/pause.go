// Command pause is the kubeproof lab's pod sandbox ("infra") container process.
//
// It holds the pod's namespaces open and does nothing else: as PID 1 of the sandbox it reaps
// zombies re-parented to it, and exits cleanly on SIGINT or SIGTERM. Built with CGO_ENABLED=0 so
// the image needs nothing but this one static binary.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const version = "3.10"

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "--version" || os.Args[1] == "-v") {
		fmt.Printf("kubeproof pause %s\n", version)
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "warning: pause should be the first process")
	}

	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for received := range signals {
		switch received {
		case syscall.SIGINT, syscall.SIGTERM:
			fmt.Fprintf(os.Stderr, "shutting down, got signal %v\n", received)
			os.Exit(0)
		case syscall.SIGCHLD:
			reapChildren()
		}
	}
}

// reapChildren collects every exited child so none stays a zombie; signals coalesce, so loop.
func reapChildren() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
