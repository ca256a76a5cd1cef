// SPDX-License-Identifier: GPL-2.0
/*
 * salus-tsm-smoke: drives /dev/salus-tsm end to end on a Linux host under Salus.
 * Bad-input checks, then the TVM of smoke-guest.S (measured 4K and 2M pages,
 * demand-zero 4K and 2M faults, interrupt preemption and EINTR, a shared
 * page, unshare), then teardown with the driver's counters back at zero.
 *   salus-tsm-smoke GUEST.BIN
 * Prints "salus-tsm-smoke: N passed, M failed"; exit status 0 iff M == 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

#include "../include/uapi/salus-tsm.h"

#define EID_TEST	0x0A5A1500
#define EID_COVG	0x434F5647
#define EID_SRST	0x53525354
#define REGION		0x80000000ULL
#define REGION_LEN	0x800000ULL
#define M2_GPA		0x80200000ULL
#define Z2M_GPA		0x80400000ULL
#define SHARED_GPA	0x80700000ULL
#define MB		(1ULL << 20)

static int passed, failed;
static int verbose;

#define STEP(...) do {							\
	printf("salus-tsm-smoke: " __VA_ARGS__);			\
	printf("\n");							\
	fflush(stdout);							\
} while (0)

#define CHECK(cond, ...) do {						\
	if (cond) {							\
		passed++;						\
	} else {							\
		failed++;						\
		printf("salus-tsm-smoke: FAIL line %d: ", __LINE__);		\
		printf(__VA_ARGS__);					\
		printf("\n");						\
	}								\
} while (0)

/* ioctl's errno (0 on success). */
static int io(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? errno : 0;
}

static struct salus_tsm_info info(int fd)
{
	struct salus_tsm_info i;

	memset(&i, 0xff, sizeof(i));
	CHECK(io(fd, SALUS_TSM_GET_INFO, &i) == 0, "GET_INFO");
	return i;
}

static void on_alarm(int sig)
{
	(void)sig;
}

/* Runs vCPU 0 while the main thread is inside its long run: EBUSY. */
static void *busy_runner(void *arg)
{
	struct salus_tsm_run r = { .vcpu_id = 0 };

	usleep(100000);
	*(int *)arg = io(*(int *)arg, SALUS_TSM_RUN_VCPU, &r);
	return NULL;
}

/* "SBI error E in FID F" of the file's last failed COVH call. */
static const char *last_err(int fd)
{
	static char buf[64];
	struct salus_tsm_error le = { 0 };

	ioctl(fd, SALUS_TSM_LAST_ERROR, &le);
	snprintf(buf, sizeof(buf), "SBI error %lld in FID %llu", (long long)le.sbi_error,
		 (unsigned long long)le.fid);
	return buf;
}

struct spinner {
	int fd;
	int err;
	volatile int started;
};

static void *spin_runner(void *p)
{
	struct spinner *sp = p;
	struct salus_tsm_run r = { .vcpu_id = 0 };

	sp->started = 1;
	sp->err = io(sp->fd, SALUS_TSM_RUN_VCPU, &r);
	return NULL;
}

/*
 * A TVM spins (`j .`) in one thread while this one converts memory for
 * another TVM: the fences must reach the CPU that runs the TVM.
 */
static void fence_while_spinning(void)
{
	static uint32_t code[1024] __attribute__((aligned(4096))) = { 0x6f };
	struct salus_tsm_create c = { 0 };
	struct salus_tsm_region rg = { REGION, REGION_LEN };
	struct salus_tsm_measured m = { REGION, (uintptr_t)code, 4096, 0, 0 };
	struct salus_tsm_vcpu v = { 0 };
	struct salus_tsm_finalize f = { REGION, 0 };
	struct salus_tsm_zero z = { REGION, MB, SALUS_TSM_PAGE_4K, 0 };
	struct sigaction sa = { .sa_handler = on_alarm };
	struct spinner sp = { .fd = open(SALUS_TSM_DEVICE, O_RDWR) };
	int fd = open(SALUS_TSM_DEVICE, O_RDWR), e, round;
	pthread_t thr;

	sigaction(SIGUSR1, &sa, NULL);
	CHECK(!io(sp.fd, SALUS_TSM_CREATE_TVM, &c) && !io(sp.fd, SALUS_TSM_ADD_REGION, &rg) &&
	      !io(sp.fd, SALUS_TSM_ADD_MEASURED, &m) && !io(sp.fd, SALUS_TSM_CREATE_VCPU, &v) &&
	      !io(sp.fd, SALUS_TSM_FINALIZE, &f), "spinning TVM: %d", errno);
	pthread_create(&thr, NULL, spin_runner, &sp);
	while (!sp.started)
		usleep(1000);
	usleep(100000);
	CHECK((e = io(fd, SALUS_TSM_CREATE_TVM, &c)) == 0, "TVM beside a spinning one: %d", e);
	CHECK((e = io(fd, SALUS_TSM_ADD_REGION, &rg)) == 0, "its region: %d", e);
	CHECK((e = io(fd, SALUS_TSM_CREATE_VCPU, &v)) == 0, "its vCPU: %d", e);
	CHECK((e = io(fd, SALUS_TSM_FINALIZE, &f)) == 0, "finalize it: %d", e);
	for (round = 0; round < 4; round++) {
		z.gpa = REGION + round * MB;
		z.len = MB;
		e = io(fd, SALUS_TSM_ADD_ZERO, &z);
		CHECK(e == 0, "zero pages beside a spinning TVM: %d (%s)", e, last_err(fd));
	}
	close(fd);
	pthread_kill(thr, SIGUSR1);
	pthread_join(thr, NULL);
	CHECK(sp.err == EINTR, "the spinning run ended with %d, not EINTR", sp.err);
	close(sp.fd);
	STEP("fences reached a CPU running a spinning TVM");
}

static void bad_inputs(int fd)
{
	struct salus_tsm_create c = { .reserved = 1 };
	struct salus_tsm_region rg = { REGION, REGION_LEN };
	struct salus_tsm_run run = { 0 };
	struct salus_tsm_vcpu v = { 0 };
	int e;

	CHECK((e = io(fd, _IO(SALUS_TSM_IOC, 0x7f), NULL)) == ENOTTY, "unknown ioctl: %d", e);
	CHECK((e = io(fd, SALUS_TSM_CREATE_TVM, &c)) == EINVAL, "reserved create: %d", e);
	CHECK((e = io(fd, SALUS_TSM_ADD_REGION, &rg)) == ENOENT, "region without TVM: %d", e);
	CHECK((e = io(fd, SALUS_TSM_RUN_VCPU, &run)) == ENOENT, "run without TVM: %d", e);
	CHECK((e = io(fd, SALUS_TSM_CREATE_VCPU, &v)) == ENOENT, "vcpu without TVM: %d", e);
	CHECK((e = io(fd, SALUS_TSM_CREATE_TVM, (void *)8)) == EFAULT, "bad pointer: %d", e);
}

static void bad_inputs_tvm(int fd, const struct salus_tsm_info *ti)
{
	struct salus_tsm_region rg;
	struct salus_tsm_measured m = { 0 };
	struct salus_tsm_zero z = { 0 };
	struct salus_tsm_shared s = { 0 };
	struct salus_tsm_vcpu v = { .vcpu_id = ti->tvm_max_vcpus };
	struct salus_tsm_create c = { 0 };
	int e;

	CHECK((e = io(fd, SALUS_TSM_CREATE_TVM, &c)) == EEXIST, "second create: %d", e);
	rg = (struct salus_tsm_region){ REGION + 1, 4096 };
	CHECK((e = io(fd, SALUS_TSM_ADD_REGION, &rg)) == EINVAL, "unaligned region: %d", e);
	rg = (struct salus_tsm_region){ REGION, 0 };
	CHECK((e = io(fd, SALUS_TSM_ADD_REGION, &rg)) == EINVAL, "empty region: %d", e);
	rg = (struct salus_tsm_region){ ~0xfffULL, 0x2000 };
	CHECK((e = io(fd, SALUS_TSM_ADD_REGION, &rg)) == EINVAL, "wrapping region: %d", e);
	m = (struct salus_tsm_measured){ REGION, 4096, 65 * MB, 0, 0 };
	CHECK((e = io(fd, SALUS_TSM_ADD_MEASURED, &m)) == E2BIG, "65 MiB measured: %d", e);
	m = (struct salus_tsm_measured){ REGION, 4096, 4096, 2, 0 };
	CHECK((e = io(fd, SALUS_TSM_ADD_MEASURED, &m)) == EINVAL, "page type 2: %d", e);
	m = (struct salus_tsm_measured){ REGION, 4096, 4096, 0, 1 };
	CHECK((e = io(fd, SALUS_TSM_ADD_MEASURED, &m)) == EINVAL, "reserved measured: %d", e);
	m = (struct salus_tsm_measured){ M2_GPA, 4096, 4096, 1, 0 };
	CHECK((e = io(fd, SALUS_TSM_ADD_MEASURED, &m)) == EINVAL, "2M type, 4K len: %d", e);
	m = (struct salus_tsm_measured){ 0x80001000, 8, 4096, 0, 0 };
	CHECK((e = io(fd, SALUS_TSM_ADD_MEASURED, &m)) == EFAULT, "measured from bad uaddr: %d", e);
	z = (struct salus_tsm_zero){ REGION, 4096, 0, 7 };
	CHECK((e = io(fd, SALUS_TSM_ADD_ZERO, &z)) == EINVAL, "reserved zero: %d", e);
	z = (struct salus_tsm_zero){ 0x10000000, 4096, 0, 0 };
	CHECK((e = io(fd, SALUS_TSM_ADD_ZERO, &z)) == EIO, "zero outside regions: %d", e);
	s = (struct salus_tsm_shared){ SHARED_GPA, 0x1234, 4096 };
	CHECK((e = io(fd, SALUS_TSM_ADD_SHARED, &s)) == EINVAL, "unaligned shared uaddr: %d", e);
	CHECK((e = io(fd, SALUS_TSM_CREATE_VCPU, &v)) == EINVAL, "vcpu id too big: %d", e);
}

struct host {
	int fd;
	uint8_t *shared_buf;	/* user page given as the shared page */
	int shared_region;	/* the guest declared SHARED_GPA shareable */
	int steps_seen;
	int zero_faults, shared_faults, z2m_added, eintr;
};

static int fault(struct host *h, const struct salus_tsm_run *r)
{
	uint64_t page = r->gpa & ~0xfffULL;
	int e;

	if (h->shared_region && page == SHARED_GPA) {
		struct salus_tsm_shared s = { page, (uintptr_t)h->shared_buf, 4096 };

		h->shared_faults++;
		e = io(h->fd, SALUS_TSM_ADD_SHARED, &s);
		CHECK(e == 0, "ADD_SHARED: %d", e);
		return e;
	}
	if (r->gpa >= Z2M_GPA && r->gpa < Z2M_GPA + 2 * MB) {
		struct salus_tsm_zero z = { Z2M_GPA, 2 * MB, SALUS_TSM_PAGE_2M, 0 };

		h->z2m_added++;
		e = io(h->fd, SALUS_TSM_ADD_ZERO, &z);
		CHECK(e == 0, "ADD_ZERO 2M: %d", e);
		return e;
	}
	if (r->gpa >= REGION && r->gpa < REGION + REGION_LEN) {
		struct salus_tsm_zero z = { page, 4096, SALUS_TSM_PAGE_4K, 0 };

		h->zero_faults++;
		e = io(h->fd, SALUS_TSM_ADD_ZERO, &z);
		CHECK(e == 0, "ADD_ZERO %#llx: %d", (unsigned long long)page, e);
		return e;
	}
	CHECK(0, "fault at unexpected gpa %#llx", (unsigned long long)r->gpa);
	return -1;
}

/* One forwarded ecall; returns 1 at SRST. Sets r->a0/a1 for the answer. */
static int ecall(struct host *h, struct salus_tsm_run *r, uint64_t m2_word)
{
	const __u64 *a = r->a;
	int e;

	r->a0 = 0;
	r->a1 = 0;
	if (a[7] == EID_SRST)
		return 1;
	if (a[7] == EID_COVG) {
		if (a[6] == 2 && a[0] == SHARED_GPA)
			h->shared_region = 1;
		if (a[6] == 3 && a[0] == SHARED_GPA) {
			struct salus_tsm_shared s = { a[0], 0, a[1] };

			h->shared_region = 0;
			e = io(h->fd, SALUS_TSM_REMOVE_SHARED, &s);
			CHECK(e == 0, "REMOVE_SHARED: %d", e);
		}
		return 0;
	}
	CHECK(a[7] == EID_TEST, "ecall EID %#llx", (unsigned long long)a[7]);
	h->steps_seen++;
	switch (a[6]) {
	case 1:
		CHECK(a[0] == 0x1122334455667788ULL, "measured 4K word %#llx", (unsigned long long)a[0]);
		r->a1 = a[0] + 1;
		break;
	case 2:
		CHECK(a[0] == 0x1122334455667789ULL, "a1 answer came back as %#llx", (unsigned long long)a[0]);
		break;
	case 3:
		CHECK(a[0] == m2_word, "measured 2M word %#llx", (unsigned long long)a[0]);
		break;
	case 4:
		CHECK(a[0] == 0 && a[1] == 0x1234abcd, "zero 4K: %#llx %#llx",
		      (unsigned long long)a[0], (unsigned long long)a[1]);
		break;
	case 5:
		CHECK(a[0] == 0x1234abcd, "zero 2M: %#llx", (unsigned long long)a[0]);
		break;
	case 6:
		break;
	case 7:
		CHECK(a[0] == 0, "guest share_memory_region: %lld", (long long)a[0]);
		break;
	case 8:
		CHECK(((uint64_t *)h->shared_buf)[0] == 0x5a5a5a5a, "shared page word %#llx",
		      (unsigned long long)((uint64_t *)h->shared_buf)[0]);
		((uint64_t *)h->shared_buf)[1] = 0xc0ffee;
		break;
	case 9:
		CHECK(a[0] == 0xc0ffee, "guest read shared %#llx", (unsigned long long)a[0]);
		break;
	case 10:
		CHECK(a[0] == 0, "guest unshare_memory_region: %lld", (long long)a[0]);
		break;
	case 11:
		CHECK(a[0] == 0, "after unshare, private page reads %#llx", (unsigned long long)a[0]);
		break;
	default:
		CHECK(0, "unknown step %llu", (unsigned long long)a[6]);
	}
	return 0;
}

static void run_guest(int fd, const char *guest_path)
{
	static uint8_t img[4096] __attribute__((aligned(4096)));
	struct salus_tsm_info ti = info(fd);
	struct salus_tsm_create c = { 0 };
	struct salus_tsm_region rg = { REGION, REGION_LEN };
	struct salus_tsm_measured m;
	struct salus_tsm_vcpu v = { 0 };
	struct salus_tsm_finalize f = { REGION, 0x42 };
	struct salus_tsm_run r;
	struct host h = { .fd = fd };
	uint64_t *m2, m2_word;
	struct itimerval it = { { 0, 0 }, { 0, 200000 } };
	struct sigaction sa;
	pthread_t thr;
	int e, i, busy_fd = -1, busy_started = 0, exits = 0;
	FILE *g;

	g = fopen(guest_path, "rb");
	CHECK(g != NULL, "open %s", guest_path);
	if (!g)
		return;
	CHECK(fread(img, 1, sizeof(img), g) > 0, "read guest");
	fclose(g);
	m2 = mmap(NULL, 2 * MB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (i = 0; i < (int)(2 * MB / 8); i++)
		m2[i] = 0x2a2a000000000000ULL + i;
	m2_word = m2[0x3008 / 8];
	h.shared_buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	CHECK((e = io(fd, SALUS_TSM_CREATE_TVM, &c)) == 0, "CREATE_TVM: %d", e);
	if (e)
		return;
	CHECK(c.tvm_id != 0, "tvm id 0");
	STEP("TVM %llu created", (unsigned long long)c.tvm_id);
	bad_inputs_tvm(fd, &ti);
	CHECK((e = io(fd, SALUS_TSM_ADD_REGION, &rg)) == 0, "ADD_REGION: %d", e);
	m = (struct salus_tsm_measured){ REGION, (uintptr_t)img, 4096, SALUS_TSM_PAGE_4K, 0 };
	CHECK((e = io(fd, SALUS_TSM_ADD_MEASURED, &m)) == 0, "ADD_MEASURED 4K: %d", e);
	m = (struct salus_tsm_measured){ M2_GPA, (uintptr_t)m2, 2 * MB, SALUS_TSM_PAGE_2M, 0 };
	CHECK((e = io(fd, SALUS_TSM_ADD_MEASURED, &m)) == 0, "ADD_MEASURED 2M: %d", e);
	CHECK((e = io(fd, SALUS_TSM_CREATE_VCPU, &v)) == 0, "CREATE_VCPU: %d", e);
	CHECK((e = io(fd, SALUS_TSM_CREATE_VCPU, &v)) == EIO, "second CREATE_VCPU: %d", e);
	r = (struct salus_tsm_run){ .vcpu_id = 0 };
	CHECK((e = io(fd, SALUS_TSM_RUN_VCPU, &r)) == EIO, "run before finalize: %d", e);
	CHECK((e = io(fd, SALUS_TSM_FINALIZE, &f)) == 0, "FINALIZE: %d", e);
	CHECK((e = io(fd, SALUS_TSM_FINALIZE, &f)) == EIO, "second FINALIZE: %d", e);
	m = (struct salus_tsm_measured){ 0x80300000, (uintptr_t)img, 4096, 0, 0 };
	CHECK((e = io(fd, SALUS_TSM_ADD_MEASURED, &m)) == EIO, "measured after finalize: %d", e);
	ti = info(fd);
	CHECK(ti.live_tvms >= 1 && ti.converted_pages >= 512 + 4, "counters after build: %llu TVMs %llu pages",
	      (unsigned long long)ti.live_tvms, (unsigned long long)ti.converted_pages);

	STEP("TVM built and finalized: %llu pages converted", (unsigned long long)ti.converted_pages);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;	/* no SA_RESTART: the run sees EINTR */
	sigaction(SIGALRM, &sa, NULL);
	r = (struct salus_tsm_run){ .vcpu_id = 0 };
	for (;;) {
		uint64_t a0 = r.a0, a1 = r.a1;

		r = (struct salus_tsm_run){ .vcpu_id = 0, .a0 = a0, .a1 = a1 };
		if (h.steps_seen == 5 && !h.eintr && !busy_started) {
			/* The spin: a second runner and a signal meanwhile. */
			busy_fd = fd;
			pthread_create(&thr, NULL, busy_runner, &busy_fd);
			busy_started = 1;
			setitimer(ITIMER_REAL, &it, NULL);
		}
		e = io(fd, SALUS_TSM_RUN_VCPU, &r);
		if (e == EINTR) {
			h.eintr++;
			r.a0 = a0;
			r.a1 = a1;
			continue;
		}
		CHECK(e == 0, "RUN_VCPU: %d", e);
		if (e)
			break;
		if (verbose)
			STEP("exit scause %llu stval %#llx gpa %#llx a6 %llu a7 %#llx",
			     (unsigned long long)r.scause, (unsigned long long)r.stval,
			     (unsigned long long)r.gpa, (unsigned long long)r.a[6],
			     (unsigned long long)r.a[7]);
		if (++exits > 1000) {
			CHECK(0, "more than 1000 exits");
			break;
		}
		CHECK(r.resumable == 1, "not resumable: scause %llu", (unsigned long long)r.scause);
		CHECK(!(r.scause >> 63), "interrupt exit reached userspace");
		if (r.scause == 10) {
			if (ecall(&h, &r, m2_word))
				break;
		} else if (r.scause == 21 || r.scause == 23 || r.scause == 20) {
			if (fault(&h, &r))
				break;
			r.a0 = r.a1 = 0;
		} else {
			CHECK(0, "exit scause %llu stval %#llx", (unsigned long long)r.scause,
			      (unsigned long long)r.stval);
			break;
		}
	}
	if (busy_started) {
		pthread_join(thr, NULL);
		CHECK(busy_fd == EBUSY, "a second runner of vCPU 0 got %d, not EBUSY", busy_fd);
	}
	CHECK(h.steps_seen == 11, "guest steps seen: %d", h.steps_seen);
	CHECK(h.zero_faults >= 2 && h.z2m_added == 1 && h.shared_faults == 1,
	      "faults: %d zero, %d 2M, %d shared", h.zero_faults, h.z2m_added, h.shared_faults);
	CHECK(h.eintr >= 1, "no EINTR during the spin");
	ti = info(fd);
	CHECK(ti.shared_pages == 0, "shared pages after unshare: %llu", (unsigned long long)ti.shared_pages);
	printf("salus-tsm-smoke: guest done after %d exits (%d zero faults, EINTR %d)\n", exits,
	       h.zero_faults, h.eintr);
}

int main(int argc, char **argv)
{
	struct salus_tsm_info ti;
	struct salus_tsm_error le;
	struct salus_tsm_create c = { 0 };
	int fd, fd2, e;

	if (argc < 2) {
		fprintf(stderr, "usage: salus-tsm-smoke GUEST.BIN\n");
		return 2;
	}
	verbose = getenv("SMOKE_VERBOSE") != NULL;
	fd = open(SALUS_TSM_DEVICE, O_RDWR);
	CHECK(fd >= 0, "open %s: %s", SALUS_TSM_DEVICE, strerror(errno));
	if (fd < 0)
		goto out;
	ti = info(fd);
	CHECK(ti.abi_version == SALUS_TSM_ABI_VERSION && ti.tsm_state == 2 && ti.tvm_max_vcpus >= 1,
	      "info: abi %u state %u vcpus %llu", ti.abi_version, ti.tsm_state,
	      (unsigned long long)ti.tvm_max_vcpus);
	CHECK(ti.live_tvms == 0 && ti.converted_pages == 0 && ti.leaked_pages == 0,
	      "counters at start: %llu TVMs, %llu converted, %llu leaked",
	      (unsigned long long)ti.live_tvms, (unsigned long long)ti.converted_pages,
	      (unsigned long long)ti.leaked_pages);
	bad_inputs(fd);
	STEP("bad inputs without a TVM done");

	/* A second TVM at once, destroyed unfinished on close. */
	fd2 = open(SALUS_TSM_DEVICE, O_RDWR);
	CHECK((e = io(fd2, SALUS_TSM_CREATE_TVM, &c)) == 0, "second file's TVM: %d", e);

	fence_while_spinning();
	run_guest(fd, argv[1]);
	CHECK(io(fd, SALUS_TSM_LAST_ERROR, &le) == 0, "LAST_ERROR");
	printf("salus-tsm-smoke: last error %lld (fid %llu)\n", (long long)le.sbi_error,
	       (unsigned long long)le.fid);
	CHECK(info(fd).live_tvms == 2, "two live TVMs");
	close(fd2);
	close(fd);

	fd = open(SALUS_TSM_DEVICE, O_RDWR);
	ti = info(fd);
	CHECK(ti.live_tvms == 0 && ti.converted_pages == 0 && ti.leaked_pages == 0 &&
	      ti.shared_pages == 0,
	      "counters at end: %llu TVMs, %llu converted, %llu leaked, %llu shared",
	      (unsigned long long)ti.live_tvms, (unsigned long long)ti.converted_pages,
	      (unsigned long long)ti.leaked_pages, (unsigned long long)ti.shared_pages);
	close(fd);
out:
	printf("salus-tsm-smoke: %d passed, %d failed\n", passed, failed);
	return failed != 0;
}
