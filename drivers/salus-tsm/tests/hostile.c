// SPDX-License-Identifier: GPL-2.0
/*
 * salus-tsm-hostile: a hostile user of /dev/salus-tsm. Every call below
 * passes something wrong (wrong fd, unaligned or overlapping addresses,
 * huge sizes, reserved bits, calls out of order, one vCPU run from two
 * threads, a close while a vCPU runs) and must get an error -- never an
 * oops, a hang or a lost page. At the end the driver's page counters must
 * be back where they started.
 *
 *   salus-tsm-hostile          run everything; prints PASS:/FAIL: lines and
 *                              "salus-tsm-hostile: N passed, M failed"
 *   salus-tsm-hostile info     print the driver's counters (one line)
 *
 * Exit status 0 only when every check passed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../include/uapi/salus-tsm.h"

#define PAGE 4096ULL
#define GPA 0x80000000ULL
#define REGION_LEN (2ULL << 20)
/* `j .`: the TVM spins until the host takes the hart back. */
#define INSN_SPIN 0x0000006fU

static int passed, failed;

static void check(int ok, const char *what, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		printf("PASS: hostile:%s\n", what);
		passed++;
		return;
	}
	printf("FAIL: hostile:%s: ", what);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	failed++;
}

/* ioctl expecting failure with errno `want`. */
static void expect_err(int fd, unsigned long req, void *arg, int want, const char *what)
{
	int r = ioctl(fd, req, arg);
	int e = errno;

	check(r == -1 && e == want, what, "ioctl returned %d errno %d (%s), want errno %d (%s)",
	      r, r == -1 ? e : 0, r == -1 ? strerror(e) : "-", want, strerror(want));
}

static void expect_ok(int fd, unsigned long req, void *arg, const char *what)
{
	int r = ioctl(fd, req, arg);

	check(r == 0, what, "ioctl returned %d errno %d (%s)", r, errno, strerror(errno));
}

static int get_info(struct salus_tsm_info *info)
{
	int fd = open(SALUS_TSM_DEVICE, O_RDWR | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -1;
	r = ioctl(fd, SALUS_TSM_GET_INFO, info);
	close(fd);
	return r;
}

static void print_info(const struct salus_tsm_info *i)
{
	printf("salus-tsm: converted_pages=%llu shared_pages=%llu leaked_pages=%llu live_tvms=%llu\n",
	       (unsigned long long)i->converted_pages, (unsigned long long)i->shared_pages,
	       (unsigned long long)i->leaked_pages, (unsigned long long)i->live_tvms);
}

/* A TVM whose one vCPU spins at GPA; returns its fd (or -1). */
static int spinning_tvm(void *code)
{
	struct salus_tsm_create c = { 0 };
	struct salus_tsm_region rg = { .gpa = GPA, .len = REGION_LEN };
	struct salus_tsm_measured m = { .gpa = GPA, .uaddr = (uintptr_t)code, .len = PAGE };
	struct salus_tsm_vcpu v = { .vcpu_id = 0 };
	struct salus_tsm_finalize f = { .entry_sepc = GPA };
	int fd = open(SALUS_TSM_DEVICE, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (ioctl(fd, SALUS_TSM_CREATE_TVM, &c) || ioctl(fd, SALUS_TSM_ADD_REGION, &rg) ||
	    ioctl(fd, SALUS_TSM_ADD_MEASURED, &m) || ioctl(fd, SALUS_TSM_CREATE_VCPU, &v) ||
	    ioctl(fd, SALUS_TSM_FINALIZE, &f)) {
		printf("hostile: building the spinning TVM: %s\n", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void on_signal(int sig)
{
	(void)sig;
}

struct runner {
	int fd;
	int ret;
	int err;
	volatile int started;
};

static void *run_thread(void *p)
{
	struct runner *r = p;
	struct salus_tsm_run run = { .vcpu_id = 0 };

	r->started = 1;
	r->ret = ioctl(r->fd, SALUS_TSM_RUN_VCPU, &run);
	r->err = errno;
	return NULL;
}

static void order_and_arguments(void *code, void *ro)
{
	struct salus_tsm_create c = { 0 };
	struct salus_tsm_region rg;
	struct salus_tsm_measured m;
	struct salus_tsm_zero z;
	struct salus_tsm_shared s;
	struct salus_tsm_vcpu v;
	struct salus_tsm_finalize f = { .entry_sepc = GPA };
	struct salus_tsm_run run = { 0 };
	struct salus_tsm_info info;
	int fd, nul;

	/* The driver's ioctls on another file, and a closed fd. */
	nul = open("/dev/null", O_RDWR);
	expect_err(nul, SALUS_TSM_GET_INFO, &info, ENOTTY, "ioctl_on_dev_null");
	close(nul);
	expect_err(nul, SALUS_TSM_GET_INFO, &info, EBADF, "ioctl_on_closed_fd");

	fd = open(SALUS_TSM_DEVICE, O_RDWR | O_CLOEXEC);
	check(fd >= 0, "open", "open %s: %s", SALUS_TSM_DEVICE, strerror(errno));
	if (fd < 0)
		return;
	expect_err(fd, _IOW(SALUS_TSM_IOC, 0x7f, struct salus_tsm_region), &c, ENOTTY,
		   "unknown_ioctl");
	expect_err(fd, SALUS_TSM_GET_INFO, NULL, EFAULT, "info_to_null");

	/* Before CREATE_TVM nothing else works. */
	rg = (struct salus_tsm_region){ .gpa = GPA, .len = REGION_LEN };
	expect_err(fd, SALUS_TSM_ADD_REGION, &rg, ENOENT, "region_before_create");
	expect_err(fd, SALUS_TSM_RUN_VCPU, &run, ENOENT, "run_before_create");
	c.reserved = 1;
	expect_err(fd, SALUS_TSM_CREATE_TVM, &c, EINVAL, "create_reserved_bits");
	c.reserved = 0;
	expect_ok(fd, SALUS_TSM_CREATE_TVM, &c, "create");
	expect_err(fd, SALUS_TSM_CREATE_TVM, &c, EEXIST, "create_twice");

	/* Regions: alignment, zero length, wrap-around. */
	rg = (struct salus_tsm_region){ .gpa = GPA + 1, .len = REGION_LEN };
	expect_err(fd, SALUS_TSM_ADD_REGION, &rg, EINVAL, "region_unaligned_gpa");
	rg = (struct salus_tsm_region){ .gpa = GPA, .len = 0 };
	expect_err(fd, SALUS_TSM_ADD_REGION, &rg, EINVAL, "region_len_zero");
	rg = (struct salus_tsm_region){ .gpa = ~0ULL & ~(PAGE - 1), .len = 2 * PAGE };
	expect_err(fd, SALUS_TSM_ADD_REGION, &rg, EINVAL, "region_wraps");
	rg = (struct salus_tsm_region){ .gpa = GPA, .len = REGION_LEN };
	expect_ok(fd, SALUS_TSM_ADD_REGION, &rg, "region");

	/* Measured pages: every argument wrong once. */
	m = (struct salus_tsm_measured){ .gpa = GPA, .uaddr = 0, .len = PAGE };
	expect_err(fd, SALUS_TSM_ADD_MEASURED, &m, EFAULT, "measured_from_null");
	m = (struct salus_tsm_measured){ .gpa = GPA + 8, .uaddr = (uintptr_t)code, .len = PAGE };
	expect_err(fd, SALUS_TSM_ADD_MEASURED, &m, EINVAL, "measured_unaligned_gpa");
	m = (struct salus_tsm_measured){ .gpa = GPA, .uaddr = (uintptr_t)code, .len = 100 };
	expect_err(fd, SALUS_TSM_ADD_MEASURED, &m, EINVAL, "measured_partial_page");
	m = (struct salus_tsm_measured){ .gpa = GPA, .uaddr = (uintptr_t)code, .len = 0 };
	expect_err(fd, SALUS_TSM_ADD_MEASURED, &m, EINVAL, "measured_len_zero");
	m = (struct salus_tsm_measured){ .gpa = GPA, .uaddr = (uintptr_t)code,
					 .len = SALUS_TSM_MAX_CALL_BYTES + PAGE };
	expect_err(fd, SALUS_TSM_ADD_MEASURED, &m, E2BIG, "measured_huge");
	m = (struct salus_tsm_measured){ .gpa = GPA, .uaddr = (uintptr_t)code, .len = PAGE,
					 .page_type = 7 };
	expect_err(fd, SALUS_TSM_ADD_MEASURED, &m, EINVAL, "measured_bad_page_type");
	m = (struct salus_tsm_measured){ .gpa = GPA, .uaddr = (uintptr_t)code, .len = PAGE,
					 .reserved = 1 };
	expect_err(fd, SALUS_TSM_ADD_MEASURED, &m, EINVAL, "measured_reserved_bits");
	m = (struct salus_tsm_measured){ .gpa = 0x10000000, .uaddr = (uintptr_t)code, .len = PAGE };
	expect_err(fd, SALUS_TSM_ADD_MEASURED, &m, EIO, "measured_outside_region");
	m = (struct salus_tsm_measured){ .gpa = GPA, .uaddr = (uintptr_t)code, .len = PAGE };
	expect_ok(fd, SALUS_TSM_ADD_MEASURED, &m, "measured");
	expect_err(fd, SALUS_TSM_ADD_MEASURED, &m, EIO, "measured_overlapping");

	/* Zero pages overlapping the measured one; shared pages outside any
	 * shareable range and from a read-only mapping. */
	z = (struct salus_tsm_zero){ .gpa = GPA, .len = 2 * PAGE };
	expect_err(fd, SALUS_TSM_ADD_ZERO, &z, EIO, "zero_overlapping");
	z = (struct salus_tsm_zero){ .gpa = GPA + PAGE, .len = PAGE, .page_type = SALUS_TSM_PAGE_2M };
	expect_err(fd, SALUS_TSM_ADD_ZERO, &z, EINVAL, "zero_2m_unaligned");
	s = (struct salus_tsm_shared){ .gpa = GPA + 16 * PAGE, .uaddr = (uintptr_t)ro, .len = PAGE };
	expect_err(fd, SALUS_TSM_ADD_SHARED, &s, EFAULT, "shared_from_read_only");
	s = (struct salus_tsm_shared){ .gpa = GPA + 16 * PAGE, .uaddr = (uintptr_t)code + 1,
				       .len = PAGE };
	expect_err(fd, SALUS_TSM_ADD_SHARED, &s, EINVAL, "shared_unaligned_uaddr");
	s = (struct salus_tsm_shared){ .gpa = 0x10000000, .uaddr = (uintptr_t)code, .len = PAGE };
	expect_err(fd, SALUS_TSM_ADD_SHARED, &s, EIO, "shared_not_shareable");

	/* vCPUs and the order of the lifecycle. */
	v.vcpu_id = 1ULL << 40;
	expect_err(fd, SALUS_TSM_CREATE_VCPU, &v, EINVAL, "vcpu_id_huge");
	v.vcpu_id = 0;
	expect_ok(fd, SALUS_TSM_CREATE_VCPU, &v, "vcpu");
	run.vcpu_id = 0;
	expect_err(fd, SALUS_TSM_RUN_VCPU, &run, EIO, "run_before_finalize");
	expect_err(fd, SALUS_TSM_CREATE_VCPU, &v, EIO, "vcpu_twice");
	expect_ok(fd, SALUS_TSM_FINALIZE, &f, "finalize");
	expect_err(fd, SALUS_TSM_FINALIZE, &f, EIO, "finalize_twice");
	m = (struct salus_tsm_measured){ .gpa = GPA + PAGE, .uaddr = (uintptr_t)code, .len = PAGE };
	expect_err(fd, SALUS_TSM_ADD_MEASURED, &m, EIO, "measured_after_finalize");
	run.vcpu_id = 5;
	expect_err(fd, SALUS_TSM_RUN_VCPU, &run, EIO, "run_missing_vcpu");
	close(fd);
}

/* One vCPU from two threads; a signal ends the run; close while running. */
static void concurrency(void *code)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct salus_tsm_run run = { .vcpu_id = 0 };
	struct runner r = { 0 };
	pthread_t th;
	int fd;

	sigaction(SIGUSR1, &sa, NULL); /* no SA_RESTART: the ioctl sees EINTR */
	fd = spinning_tvm(code);
	check(fd >= 0, "spinning_tvm", "could not build it");
	if (fd < 0)
		return;
	r.fd = fd;
	pthread_create(&th, NULL, run_thread, &r);
	while (!r.started)
		usleep(1000);
	usleep(300 * 1000);
	expect_err(fd, SALUS_TSM_RUN_VCPU, &run, EBUSY, "run_from_two_threads");
	pthread_kill(th, SIGUSR1);
	pthread_join(th, NULL);
	check(r.ret == -1 && r.err == EINTR, "signal_ends_run", "run returned %d errno %d", r.ret,
	      r.err);

	/* The vCPU runs again after EINTR; close the fd meanwhile, then stop
	 * the thread: the TVM goes away once the run returns. */
	r.started = 0;
	pthread_create(&th, NULL, run_thread, &r);
	while (!r.started)
		usleep(1000);
	usleep(200 * 1000);
	close(fd);
	usleep(100 * 1000);
	pthread_kill(th, SIGUSR1);
	pthread_join(th, NULL);
	check(r.ret == -1 && r.err == EINTR, "close_while_running", "run returned %d errno %d",
	      r.ret, r.err);
}

int main(int argc, char **argv)
{
	struct salus_tsm_info before, after;
	uint32_t *code;
	void *ro;
	int tries;

	if (get_info(&before)) {
		printf("salus-tsm-hostile: %s: %s\n", SALUS_TSM_DEVICE, strerror(errno));
		return 2;
	}
	if (argc > 1 && !strcmp(argv[1], "info")) {
		print_info(&before);
		return 0;
	}
	code = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ro = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (code == MAP_FAILED || ro == MAP_FAILED)
		return 2;
	code[0] = INSN_SPIN;

	order_and_arguments(code, ro);
	concurrency(code);

	/* Everything the TVMs held came back (release may finish just after
	 * the last close returns). */
	for (tries = 0; tries < 50; tries++) {
		if (get_info(&after))
			break;
		if (after.converted_pages == before.converted_pages &&
		    after.shared_pages == before.shared_pages && after.live_tvms == before.live_tvms)
			break;
		usleep(100 * 1000);
	}
	check(after.converted_pages == before.converted_pages &&
		      after.shared_pages == before.shared_pages &&
		      after.leaked_pages == before.leaked_pages &&
		      after.live_tvms == before.live_tvms,
	      "counters_back", "before: %llu converted %llu shared %llu leaked %llu tvms; "
	      "after: %llu %llu %llu %llu",
	      (unsigned long long)before.converted_pages, (unsigned long long)before.shared_pages,
	      (unsigned long long)before.leaked_pages, (unsigned long long)before.live_tvms,
	      (unsigned long long)after.converted_pages, (unsigned long long)after.shared_pages,
	      (unsigned long long)after.leaked_pages, (unsigned long long)after.live_tvms);
	print_info(&after);
	printf("salus-tsm-hostile: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
