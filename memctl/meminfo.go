package memctl

import (
	"bufio"
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// BootDefaults are the memory sysctls Linux computes at boot from
// nr_free_buffer_pages().
type BootDefaults struct {
	TCPMem  [3]int64 // pages
	UDPMem  [3]int64 // pages
	TCPRmem [3]int64 // bytes
	TCPWmem [3]int64 // bytes
}

// ComputeBootDefaults derives tcp_mem, udp_mem, tcp_rmem and tcp_wmem from
// nfbp = nr_free_buffer_pages(). Mirrors tcp_init_mem and tcp_init
// (net/ipv4/tcp.c) and udp_init (net/ipv4/udp.c). For nfbp 6141888 (a
// 23.5 GiB machine) it gives tcp_mem 287901 383868 575802, udp_mem 575802
// 767736 1151604, tcp_rmem max 33554432 and tcp_wmem max 4194304.
func ComputeBootDefaults(p *Profile, nfbp int64) BootDefaults {
	var d BootDefaults
	tri := func(limit int64) [3]int64 {
		limit = max(limit, 128)
		low := limit / 4 * 3
		return [3]int64{low, limit, low * 2}
	}
	d.TCPMem = tri(nfbp / 16)
	d.UDPMem = tri(nfbp / 8)
	// lim = nfbp << (PAGE_SHIFT - 7): 1/128 of the memory, in bytes.
	lim := nfbp << (p.pageShift() - 7)
	d.TCPWmem = [3]int64{int64(p.PageSize), 16 * 1024, max(64*1024, min(4<<20, lim))}
	d.TCPRmem = [3]int64{int64(p.PageSize), 131072, max(131072, min(int64(p.TCPRmemMaxCap), lim))}
	return d
}

// EstimateNrFreeBufferPages approximates Linux's nr_free_buffer_pages() for
// this machine: the managed pages of the zones up to ZONE_NORMAL minus their
// high watermarks. sockfs cannot see zones, so it takes MemTotal from
// /proc/meminfo (falling back to sysinfo(2) totalram) as the managed pages of
// one zone and subtracts a high watermark computed the way mm/page_alloc.c
// does by default: min_free_kbytes = clamp(sqrt(16 * lowmem_kbytes), 128,
// 262144), min = min_free_kbytes/4 pages, high = min + 2 * max(min/4,
// managed * watermark_scale_factor(10) / 10000). The result is within a few
// thousand pages of the kernel's value, which moves tcp_mem by well under 1%.
func EstimateNrFreeBufferPages() int64 {
	kb := memTotalKB()
	if kb <= 0 {
		return 128 * 16 // too little to matter: the minimum limits apply
	}
	return NrFreeBufferPagesFromMemTotal(kb)
}

// NrFreeBufferPagesFromMemTotal is the estimate of EstimateNrFreeBufferPages
// for a MemTotal of kb KiB (4 KiB pages).
func NrFreeBufferPagesFromMemTotal(kb int64) int64 {
	managed := kb / 4
	minFree := int64(math.Sqrt(float64(kb) * 16))
	minFree = min(max(minFree, 128), 262144)
	minPages := minFree / 4
	tmp := max(minPages/4, managed*10/10000)
	high := minPages + 2*tmp
	if managed <= high {
		return 0
	}
	return managed - high
}

// memTotalKB reads MemTotal from /proc/meminfo, or sysinfo(2) if that fails.
func memTotalKB() int64 {
	if f, err := os.Open("/proc/meminfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) >= 2 && fields[0] == "MemTotal:" {
				if v, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
					return v
				}
			}
		}
	}
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) == nil {
		return int64(si.Totalram) * int64(si.Unit) / 1024
	}
	return 0
}
