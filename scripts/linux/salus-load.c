/*
 * salus-load: scheduler, timer and IPI load for the Linux host (issue 14).
 *
 *   salus-load WORKLOAD|all [SECONDS]     (default 2 s each)
 *
 * Each workload runs for SECONDS of CLOCK_MONOTONIC (the guest's clock)
 * and prints one line `NAME OPS_PER_S OPS SECONDS`, written with a single
 * write(2) so that a redirect to /dev/kmsg makes one record per line.
 *
 *   pipe    ping-pong of one byte between two processes pinned to CPUs 0/1
 *           (one op = one round trip: two wake-ups across CPUs)
 *   futex   the same between two threads through FUTEX_WAIT/FUTEX_WAKE
 *   timer   clock_nanosleep(CLOCK_MONOTONIC, 100 us) in a loop
 *   clock   clock_gettime(CLOCK_MONOTONIC) calls
 *   fork    fork + _exit + waitpid
 *
 * A watchdog (alarm) ends a run that stops making progress (a lost
 * wake-up) with `NAME 0 ... hung` and exit status 2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double secs = 2.0;
static const char *current = "?";
static volatile pid_t child; /* the pipe peer, killed by the watchdog */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[160];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n > 0 && write(1, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1) < 0)
		_exit(3);
}

static void report(const char *name, unsigned long ops, double t)
{
	say("%s %.0f %lu %.3f\n", name, t > 0 ? ops / t : 0.0, ops, t);
}

static void hung(int sig)
{
	(void)sig;
	/* async-signal-safe: only write and _exit */
	char buf[64];
	size_t n = 0;
	for (const char *p = current; *p && n < 40; p++)
		buf[n++] = *p;
	memcpy(buf + n, " 0 0 0 hung\n", 12);
	if (write(1, buf, n + 12) < 0)
		_exit(3);
	if (child > 0)
		kill(child, SIGKILL);
	_exit(2);
}

static void pin(int cpu)
{
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	/* Fails on a 1-CPU machine: the run is then on one CPU. */
	sched_setaffinity(0, sizeof s, &s);
}

/* How often the clock is read in the loops (keeps its cost out). */
#define CHECK 64

static void run_pipe(void)
{
	int ab[2], ba[2];
	char c = 'x';
	if (pipe(ab) || pipe(ba)) {
		perror("pipe");
		exit(1);
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		pin(1);
		while (read(ab[0], &c, 1) == 1 && c != 'q')
			if (write(ba[1], &c, 1) != 1)
				_exit(1);
		_exit(0);
	}
	child = pid;
	pin(0);
	unsigned long ops = 0;
	double t0 = now(), t = 0;
	for (;;) {
		if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
			break;
		if (++ops % CHECK == 0 && (t = now() - t0) >= secs)
			break;
	}
	c = 'q';
	if (write(ab[1], &c, 1) != 1)
		perror("write");
	waitpid(pid, NULL, 0);
	child = 0;
	report("pipe", ops, t);
}

static _Atomic int fword;

static void fwait(int val)
{
	while (atomic_load(&fword) == val)
		syscall(SYS_futex, &fword, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void fset(int val)
{
	atomic_store(&fword, val);
	syscall(SYS_futex, &fword, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *futex_peer(void *arg)
{
	(void)arg;
	pin(1);
	for (;;) {
		fwait(0); /* wait for 1 (or 2: stop) */
		if (atomic_load(&fword) == 2)
			return NULL;
		fset(0);
	}
}

static void run_futex(void)
{
	pthread_t th;
	atomic_store(&fword, 0);
	if (pthread_create(&th, NULL, futex_peer, NULL)) {
		perror("pthread_create");
		exit(1);
	}
	pin(0);
	unsigned long ops = 0;
	double t0 = now(), t = 0;
	for (;;) {
		fset(1);
		fwait(1);
		if (++ops % CHECK == 0 && (t = now() - t0) >= secs)
			break;
	}
	fset(2);
	pthread_join(th, NULL);
	report("futex", ops, t);
}

static void run_timer(void)
{
	struct timespec d = {0, 100000};
	unsigned long ops = 0;
	double t0 = now(), t;
	do {
		clock_nanosleep(CLOCK_MONOTONIC, 0, &d, NULL);
		ops++;
	} while ((t = now() - t0) < secs);
	report("timer", ops, t);
}

static void run_clock(void)
{
	struct timespec ts;
	unsigned long ops = 0;
	double t0 = now(), t;
	do {
		for (int i = 0; i < 1000; i++)
			clock_gettime(CLOCK_MONOTONIC, &ts);
		ops += 1000;
	} while ((t = now() - t0) < secs);
	report("clock", ops, t);
}

static void run_fork(void)
{
	unsigned long ops = 0;
	double t0 = now(), t;
	do {
		pid_t p = fork();
		if (p == 0)
			_exit(0);
		if (p < 0 || waitpid(p, NULL, 0) != p) {
			perror("fork");
			exit(1);
		}
		ops++;
	} while ((t = now() - t0) < secs);
	report("fork", ops, t);
}

static const struct {
	const char *name;
	void (*run)(void);
} workloads[] = {
	{"pipe", run_pipe}, {"futex", run_futex}, {"timer", run_timer},
	{"clock", run_clock}, {"fork", run_fork},
};

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: salus-load pipe|futex|timer|clock|fork|all [SECONDS]\n");
		return 1;
	}
	if (argc == 3) {
		secs = atof(argv[2]);
		if (!(secs > 0 && secs < 3600)) {
			fprintf(stderr, "salus-load: bad SECONDS %s\n", argv[2]);
			return 1;
		}
	}
	signal(SIGALRM, hung);
	int found = 0;
	for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++) {
		if (strcmp(argv[1], "all") && strcmp(argv[1], workloads[i].name))
			continue;
		found = 1;
		current = workloads[i].name;
		/* Wall-clock watchdog, generous: TCG on a loaded machine. */
		alarm((unsigned)(secs * 20) + 30);
		workloads[i].run();
		alarm(0);
	}
	if (!found) {
		fprintf(stderr, "salus-load: unknown workload %s\n", argv[1]);
		return 1;
	}
	return 0;
}
