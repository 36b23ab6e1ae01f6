package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// childEnv marks a process that the driver started as one of its own
// children (a reference server or a forwarder), so that main and TestMain
// run the child's code instead of the driver.
const childEnv = "LAYOVER_BENCH_CHILD"

// Child commands of the driver binary.
const (
	cmdServeReference = "serve-reference"
	cmdForwardDrain   = "forward-drain"
)

// startTimeout bounds how long a server may take to respond to GET /healthz.
const startTimeout = 30 * time.Second

// server is a server process that the driver started.
type server struct {
	name    string
	cmd     *exec.Cmd
	addr    string // host:port
	logPath string
	exited  chan struct{}
}

// usage is the kernel's account of a process that has exited.
type usage struct {
	CPU       time.Duration // user plus system time
	PeakRSSKB int64         // VmHWM just before the process was stopped
}

// selfCommand returns a command that runs this binary as the child cmd.
func selfCommand(cmd string, args ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the driver binary: %w", err)
	}
	c := exec.Command(exe, append([]string{cmd}, args...)...)
	c.Env = append(os.Environ(), childEnv+"=1")
	return c, nil
}

// startServer starts cmd, which must serve GET /healthz on addr, with its
// output in logDir/name.log, and waits until the server responds.
func startServer(ctx context.Context, name string, cmd *exec.Cmd, addr, logDir string) (*server, error) {
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer logFile.Close() // the child has its own copy
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &server{name: name, cmd: cmd, addr: addr, logPath: logPath, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitHealthy(ctx); err != nil {
		_, _ = s.stop()
		return nil, err
	}
	return s, nil
}

// waitHealthy polls GET /healthz until it returns 200.
func (s *server) waitHealthy(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		resp, err := client.Get("http://" + s.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited during start-up: %s", s.name, s.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not respond to GET /healthz on %s within %s: %s", s.name, s.addr, startTimeout, s.logTail())
}

// logTail returns the last lines of the server's log.
func (s *server) logTail() string {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return "log " + s.logPath + ":\n" + strings.Join(lines[max(len(lines)-10, 0):], "\n")
}

// cpuTime returns the CPU time the running server has used so far.
func (s *server) cpuTime() (time.Duration, error) {
	return processCPU(s.cmd.Process.Pid)
}

// rssKB returns the resident set size of the running server.
func (s *server) rssKB() (int64, error) {
	return processRSSKB(s.cmd.Process.Pid)
}

// stop reads the server's peak RSS, sends SIGTERM, waits for the exit
// (SIGKILL after 30 s) and returns the process's CPU time and peak RSS.
func (s *server) stop() (usage, error) {
	peakKB, peakErr := processPeakRSSKB(s.cmd.Process.Pid)
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return usage{}, fmt.Errorf("%s did not stop within 30s after SIGTERM; killed it", s.name)
	}
	ru, ok := s.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return usage{}, errors.New("no resource usage for " + s.name)
	}
	if peakErr != nil {
		return usage{}, peakErr
	}
	return usage{CPU: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), PeakRSSKB: peakKB}, nil
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat times. It
// is 100 on every Linux architecture that Go supports.
const clockTicks = 100

// processCPU reads the user and system time of a process from /proc.
func processCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read CPU time: %w", err)
	}
	// The command name in brackets may contain spaces; fields follow it.
	end := bytes.LastIndexByte(data, ')')
	fields := strings.Fields(string(data[end+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("read CPU time: short /proc/%d/stat", pid)
	}
	var ticks int64
	for _, f := range fields[11:13] { // utime and stime, fields 14 and 15
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read CPU time: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// processRSSKB reads the resident set size (VmRSS) of a process from /proc.
func processRSSKB(pid int) (int64, error) {
	return procStatusKB(fmt.Sprintf("/proc/%d/status", pid), "VmRSS")
}

// processPeakRSSKB reads the peak resident set size (VmHWM) of a process
// from /proc. Unlike getrusage's ru_maxrss, it covers only the running
// program: Linux folds the peak of the memory image that exec replaced
// into ru_maxrss, and for a child started by Go's os/exec that image is the
// parent's, because the child shares the parent's memory until exec.
func processPeakRSSKB(pid int) (int64, error) {
	return procStatusKB(fmt.Sprintf("/proc/%d/status", pid), "VmHWM")
}

// procStatusKB reads one kB field of a /proc status file.
func procStatusKB(path, field string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", field, err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("read %s: %w", field, err)
			}
			return kb, nil
		}
	}
	return 0, fmt.Errorf("read %s: not in %s", field, path)
}

// freeAddr returns a 127.0.0.1 address with a port that is free right now.
// Another process may take it before the server binds it; startServer then
// fails with the server's log.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}
