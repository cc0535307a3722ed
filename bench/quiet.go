package main

import (
	"log"
	"os"
	"strconv"
	"strings"
	"time"
)

// systemBusy returns the machine's total busy CPU time so far (all
// processes, from /proc/stat: everything but idle and iowait).
func systemBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line := firstLine(string(b))
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest time is already counted in user
			break
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTicks
}

// waitQuiet waits (at most limit) until the machine has been nearly idle
// for a second, so a measurement does not share the CPUs with unrelated
// work, and returns how busy the last second was, in cores.
func waitQuiet(what string, limit time.Duration) float64 {
	deadline := time.Now().Add(limit)
	warned := false
	for {
		b0, s0 := systemBusy(), selfCPU()
		time.Sleep(time.Second)
		other := max(0, (systemBusy() - b0 - (selfCPU() - s0)).Seconds())
		if other < 0.15 || time.Now().After(deadline) {
			if other >= 0.15 {
				log.Printf("%s: machine still busy (%.2f cores used by other processes); measuring anyway", what, other)
			}
			return other
		}
		if !warned {
			log.Printf("%s: waiting for other processes to go quiet (%.2f cores busy)", what, other)
			warned = true
		}
	}
}
