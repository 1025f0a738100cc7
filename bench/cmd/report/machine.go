package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// machine describes the machine the report runs on: make bench runs the
// report right after the benchmarks, on the same machine.
func machine(results string) []string {
	var lines []string
	add := func(k, v string) {
		if v != "" {
			lines = append(lines, fmt.Sprintf("- **%s**: %s", k, v))
		}
	}
	add("CPU", cpuModel())
	add("cores (nproc)", fmt.Sprint(runtime.NumCPU()))
	add("memory", memTotal())
	add("kernel", strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")))
	add("OS", osRelease())
	add("Go", runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
	add("temp dir (bbolt files)", tempFS())
	if la := strings.TrimSpace(readFile(filepath.Join(results, "loadavg.txt"))); la != "" {
		add("load average before the run (/proc/loadavg)", "`"+la+"`")
	}
	if la := strings.TrimSpace(readFile("/proc/loadavg")); la != "" {
		add("load average after the run", "`"+la+"`")
	}
	return lines
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

func cpuModel() string {
	sc := bufio.NewScanner(strings.NewReader(readFile("/proc/cpuinfo")))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func memTotal() string {
	sc := bufio.NewScanner(strings.NewReader(readFile("/proc/meminfo")))
	for sc.Scan() {
		var kb int64
		if n, _ := fmt.Sscanf(sc.Text(), "MemTotal: %d kB", &kb); n == 1 {
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return ""
}

func osRelease() string {
	sc := bufio.NewScanner(strings.NewReader(readFile("/etc/os-release")))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// tempFS names the file system holding os.TempDir, where the benchmarks
// create their bbolt files: fsync costs depend on it.
func tempFS() string {
	dir := os.TempDir()
	best, desc := "", ""
	for _, line := range bytes.Split([]byte(readFile("/proc/mounts")), []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) < 3 {
			continue
		}
		mp := f[1]
		if (dir == mp || strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best, desc = mp, fmt.Sprintf("`%s` on %s (%s, mounted at %s)", dir, f[0], f[2], mp)
		}
	}
	return desc
}
