/*
 * avx2_cpu.so: makes a process on an AVX-512 x86-64 CPU see an AVX2 + FMA CPU.
 *
 * Loaded with LD_PRELOAD. Its constructor turns on CPUID faulting for the process
 * (arch_prctl(ARCH_SET_CPUID, 0): Linux on CPUs that list `cpuid_fault` in /proc/cpuinfo;
 * threads and forks inherit it, execve resets it), so every CPUID instruction traps into the
 * SIGSEGV handler below, which runs the real CPUID with faulting briefly off and clears the
 * AVX-512 and VNNI bits from the answer. Everything that chooses kernels from CPUID after
 * start-up (Rust's is_x86_feature_detected!, ONNX Runtime's MLAS and cpuinfo) then takes its
 * AVX2 path, at native speed (qemu's -cpu Haswell runs the same paths, but emulated).
 *
 * What it cannot hide: glibc picks its own string functions before any constructor runs (run.sh
 * sets GLIBC_TUNABLES for those), and code that executes AVX-512 without asking CPUID.
 * A timing tool for bench; not part of rawnr's runtime.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef ARCH_SET_CPUID
#define ARCH_SET_CPUID 0x1012
#endif

static long set_cpuid_enabled(int enabled) {
    return syscall(SYS_arch_prctl, ARCH_SET_CPUID, (unsigned long)enabled);
}

/* Leaf 7 sub-leaf 0: AVX-512 F, DQ, IFMA, PF, ER, CD, BW, VL (EBX); VBMI, VBMI2, VNNI, BITALG,
 * VPOPCNTDQ (ECX); 4VNNIW, 4FMAPS, VP2INTERSECT, FP16 (EDX). Sub-leaf 1: AVX-VNNI, AVX512_BF16
 * (EAX). */
static void mask_avx512(unsigned leaf, unsigned sub, unsigned r[4]) {
    if (leaf == 7 && sub == 0) {
        r[1] &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) |
                  (1u << 30) | (1u << 31));
        r[2] &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
        r[3] &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 23));
    } else if (leaf == 7 && sub == 1) {
        r[0] &= ~((1u << 4) | (1u << 5));
    }
}

static void on_sigsegv(int sig, siginfo_t *info, void *context) {
    (void)info;
    ucontext_t *uc = context;
    greg_t *regs = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)regs[REG_RIP];
    if (ip[0] != 0x0f || ip[1] != 0xa2) {
        /* A real fault: let it happen with the default action. */
        signal(sig, SIG_DFL);
        return;
    }
    unsigned leaf = (unsigned)regs[REG_RAX], sub = (unsigned)regs[REG_RCX], r[4];
    set_cpuid_enabled(1);
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
    set_cpuid_enabled(0);
    mask_avx512(leaf, sub, r);
    regs[REG_RAX] = r[0];
    regs[REG_RBX] = r[1];
    regs[REG_RCX] = r[2];
    regs[REG_RDX] = r[3];
    regs[REG_RIP] += 2;
}

__attribute__((constructor)) static void avx2_cpu_init(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigsegv;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGSEGV, &action, NULL) != 0 || set_cpuid_enabled(0) != 0) {
        fprintf(stderr, "avx2_cpu.so: this CPU or kernel has no CPUID faulting "
                        "(no cpuid_fault in /proc/cpuinfo); refusing to run unmasked\n");
        _exit(125);
    }
}
