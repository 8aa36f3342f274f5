package bench

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// clockTick is USER_HZ, the unit of /proc CPU times (100 on every Linux this runs on).
const clockTick = 10 * time.Millisecond

// processCPU is the user+system CPU time a process has used so far (/proc/<pid>/stat).
func processCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatalf("cpu: %v", err)
	}
	// The command name (field 2) may hold spaces; the fields after its ")" are fixed.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		t.Fatalf("cpu: short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("cpu: /proc/%d/stat: %q", pid, s)
	}
	return time.Duration(utime+stime) * clockTick
}

// machineCPU is the busy (non-idle, non-iowait) CPU time of the whole machine so far
// (/proc/stat), over all cores.
func machineCPU(t *testing.T) time.Duration {
	t.Helper()
	var busy time.Duration
	for i, v := range procStatCPU(t) {
		if i != 3 && i != 4 && i < 8 { // idle, iowait; guest times are already in user
			busy += v
		}
	}
	return busy
}

// procStatCPU is the first line of /proc/stat: the times of all cores by state (user, nice,
// system, idle, iowait, irq, softirq, steal, guest, guest_nice).
func procStatCPU(t *testing.T) []time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatalf("cpu: %v", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	var out []time.Duration
	for _, v := range strings.Fields(line)[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("cpu: /proc/stat: %q", line)
		}
		out = append(out, time.Duration(n)*clockTick)
	}
	return out
}

// stealCPU is the time the hypervisor ran something else while this virtual machine had
// work to run (/proc/stat "steal"), over all cores. The rest of the rig's figures do not
// show it, but every latency does: a run with steal is a slower machine.
func stealCPU(t *testing.T) time.Duration {
	t.Helper()
	f := procStatCPU(t)
	if len(f) < 8 {
		return 0
	}
	return f[7]
}

// redisCPU is the CPU time redis-server has used so far (INFO cpu).
func redisCPU(t *testing.T, rdb *redis.Client) time.Duration {
	t.Helper()
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		t.Fatalf("INFO cpu: %v", err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("INFO cpu: %q", line)
			}
			total += x
		}
	}
	return time.Duration(total * float64(time.Second))
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
