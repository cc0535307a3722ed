package main

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

type machine struct {
	nproc   int
	cpu     string
	memory  string
	kernel  string
	goVer   string
	nodeVer string
	date    string
}

func describeMachine() machine {
	m := machine{nproc: runtime.NumCPU(), date: time.Now().UTC().Format("2006-01-02 15:04 MST")}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.memory = strings.Join(strings.Fields(strings.TrimPrefix(firstLine(string(b)), "MemTotal:")), " ")
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("go", "version").Output(); err == nil {
		m.goVer = strings.TrimSpace(string(out))
	}
	m.nodeVer = nodeVersion()
	return m
}
