/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The smoke test's TVM: a few hundred bytes run with paging off at
 * 0x80000000. Each step reports to the host with a forwarded ecall
 * (a7 = EID_TEST, a6 = step); the host checks the values.
 */
#define EID_TEST	0x0A5A1500
#define EID_COVG	0x434F5647
#define EID_SRST	0x53525354

	.section .text
	.globl _start
_start:
	li	s0, EID_TEST
	/* 1, 2: a measured 4 KiB page; the host's answer comes back in a1 */
	lla	t0, data4k
	ld	a0, 0(t0)
	li	a6, 1
	mv	a7, s0
	ecall
	mv	a0, a1
	li	a6, 2
	ecall
	/* 3: a word of the measured 2 MiB page */
	li	t0, 0x80203008
	ld	a0, 0(t0)
	li	a6, 3
	mv	a7, s0
	ecall
	/* 4: a demand-zero 4 KiB page (load fault first, then a store) */
	li	t0, 0x80100000
	ld	a0, 0(t0)
	li	t1, 0x1234abcd
	sd	t1, 8(t0)
	ld	a1, 8(t0)
	li	a6, 4
	mv	a7, s0
	ecall
	/* 5: a demand-zero 2 MiB page */
	li	t0, 0x80480000
	li	t1, 0x1234abcd
	sd	t1, 0(t0)
	ld	a0, 0(t0)
	li	a6, 5
	mv	a7, s0
	ecall
	/* 6: spin long enough for host interrupts to preempt us */
	li	t2, 1000000000
1:	addi	t2, t2, -1
	bnez	t2, 1b
	li	a6, 6
	mv	a7, s0
	ecall
	/* 7: share a page; the host is told (a notify exit) */
	li	a0, 0x80700000
	li	a1, 0x1000
	li	a6, 2
	li	a7, EID_COVG
	ecall
	li	a6, 7
	mv	a7, s0
	ecall
	/* 8, 9: write the shared page (host maps its page), read the host's */
	li	t0, 0x80700000
	li	t1, 0x5a5a5a5a
	sd	t1, 0(t0)
	li	a6, 8
	mv	a7, s0
	ecall
	ld	a0, 8(t0)
	li	a6, 9
	mv	a7, s0
	ecall
	/* 10: unshare it (Salus takes the page back; the host unpins) */
	li	a0, 0x80700000
	li	a1, 0x1000
	li	a6, 3
	li	a7, EID_COVG
	ecall
	li	a6, 10
	mv	a7, s0
	ecall
	/* 11: the GPA is private again: a fresh zero page */
	li	t0, 0x80700000
	ld	a0, 0(t0)
	li	a6, 11
	mv	a7, s0
	ecall
	/* done */
	li	a0, 0
	li	a1, 0
	li	a6, 0
	li	a7, EID_SRST
	ecall
2:	j	2b

	.balign 8
data4k:
	.dword	0x1122334455667788
